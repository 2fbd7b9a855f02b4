//! End to end: `sprijin-agent diag --json` on the real machine, through the
//! real binary.
//!
//! Each test makes something go wrong on purpose (a process spinning on a
//! core, a file system filled to 98%), runs the binary, and checks that the
//! finding names the culprit. The binary is looked up next to the test
//! executable, so run `cargo build --workspace --bins` first.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sprijin_proto::message::diag::{DiagReport, Severity};
use sprijin_tests::cpu_ticks;

/// Size of the file system filled in the disk test.
const TMPFS_BYTES: u64 = 8 * 1024 * 1024;

/// CPU time the busy child must have used before we look, in clock ticks
/// (100 a second on Linux): a second of spinning.
const BUSY_TICKS: u64 = 100;

/// On a loaded machine the spinning child may get less than a core for a
/// moment; a few tries keep the test about the rule, not the scheduler.
const HOG_ATTEMPTS: usize = 5;

fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("sprijin-agent");
    assert!(
        bin.exists(),
        "no agent binary at {}; run cargo build --workspace --bins first",
        bin.display()
    );
    bin
}

fn run_diag(args: &[&str]) -> String {
    let out = Command::new(agent_binary())
        .arg("diag")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "diag {args:?} failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn diag_json() -> DiagReport {
    let out = run_diag(&["--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("diag --json gave bad json ({e}): {out}"))
}

/// Kills and reaps the child when the test ends, pass or fail.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Unmounts when the test ends, pass or fail.
struct UnmountOnDrop(PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        match Command::new("umount").arg(&self.0).status() {
            Ok(s) if s.success() => {}
            other => eprintln!("could not unmount {}: {other:?}", self.0.display()),
        }
    }
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// Skips a test that needs root, unless running in CI, where it must run.
fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why}; CI runs as root, so this must work there");
    }
    eprintln!("skipping: {why} (set CI to make this a failure)");
}

#[test]
fn busy_process_is_named_as_a_cpu_hog() {
    let child = Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    let pid = child.0.id();

    let deadline = Instant::now() + Duration::from_secs(30);
    while cpu_ticks(pid).unwrap_or(0) < BUSY_TICKS {
        assert!(
            Instant::now() < deadline,
            "busy child {pid} did not get a second of cpu in 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut last = None;
    for _ in 0..HOG_ATTEMPTS {
        let report = diag_json();
        let hog = report
            .findings
            .iter()
            .find(|f| f.id == "process-cpu-hog" && f.subject == Some(pid.to_string()));
        if let Some(f) = hog {
            assert_eq!(f.severity, Severity::Warning);
            assert!(f.title.contains(&format!("pid {pid}")), "{}", f.title);
            let pid_evidence = f.evidence.iter().find(|e| e.label == "pid").unwrap();
            assert_eq!(pid_evidence.value, pid.to_string());
            let name = f.evidence.iter().find(|e| e.label == "name").unwrap();
            assert_eq!(name.value, "sh");
            assert_eq!(f.script.as_deref(), Some("stop-process"));
            return;
        }
        last = Some(report);
    }
    let report = last.unwrap();
    panic!(
        "no cpu-hog finding for pid {pid}; findings: {:#?}; top by cpu: {:#?}",
        report.findings, report.snapshot.processes.top_cpu
    );
}

#[test]
fn nearly_full_file_system_is_a_critical_disk_finding() {
    if !is_root() {
        skip_or_fail("mounting a file system needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mount_point = dir.path().canonicalize().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_BYTES}")])
        .arg("sprijin-diag-test")
        .arg(&mount_point)
        .status();
    if !matches!(mounted, Ok(s) if s.success()) {
        skip_or_fail(&format!(
            "could not mount a tmpfs on {} ({mounted:?})",
            mount_point.display()
        ));
        return;
    }
    let _unmount = UnmountOnDrop(mount_point.clone());

    let fill = TMPFS_BYTES * 98 / 100;
    std::fs::write(mount_point.join("fill"), vec![0xa5u8; fill as usize]).unwrap();

    let report = diag_json();
    let subject = mount_point.to_string_lossy().into_owned();
    let disk = report
        .snapshot
        .disks
        .iter()
        .find(|d| d.mount_point == subject)
        .unwrap_or_else(|| {
            panic!(
                "{subject} missing from the snapshot's disks: {:#?}",
                report.snapshot.disks
            )
        });
    assert_eq!(disk.file_system, "tmpfs");
    assert_eq!(disk.total_bytes, TMPFS_BYTES);

    let finding = report
        .findings
        .iter()
        .find(|f| f.id == "disk-nearly-full" && f.subject.as_deref() == Some(subject.as_str()))
        .unwrap_or_else(|| panic!("no disk finding for {subject}: {:#?}", report.findings));
    assert_eq!(finding.severity, Severity::Critical);
    assert!(finding.title.contains(&subject), "{}", finding.title);
    assert!(finding.title.contains("98% full"), "{}", finding.title);
    assert_eq!(finding.script.as_deref(), Some("largest-folders"));
}

#[test]
fn json_report_holds_the_documented_fields() {
    let out = run_diag(&["--json"]);
    assert_eq!(out.trim_end().lines().count(), 1, "json is one line: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();

    let snapshot = &v["snapshot"];
    assert!(snapshot["taken_at_ms"].as_u64().unwrap() > 0);
    assert!(!snapshot["host"]["name"].as_str().unwrap().is_empty());
    assert!(!snapshot["host"]["kernel"].as_str().unwrap().is_empty());
    assert!(snapshot["cpu"]["logical_cores"].as_u64().unwrap() > 0);
    assert!(snapshot["cpu"]["usage_percent"].is_number());
    assert!(snapshot["memory"]["total_bytes"].as_u64().unwrap() > 0);
    assert!(snapshot["swap"]["total_bytes"].is_u64());
    assert!(snapshot["disks"].is_array());
    assert!(!snapshot["networks"].as_array().unwrap().is_empty());
    assert!(snapshot["processes"]["count"].as_u64().unwrap() > 0);
    assert!(
        !snapshot["processes"]["top_cpu"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        !snapshot["processes"]["top_memory"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(snapshot["temperatures"].is_array());
    assert!(snapshot["users"].is_array());
    for f in v["findings"].as_array().unwrap() {
        for field in ["id", "severity", "title", "evidence", "subject", "script"] {
            assert!(f.get(field).is_some(), "finding without {field}: {f}");
        }
    }

    // The same text reads back into the shared types.
    let report: DiagReport = serde_json::from_value(v).unwrap();
    assert!(report.snapshot.cpu.per_core_percent.len() as u32 == report.snapshot.cpu.logical_cores);
}

#[test]
fn text_report_is_a_readable_overview() {
    let out = run_diag(&[]);
    for section in [
        "Host ", "OS ", "Uptime ", "CPU ", "Memory ", "Disks", "Network", "Findings",
    ] {
        assert!(out.contains(section), "missing {section:?} in:\n{out}");
    }
}
