//! An X server of a test's own (Xvfb), screenshots of it and the keyboard
//! typed at it (xdotool, ImageMagick), for the tests of the agent's window:
//! the Linux one and the Windows one under Wine. A fresh machine lacks
//! these programs; the tests that use them are ignored by `cargo test` and
//! run by `.ci/run`, which installs them. Without them the tests fail,
//! they are never skipped. Set `SPRIJIN_WINDOW_SHOTS=DIR` to keep the
//! screenshots.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{Proc, STEP};

/// An X server of its own for one test, stopped on drop.
pub struct Xvfb {
    proc: Proc,
    display: String,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        let found = Command::new("Xvfb")
            .arg("-help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(
            found.is_ok(),
            "Xvfb is not installed: install xvfb (the CI script does), the window tests need it"
        );
        // A display number no other test or server uses.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let number = loop {
            let n = 100 + (std::process::id() * 8 + NEXT.fetch_add(1, Ordering::Relaxed)) % 5000;
            if !Path::new(&format!("/tmp/.X{n}-lock")).exists()
                && !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            {
                break n;
            }
        };
        let display = format!(":{number}");
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
        let mut cmd = Command::new("Xvfb");
        cmd.args([
            display.as_str(),
            "-screen",
            "0",
            "1024x600x24",
            "-nolisten",
            "tcp",
        ]);
        let mut proc = Proc::spawn(cmd);
        let deadline = Instant::now() + STEP;
        while !socket.exists() {
            assert!(
                proc.alive(),
                "Xvfb {display} did not start: {}",
                proc.stderr.text()
            );
            assert!(
                Instant::now() < deadline,
                "Xvfb {display} made no socket in {STEP:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Xvfb { proc, display }
    }

    /// The display's name, for `DISPLAY`.
    pub fn display(&self) -> &str {
        &self.display
    }

    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DISPLAY", &self.display)
            .env_remove("WAYLAND_DISPLAY");
        cmd
    }

    /// Runs a tool on this display; fails the test when it fails.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} (install it): {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A screenshot of the whole screen into `path`; returns how many
    /// colours it has (a blank screen has one).
    pub fn screenshot(&self, path: &Path) -> usize {
        self.run("import", &["-window", "root", path.to_str().unwrap()]);
        let colours = self.run("identify", &["-format", "%k", path.to_str().unwrap()]);
        colours.trim().parse().unwrap_or(0)
    }

    /// Takes screenshots until one has at least `min_colours` colours and
    /// differs from `unlike` (a screen already seen), within `STEP`.
    pub fn screenshot_showing(
        &self,
        path: &Path,
        min_colours: usize,
        unlike: Option<&Path>,
    ) -> usize {
        let deadline = Instant::now() + STEP;
        loop {
            let colours = self.screenshot(path);
            let differs =
                unlike.is_none_or(|other| std::fs::read(other).ok() != std::fs::read(path).ok());
            if colours >= min_colours && differs {
                return colours;
            }
            assert!(
                Instant::now() < deadline,
                "the screen stayed blank or unchanged ({colours} colours) for {STEP:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Gives the keyboard to the agent's window and types `keys`.
    pub fn keys(&self, keys: &[&str]) {
        let window = self.run(
            "xdotool",
            &["search", "--sync", "--onlyvisible", "--name", "Sprijin"],
        );
        let window = window.lines().next().expect("the window's id").to_string();
        self.run("xdotool", &["windowfocus", "--sync", &window]);
        let mut args = vec!["key", "--delay", "50"];
        args.extend_from_slice(keys);
        self.run("xdotool", &args);
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM, so the server removes its lock file and socket.
        let pid = nix::unistd::Pid::from_raw(self.proc.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.proc.wait(STEP);
    }
}

/// Where screenshots go: kept when asked, else in a folder removed at the end.
pub fn shots() -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var_os("SPRIJIN_WINDOW_SHOTS") {
        Some(dir) => {
            std::fs::create_dir_all(&dir).unwrap();
            (PathBuf::from(dir), None)
        }
        None => {
            let dir = tempfile::tempdir().unwrap();
            (dir.path().to_path_buf(), Some(dir))
        }
    }
}

/// Waits until the agent's log holds `needle` at least `n` times.
pub fn wait_logged(agent: &Proc, needle: &str, n: usize) {
    let deadline = Instant::now() + STEP;
    loop {
        if agent.stderr.text().matches(needle).count() >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not log {needle:?} {n} times: {}",
            agent.stderr.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Moves the keyboard focus with `key` until `button` has it (as the
/// agent logs), then presses it with Space.
pub fn press(x: &Xvfb, agent: &Proc, key: &str, button: &str) {
    let needle = format!("\"button\":\"{button}\"");
    let before = agent.stderr.text().matches(&needle).count();
    x.keys(&[key]);
    wait_logged(agent, &needle, before + 1);
    x.keys(&["space"]);
}

/// Moves the keyboard focus with `key`, at most `tries` times, until
/// `button` has it (as the agent logs), then presses it with Space: for a
/// screen whose other buttons depend on what the machine shows.
pub fn press_after(x: &Xvfb, agent: &Proc, key: &str, button: &str, tries: usize) {
    let focused = "a button has the keyboard focus";
    for _ in 0..tries {
        let before = agent.stderr.text().matches(focused).count();
        x.keys(&[key]);
        wait_logged(agent, focused, before + 1);
        let text = agent.stderr.text();
        let last = text
            .lines()
            .rev()
            .find(|l| l.contains(focused))
            .unwrap_or("");
        if last.contains(&format!("\"button\":\"{button}\"")) {
            x.keys(&["space"]);
            return;
        }
    }
    panic!("{button} never took the focus: {}", agent.stderr.text());
}

/// Waits until question number `n` (counting from 1) can be allowed.
pub fn wait_allow_enabled(agent: &Proc, n: usize) {
    wait_logged(agent, "the question's Allow is enabled", n);
}

/// Waits until the window shows the session's end.
pub fn wait_end_shown(agent: &Proc) {
    wait_logged(agent, "the session's end is on the screen", 1);
}
