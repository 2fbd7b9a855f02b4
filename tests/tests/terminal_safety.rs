//! Nothing from the other side can drive the technician's terminal: run
//! output is shown with its escape sequences and control characters
//! neutralised, `--json` carries the exact bytes, and process command lines
//! arrive with their secrets hidden.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sprijin_tests::*;

/// Prints a file the test wrote, byte for byte.
const SHOW: &str = r#"
id = "show"
title = "Show a file"
description = "Prints a file as it is."
risk = "low"
platforms = ["linux"]
timeout_secs = 30
program = "cat"
args = ["{file}"]

[params.file]
pattern = '^/[A-Za-z0-9/._-]{1,200}$'
"#;

/// The agent's runner forwards output in chunks of this many bytes
/// (`sprijin_agent::script::runner::CHUNK_SIZE`).
const CHUNK: usize = 16 * 1024;

/// What the hostile script prints: a two-byte character cut by the first
/// chunk boundary, then a window-title escape and a clear-screen sequence, a
/// right-to-left override, a lone carriage return, a C1 control sequence
/// introducer and a tab; and in a later chunk, bytes that are not UTF-8.
fn hostile_output() -> Vec<u8> {
    let mut bytes = vec![b'a'; CHUNK - 1];
    bytes.extend_from_slice("ș\n".as_bytes());
    bytes.extend_from_slice(b"title \x1b]0;pwned\x07\x1b[2J cleared\n");
    bytes.extend_from_slice("file txt\u{202E}exe.sh\n".as_bytes());
    bytes.extend_from_slice(b"over\rwrite\n");
    bytes.extend_from_slice("c1 \u{9b}31m red\n".as_bytes());
    bytes.extend_from_slice(b"tab\tend\n");
    // Padding, so that the second chunk is all text.
    bytes.resize(2 * CHUNK + 100, b'b');
    bytes.extend_from_slice(b"\nbinary \x00\x01\xff\xfe\x7f end\n");
    bytes
}

/// The end of a long text, for failure messages.
fn tail(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars[chars.len().saturating_sub(800)..].iter().collect()
}

/// A catalog with [`SHOW`], and the file of hostile output it will print.
fn hostile_script() -> (TestCatalog, String) {
    let cat = TestCatalog::signed(&[("show", SHOW)]);
    let file = cat.root.path().join("hostile.out");
    std::fs::write(&file, hostile_output()).unwrap();
    let run = format!("run show file={}", file.display());
    (cat, run)
}

/// A finished program's exit status, its standard output as raw bytes and
/// its standard error.
struct Raw {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `cmd` to its end, keeping standard output byte for byte.
fn run_raw(mut cmd: Command) -> Raw {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child: Child = cmd.spawn().expect("start the program");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = out.read_to_end(&mut bytes);
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + STEP * 2;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the program") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the program did not finish in {:?}", STEP * 2);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Raw {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// `sprijin-console connect` with `args`, run to its end, raw.
fn console_raw(relay: &RelayProc, code: &str, args: &[&str]) -> Raw {
    let data_dir = tempfile::tempdir().unwrap();
    let mut cmd = console_command(&relay.addr, &relay.fingerprint, code, args);
    cmd.arg("--data-dir").arg(data_dir.path());
    run_raw(cmd)
}

/// The bytes that are not allowed to reach a terminal in line mode, with
/// their offsets: C0 controls other than `\n` and `\t`, and DEL.
fn control_bytes(bytes: &[u8]) -> Vec<(usize, u8)> {
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| (**b < 0x20 && **b != b'\n' && **b != b'\t') || **b == 0x7f)
        .map(|(i, b)| (i, *b))
        .collect()
}

#[test]
fn run_output_cannot_drive_the_terminal_in_line_mode() {
    let (cat, run) = hostile_script();
    let relay = RelayProc::start(&[]);
    let agent = AgentProc::start(&relay, &["y", "y"], &["--trusted-key", cat.public_arg()]);
    let out = console_raw(
        &relay,
        &agent.code,
        &["--catalog", cat.dir_arg(), "--exec", &run],
    );
    let shown = tail(&String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "{shown}\n{}", out.stderr);

    assert_eq!(control_bytes(&out.stdout), [], "{shown:?}");
    let text = std::str::from_utf8(&out.stdout).expect("the console prints UTF-8");
    // Nor the C1 introducer, nor a bidirectional override.
    assert!(!text.contains(['\u{9b}', '\u{202E}']), "{shown:?}");
    assert!(sprijin_proto::text::clean_text(text) == text, "{shown:?}");

    // What was neutralised is still there to read, in its place.
    let long_line = format!("{}ș\n", "a".repeat(CHUNK - 1));
    assert!(
        text.contains(&long_line),
        "the cut character was not put back"
    );
    for expected in [
        "title �]0;pwned��[2J cleared\n",
        "file txt�exe.sh\n",
        "over�write\n",
        "c1 �31m red\n",
        "tab\tend\n",
        "binary ����� end\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {shown:?}");
    }
    assert!(text.contains(": exited with status 0 after"), "{shown}");
}

/// The bytes one `output` event carries, decoded as its `encoding` says.
fn event_bytes(event: &Value) -> Vec<u8> {
    let data = event["data"].as_str().expect("output data is a string");
    match event["encoding"].as_str() {
        Some("utf8") => data.as_bytes().to_vec(),
        Some("base64") => STANDARD.decode(data).expect("valid base64"),
        other => panic!("unknown output encoding {other:?} in {event}"),
    }
}

