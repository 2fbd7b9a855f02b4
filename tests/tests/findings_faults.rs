//! End to end: real faults made on this machine, seen by
//! `sprijin-agent diag --json` through the real binary, each named by its
//! cause.
//!
//! Every test makes its fault the way it happens (a small tmpfs run out of
//! inodes, a process holding a deleted file open, a process at its
//! open-file limit, a file system mounted read-only, an empty network
//! namespace, a memory limit hit), checks the finding, and undoes the fault
//! when it ends, pass or fail. They need root; outside CI they are skipped
//! when not root.
//!
//! Not made here: a process stuck in uninterruptible sleep (it needs a disk
//! or network file system that stops answering, which cannot be made and
//! undone safely), failed systemd units and an unsynchronised clock (they
//! need systemd running as the machine's init). Their rules are tested on
//! hand-made snapshots in the agent.
#![cfg(target_os = "linux")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sprijin_proto::message::diag::{DiagReport, Severity};
use sprijin_tests::bin;
use sprijin_tests::faults::*;

#[test]
fn inodes_run_out_on_a_file_system_with_bytes_free() {
    if !root_or_skip() {
        return;
    }
    let fs_ = Tmpfs::mount("size=4m,nr_inodes=64");
    let mut made = 0;
    for i in 0..1000 {
        match fs::File::create(fs_.path.join(format!("f{i}"))) {
            Ok(_) => made += 1,
            Err(_) => break,
        }
    }
    assert!(made > 0 && made < 1000, "made {made} files");

    let report = diag_json();
    let f = finding(&report, "inodes-exhausted", &fs_.mount_point());
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(evidence(f, "inodes free"), "0");
    assert_eq!(evidence(f, "inodes used"), "64 of 64");
    assert_eq!(evidence(f, "space free"), "4.0 MiB");
    assert!(f.title.contains("has no inodes left"), "{}", f.title);
    assert_eq!(f.script.as_deref(), Some("folders-with-most-files"));
    eprintln!("{}", f.title);
}

#[test]
fn deleted_file_held_open_names_the_process_and_its_size() {
    if !root_or_skip() {
        return;
    }
    let fs_ = Tmpfs::mount("size=8m");
    let file = fs_.path.join("big.log");
    fs::write(&file, vec![7u8; 6 << 20]).unwrap();
    // The child's standard input is the file; it is deleted once the child
    // runs, as a rotated log a program still writes to.
    let child = Command::new("sleep")
        .arg("600")
        .stdin(fs::File::open(&file).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    fs::remove_file(&file).unwrap();
    let pid = child.0.id();

    let report = diag_json();
    let f = finding(&report, "deleted-files-hold-space", &pid.to_string());
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(evidence(f, "process"), format!("sleep (pid {pid})"));
    assert_eq!(evidence(f, "held by deleted files"), "6.0 MiB");
    assert_eq!(evidence(f, "mount point"), fs_.mount_point());
    assert_eq!(evidence(f, "largest"), file.to_string_lossy());
    assert_eq!(evidence(f, "share of the file system"), "75.0% of 8.0 MiB");
    assert_eq!(f.script.as_deref(), Some("list-deleted-open-files"));
    eprintln!("{}", f.title);

    // Once the process ends, the space is back and the finding is gone.
    drop(child);
    let report = diag_json();
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.id == "deleted-files-hold-space" && f.subject == Some(pid.to_string())),
        "{:#?}",
        report.findings
    );
}

#[test]
fn process_at_its_open_file_limit_is_named() {
    if !root_or_skip() {
        return;
    }
    // Descriptors 3 to 62 are opened under a limit of 64, then the shell
    // becomes `sleep`, which keeps them: 63 open, one left (which `sleep`
    // itself needs for a moment to load its libraries).
    let mut child = Command::new("prlimit")
        .args([
            "--nofile=64:64",
            "bash",
            "-c",
            "for i in $(seq 3 62); do eval \"exec $i</dev/null\"; done; echo ready; exec sleep 600",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_line(&mut child, "ready");
    let child = KillOnDrop(child);
    let pid = child.0.id();

    let report = diag_json();
    let f = finding(&report, "open-file-limit", &pid.to_string());
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(evidence(f, "soft limit"), "64");
    // 63, or 64 when `sleep` keeps one more for itself.
    let open = evidence(f, "open descriptors");
    assert!(open == "63" || open == "64", "{f:#?}");
    assert!(
        f.title
            .starts_with(&format!("sleep (pid {pid}) has {open} files open")),
        "{}",
        f.title
    );
    assert_eq!(f.script.as_deref(), Some("list-open-files"));
    eprintln!("{}", f.title);
}

#[test]
fn file_system_that_should_be_writable_mounted_read_only_is_critical() {
    if !root_or_skip() {
        return;
    }
    let fs_ = Tmpfs::mount_at(
        PathBuf::from("/srv").join(unique("sprijin-ro")),
        "ro,size=1m",
    );
    let report = diag_json();
    let f = finding(&report, "read-only-file-system", &fs_.mount_point());
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(evidence(f, "mounted"), "read-only");
    assert_eq!(evidence(f, "file system"), "tmpfs");
    eprintln!("{}", f.title);

    // The same file system writable again is not a finding.
    let status = Command::new("mount")
        .args(["-o", "remount,rw"])
        .arg(&fs_.path)
        .status()
        .unwrap();
    assert!(status.success());
    let report = diag_json();
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.id == "read-only-file-system"
                && f.subject.as_deref() == Some(fs_.mount_point().as_str())),
        "{:#?}",
        report.findings
    );
}

