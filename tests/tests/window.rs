//! The agent's window on a real X server (Xvfb, drawn by Mesa's software
//! OpenGL), with a real relay and console: the waiting screen shows, the
//! consent dialogs show, the person answers them from the keyboard, and
//! the audit log records the approvals. Screenshots are taken of the whole
//! screen and must not be blank.
//!
//! Xvfb, xdotool and ImageMagick are required, and a fresh machine lacks
//! them: these tests are ignored by `cargo test` and run by `.ci/run`, which
//! installs them, with `--include-ignored`; without them they fail, they
//! are never skipped. Set `SPRIJIN_WINDOW_SHOTS=DIR` to keep the
//! screenshots.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sprijin_tests::*;

/// An X server of its own for one test, stopped on drop.
struct Xvfb {
    proc: Proc,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
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

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DISPLAY", &self.display)
            .env_remove("WAYLAND_DISPLAY");
        cmd
    }

    /// Runs a tool on this display; fails the test when it fails.
    fn run(&self, program: &str, args: &[&str]) -> String {
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
    fn screenshot(&self, path: &Path) -> usize {
        self.run("import", &["-window", "root", path.to_str().unwrap()]);
        let colours = self.run("identify", &["-format", "%k", path.to_str().unwrap()]);
        colours.trim().parse().unwrap_or(0)
    }

    /// Takes screenshots until one has at least `min_colours` colours and
    /// differs from `unlike` (a screen already seen), within `STEP`.
    fn screenshot_showing(&self, path: &Path, min_colours: usize, unlike: Option<&Path>) -> usize {
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
    fn keys(&self, keys: &[&str]) {
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
fn shots() -> (PathBuf, Option<tempfile::TempDir>) {
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

/// `sprijin-agent share --window` on `x`'s display, trusting the sample
/// catalog, with its debug log on stderr (it says when a question can be
/// answered).
fn agent_with_window(x: &Xvfb, relay: &RelayProc, data_dir: &Path) -> Proc {
    let mut cmd = x.command(bin("sprijin-agent").to_str().unwrap());
    cmd.args([
        "--log-format",
        "json",
        "share",
        "--window",
        "--lang",
        "en",
        "--relay",
        &relay.addr,
        "--relay-fingerprint",
        &relay.fingerprint,
        "--trusted-key",
        dev_public_key().to_str().unwrap(),
        "--consent-timeout",
        "60",
    ])
    .arg("--data-dir")
    .arg(data_dir)
    .env("RUST_LOG", "sprijin_agent=debug")
    // Mesa's software renderer: no GPU here.
    .env("LIBGL_ALWAYS_SOFTWARE", "1");
    Proc::spawn(cmd)
}

/// Waits until the agent's log holds `needle` at least `n` times.
fn wait_logged(agent: &Proc, needle: &str, n: usize) {
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

/// Waits until question number `n` (counting from 1) can be allowed.
fn wait_allow_enabled(agent: &Proc, n: usize) {
    wait_logged(agent, "the question's Allow is enabled", n);
}

/// Moves the keyboard focus with `key` until `button` has it (as the
/// agent logs), then presses it with Space.
fn press(x: &Xvfb, agent: &Proc, key: &str, button: &str) {
    let needle = format!("\"button\":\"{button}\"");
    let before = agent.stderr.text().matches(&needle).count();
    x.keys(&[key]);
    wait_logged(agent, &needle, before + 1);
    x.keys(&["space"]);
}

/// Waits until the window shows the session's end.
fn wait_end_shown(agent: &Proc) {
    wait_logged(agent, "the session's end is on the screen", 1);
}

#[test]
#[ignore = "needs Xvfb, xdotool, ImageMagick and Mesa, which a fresh machine lacks: .ci/run installs them and runs this with --include-ignored"]
fn the_window_shows_the_code_and_dialogs_and_keyboard_answers_are_recorded() {
    let x = Xvfb::start();
    let relay = RelayProc::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let (shots, _keep) = shots();
    let mut agent = agent_with_window(&x, &relay, data.path());
    let code = agent.code();

    // The waiting screen: the code in large type.
    let waiting = shots.join("window-waiting.png");
    let colours = x.screenshot_showing(&waiting, 16, None);
    assert!(colours >= 16, "the waiting screen looks blank");

    // The technician connects and asks to run a repair.
    let catalog = sample_catalog();
    let mut console = Proc::spawn({
        let mut cmd = console_command(
            &relay.addr,
            &relay.fingerprint,
            &code,
            &[
                "--name",
                "Ana Pop",
                "--catalog",
                catalog.to_str().unwrap(),
                "--exec",
                "run echo-test word=hello",
                "--exec",
                "quit",
            ],
        );
        cmd.env("XDG_DATA_HOME", data.path().join("console"));
        cmd
    });

    // First question: may the technician look. Tab goes from Deny (the
    // default) to Allow; Space presses it.
    wait_allow_enabled(&agent, 1);
    let view = shots.join("window-consent.png");
    x.screenshot_showing(&view, 16, Some(&waiting));
    press(&x, &agent, "Tab", "allow");

    // Second question: the repair, with its exact command.
    wait_allow_enabled(&agent, 2);
    let run = shots.join("window-run.png");
    let colours = x.screenshot_showing(&run, 16, Some(&view));
    assert!(colours >= 16, "the run dialog looks blank");
    press(&x, &agent, "Tab", "allow");

    let status = wait_end(&mut console, STEP, "the console");
    assert!(
        status.success(),
        "console failed: {}\n{}",
        console.stdout.text(),
        console.stderr.text()
    );
    assert!(
        console.stdout.text().contains("hello"),
        "{}",
        console.stdout.text()
    );

    // The audit log holds both approvals, the run and the end.
    let consents = audit_events(data.path(), "consent");
    assert_eq!(consents.len(), 2, "{consents:?}");
    assert!(consents.iter().all(|c| c["answer"] == true), "{consents:?}");
    assert_eq!(audit_events(data.path(), "run_start").len(), 1);
    assert_eq!(audit_events(data.path(), "run_end").len(), 1);
    assert_eq!(audit_events(data.path(), "session_end").len(), 1);

    // The end, with the audit head, stays on the screen until the person
    // closes the window (Tab to Close, Space); then the agent exits.
    wait_end_shown(&agent);
    let ended = shots.join("window-ended.png");
    x.screenshot_showing(&ended, 16, Some(&run));
    assert!(agent.alive(), "the window closed by itself");
    press(&x, &agent, "Tab", "close");
    agent_finishes(&mut agent);
}

#[test]
#[ignore = "needs Xvfb, xdotool, ImageMagick and Mesa, which a fresh machine lacks: .ci/run installs them and runs this with --include-ignored"]
fn end_session_in_the_window_says_goodbye_to_the_technician() {
    let x = Xvfb::start();
    let relay = RelayProc::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mut agent = agent_with_window(&x, &relay, data.path());
    let code = agent.code();
    let mut console = Proc::spawn(console_command(
        &relay.addr,
        &relay.fingerprint,
        &code,
        &["--name", "Ana Pop", "--exec", "diag"],
    ));
    // With the first question up, End session (first in the keyboard
    // order, before Deny) ends the session.
    wait_allow_enabled(&agent, 1);
    press(&x, &agent, "shift+Tab", "end");
    wait_end(&mut console, STEP, "the console");
    let ends = audit_events(data.path(), "session_end");
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0]["reason"], "the person ended the session");
    // Closing the window ends the agent.
    wait_end_shown(&agent);
    press(&x, &agent, "Tab", "close");
    agent_finishes(&mut agent);
}
