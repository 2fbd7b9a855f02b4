//! Helpers for the end-to-end tests: start the real `sprijin-relay`,
//! `sprijin-agent` and `sprijin-console` programs on 127.0.0.1 with port 0,
//! wait for their readiness lines (never a fixed sleep), and collect what
//! they print. Every child is killed when its guard is dropped.
#![forbid(unsafe_code)]

pub mod bench;
pub mod faults;
pub mod metrics;
pub mod netlab;
pub mod tmux;
pub mod wine;
pub mod xvfb;

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

    /// How many lines arrived so far.
    pub fn len(&self) -> usize {
        self.0.0.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    /// The session code an agent printed; panics with its output if none.
    pub fn code(&self) -> String {
        let line = self.stdout.wait_for("code: ", STEP).unwrap_or_else(|| {
            panic!(
                "agent printed no code: {}\n{}",
                self.stdout.text(),
                self.stderr.text()
            )
        });
        line.trim_start_matches("code: ").trim().to_string()
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
        Self::start_at(&relay.addr, &relay.fingerprint, answers, extra)
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
    /// The console's data folder (its session logs), when the helper made one.
    pub data_dir: Option<tempfile::TempDir>,
}

/// Runs `sprijin-console connect CODE` against `relay` with `args` and waits
/// for it to finish.
pub fn console(relay: &RelayProc, code: &str, args: &[&str]) -> ConsoleOutput {
    let data_dir = tempfile::tempdir().unwrap();
    let mut cmd = console_command(&relay.addr, &relay.fingerprint, code, args);
    cmd.arg("--data-dir").arg(data_dir.path());
    ConsoleOutput {
        data_dir: Some(data_dir),
        ..run_to_end(cmd)
    }
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
        data_dir: None,
    }
}

/// Asserts that nothing panicked in what a program printed.
pub fn assert_no_panic(text: &str) {
    assert!(!text.contains("panicked"), "a program panicked:\n{text}");
}

/// Runs `sprijin-console catalog ARGS...` to its end.
pub fn catalog_tool(args: &[&std::ffi::OsStr]) -> ConsoleOutput {
    let mut cmd = Command::new(bin("sprijin-console"));
    cmd.arg("catalog").args(args);
    run_to_end(cmd)
}

/// A catalog folder made for one test, with a signing key of its own made by
/// `sprijin-console catalog keygen` (the key lives outside the folder).
pub struct TestCatalog {
    pub root: tempfile::TempDir,
    /// The catalog folder: one `ID.toml` per script, and `catalog.sig` once signed.
    pub dir: PathBuf,
    /// The secret key.
    pub key: PathBuf,
    /// The public key, for `--trusted-key`.
    pub public: PathBuf,
}

impl TestCatalog {
    /// Writes `scripts` (id, TOML text) into a new folder and makes a key,
    /// without signing.
    pub fn unsigned(scripts: &[(&str, &str)]) -> TestCatalog {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("catalog");
        std::fs::create_dir(&dir).unwrap();
        for (id, toml) in scripts {
            std::fs::write(dir.join(format!("{id}.toml")), toml).unwrap();
        }
        let key = root.path().join("team.key");
        let out = catalog_tool(&["keygen".as_ref(), key.as_os_str()]);
        assert!(
            out.status.success(),
            "catalog keygen failed: {}",
            out.stderr
        );
        let public = root.path().join("team.key.pub");
        assert!(
            public.exists(),
            "keygen wrote no public key: {}",
            out.stdout
        );
        TestCatalog {
            root,
            dir,
            key,
            public,
        }
    }

    /// Like [`unsigned`](Self::unsigned), then signed with the folder's key.
    pub fn signed(scripts: &[(&str, &str)]) -> TestCatalog {
        let catalog = TestCatalog::unsigned(scripts);
        catalog.sign();
        catalog
    }

    /// Signs the folder with `sprijin-console catalog sign`.
    pub fn sign(&self) {
        let out = catalog_tool(&[
            "sign".as_ref(),
            self.dir.as_os_str(),
            "--key".as_ref(),
            self.key.as_os_str(),
        ]);
        assert!(
            out.status.success(),
            "catalog sign failed: {}{}",
            out.stdout,
            out.stderr
        );
    }