#[test]
fn json_output_carries_the_exact_bytes_the_script_wrote() {
    let (cat, run) = hostile_script();
    let relay = RelayProc::start(&[]);
    let agent = AgentProc::start(&relay, &["y", "y"], &["--trusted-key", cat.public_arg()]);
    let out = console_raw(
        &relay,
        &agent.code,
        &["--catalog", cat.dir_arg(), "--exec", &run, "--json"],
    );
    let stdout = String::from_utf8(out.stdout).expect("JSON lines are UTF-8");
    assert!(out.status.success(), "{}\n{}", tail(&stdout), out.stderr);
    assert!(!stdout.contains('\x1b'), "a raw escape in the JSON lines");

    let events = json_lines(&stdout);
    let outputs = events_named(&events, "output");
    let mut received = Vec::new();
    for event in &outputs {
        assert_eq!(event["stream"], "stdout", "{}", event["encoding"]);
        received.extend(event_bytes(event));
    }
    let expected = hostile_output();
    assert!(
        received == expected,
        "the output differs from what was written"
    );

    let encodings: Vec<&Value> = outputs.iter().map(|e| &e["encoding"]).collect();
    // The character cut by the chunk boundary travels whole, as text.
    assert!(
        outputs
            .iter()
            .any(|e| e["encoding"] == "utf8" && e["data"].as_str().unwrap().contains('ș')),
        "{encodings:?}"
    );
    // The bytes that are not UTF-8 travel as base64.
    assert!(encodings.iter().any(|e| **e == "base64"), "{encodings:?}");

    let end = events_named(&events, "run_end");
    assert_eq!(end.len(), 1, "{}", tail(&stdout));
    assert_eq!(end[0]["bytes"], expected.len());
    assert_eq!(end[0]["output_sha256"], sha256_hex(&received).as_str());
}

/// A process that keeps a core busy with secrets on its command line.
struct SecretHolder {
    child: Child,
}

impl SecretHolder {
    fn start() -> SecretHolder {
        // `sh -c` gets the extra words as its positional parameters, so they
        // stay in its command line while the loop runs.
        let child = Command::new("sh")
            .args([
                "-c",
                "while :; do :; done",
                "s",
                "--password=hunter2",
                "--token",
                "hunter3",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the secret holder");
        SecretHolder { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SecretHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long to keep asking before the busy process must be among the
/// busiest: on a machine shared with other work it may take a while.
const LISTED_DEADLINE: Duration = Duration::from_secs(180);

/// Waits until `proc` has printed `marker` at least `n` times.
fn wait_for_count(proc: &Proc, marker: &str, n: usize) {
    let deadline = Instant::now() + STEP;
    while proc.stdout.text().matches(marker).count() < n {
        assert!(
            Instant::now() < deadline,
            "no answer to processes: {}\n{}",
            proc.stdout.text(),
            proc.stderr.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asks an interactive console for `processes` until the output shows
/// `needle`, and returns everything it printed.
fn processes_until(relay: &RelayProc, json: bool, needle: &str) -> String {
    let agent = AgentProc::start(relay, &["y"], &[]);
    let args: &[&str] = if json { &["--json"] } else { &[] };
    let marker = if json {
        "\"event\":\"processes\""
    } else {
        "Top by memory"
    };
    let mut console = console_interactive(relay, &agent.code, args);
    let deadline = Instant::now() + LISTED_DEADLINE;
    let mut asked = 0;
    loop {
        console.answer(&["processes"]);
        asked += 1;
        wait_for_count(&console, marker, asked);
        if console.stdout.text().contains(needle) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{needle} never showed among the busiest processes:\n{}",
            console.stdout.text()
        );
        // The agent samples every couple of seconds; ask again a little later.
        std::thread::sleep(Duration::from_millis(500));
    }
    console.answer(&["quit"]);
    console.wait(STEP).expect("the console quits");
    console.stdout.text()
}

#[test]
fn secrets_on_process_command_lines_are_hidden() {
    let holder = SecretHolder::start();
    let pid = holder.pid();
    let relay = RelayProc::start(&[]);

    let json = processes_until(&relay, true, &format!("\"pid\":{pid},"));
    assert!(
        !json.contains("hunter2") && !json.contains("hunter3"),
        "{json}"
    );
    let events = json_lines(&json);
    let row = events_named(&events, "processes")
        .iter()
        .flat_map(|e| {
            let lists = &e["processes"];
            let mut rows: Vec<Value> = lists["top_cpu"].as_array().cloned().unwrap_or_default();
            rows.extend(lists["top_memory"].as_array().cloned().unwrap_or_default());
            rows
        })
        .find(|p| p["pid"] == pid)
        .expect("the secret holder is listed");
    assert_eq!(
        row["command"], "sh -c while :; do :; done s --password=*** --token ***",
        "{row}"
    );

    let text = processes_until(&relay, false, &format!(" {pid} "));
    assert!(
        !text.contains("hunter2") && !text.contains("hunter3"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{pid} ")))
        .expect("the secret holder's row");
    assert!(
        line.ends_with("sh -c while :; do :; done s --password=*** --token ***"),
        "{line}"
    );
    drop(holder);
}