/// Runs `diag --json` inside a new, empty network namespace, after `setup`
/// (shell commands) has run there. As `ip netns exec` does, /sys is mounted
/// afresh in a private mount namespace so it lists that namespace's
/// interfaces.
fn diag_json_in_new_netns(setup: &str) -> DiagReport {
    let script = format!("mount -t sysfs sysfs /sys || exit 4\n{setup}\nexec \"$0\" diag --json");
    let out = Command::new("unshare")
        .args(["-n", "-m", "--propagation", "private", "sh", "-c", &script])
        .arg(bin("sprijin-agent"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    parse_report(out, "diag --json in a new network namespace")
}

/// The resolvers this machine's resolv.conf names.
fn configured_resolvers() -> Vec<String> {
    fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .map(|r| r.trim().to_string())
        .take(3)
        .collect()
}

#[test]
fn empty_network_namespace_has_no_network_and_no_resolver_answers() {
    if !root_or_skip() {
        return;
    }
    let report = diag_json_in_new_netns("");
    let none = report
        .findings
        .iter()
        .find(|f| f.id == "no-network-address")
        .unwrap_or_else(|| panic!("no no-network-address in {:#?}", report.findings));
    assert_eq!(none.severity, Severity::Critical);
    assert_eq!(evidence(none, "addresses other than loopback"), "none");
    eprintln!("{}", none.title);

    let dns = report
        .findings
        .iter()
        .find(|f| f.id == "name-resolution-failing")
        .unwrap_or_else(|| panic!("no name-resolution-failing in {:#?}", report.findings));
    let resolvers = configured_resolvers();
    if resolvers.is_empty() {
        assert_eq!(evidence(dns, "answer"), "no resolver to ask");
    } else {
        assert_eq!(dns.severity, Severity::Critical);
        assert_eq!(evidence(dns, "answer"), "no answer in time");
        assert_eq!(evidence(dns, "resolvers configured"), resolvers.join(", "));
        assert_eq!(evidence(dns, "answered by"), "none");
        assert_eq!(dns.subject.as_deref(), Some(resolvers[0].as_str()));
    }
    eprintln!("{}", dns.title);
}

#[test]
fn address_without_a_default_route_is_found() {
    if !root_or_skip() {
        return;
    }
    let report = diag_json_in_new_netns(
        "ip link add sprijin0 type veth peer name sprijin1 && ip link set sprijin0 up \
         && ip link set sprijin1 up && ip addr add 10.9.9.9/24 dev sprijin0 || exit 3",
    );
    let f = report
        .findings
        .iter()
        .find(|f| f.id == "no-default-route")
        .unwrap_or_else(|| panic!("no no-default-route in {:#?}", report.findings));
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(evidence(f, "addresses"), "10.9.9.9/24 on sprijin0");
    assert_eq!(evidence(f, "ipv4 default route"), "none");
    assert!(
        !report.findings.iter().any(|f| f.id == "no-network-address"),
        "an address is there: {:#?}",
        report.findings
    );
    eprintln!("{}", f.title);
}

/// A memory cgroup (version 1 or 2) made for one test, removed at the end.
struct MemoryGroup(PathBuf);

impl MemoryGroup {
    /// A group limited to `bytes`, or `None` when this kernel offers no
    /// memory controller to make one with.
    fn new(bytes: u64) -> Option<MemoryGroup> {
        let name = unique("sprijin-oom");
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let v2 = Path::new("/sys/fs/cgroup");
        let (path, limit_file) = if v1.join("memory.limit_in_bytes").exists() {
            (v1.join(&name), "memory.limit_in_bytes")
        } else if fs::read_to_string(v2.join("cgroup.subtree_control"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"))
        {
            (v2.join(&name), "memory.max")
        } else {
            return None;
        };
        fs::create_dir(&path).ok()?;
        let group = MemoryGroup(path);
        fs::write(group.0.join(limit_file), bytes.to_string()).ok()?;
        // No swap either, so the limit ends in a kill rather than paging.
        let _ = fs::write(group.0.join("memory.swap.max"), "0");
        Some(group)
    }
}

impl Drop for MemoryGroup {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir(&self.0) {
            eprintln!("could not remove {}: {e}", self.0.display());
        }
    }
}

#[test]
fn process_killed_for_lack_of_memory_is_named() {
    if !root_or_skip() {
        return;
    }
    if fs::File::open("/dev/kmsg").is_err() {
        eprintln!("skipping: the kernel log cannot be read here");
        return;
    }
    let Some(group) = MemoryGroup::new(32 << 20) else {
        eprintln!("skipping: no memory controller to limit a process with");
        return;
    };
    // `tail` keeps everything since the last line break; /dev/zero has none,
    // so it grows until the group's limit kills it.
    let procs = group.0.join("cgroup.procs");
    let mut child = Command::new("sh")
        .args(["-c", "echo $$ > \"$1\" && exec tail /dev/zero", "sh"])
        .arg(&procs)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tail was not killed within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "tail ended by itself: {status}");

    let report = diag_json();
    let kill = report
        .snapshot
        .oom_kills
        .iter()
        .find(|k| k.pid == pid)
        .unwrap_or_else(|| panic!("pid {pid} not among {:#?}", report.snapshot.oom_kills));
    assert_eq!(kill.name, "tail");
    assert!(kill.limited_group);
    let f = report
        .findings
        .iter()
        .find(|f| f.id == "recent-oom-kills")
        .unwrap_or_else(|| panic!("no recent-oom-kills in {:#?}", report.findings));
    assert!(
        evidence(f, "killed").contains(&format!("tail (pid {pid})")),
        "{f:#?}"
    );
    eprintln!("{}", f.title);
    drop(group);
}
