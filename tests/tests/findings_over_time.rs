//! End to end: faults that show only over time, made real on this machine
//! and seen by `sprijin-agent diag --json --watch SECS` through the real
//! binary: a program restarting in a loop (beside a busy CPU that must not
//! crowd it out), a file filling a small tmpfs, an interrupted dpkg with
//! its lock held (in a mount namespace, over a dpkg folder of the test's
//! own), and a control group at its process limit. Each checks that the
//! finding names its culprit, and undoes the fault when it ends.
//!
//! CPU pressure is made real too: more busy processes than cores, long
//! enough for the kernel's ten-second average to rise.
//!
//! Not made here: memory or disk stalls (with no swap, memory runs out
//! rather than thrashing, and a page-cache thrash in a small group did not
//! register as a stall), and a lock held for long (the rule waits ten
//! minutes, since an update holds it for minutes). Their rules are tested
//! on recorded readings in the agent; here the lock's holder is checked.
#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sprijin_proto::message::diag::Severity;
use sprijin_tests::bin;
use sprijin_tests::faults::*;

fn spawn(script: &str, args: &[&Path]) -> KillOnDrop {
    KillOnDrop(
        Command::new("sh")
            .args(["-c", script, "sh"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn a_program_restarting_in_a_loop_is_named_before_a_busy_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let crashy = dir.path().join("crashy");
    fs::write(&crashy, "#!/bin/sh\nsleep 0.4\nexit 3\n").unwrap();
    fs::set_permissions(&crashy, fs::Permissions::from_mode(0o755)).unwrap();
    let supervisor = spawn("while :; do \"$1\"; done", &[&crashy]);
    // An unrelated busy machine: every core spinning.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let _busy: Vec<KillOnDrop> = (0..cores)
        .map(|_| spawn("while :; do :; done", &[]))
        .collect();

    let report = diag_json_watching(8);
    let f = finding(&report, "restart-loop", "crashy");
    assert!(
        f.title
            .contains(&format!("started again by sh (pid {})", supervisor.0.id())),
        "{}",
        f.title
    );
    let ids: Vec<&str> = report.findings.iter().map(|f| f.id.as_str()).collect();
    let cause = ids.iter().position(|id| *id == "restart-loop").unwrap();
    for symptom in [
        "cpu-saturated",
        "load-above-cores",
        "process-cpu-hog",
        "cpu-stall",
    ] {
        if let Some(at) = ids.iter().position(|id| *id == symptom) {
            assert!(cause < at, "{symptom} crowds out the cause: {ids:?}");
        }
    }
    eprintln!("{}", f.title);
}

#[test]
fn work_queued_for_the_cpu_is_seen_in_pressure_stall_information() {
    if !Path::new("/proc/pressure/cpu").exists() {
        eprintln!("skipping: this kernel gives no pressure stall information (/proc/pressure)");
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let _busy: Vec<KillOnDrop> = (0..2 * cores)
        .map(|_| spawn("while :; do :; done", &[]))
        .collect();
    // The ten-second average needs its ten seconds.
    std::thread::sleep(std::time::Duration::from_secs(12));
    let report = diag_json_watching(1);
    let f = report
        .findings
        .iter()
        .find(|f| f.id == "cpu-stall")
        .unwrap_or_else(|| panic!("no cpu-stall in {:#?}", report.findings));
    let waited: f64 = evidence(f, "some waited (10 s)")
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(waited >= 50.0, "{f:#?}");
    eprintln!("{}", f.title);
}

#[test]
fn a_file_filling_a_small_disk_is_named_with_its_writer() {
    if !root_or_skip() {
        return;
    }
    let disk = Tmpfs::mount("size=96m");
    let log = disk.path.join("runaway.log");
    // The shell holds the file open and appends a MiB three times a second.
    let writer = spawn(
        "exec 3>>\"$1\"; while :; do head -c 1048576 /dev/zero >&3; sleep 0.3 3>&-; done",
        &[&log],
    );
    let report = diag_json_watching(10);
    let writer_pid = writer.0.id();
    // The writer goes before the file system it holds open is unmounted.
    drop(writer);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let f = finding(&report, "disk-filling", &disk.mount_point());
    assert_eq!(f.severity, Severity::Critical, "{f:#?}");
    assert_eq!(evidence(f, "file"), log.to_string_lossy());
    assert_eq!(evidence(f, "written by"), format!("sh (pid {writer_pid})"));
    assert!(
        f.title.starts_with(&format!("{} grows ", log.display())),
        "{}",
        f.title
    );
    eprintln!("{}", f.title);
}

#[test]
fn an_interrupted_install_and_its_lock_holder_are_named() {
    if !root_or_skip() {
        return;
    }
    // A dpkg folder of the test's own, left as an install cut off midway
    // leaves it, put over /var/lib/dpkg in a mount namespace of its own.
    let dpkg = tempfile::tempdir().unwrap();
    fs::write(dpkg.path().join("status"), "").unwrap();
    fs::create_dir(dpkg.path().join("updates")).unwrap();
    fs::write(dpkg.path().join("updates/0001"), "Package: example\n").unwrap();
    let lock = dpkg.path().join("lock-frontend");
    fs::write(&lock, "").unwrap();
    let mut holder = KillOnDrop(
        Command::new("flock")
            .arg(&lock)
            .args(["sh", "-c", "echo locked; exec sleep 120"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("flock (util-linux) runs"),
    );
    wait_for_line(&mut holder.0, "locked");
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$1\" /var/lib/dpkg && exec \"$2\" diag --json --watch 2")
        .arg("sh")
        .arg(dpkg.path())
        .arg(bin("sprijin-agent"))
        .stdin(Stdio::null())
        .output()
        .expect("unshare (util-linux) runs");
    let report = parse_report(out, "diag in a mount namespace");
    let f = finding(&report, "install-interrupted", "dpkg");
    assert_eq!(f.script.as_deref(), Some("dpkg-configure"));
    let packages = report.snapshot.packages.as_ref().unwrap();
    let held = packages
        .locks
        .iter()
        .find(|l| l.path == "/var/lib/dpkg/lock-frontend")
        .unwrap_or_else(|| panic!("the lock's holder is not named: {packages:#?}"));
    assert_eq!((held.pid, held.process.as_str()), (holder.0.id(), "flock"));
    eprintln!("{}", f.title);
}

/// A process-limited control group (v1 or v2) made for one test, removed
/// at the end.
struct PidsGroup {
    path: PathBuf,
    name: String,
}

impl PidsGroup {
    fn new(max: u32) -> Result<PidsGroup, &'static str> {
        let name = unique("sprijin-pids");
        let v1 = Path::new("/sys/fs/cgroup/pids");
        let v2 = Path::new("/sys/fs/cgroup");
        let root = if v1.join("cgroup.procs").exists() {
            v1
        } else if fs::read_to_string(v2.join("cgroup.subtree_control"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"))
        {
            v2
        } else {
            return Err(
                "neither cgroup v1's pids hierarchy nor a v2 tree with the pids controller",
            );
        };
        let path = root.join(&name);
        fs::create_dir(&path).map_err(|_| "cannot make a control group")?;
        let group = PidsGroup {
            path,
            name: format!("/{name}"),
        };
        fs::write(group.path.join("pids.max"), max.to_string())
            .map_err(|_| "cannot set pids.max")?;
        Ok(group)
    }
}

impl Drop for PidsGroup {
    fn drop(&mut self) {
        // Every process left in the group is killed, then the group goes.
        let procs = self.path.join("cgroup.procs");
        for _ in 0..50 {
            let pids = fs::read_to_string(&procs).unwrap_or_default();
            if pids.trim().is_empty() {
                break;
            }
            for pid in pids
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if let Err(e) = fs::remove_dir(&self.path) {
            eprintln!("could not remove {}: {e}", self.path.display());
        }
    }
}

#[test]
fn a_control_group_at_its_process_limit_is_named() {
    if !root_or_skip() {
        return;
    }
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    eprintln!(
        "control groups here are version {}; the other version's files are tested on recorded readings",
        if v2 { 2 } else { 1 }
    );
    let group = match PidsGroup::new(4) {
        Ok(g) => g,
        Err(missing) => {
            eprintln!("skipping: this kernel offers {missing}");
            return;
        }
    };
    // Joins the group, waits for the agent's first look, then keeps
    // asking for more processes than the group may have.
    let procs = group.path.join("cgroup.procs");
    let forker = spawn(
        "echo $$ > \"$1\" && sleep 2 && while :; do sleep 5 & sleep 0.2; done",
        &[&procs],
    );
    let report = diag_json_watching(7);
    drop(forker);
    let f = finding(&report, "group-process-limit", &group.name);
    assert!(
        f.title.starts_with(&format!(
            "Control group {} is at its process limit (4 processes)",
            group.name
        )),
        "{}",
        f.title
    );
    eprintln!("{}", f.title);
}
