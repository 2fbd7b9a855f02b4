//! Sessions outlive their relay: the relay killed and started again on the
//! same address and data folder, or paused for 20 s, in the middle of a run
//! whose output is large and paced, and the run's output arrives complete,
//! nothing lost and nothing twice, and the agent's audit log records the
//! run's end and the session's goodbye.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sprijin_tests::*;

/// Numbered lines, a few at a time, for about fifteen seconds, after
/// writing its pid.
const NUMBERED: &str = r#"
id = "numbered"
title = "Numbered lines"
description = "Prints numbered lines slowly."
risk = "low"
platforms = ["linux"]
timeout_secs = 300
program = "sh"
args = ["-c", 'echo $$ > "$1/pid"; i=1; while [ $i -le 3000 ]; do printf "line %05d %0200d\n" $i 0; if [ $((i % 20)) -eq 0 ]; then sleep 0.1; fi; i=$((i+1)); done', "sh", "{dir}"]

[params.dir]
pattern = '^/[A-Za-z0-9._/-]{1,200}$'
"#;

const LINES: usize = 3000;

/// How long the whole run may take on a loaded machine, outage included.
const RUN_WITHIN: Duration = Duration::from_secs(120);

fn expected_output() -> String {
    (1..=LINES)
        .map(|i| format!("line {i:05} {:0200}\n", 0))
        .collect()
}

/// Starts a relay on `addr` with the data folder `data_dir`, waiting until
/// it listens (the old one's socket may take a moment to be free).
fn relay_at(addr: &str, data_dir: &Path) -> Proc {
    let mut cmd = Command::new(bin("sprijin-relay"));
    cmd.args(["--listen", addr, "--data-dir"]).arg(data_dir);
    let proc = Proc::spawn(cmd);
    assert!(
        proc.stdout.wait_for("listening on ", STEP).is_some(),
        "the relay did not start again: {}",
        proc.stderr.text()
    );
    proc
}

/// What a fault does to the relay in the middle of the run.
enum Fault {
    /// SIGKILL, then a new relay on the same address and data folder.
    Restart,
    /// SIGSTOP for this long, then SIGCONT.
    Pause(Duration),
}

fn run_survives(fault: Fault) {
    let cat = TestCatalog::signed(&[("numbered", NUMBERED)]);
    let pid_dir = cat.root.path().join("pid");
    std::fs::create_dir_all(&pid_dir).unwrap();
    let mut relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y", "y"], &["--trusted-key", cat.public_arg()]);
    let run = format!("run numbered dir={}", pid_dir.display());
    let mut console = Proc::spawn(console_command(
        &relay.addr,
        &relay.fingerprint,
        &agent.code,
        &["--catalog", cat.dir_arg(), "--exec", &run, "--json"],
    ));
    assert!(
        console.stdout.wait_for("line 00200", STEP).is_some(),
        "the run's output did not start: {}\n{}",
        console.stdout.text(),
        console.stderr.text()
    );
    let script = wait_for_pid_file(&pid_dir.join("pid"), STEP).expect("the script wrote its pid");

    let relay_pid = relay.proc.child.id().to_string();
    let _new_relay = match fault {
        Fault::Restart => {
            relay.proc.child.kill().unwrap();
            let _ = relay.proc.child.wait();
            Some(relay_at(&relay.addr, &relay.dir.path().join("relay")))
        }
        Fault::Pause(how_long) => {
            let stopped = Command::new("kill")
                .args(["-STOP", &relay_pid])
                .status()
                .unwrap();
            assert!(stopped.success());
            // The outage itself: how long the relay is gone.
            std::thread::sleep(how_long);
            let resumed = Command::new("kill")
                .args(["-CONT", &relay_pid])
                .status()
                .unwrap();
            assert!(resumed.success());
            None
        }
    };

    let status = wait_end(&mut console, RUN_WITHIN, "the console");
    assert!(
        status.success(),
        "{}\n{}",
        console.stdout.text(),
        console.stderr.text()
    );
    let events = json_lines(&console.stdout.text());
    let mut received = String::new();
    for event in events_named(&events, "output") {
        received.push_str(event["data"].as_str().expect("output data"));
    }
    let expected = expected_output();
    assert_eq!(
        received.len(),
        expected.len(),
        "the output is {} bytes, not {}",
        received.len(),
        expected.len()
    );
    assert!(
        received == expected,
        "the output lost, repeated or reordered lines"
    );
    let ended = events_named(&events, "run_end");
    assert_eq!(ended.len(), 1, "{}", console.stdout.text());

    agent_finishes(&mut agent.proc);
    let kinds = audit_kinds(agent.data_dir.path());
    let ends = audit_events(agent.data_dir.path(), "run_end");
    assert_eq!(ends.len(), 1, "{kinds:?}");
    let status = ends[0]["status"].as_str().unwrap_or_default();
    assert!(
        !status.contains("session ended"),
        "run end status: {status}"
    );
    let session_end = audit_events(agent.data_dir.path(), "session_end");
    assert_eq!(session_end.len(), 1, "{kinds:?}");
    let reason = session_end[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("the technician ended the session"),
        "session end reason: {reason}"
    );
    assert!(
        !agent.proc.stdout.text().contains("the connection was lost"),
        "{}",
        agent.proc.stdout.text()
    );
    // Nothing of the run is left, and the relay serving now is still up.
    assert!(wait_until_gone(script, Duration::from_secs(10)));
    if let Some(mut new_relay) = _new_relay {
        assert!(new_relay.alive(), "the restarted relay is gone");
    } else {
        assert!(relay.proc.alive(), "the paused relay is gone");
    }
}

#[test]
fn a_run_outlives_a_relay_restart_and_its_output_arrives_complete() {
    run_survives(Fault::Restart);
}

#[test]
fn a_run_outlives_a_relay_paused_for_twenty_seconds_and_its_output_arrives_complete() {
    run_survives(Fault::Pause(Duration::from_secs(20)));
}