    /// A copy of the sample catalog, its signature included.
    pub fn sample_copy() -> TestCatalog {
        let catalog = TestCatalog::unsigned(&[]);
        for entry in std::fs::read_dir(sample_catalog()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".toml") || name == "catalog.sig" {
                std::fs::copy(&path, catalog.dir.join(name)).unwrap();
            }
        }
        catalog
    }

    pub fn dir_arg(&self) -> &str {
        self.dir.to_str().expect("temp paths are UTF-8")
    }

    pub fn public_arg(&self) -> &str {
        self.public.to_str().expect("temp paths are UTF-8")
    }
}

/// Every line of `--json` output, parsed; a line that is not JSON fails the test.
pub fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// The `--json` events named `event`, in order.
pub fn events_named<'a>(
    events: &'a [serde_json::Value],
    event: &str,
) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == event).collect()
}

/// The records of the audit log in an agent's data folder, parsed.
pub fn audit_records(data_dir: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(data_dir.join("audit.log")).unwrap_or_default();
    json_lines(&text)
}

/// The `kind` of every audit event, in order, without the moves of the
/// session's path: on loopback a session goes direct when its probes are
/// answered, at no fixed point among the decisions and runs a test checks
/// (`direct_path.rs` checks the moves themselves).
pub fn audit_kinds(data_dir: &std::path::Path) -> Vec<String> {
    audit_records(data_dir)
        .iter()
        .map(|r| r["event"]["kind"].as_str().unwrap_or("?").to_string())
        .filter(|kind| kind != "path_changed")
        .collect()
}

/// Runs `sprijin-agent audit verify --data-dir DIR`.
pub fn audit_verify(data_dir: &std::path::Path) -> ConsoleOutput {
    let mut cmd = Command::new(bin("sprijin-agent"));
    cmd.args(["audit", "verify", "--data-dir"]).arg(data_dir);
    run_to_end(cmd)
}

/// Lower-case hex SHA-256 of `bytes`, computed by `sha256sum`, independently
/// of the programs under test.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Whether process `pid` no longer runs: gone from `/proc`, or a zombie (it
/// runs no more code; reaping orphans is the machine's init's job).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// Waits up to `timeout` for process `pid` to be gone.
pub fn wait_until_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if process_gone(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `timeout` for a file to hold a pid, as a script writes it.
pub fn wait_for_pid_file(path: &std::path::Path, timeout: Duration) -> Option<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse().ok());
        if pid.is_some() || Instant::now() >= deadline {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process's peak resident memory (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time a process has used so far, in clock ticks (user + system).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    bench::procfs::cpu_ticks(pid).ok()
}

/// A child that keeps one core busy (`sh -c 'while :; do :; done'`), killed
/// when dropped.
pub struct BusyLoop {
    child: Child,
}

