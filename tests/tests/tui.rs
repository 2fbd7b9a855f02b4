//! The interactive console in a real terminal: tmux runs it, send-keys types
//! and capture-pane reads the screen, through a whole session.

use std::process::Command;
use std::time::{Duration, Instant};

use sprijin_tests::*;

/// A private tmux server, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let socket = format!("sprijin-test-{}", std::process::id());
        let status = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "100",
                "-y",
                "30",
                command,
            ])
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux did not start");
        Tmux { socket }
    }

    fn keys(&self, keys: &[&str]) {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket, "send-keys", "-t", "t"])
            .args(keys);
        assert!(cmd.status().unwrap().success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `needle`; panics with the screen if not.
    fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {needle:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

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
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux is missing in CI: .ci/run installs it"
        );
        eprintln!("tmux is not installed: skipping the terminal UI test outside CI");
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
    let tmux = Tmux::start(&command);

    // The header names the machine; the busy process shows up as a finding
    // (refreshes come every few seconds, so give it time on a loaded machine).
    tmux.wait_for(&host, STEP);
    tmux.wait_for("1 Overview", STEP);
    tmux.wait_for(&format!("(pid {})", busy.0.id()), STEP * 2);

    // Catalog view: pick echo-test (third in id order), type its word, confirm.
    tmux.keys(&["4"]);
    tmux.wait_for("echo-test", STEP);
    tmux.keys(&["Down", "Down", "Enter"]);
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
