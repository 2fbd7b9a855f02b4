//! The Windows agent under Wine, against the real Linux relay and console
//! on 127.0.0.1: it pairs, the person's answers at its terminal decide, a
//! `cmd.exe` script from a signed catalog runs with its output streamed and
//! its end in the audit log, the log verifies, and an agent killed mid-run
//! leaves no process of the run behind (the run's Job Object).
//!
//! They need Wine and the Windows build, which a fresh machine lacks:
//! `.ci/run` builds both and runs them with `--include-ignored`.

use std::time::Duration;

use sprijin_tests::wine::{self, agent_sharing, processes_with, windows_path};
use sprijin_tests::*;

/// Prints a line through cmd.exe and ends.
const HELLO: &str = r#"
id = "hello-windows"
title = "Say hello from cmd.exe"
description = "Prints a greeting."
risk = "low"
platforms = ["windows"]
timeout_secs = 60
program = "cmd.exe"
args = ["/c", "echo hello from windows"]
"#;

/// Waits a long time in a child of cmd.exe; only a stop ends it. The
/// count is unusual so its processes can be found by their command line.
const SLOW: &str = r#"
id = "slow-windows"
title = "Wait a long time"
description = "Pings this machine for ten minutes."
risk = "low"
platforms = ["windows"]
timeout_secs = 600
program = "cmd.exe"
args = ["/c", "echo waiting & ping -n 597 127.0.0.1 > nul"]
"#;

/// Wine starts slowly on a busy machine.
const WINE_STEP: Duration = Duration::from_secs(90);

fn trusting(cat: &TestCatalog) -> Vec<String> {
    vec!["--trusted-key".into(), windows_path(&cat.public)]
}

#[test]
#[ignore = "needs Wine and the Windows build: run by .ci/run with --include-ignored"]
fn a_windows_agent_pairs_runs_a_cmd_script_and_keeps_its_record() {
    let cat = TestCatalog::signed(&[("hello-windows", HELLO)]);
    let relay = RelayProc::start(&[]);
    let extra = trusting(&cat);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut agent = agent_sharing(&relay, &["y", "y"], &extra);
    let out = console(
        &relay,
        &agent.code,
        &["--catalog", cat.dir_arg(), "--exec", "run hello-windows"],
    );
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        out.stdout,
        out.stderr,
        agent.proc.stdout.text()
    );
    assert!(out.stdout.contains("hello from windows"), "{}", out.stdout);
    wait_end(&mut agent.proc, WINE_STEP, "the Windows agent");
    let said = agent.proc.stdout.text();
    assert!(
        said.contains("cmd.exe /c"),
        "the person saw no command: {said}"
    );
    let starts = audit_events(agent.data_dir.path(), "run_start");
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0]["program"], "cmd.exe");
    let ends = audit_events(agent.data_dir.path(), "run_end");
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0]["status"], "exited with status 0", "{ends:?}");
    let verified = wine::agent()
        .args(["audit", "verify", "--data-dir"])
        .arg(windows_path(agent.data_dir.path()))
        .output()
        .expect("wine runs");
    assert!(
        verified.status.success(),
        "audit verify under wine: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[test]
#[ignore = "needs Wine and the Windows build: run by .ci/run with --include-ignored"]
fn a_windows_agent_killed_mid_run_leaves_no_process_of_the_run() {
    let cat = TestCatalog::signed(&[("slow-windows", SLOW)]);
    let relay = RelayProc::start(&[]);
    let extra = trusting(&cat);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut agent = agent_sharing(&relay, &["y", "y"], &extra);
    let mut console = console_interactive(&relay, &agent.code, &["--catalog", cat.dir_arg()]);
    assert!(
        console
            .stdout
            .wait_for("accepted the catalog", WINE_STEP)
            .is_some(),
        "{}\n{}",
        console.stdout.text(),
        console.stderr.text()
    );
    console.answer(&["run slow-windows"]);
    assert!(
        console.stdout.wait_for("waiting", WINE_STEP).is_some(),
        "the run did not start: {}\n{}",
        console.stdout.text(),
        agent.proc.stdout.text()
    );
    let deadline = std::time::Instant::now() + WINE_STEP;
    while processes_with("597").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run's ping never showed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = agent.proc.child.kill();
    let _ = agent.proc.child.wait();
    let deadline = std::time::Instant::now() + WINE_STEP;
    while !processes_with("597").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "processes of the run outlived the agent: {:?}",
            processes_with("597")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(audit_events(agent.data_dir.path(), "run_start").len(), 1);
}

#[test]
#[ignore = "needs Wine and the Windows build: run by .ci/run with --include-ignored"]
fn a_windows_console_reaches_a_linux_agent_in_line_mode_and_json() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start_trusting(&relay, &["y", "y"]);
    let catalog = sample_catalog();
    let data = tempfile::tempdir().unwrap();
    let out = wine::console()
        .args(["connect", &agent.code, "--relay", &relay.addr])
        .args(["--relay-fingerprint", &relay.fingerprint])
        .args(["--name", "Ana Pop", "--json"])
        .args(["--catalog", &windows_path(&catalog)])
        .args(["--data-dir", &windows_path(data.path())])
        .args(["--exec", "diag", "--exec", "run echo-test word=fromwine"])
        .args(["--exec", "quit"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("wine runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Windows console failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object ({e}): {l}"))
        })
        .collect();
    let report = events
        .iter()
        .find(|e| e["event"] == "diag")
        .unwrap_or_else(|| panic!("no report: {stdout}"));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(report["snapshot"]["host"]["name"], host.trim(), "{report}");
    let output: String = events
        .iter()
        .filter(|e| e["event"] == "output" && e["stream"] == "stdout")
        .filter_map(|e| e["data"].as_str())
        .collect();
    assert!(output.contains("sprijin fromwine"), "{stdout}");
    wait_end(&mut agent.proc, WINE_STEP, "the Linux agent");
    assert_eq!(audit_events(agent.data_dir.path(), "run_end").len(), 1);
    // The Windows console kept its session log in the folder it was given.
    let logs = std::fs::read_dir(data.path().join("sessions"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(logs, 1, "no session log under {}", data.path().display());
}