impl BusyLoop {
    /// Starts the loop and waits until it has used `cpu` of processor time,
    /// so it is really spinning before anyone looks.
    pub fn start(cpu: Duration) -> BusyLoop {
        let child = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a busy loop");
        let busy = BusyLoop { child };
        // Linux counts CPU time in ticks of 1/100 s (USER_HZ).
        let wanted = u64::try_from(cpu.as_millis() / 10).unwrap_or(u64::MAX);
        let deadline = Instant::now() + STEP;
        while cpu_ticks(busy.pid()).unwrap_or(0) < wanted {
            assert!(
                Instant::now() < deadline,
                "the busy loop got no CPU time within {STEP:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        busy
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BusyLoop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sprijin-console connect CODE` against `relay` without `--exec`,
/// so the test types its commands on standard input.
pub fn console_interactive(relay: &RelayProc, code: &str, args: &[&str]) -> Proc {
    Proc::spawn(console_command(&relay.addr, &relay.fingerprint, code, args))
}

/// The console library's options for `relay`, as the technician `name`.
pub fn connect_options(relay: &RelayProc, name: &str) -> sprijin_console::session::ConnectOptions {
    sprijin_console::session::ConnectOptions {
        relay: relay.addr.clone(),
        relay_fingerprint: Some(relay.fingerprint.parse().expect("a fingerprint")),
        technician: name.to_string(),
        token: None,
        session_idle_timeout: sprijin_proto::tls::SESSION_IDLE_TIMEOUT,
        direct: sprijin_proto::path::direct::Policy::Allow,
    }
}

/// Opens a session with the console library in this process, as the
/// technician `name`, against the agent waiting with `code`.
pub async fn connect_in_process(
    relay: &RelayProc,
    code: &str,
    name: &str,
) -> sprijin_console::session::Session {
    let code: sprijin_proto::code::SessionCode = code.parse().expect("a valid code");
    let options = connect_options(relay, name);
    tokio::time::timeout(
        STEP,
        sprijin_console::session::Session::connect(&code, &options),
    )
    .await
    .expect("the session opens in time")
    .expect("the session opens")
}

/// Sends a catalog and expects the agent to accept it; returns its digest.
pub async fn send_catalog(
    session: &sprijin_console::session::Session,
    signed: sprijin_proto::catalog::SignedCatalog,
) -> String {
    let (_, mut replies) = session
        .request(sprijin_proto::message::session::Request::Catalog(signed))
        .await
        .unwrap();
    match next_reply(&mut replies).await {
        sprijin_proto::message::session::AgentMsg::CatalogAccepted { digest, .. } => digest,
        other => panic!("the catalog was not accepted: {other:?}"),
    }
}

/// The next answer to a request, failing the test if none comes in `STEP`.
pub async fn next_reply(
    replies: &mut sprijin_console::session::Replies,
) -> sprijin_proto::message::session::AgentMsg {
    tokio::time::timeout(STEP, replies.recv())
        .await
        .expect("the agent answers in time")
        .expect("the agent answers before the session ends")
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
        let code = proc.code();
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
    // Session logs of consoles that are not given a folder stay out of $HOME.
    cmd.env(
        "XDG_DATA_HOME",
        std::env::temp_dir().join("sprijin-tests-data"),
    );
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

/// A catalog script that prints `line 1` to `line N`, one every 20 ms, so
/// a run spans a move of the session's path.
pub const SLOW_COUNT: &str = r#"
id = "slow-count"
title = "Count slowly"
description = "Prints line 1 to line n, one every 20 ms."
risk = "low"
platforms = ["linux"]
timeout_secs = 60
program = "sh"
args = ["-c", "i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo line $i; sleep 0.02; done"]

[params.n]
pattern = '^[0-9]{1,4}$'
"#;

/// What `slow-count` prints for `n`.
pub fn counted(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

/// The run output a console's `--json` events carry, joined.
pub fn output_of(events: &[serde_json::Value]) -> String {
    events_named(events, "output")
        .iter()
        .map(|e| e["data"].as_str().expect("output data"))
        .collect()
}

/// Questions the agent asks before a run show this.
pub const RUN_QUESTION: &str = "asks to run a repair script";

/// Runs `future` to its end on a runtime of its own.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(future)
}

/// The audit events of one kind in an agent's data folder, in order.
pub fn audit_events(data_dir: &std::path::Path, kind: &str) -> Vec<serde_json::Value> {
    audit_records(data_dir)
        .into_iter()
        .filter(|r| r["event"]["kind"] == kind)
        .map(|r| r["event"].clone())
        .collect()
}

/// Waits for a program to end within `within`, showing what it printed if
/// it does not.
pub fn wait_end(proc: &mut Proc, within: Duration, what: &str) -> ExitStatus {
    proc.wait(within).unwrap_or_else(|| {
        panic!(
            "{what} did not end within {within:?}:\n{}\n{}",
            proc.stdout.text(),
            proc.stderr.text()
        )
    })
}

/// Waits for an agent to end with its session, successfully and without a
/// panic.
pub fn agent_finishes(agent: &mut Proc) {
    let status = agent.wait(STEP).expect("the agent ends with the session");
    assert!(
        status.success(),
        "agent failed: {}\n{}",
        agent.stdout.text(),
        agent.stderr.text()
    );
    assert_no_panic(&agent.stderr.text());
}

/// Claims `code`'s nameplate at the relay as a console named Ana, as the
/// real console does, and returns the relay link and the forwarding ticket
/// once paired; what follows (or does not) is the caller's.
pub async fn claim(
    relay_addr: &str,
    fingerprint: &str,
    code: &sprijin_proto::code::SessionCode,
) -> (
    sprijin_proto::client::RelayLink,
    sprijin_proto::path::Ticket,
) {
    use sprijin_proto::message::control::{ClientMsg, RelayMsg, Role};
    let mut link = sprijin_proto::client::RelayLink::connect(
        relay_addr,
        Some(fingerprint.parse().expect("a fingerprint")),
        Role::Console,
    )
    .await
    .expect("the relay answers");
    link.writer
        .write_msg(&ClientMsg::Claim {
            nameplate: code.nameplate(),
            technician: "Ana".into(),
            token: None,
        })
        .await
        .expect("the claim is sent");
    match link.reader.expect_msg::<RelayMsg>().await {
        Ok(RelayMsg::Paired { ticket, .. }) => (link, ticket),
        other => panic!("the relay did not pair: {other:?}"),
    }
}

/// A console built from the protocol library, so a test can send what the
/// real console never would, or take part with a guessed code: it claims
/// `code`'s nameplate at the relay, connects end to end through the relay's
/// forwarder and runs the handshake with `code`'s password. Every message
/// of the agent, from the control stream and from every request stream,
/// arrives on `inbox`.
pub struct RawConsole {
    pub writer: sprijin_proto::framing::FrameWriter<quinn::SendStream>,
    pub inbox: tokio::sync::mpsc::Receiver<sprijin_proto::message::session::AgentMsg>,
    pub connection: quinn::Connection,
    pub path: sprijin_proto::path::RelayedPath,
    /// While true, the agent's control stream is not read (a console that
    /// keeps its connection alive but never reads).
    pub hold_control: tokio::sync::watch::Sender<bool>,
}

impl RawConsole {
    /// Claims and sets up the session; `Err` is how the handshake failed.
    pub async fn connect(
        relay_addr: &str,
        fingerprint: &str,
        code: &sprijin_proto::code::SessionCode,
    ) -> Result<RawConsole, sprijin_proto::e2e::E2eError> {
        use sprijin_proto::message::control::{Role, close_code};
        use sprijin_proto::message::session::AgentMsg;
        use sprijin_proto::tls::{self, SessionIdentity};
        let (link, ticket) = claim(relay_addr, fingerprint, code).await;
        let identity = SessionIdentity::generate().expect("a session certificate");
        let client = tls::session_client_config(&identity, tls::SESSION_IDLE_TIMEOUT)
            .expect("a session configuration");
        let path =
            sprijin_proto::path::RelayedPath::new(link.connection.remote_address(), ticket, None)
                .expect("a session socket");
        let connection = path
            .endpoint()
            .connect_with(client, path.relay(), "sprijin-session")
            .expect("a connection starts")
            .await
            .map_err(|e| sprijin_proto::e2e::E2eError::Connection(e.to_string()))?;
        let set_up =
            sprijin_proto::e2e::establish(Role::Console, code, connection, &identity).await;
        let close = match &set_up {
            Ok(_) => close_code::SET_UP,
            Err(e) if e.is_wrong_code() => close_code::WRONG_CODE,
            Err(_) => close_code::SETUP_FAILED,
        };
        link.connection.close(close.into(), b"set up");
        let established = set_up?;
        let (tx, inbox) = tokio::sync::mpsc::channel::<AgentMsg>(1024);
        let mut control = established.reader;
        let control_tx = tx.clone();
        let (hold_control, mut held) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while held.wait_for(|held| !*held).await.is_ok()
                && let Ok(Some(msg)) = control.read_msg::<AgentMsg>().await
            {
                if control_tx.send(msg).await.is_err() {
                    return;
                }
            }
        });
        let accepting = established.connection.clone();
        tokio::spawn(async move {
            while let Ok(recv) = sprijin_proto::e2e::streams::accept(&accepting).await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let Ok((_, mut reader)) = sprijin_proto::e2e::streams::read_head(recv).await
                    else {
                        return;
                    };
                    while let Ok(Some(msg)) = reader.read_msg::<AgentMsg>().await {
                        if tx.send(msg).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(RawConsole {
            writer: established.writer,
            inbox,
            connection: established.connection,
            path,
            hold_control,
        })
    }
}
