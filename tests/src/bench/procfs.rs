//! What a process costs, read from Linux's `/proc`: resident memory from
//! `/proc/PID/status` (`VmRSS`) and CPU time from `/proc/PID/stat` (user
//! plus system time, all threads). A [`CpuMeter`] turns two readings of the
//! CPU time into a share of one core over the wall time between them.

use std::time::Instant;

use anyhow::{Context, bail};

/// Bytes in a mebibyte, for reporting.
pub const MIB: f64 = 1024.0 * 1024.0;

/// The resident set size of `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_vm_rss(&text).with_context(|| format!("no VmRSS line in {path}"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User plus system CPU time of `pid` so far, in clock ticks.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_stat_ticks(&text).with_context(|| format!("cannot parse {path}"))
}

/// Fields 14 and 15 (utime, stime), counted after the command name, which
/// is in parentheses and may itself hold spaces or parentheses.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ")" come field 3 (state) onwards: utime is field 14, the 12th here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second, as `/proc` counts CPU time.
pub fn ticks_per_second() -> anyhow::Result<f64> {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(n)) if n > 0 => Ok(n as f64),
        Ok(_) => bail!("the system reports no clock tick rate"),
        Err(e) => bail!("cannot read the clock tick rate: {e}"),
    }
}

/// Measures the CPU share of one process over a stretch of wall time.
pub struct CpuMeter {
    pid: u32,
    ticks: u64,
    at: Instant,
    per_second: f64,
}

impl CpuMeter {
    pub fn start(pid: u32) -> anyhow::Result<CpuMeter> {
        Ok(CpuMeter {
            pid,
            ticks: cpu_ticks(pid)?,
            at: Instant::now(),
            per_second: ticks_per_second()?,
        })
    }

    /// Percent of one core used since [`start`](Self::start).
    pub fn percent(&self) -> anyhow::Result<f64> {
        let used = cpu_ticks(self.pid)?.saturating_sub(self.ticks) as f64 / self.per_second;
        let wall = self.at.elapsed().as_secs_f64();
        if wall <= 0.0 {
            bail!("no time passed while measuring CPU");
        }
        Ok(100.0 * used / wall)
    }
}

/// Raises this process's open-file limit to its hard limit, so thousands of
/// sockets fit; children (the relay) inherit it. Returns the new soft limit.
pub fn raise_open_files() -> anyhow::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("cannot read RLIMIT_NOFILE")?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("cannot raise RLIMIT_NOFILE")?;
    }
    Ok(hard.max(soft))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\trelay\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn stat_ticks_skip_a_command_name_with_spaces() {
        let stat = "42 (odd ) name) S 1 42 42 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 3 0 100 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(22));
        assert_eq!(parse_stat_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).unwrap() > 0);
        assert!(cpu_ticks(pid).is_ok());
        assert!(ticks_per_second().unwrap() > 0.0);
    }
}
