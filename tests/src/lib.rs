//! Helpers for the end-to-end tests: start the real `sprijin-relay`,
//! `sprijin-agent` and `sprijin-console` programs on 127.0.0.1 with port 0,
//! wait for their readiness lines (never a fixed sleep), and collect what
//! they print. Every child is killed when its guard is dropped.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long any one step may take before a test gives up.
pub const STEP: Duration = Duration::from_secs(30);

/// The path of one of the workspace's programs, built next to the tests
/// (`cargo build --workspace --bins` runs before `cargo test`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests",
        path.display()
    );
    path
}

/// The sample catalog folder and its development key.
pub fn sample_catalog() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../catalog")
}

pub fn dev_public_key() -> PathBuf {
    sample_catalog().join("dev-key.pub")
}

/// Lines a child printed, shared with the thread that reads them.
#[derive(Clone, Default)]
pub struct Lines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Lines {
    fn collect(self, stream: impl Read + Send + 'static) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                        let (lock, cvar) = &*self.0;
                        lock.lock().unwrap().push(line);
                        cvar.notify_all();
                    }
                }
            }
            // Wake waiters so they notice the end.
            self.0.1.notify_all();
        })
    }

    /// Waits for a line containing `needle` and returns it.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.0;
        let mut lines = lock.lock().unwrap();
        loop {
            if let Some(l) = lines.iter().find(|l| l.contains(needle)) {
                return Some(l.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            lines = cvar.wait_timeout(lines, deadline - now).unwrap().0;
        }
    }

    pub fn text(&self) -> String {
        self.0.0.lock().unwrap().join("\n")
    }
}

/// A running program, killed on drop.
pub struct Proc {
    pub child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
    pub stdin: Option<ChildStdin>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn program");
        let stdout = Lines::default();
        let stderr = Lines::default();
        let readers = vec![
            stdout.clone().collect(child.stdout.take().expect("stdout")),
            stderr.clone().collect(child.stderr.take().expect("stderr")),
        ];
        let stdin = child.stdin.take();
        Proc {
            child,
            stdout,
            stderr,
            stdin,
            readers,
        }
    }

    /// Types lines on the program's standard input.
    pub fn answer(&mut self, lines: &[&str]) {
        if let Some(stdin) = &mut self.stdin {
            for l in lines {
                let _ = writeln!(stdin, "{l}");
            }
            let _ = stdin.flush();
        }
    }

    /// Closes standard input: unanswered questions count as no.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the program to exit, then for its output to be read.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGINT, as Ctrl-C would.
    pub fn interrupt(&self) {
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status();
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relay on 127.0.0.1 with a random port and a fresh identity.
pub struct RelayProc {
    pub proc: Proc,
    pub addr: String,
    pub fingerprint: String,
    pub dir: tempfile::TempDir,
}

impl RelayProc {
    pub fn start(extra: &[&str]) -> RelayProc {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(bin("sprijin-relay"));
        cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("relay"))
            .args(extra);
        let proc = Proc::spawn(cmd);
        let line = proc
            .stdout
            .wait_for("listening on ", STEP)
            .unwrap_or_else(|| panic!("relay did not start: {}", proc.stderr.text()));
        // listening on HOST:PORT fingerprint sha256:HEX
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.len(), 5, "unexpected first line: {line}");
        RelayProc {
            addr: words[2].to_string(),
            fingerprint: words[4].to_string(),
            proc,
            dir,
        }
    }
}

/// An agent sharing this machine through `relay`, with its code.
pub struct AgentProc {
    pub proc: Proc,
    pub code: String,
    pub data_dir: tempfile::TempDir,
}

