//! The audit log as the record of what was done: the console learns the
//! log's head and its report shows it; `audit verify` names every kind of
//! damage a person could do to the log (a line cut off the end, a byte of
//! the last line changed, the file emptied or deleted); a second agent cannot
//! write the same log; a run under way when the agent was killed is recorded
//! as unfinished; a line cut off by a failed write is repaired; and a full
//! disk is a clear error before a code is shown or a person is asked.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sprijin_tests::*;

/// Starts `sprijin-agent share` keeping its log in `dir`, trusting the
/// sample catalog, with `answers` on its input.
fn agent_in(relay: &RelayProc, dir: &Path, answers: &[&str]) -> Proc {
    let mut proc = Proc::spawn(share_command(relay, dir));
    proc.answer(answers);
    proc
}

fn share_command(relay: &RelayProc, dir: &Path) -> Command {
    let mut cmd = Command::new(bin("sprijin-agent"));
    cmd.args([
        "share",
        "--relay",
        &relay.addr,
        "--relay-fingerprint",
        &relay.fingerprint,
        "--trusted-key",
    ])
    .arg(dev_public_key())
    .arg("--data-dir")
    .arg(dir);
    cmd
}

/// `audit verify --data-dir DIR [--head HEAD]`.
fn verify(dir: &Path, head: Option<&str>) -> ConsoleOutput {
    let mut cmd = Command::new(bin("sprijin-agent"));
    cmd.args(["audit", "verify", "--data-dir"]).arg(dir);
    if let Some(head) = head {
        cmd.args(["--head", head]);
    }
    run_to_end(cmd)
}

/// Asserts `audit verify` fails with one line that contains `words`.
fn assert_named(out: &ConsoleOutput, words: &str) {
    assert!(!out.status.success(), "damage passed: {}", out.stdout);
    let err = out.stderr.trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(words), "expected {words:?} in: {err}");
}

fn kinds(dir: &Path) -> Vec<String> {
    audit_kinds(dir)
}

/// One whole session: diagnostics, a run, a report, quit. Returns the
/// console's JSON events and the report's text.
fn one_session(relay: &RelayProc, dir: &Path) -> (Vec<Value>, String) {
    let mut agent = agent_in(relay, dir, &["y", "y"]);
    let code = agent.code();
    let report = dir.parent().unwrap().join("report.md");
    let sample = sample_catalog();
    let out = console(
        relay,
        &code,
        &[
            "--catalog",
            sample.to_str().unwrap(),
            "--json",
            "--exec",
            "run echo-test word=hello",
            "--exec",
            &format!("report {}", report.display()),
            "--exec",
            "quit",
        ],
    );
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let status = agent.wait(STEP).expect("the agent ends with the session");
    assert!(status.success(), "{}", agent.stderr.text());
    let report = std::fs::read_to_string(&report).expect("a report");
    (json_lines(&out.stdout), report)
}

/// The log's head as `audit verify` prints it.
fn head_of(dir: &Path) -> String {
    let out = verify(dir, None);
    assert!(out.status.success(), "{}", out.stderr);
    let at = out.stdout.find("(head ").expect("a head") + "(head ".len();
    out.stdout[at..].split(')').next().unwrap().to_string()
}

fn log_of(dir: &Path) -> PathBuf {
    dir.join("audit.log")
}

#[test]
fn the_console_shows_the_agents_audit_head_and_verify_checks_it() {
    let relay = RelayProc::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("agent");
    let (events, report) = one_session(&relay, &dir);

    let heads = events_named(&events, "audit_head");
    assert!(heads.len() >= 2, "{events:?}");
    let last = heads.last().unwrap()["head"].as_str().unwrap().to_string();
    // The last head the console heard is the log's end: the session's end.
    assert_eq!(last, head_of(&dir));
    let records = audit_records(&dir);
    assert_eq!(records.last().unwrap()["event"]["kind"], "session_end");
    assert_eq!(
        heads.last().unwrap()["seq"],
        Value::from(records.len() as u64)
    );
    // The report was written during the session: it holds the head then,
    // which the log must still reach.
    let line = report
        .lines()
        .find(|l| l.starts_with("| Agent's audit log head |"))
        .unwrap_or_else(|| panic!("no head in the report:\n{report}"));
    let shown = line.split('`').nth(1).expect("a head in backticks");
    let (seq, hash) = shown.split_once(':').expect("SEQ:HASH");
    let seq: usize = seq.parse().unwrap();
    assert_eq!(hash, sha256_hex(audit_line(&dir, seq).as_bytes()));
    let out = verify(&dir, Some(shown));
    assert!(out.status.success(), "{}", out.stderr);
    let out = verify(&dir, Some(&last));
    assert!(out.status.success(), "{}", out.stderr);

    // A log cut back past the head is named, even with the kept head
    // rewritten to match, as someone covering their tracks would.
    let text = std::fs::read_to_string(log_of(&dir)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(log_of(&dir), lines[..seq - 1].join("\n") + "\n").unwrap();
    let kept = serde_json::json!({
        "log_id": records[0]["event"]["log_id"],
        "seq": seq - 1,
        "hash": sha256_hex(lines[seq - 2].as_bytes()),
    });
    std::fs::write(dir.join("audit.state"), kept.to_string()).unwrap();
    assert!(
        verify(&dir, None).status.success(),
        "the kept head was not rewritten"
    );
    let out = verify(&dir, Some(shown));
    assert_named(&out, &format!("short of the head {shown}"));
    let out = verify(&dir, Some("3:not-a-head"));
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("is not an audit log head"),
        "{}",
        out.stderr
    );
}

