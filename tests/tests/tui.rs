//! The interactive console in a real terminal: tmux runs it, send-keys types
//! and capture-pane reads the screen, through a whole session.

use std::process::Command;

use sprijin_tests::tmux::{Tmux, have_tmux};
use sprijin_tests::*;

/// A process that keeps one core busy, so there is a finding to show.
struct Busy(std::process::Child);

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_whole_session_in_the_terminal_ui() {
    if !have_tmux() {
        return;
    }
    let busy = Busy(
        Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap(),
    );
    let relay = RelayProc::start(&[]);
    let agent = AgentProc::start_trusting(&relay, &["y", "y"]);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let console = bin("sprijin-console");
    let logs = tempfile::tempdir().unwrap();
    let command = format!(
        "{} connect {} --relay {} --relay-fingerprint {} --catalog {} --name Ana --data-dir {}; echo EXITED-$?; sleep 60",
        console.display(),
        agent.code,
        relay.addr,
        relay.fingerprint,
        sample_catalog().display(),
        logs.path().display()
    );
    let tmux = Tmux::start("tui", (100, 30), &command);

    // The header names the machine; the busy process shows up as a finding
    // (refreshes come every few seconds, so give it time on a loaded machine).
    tmux.wait_for(&host, STEP);
    tmux.wait_for("1 Overview", STEP);
    tmux.wait_for(&format!("(pid {})", busy.0.id()), STEP * 2);

    // Catalog view: pick echo-test (fifth in id order), type its word, confirm.
    tmux.keys(&["4"]);
    tmux.wait_for("echo-test", STEP);
    tmux.keys(&["Down", "Down", "Down", "Down", "Enter"]);
    tmux.wait_for("parameters for echo-test", STEP);
    tmux.keys(&["tuimarker", "Enter"]);
    tmux.wait_for("run echo-test word=\"tuimarker\"", STEP);
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("sprijin tuimarker", STEP);
    assert!(
        screen.contains("exited with status 0")
            || tmux
                .wait_for("exited with status 0", STEP)
                .contains("echo-test")
    );

    // Quitting leaves the full-screen mode and the shell sees a clean exit.
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("EXITED-0", STEP);
    assert!(
        !screen.contains("enter run  s sort"),
        "the UI is still on screen:\n{screen}"
    );
    assert!(
        agent
            .proc
            .stdout
            .wait_for("running echo-test for the technician", STEP)
            .is_some()
    );
}