impl AgentProc {
    /// Starts `sprijin-agent share`, trusting the sample catalog's key, and
    /// waits for its code. `answers` are typed on its standard input at once.
    pub fn start(relay: &RelayProc, answers: &[&str], extra: &[&str]) -> AgentProc {
        let data_dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(bin("sprijin-agent"));
        cmd.args([
            "share",
            "--relay",
            &relay.addr,
            "--relay-fingerprint",
            &relay.fingerprint,
        ])
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(extra);
        let mut proc = Proc::spawn(cmd);
        proc.answer(answers);
        let line = proc.stdout.wait_for("code: ", STEP).unwrap_or_else(|| {
            panic!(
                "agent printed no code: {}\n{}",
                proc.stdout.text(),
                proc.stderr.text()
            )
        });
        let code = line.trim_start_matches("code: ").trim().to_string();
        AgentProc {
            proc,
            code,
            data_dir,
        }
    }

    /// Like [`start`](Self::start) with the sample catalog's key trusted.
    pub fn start_trusting(relay: &RelayProc, answers: &[&str]) -> AgentProc {
        let key = dev_public_key();
        Self::start(relay, answers, &["--trusted-key", key.to_str().unwrap()])
    }
}

/// What a finished console printed.
pub struct ConsoleOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `sprijin-console connect CODE` against `relay` with `args` and waits
/// for it to finish.
pub fn console(relay: &RelayProc, code: &str, args: &[&str]) -> ConsoleOutput {
    let mut cmd = Command::new(bin("sprijin-console"));
    cmd.args([
        "connect",
        code,
        "--relay",
        &relay.addr,
        "--relay-fingerprint",
        &relay.fingerprint,
    ])
    .args(args);
    run_to_end(cmd)
}

/// Runs a command to its end with a time limit.
pub fn run_to_end(cmd: Command) -> ConsoleOutput {
    let mut proc = Proc::spawn(cmd);
    proc.close_stdin();
    let status = proc.wait(STEP * 2).unwrap_or_else(|| {
        panic!(
            "program did not finish: {}\n{}",
            proc.stdout.text(),
            proc.stderr.text()
        )
    });
    ConsoleOutput {
        status,
        stdout: proc.stdout.text(),
        stderr: proc.stderr.text(),
    }
}

/// Asserts that nothing panicked in what a program printed.
pub fn assert_no_panic(text: &str) {
    assert!(!text.contains("panicked"), "a program panicked:\n{text}");
}

impl AgentProc {
    /// Like [`start`](Self::start), for a relay given by its address and
    /// fingerprint, such as one a test runs in-process.
    pub fn start_at(
        relay_addr: &str,
        relay_fingerprint: &str,
        answers: &[&str],
        extra: &[&str],
    ) -> AgentProc {
        let data_dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(bin("sprijin-agent"));
        cmd.args([
            "share",
            "--relay",
            relay_addr,
            "--relay-fingerprint",
            relay_fingerprint,
        ])
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(extra);
        let mut proc = Proc::spawn(cmd);
        proc.answer(answers);
        let line = proc.stdout.wait_for("code: ", STEP).unwrap_or_else(|| {
            panic!(
                "agent printed no code: {}\n{}",
                proc.stdout.text(),
                proc.stderr.text()
            )
        });
        let code = line.trim_start_matches("code: ").trim().to_string();
        AgentProc {
            proc,
            code,
            data_dir,
        }
    }
}

/// The `sprijin-console connect CODE` command for a relay given by its
/// address and fingerprint, not yet run, so a test can add to its
/// environment. The caller's `SPRIJIN_*` settings are not passed on.
pub fn console_command(
    relay_addr: &str,
    relay_fingerprint: &str,
    code: &str,
    args: &[&str],
) -> Command {
    let mut cmd = Command::new(bin("sprijin-console"));
    for var in [
        "SPRIJIN_TOKEN",
        "SPRIJIN_NAME",
        "SPRIJIN_RELAY",
        "SPRIJIN_RELAY_FINGERPRINT",
    ] {
        cmd.env_remove(var);
    }
    cmd.args([
        "connect",
        code,
        "--relay",
        relay_addr,
        "--relay-fingerprint",
        relay_fingerprint,
    ])
    .args(args);
    cmd
}

/// Runs [`console_command`] to its end.
pub fn console_at(
    relay_addr: &str,
    relay_fingerprint: &str,
    code: &str,
    args: &[&str],
) -> ConsoleOutput {
    run_to_end(console_command(relay_addr, relay_fingerprint, code, args))
}
