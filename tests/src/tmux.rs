//! A real terminal for tests: a private tmux server runs one command;
//! `send-keys` types and `capture-pane` reads the screen.

use std::process::Command;
use std::time::{Duration, Instant};

/// A private tmux server running one command, killed on drop.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `command` in a `columns`×`rows` window on a server named for
    /// `name` and this process, so tests running side by side do not meet.
    pub fn start(name: &str, (columns, rows): (u16, u16), command: &str) -> Tmux {
        let socket = format!("sprijin-{name}-{}", std::process::id());
        let (columns, rows) = (columns.to_string(), rows.to_string());
        // No display: the agent at this terminal must not open its window.
        let status = Command::new("tmux")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .args(["-L", &socket, "new-session", "-d", "-s", "t"])
            .args(["-x", &columns, "-y", &rows, command])
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux did not start");
        Tmux { socket }
    }

    /// Sends keys as tmux names them (`Enter`, `Down`, or `-l` and text).
    pub fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "t"])
            .args(keys)
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux send-keys failed");
    }

    /// Types `text` as it is, then Enter.
    pub fn type_line(&self, text: &str) {
        self.keys(&["-l", text]);
        self.keys(&["Enter"]);
    }

    /// What the window shows now.
    pub fn screen(&self) -> String {
        self.capture(&[])
    }

    /// What the window shows now and the 200 lines scrolled off above it.
    pub fn history(&self) -> String {
        self.capture(&["-S", "-200"])
    }

    fn capture(&self, extra: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "t"])
            .args(extra)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the window shows `needle`; panics with the screen if not.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
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

    /// Waits until `check` holds for the window and its history; panics
    /// with them if not.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.history();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
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

/// Whether tmux is there to drive a terminal; in CI it must be (`.ci/run`
/// installs it), elsewhere a test without it is skipped with a line saying so.
pub fn have_tmux() -> bool {
    if Command::new("tmux").arg("-V").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "tmux is missing in CI: .ci/run installs it"
    );
    eprintln!("tmux is not installed: skipping a terminal test outside CI");
    false
}