/// Line `n` (from 1) of the log, without its end.
fn audit_line(dir: &Path, n: usize) -> String {
    std::fs::read_to_string(log_of(dir))
        .unwrap()
        .lines()
        .nth(n - 1)
        .unwrap()
        .to_string()
}

#[test]
fn each_kind_of_damage_a_person_can_do_is_named() {
    let relay = RelayProc::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("agent");
    one_session(&relay, &dir);
    let head = head_of(&dir);
    let whole = std::fs::read(log_of(&dir)).unwrap();
    let lines = whole.iter().filter(|&&b| b == b'\n').count();
    let restore = || std::fs::write(log_of(&dir), &whole).unwrap();

    // Deleting the last line.
    let cut = whole[..whole.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap();
    std::fs::write(log_of(&dir), &whole[..=cut]).unwrap();
    assert_named(
        &verify(&dir, None),
        &format!("ends at line {}, short of the head {head}", lines - 1),
    );
    assert_named(
        &verify(&dir, Some(&head)),
        &format!("line {lines} was removed"),
    );
    restore();

    // Editing one byte of the last line.
    let mut edited = whole.clone();
    let at = edited.len() - 10;
    edited[at] = if edited[at] == b'a' { b'b' } else { b'a' };
    std::fs::write(log_of(&dir), &edited).unwrap();
    assert_named(
        &verify(&dir, None),
        &format!("line {lines} was changed: its hash does not match the head {head}"),
    );
    restore();

    // Emptying the file.
    std::fs::write(log_of(&dir), b"").unwrap();
    assert_named(&verify(&dir, None), "is empty, but log ");
    assert_named(&verify(&dir, Some(&head)), "is empty");
    restore();

    // Deleting the file.
    std::fs::remove_file(log_of(&dir)).unwrap();
    assert_named(&verify(&dir, None), "is missing");
    restore();
    assert!(verify(&dir, Some(&head)).status.success());

    // A deleted log that the next agent started afresh stays named.
    std::fs::remove_file(log_of(&dir)).unwrap();
    let mut agent = agent_in(&relay, &dir, &[]);
    agent.code();
    assert!(
        agent.stdout.wait_for("was started afresh", STEP).is_some(),
        "{}",
        agent.stdout.text()
    );
    agent.interrupt();
    agent.wait(STEP).expect("the agent stops");
    assert_eq!(kinds(&dir)[0], "log_start");
    assert_named(&verify(&dir, None), "was started afresh at line 1");
    assert_named(
        &verify(&dir, Some(&head)),
        &format!("short of the head {head}"),
    );
}

#[test]
fn a_second_agent_cannot_write_the_same_log() {
    let relay = RelayProc::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("agent");
    let first = agent_in(&relay, &dir, &[]);
    first.code();
    let out = run_to_end(share_command(&relay, &dir));
    assert!(!out.status.success());
    assert!(!out.stdout.contains("code: "), "{}", out.stdout);
    let err = out.stderr.trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is in use by another agent"), "{err}");
    assert_eq!(kinds(&dir), ["log_start"]);
}

#[test]
fn a_run_under_way_when_the_agent_is_killed_is_recorded_unfinished() {
    let relay = RelayProc::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("agent");
    let mut agent = agent_in(&relay, &dir, &["y", "y"]);
    let code = agent.code();
    let sample = sample_catalog();
    let mut console = console_interactive(&relay, &code, &["--catalog", sample.to_str().unwrap()]);
    console.answer(&["run sleep-test secs=3"]);
    assert!(
        agent.stdout.wait_for("running sleep-test", STEP).is_some(),
        "{}",
        agent.stdout.text()
    );
    agent.child.kill().unwrap();
    agent.wait(STEP).expect("killed");
    drop(console);
    assert_eq!(kinds(&dir).last().map(String::as_str), Some("run_start"));

    let mut again = agent_in(&relay, &dir, &[]);
    again.code();
    assert!(
        again.stdout.text().contains("recorded as unfinished"),
        "{}",
        again.stdout.text()
    );
    again.interrupt();
    again.wait(STEP).expect("the agent stops");
    let records = audit_records(&dir);
    let start = records
        .iter()
        .find(|r| r["event"]["kind"] == "run_start")
        .unwrap();
    let unfinished: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"]["kind"] == "run_unfinished")
        .collect();
    assert_eq!(unfinished.len(), 1, "{records:?}");
    assert_eq!(unfinished[0]["event"]["run"], start["event"]["run"]);
    assert_eq!(unfinished[0]["event"]["script"], "sleep-test");
    assert!(verify(&dir, None).status.success());
}

#[test]
fn a_line_cut_off_by_a_failed_write_is_repaired_on_the_next_start() {
    let relay = RelayProc::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("agent");
    one_session(&relay, &dir);
    let whole = std::fs::read(log_of(&dir)).unwrap();
    let lines = whole.iter().filter(|&&b| b == b'\n').count();
    let mut cut = whole.clone();
    cut.extend_from_slice(b"{\"seq\":99,\"time\":\"20");
    std::fs::write(log_of(&dir), &cut).unwrap();
    assert_named(&verify(&dir, None), "is incomplete");

    let mut agent = agent_in(&relay, &dir, &[]);
    agent.code();
    assert!(
        agent
            .stdout
            .text()
            .contains("was cut off by a failed write"),
        "{}",
        agent.stdout.text()
    );
    agent.interrupt();
    agent.wait(STEP).expect("the agent stops");
    let now = std::fs::read(log_of(&dir)).unwrap();
    assert!(now.starts_with(&whole));
    let records = audit_records(&dir);
    assert_eq!(records[lines]["event"]["kind"], "repaired");
    assert_eq!(records[lines]["event"]["line"], lines as u64 + 1);
    let out = verify(&dir, None);
    assert!(out.status.success(), "{}", out.stderr);
}

/// A small tmpfs, unmounted when the test ends, pass or fail.
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Tmpfs {
    fn mount(bytes: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().canonicalize().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("sprijin-audit-test")
            .arg(&at)
            .status()
            .expect("mount");
        assert!(status.success(), "could not mount a tmpfs (run as root)");
        Tmpfs(at, dir)
    }

    /// Fills the file system to the last byte.
    fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        let _ = file.write_all(&[0u8]);
        let _ = file.sync_all();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_a_clear_error_before_a_code_is_shown() {
    let relay = RelayProc::start(&[]);
    let disk = Tmpfs::mount(1024 * 1024);
    disk.fill();
    let dir = disk.0.join("agent");
    let out = run_to_end(share_command(&relay, &dir));
    assert!(!out.status.success());
    assert!(!out.stdout.contains("code: "), "{}", out.stdout);
    let err = out.stderr.trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no room to write the audit log"), "{err}");
}

#[test]
fn a_run_the_log_could_not_record_is_refused_before_the_person_is_asked() {
    let relay = RelayProc::start(&[]);
    let disk = Tmpfs::mount(1024 * 1024);
    let dir = disk.0.join("agent");
    let sample = sample_catalog();
    // A first session accepts the catalog, so the agent's memory of it is
    // on disk already and the second session needs no room for it.
    let mut first = agent_in(&relay, &dir, &["y"]);
    let code = first.code();
    let out = console(
        &relay,
        &code,
        &["--catalog", sample.to_str().unwrap(), "--exec", "scripts"],
    );
    assert!(out.status.success(), "{}", out.stderr);
    first
        .wait(STEP)
        .expect("the first agent ends with its session");
    let mut agent = agent_in(&relay, &dir, &["y", "y"]);
    let code = agent.code();
    disk.fill();
    let out = console(
        &relay,
        &code,
        &[
            "--catalog",
            sample.to_str().unwrap(),
            "--exec",
            "run echo-test word=hello",
        ],
    );
    assert!(!out.status.success());
    assert!(
        out.stderr
            .contains("refused: nothing was run: no room to write the audit log"),
        "{}",
        out.stderr
    );
    agent.wait(STEP).expect("the agent ends with the session");
    let said = agent.stdout.text();
    assert!(!said.contains("asks to run a repair script"), "{said}");
    let records = audit_records(&dir);
    let refused: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"]["kind"] == "run_refused")
        .collect();
    assert_eq!(refused.len(), 1, "{records:?}");
    assert!(
        refused[0]["event"]["reason"]
            .as_str()
            .unwrap()
            .contains("no room"),
        "{records:?}"
    );
    assert!(!kinds(&dir).iter().any(|k| k == "run_start"));
}
