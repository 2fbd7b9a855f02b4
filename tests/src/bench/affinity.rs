//! Which cores a process may run on: the data path's throughput is measured
//! a second time with the relay on a core of its own and both ends on the
//! others, as when the relay runs on its own machine. Linux sets a thread's
//! cores one thread at a time, so every thread listed under
//! `/proc/PID/task` is set, and [`Apart::drop`] gives each of them back
//! every core this process started with.

use anyhow::{Context, bail};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// The relay on one core, this process (both ends) on the rest, until
/// dropped.
pub struct Apart {
    pids: [u32; 2],
    all: CpuSet,
}

impl Apart {
    /// Puts `relay` on the last core this process may use and this process
    /// on the others; `None` when this process may use one core only.
    pub fn new(relay: u32) -> anyhow::Result<Option<Apart>> {
        let all =
            sched_getaffinity(Pid::from_raw(0)).context("cannot read this process's cores")?;
        let cores: Vec<usize> = (0..CpuSet::count())
            .filter(|c| all.is_set(*c).unwrap_or(false))
            .collect();
        let Some((&last, rest)) = cores.split_last() else {
            bail!("this process may run on no core");
        };
        if rest.is_empty() {
            return Ok(None);
        }
        let mut ends = CpuSet::new();
        for c in rest {
            ends.set(*c)?;
        }
        let mut alone = CpuSet::new();
        alone.set(last)?;
        let apart = Apart {
            pids: [std::process::id(), relay],
            all,
        };
        set(apart.pids[0], &ends)?;
        set(apart.pids[1], &alone)?;
        Ok(Some(apart))
    }
}

impl Drop for Apart {
    fn drop(&mut self) {
        for pid in self.pids {
            // A relay that has ended needs no cores back.
            let _ = set(pid, &self.all);
        }
    }
}

/// Sets the cores of every thread of `pid`.
fn set(pid: u32, cores: &CpuSet) -> anyhow::Result<()> {
    let dir = format!("/proc/{pid}/task");
    let tasks = std::fs::read_dir(&dir).with_context(|| format!("cannot list {dir}"))?;
    for task in tasks {
        let task = task.with_context(|| format!("cannot list {dir}"))?;
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
        else {
            continue;
        };
        match sched_setaffinity(Pid::from_raw(tid), cores) {
            // A thread that ended since the listing.
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => bail!("cannot set the cores of thread {tid} of process {pid}: {e}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cores_of(tid: i32) -> Vec<usize> {
        let set = sched_getaffinity(Pid::from_raw(tid)).unwrap();
        (0..CpuSet::count())
            .filter(|c| set.is_set(*c).unwrap())
            .collect()
    }

    #[test]
    fn a_child_goes_to_the_last_core_and_both_get_every_core_back() {
        // A second thread of this process, which must move with it.
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            tid_tx.send(nix::unistd::gettid().as_raw()).unwrap();
            stopped.recv()
        });
        let other_tid = tid_rx.recv().unwrap();
        let me = std::process::id() as i32;
        let before = cores_of(me);
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let child_pid = child.id() as i32;
        let result = Apart::new(child.id()).unwrap();
        if before.len() < 2 {
            assert!(result.is_none(), "one core cannot be split");
        } else {
            let apart = result.unwrap();
            assert_eq!(cores_of(child_pid), vec![*before.last().unwrap()]);
            for tid in [me, other_tid] {
                assert_eq!(cores_of(tid), before[..before.len() - 1]);
            }
            drop(apart);
            for tid in [child_pid, me, other_tid] {
                assert_eq!(cores_of(tid), before);
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        stop.send(()).unwrap();
        other.join().unwrap().unwrap();
    }
}
