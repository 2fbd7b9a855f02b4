//! Technician credentials end to end: the organisation issues one with
//! `sprijin-console credential issue`, the technician connects with
//! `--credential`, and the person's agent shows the name as verified only
//! when the credential is signed by a key it trusts, still valid, and proven
//! in this session. Every other case shows the name as not verified, with
//! the reason, on the agent's screen and in its audit log; the relay's word
//! (its token list) is never shown as identity.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sprijin_proto::catalog::{SigningKey, parse_signing_key};
use sprijin_proto::credential;
use sprijin_proto::words::WORDS;
use sprijin_tests::{
    AgentProc, ConsoleOutput, RelayProc, STEP, assert_no_panic, audit_records, bin, console,
    console_command, dev_public_key, events_named, json_lines, run_to_end,
};

/// An organisation key pair made by `catalog keygen`, in its own folder.
struct Organisation {
    dir: tempfile::TempDir,
    key: PathBuf,
    public: PathBuf,
}

impl Organisation {
    fn new() -> Organisation {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("org.key");
        let out = run_to_end(tool(&[
            OsStr::new("catalog"),
            OsStr::new("keygen"),
            key.as_os_str(),
        ]));
        assert!(out.status.success(), "{}", out.stderr);
        let public = dir.path().join("org.key.pub");
        Organisation { dir, key, public }
    }

    /// Runs `credential issue` for `name` and returns the file and the
    /// issuing key's id.
    fn issue(&self, name: &str, file: &str) -> (PathBuf, String) {
        let (path, key_id, _) = self.issue_until(name, file);
        (path, key_id)
    }

    /// Like [`issue`](Self::issue), with the expiry date it printed.
    fn issue_until(&self, name: &str, file: &str) -> (PathBuf, String, String) {
        let out_path = self.dir.path().join(file);
        let out = issue(&[
            OsStr::new("--key"),
            self.key.as_os_str(),
            OsStr::new("--name"),
            OsStr::new(name),
            OsStr::new("--out"),
            out_path.as_os_str(),
        ]);
        assert!(out.status.success(), "{}", out.stderr);
        let key_id = out
            .stdout
            .split_whitespace()
            .find(|w| w.starts_with("ed25519:"))
            .expect("the key id is printed")
            .trim_end_matches([',', ')'])
            .to_string();
        let until = out
            .stdout
            .split("valid until ")
            .nth(1)
            .and_then(|rest| rest.get(..10))
            .expect("the expiry is printed")
            .to_string();
        (out_path, key_id, until)
    }

    fn public_arg(&self) -> &str {
        self.public.to_str().unwrap()
    }
}

fn tool(args: &[&OsStr]) -> Command {
    let mut cmd = Command::new(bin("sprijin-console"));
    cmd.args(args);
    cmd
}

fn issue(args: &[&OsStr]) -> ConsoleOutput {
    let mut all = vec![OsStr::new("credential"), OsStr::new("issue")];
    all.extend_from_slice(args);
    run_to_end(tool(&all))
}

/// Runs one session: the agent trusts `trusted`, the person says yes, the
/// console gives `--name Mallory` plus `extra` and quits at once. Returns
/// what the agent printed, its audit log's session start and the console's
/// output.
fn session(relay: &RelayProc, trusted: &[&str], extra: &[&str]) -> (String, Value, ConsoleOutput) {
    let mut agent_args = Vec::new();
    for key in trusted {
        agent_args.extend(["--trusted-key", key]);
    }
    let mut agent = AgentProc::start(relay, &["y"], &agent_args);
    let mut args = vec!["--name", "Mallory", "--json", "--exec", "quit"];
    args.extend_from_slice(extra);
    let out = console(relay, &agent.code, &args);
    assert!(
        out.status.success(),
        "console failed: {}\n{}",
        out.stdout,
        out.stderr
    );
    agent
        .proc
        .wait(STEP)
        .unwrap_or_else(|| panic!("the agent did not end: {}", agent.proc.stdout.text()));
    let shown = agent.proc.stdout.text();
    assert_no_panic(&agent.proc.stderr.text());
    assert_no_panic(&out.stderr);
    let start = audit_records(agent.data_dir.path())
        .into_iter()
        .map(|r| r["event"].clone())
        .find(|e| e["kind"] == "session_start")
        .expect("the audit log records the session start");
    (shown, start, out)
}

/// The console's `identity` event.
fn identity_event(out: &ConsoleOutput) -> Value {
    let events = json_lines(&out.stdout);
    let found = events_named(&events, "identity");
    assert_eq!(found.len(), 1, "{}", out.stdout);
    found[0].clone()
}

fn connected_line(shown: &str) -> &str {
    shown
        .lines()
        .find(|l| l.starts_with("connected: technician "))
        .unwrap_or_else(|| panic!("no connected line: {shown}"))
}

#[test]
fn a_valid_credential_shows_the_name_as_verified_by_the_organisation() {
    let relay = RelayProc::start(&[]);
    let org = Organisation::new();
    let (file, key_id, until) = org.issue_until("Ana Pop", "ana.cred");
    let (shown, start, out) = session(
        &relay,
        &[org.public_arg()],
        &["--credential", file.to_str().unwrap()],
    );

    let expected =
        format!("Ana Pop — verified by your organisation (key {key_id}), valid until {until}");
    assert_eq!(
        connected_line(&shown),
        format!("connected: technician {expected}")
    );
    assert!(!shown.contains("Mallory"), "{shown}");
    assert_eq!(start["technician"], "Ana Pop");
    assert_eq!(start["verified"], true);
    assert_eq!(start["credential_key"], key_id.as_str());
    assert!(start.get("not_verified").is_none(), "{start}");

    let identity = identity_event(&out);
    assert_eq!(identity["verified"], true);
    assert_eq!(identity["shown"], expected.as_str());
    assert_eq!(identity["reason"], Value::Null);
}

#[test]
fn the_consent_question_names_the_verified_technician() {
    let relay = RelayProc::start(&[]);
    let org = Organisation::new();
    let (file, _) = org.issue("Ana Pop", "ana.cred");
    let mut agent = AgentProc::start(&relay, &["y"], &["--trusted-key", org.public_arg()]);
    let out = console(
        &relay,
        &agent.code,
        &["--credential", file.to_str().unwrap(), "--exec", "quit"],
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("the agent accepted your credential; the person sees: Ana Pop — verified by your organisation"),
        "{}",
        out.stdout
    );
    agent.proc.wait(STEP).expect("the agent ends");
    let question = audit_records(agent.data_dir.path())
        .into_iter()
        .map(|r| r["event"].clone())
        .find(|e| e["kind"] == "consent")
        .expect("the consent question is recorded");
    assert!(
        question["question"]
            .as_str()
            .unwrap()
            .starts_with("technician Ana Pop — verified by your organisation (key ed25519:"),
        "{question}"
    );
}

#[test]
fn an_expired_credential_is_shown_as_not_verified() {
    let relay = RelayProc::start(&[]);
    let org = Organisation::new();
    // Issued 40 days ago for 30 days: the organisation's clock, moved back.
    let organisation = parse_signing_key(&std::fs::read_to_string(&org.key).unwrap()).unwrap();
    let technician = SigningKey::from_bytes(&[42u8; 32]);
    let issued = now() - 40 * 24 * 3600;
    let old = credential::issue(
        &organisation,
        "Ana Pop",
        &technician.verifying_key(),
        issued,
        30,
    )
    .unwrap();
    let file = org.dir.path().join("old.cred");
    std::fs::write(&file, credential::format_file(&old, &technician)).unwrap();

    let (shown, start, out) = session(
        &relay,
        &[org.public_arg()],
        &["--credential", file.to_str().unwrap()],
    );
    let reason = format!("the credential expired on {}", old.valid_until());
    assert_eq!(
        connected_line(&shown),
        format!("connected: technician Ana Pop (name not verified: {reason})")
    );
    assert_not_verified(&start, &reason);
    let identity = identity_event(&out);
    assert_eq!(identity["verified"], false);
    assert_eq!(identity["reason"], reason.as_str());
}

#[test]
fn a_credential_signed_by_an_untrusted_key_is_shown_as_not_verified() {
    let relay = RelayProc::start(&[]);
    let org = Organisation::new();
    let (file, key_id) = org.issue("Ana Pop", "ana.cred");
    // The agent trusts only the sample catalog's key, not this organisation's.
    let dev = dev_public_key();
    let (shown, start, out) = session(
        &relay,
        &[dev.to_str().unwrap()],
        &["--credential", file.to_str().unwrap()],
    );
    let reason =
        format!("the credential was issued by key {key_id}, which this machine does not trust");
    assert_eq!(
        connected_line(&shown),
        format!("connected: technician Ana Pop (name not verified: {reason})")
    );
    assert_not_verified(&start, &reason);
    assert_eq!(identity_event(&out)["verified"], false);
}

#[test]
fn a_credential_file_with_another_private_key_fails_its_proof() {
    let relay = RelayProc::start(&[]);
    let org = Organisation::new();
    let (ana, _) = org.issue("Ana Pop", "ana.cred");
    let (bo, _) = org.issue("Bo Ilie", "bo.cred");
    // Ana's credential, which anyone may see, with Bo's private key: no
    // proof Bo makes can be Ana's.
    let secret_line = |path: &Path| {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .find(|l| l.starts_with("secret_key"))
            .unwrap()
            .to_string()
    };
    let mixed = std::fs::read_to_string(&ana)
        .unwrap()
        .replace(&secret_line(&ana), &secret_line(&bo));
    let file = org.dir.path().join("mixed.cred");
    std::fs::write(&file, mixed).unwrap();

    let (shown, start, out) = session(
        &relay,
        &[org.public_arg()],
        &["--credential", file.to_str().unwrap()],
    );
    let line = connected_line(&shown);
    assert!(
        line.starts_with("connected: technician Ana Pop (name not verified: bad proof"),
        "{line}"
    );
    assert!(!line.contains("verified by your organisation"), "{line}");
    assert_eq!(start["verified"], false);
    assert!(
        start["not_verified"]
            .as_str()
            .unwrap()
            .starts_with("bad proof"),
        "{start}"
    );
    assert!(
        out.stderr.contains(
            "warning: the private key in the credential file is not the one its credential names"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(identity_event(&out)["verified"], false);
}

#[test]
fn without_a_credential_the_name_is_shown_as_not_verified() {
    let relay = RelayProc::start(&[]);
    let org = Organisation::new();
    let (shown, start, out) = session(&relay, &[org.public_arg()], &[]);
    assert_eq!(
        connected_line(&shown),
        "connected: technician Mallory (name not verified: no credential)"
    );
    assert_not_verified(&start, "no credential");
    let identity = identity_event(&out);
    assert_eq!(identity["verified"], false);
    assert_eq!(identity["reason"], "no credential");
    assert_eq!(
        identity["shown"],
        "Mallory (name not verified: no credential)"
    );
}

#[test]
fn the_relays_token_list_alone_does_not_verify_the_name() {
    const TOKEN: &str = "3f9c1e7a5b2d4c6e8a0b";
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("console-tokens");
    std::fs::write(&tokens, format!("Ana Pop {TOKEN}\n")).unwrap();
    let relay = RelayProc::start(&["--console-tokens", tokens.to_str().unwrap()]);
    let org = Organisation::new();
    let (shown, start, _) = session(&relay, &[org.public_arg()], &["--token", TOKEN]);
    assert_eq!(
        connected_line(&shown),
        "connected: technician Ana Pop (name not verified: no credential)"
    );
    assert!(!shown.contains("vouched"), "{shown}");
    // The relay's access check is recorded for what it is, apart from identity.
    assert_eq!(start["vouched"], true);
    assert_not_verified(&start, "no credential");
}

#[test]
fn a_name_the_relay_passes_on_is_cleaned_before_it_is_shown() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let mut cmd = console_command(
        &relay.addr,
        &relay.fingerprint,
        &agent.code,
        &["--name", "Ana\x1b[2J\u{202E}Pop", "--exec", "quit"],
    );
    cmd.arg("--data-dir")
        .arg(agent.data_dir.path().join("console"));
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}", out.stderr);
    agent.proc.wait(STEP).expect("the agent ends");
    let shown = agent.proc.stdout.text();
    assert!(!shown.contains('\x1b'), "{shown:?}");
    assert!(!shown.contains('\u{202E}'), "{shown:?}");
    let line = connected_line(&shown);
    assert!(line.starts_with("connected: technician Ana"), "{line}");
    assert!(
        line.ends_with("�Pop (name not verified: no credential)"),
        "{line}"
    );
}

#[test]
fn credential_issue_refuses_bad_input_with_one_line() {
    let org = Organisation::new();
    let out_path = org.dir.path().join("x.cred");
    let base = |name: &str, days: Option<&str>, key: &Path| {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("--key"),
            key.as_os_str(),
            OsStr::new("--name"),
            OsStr::new(name),
            OsStr::new("--out"),
            out_path.as_os_str(),
        ];
        if let Some(days) = days {
            args.extend([OsStr::new("--valid-days"), OsStr::new(days)]);
        }
        issue(&args)
    };
    let missing = org.dir.path().join("missing.key");
    let cases: [(ConsoleOutput, &str); 7] = [
        (
            base("Ana", Some("0"), &org.key),
            "--valid-days must be a whole number of days from 1 to 3650",
        ),
        (
            base("Ana", Some("ten"), &org.key),
            "--valid-days must be a whole number",
        ),
        (
            base("Ana", Some("3651"), &org.key),
            "--valid-days must be a whole number",
        ),
        (base("", None, &org.key), "the technician's name is empty"),
        (
            base("Ana\x1b[31m", None, &org.key),
            "contains control characters",
        ),
        (
            base("Ana", None, &missing),
            "could not read organisation key file",
        ),
        (base("Ana", None, &org.public), "it is a public key file"),
    ];
    for (out, expected) in cases {
        assert!(!out.status.success(), "{expected}: {}", out.stdout);
        assert_no_panic(&out.stderr);
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "{expected}: {}", out.stderr);
        assert!(lines[0].starts_with("error: "), "{}", out.stderr);
        assert!(lines[0].contains(expected), "{expected}: {}", out.stderr);
        assert!(!out_path.exists(), "{expected}: a file was left behind");
    }

    // An existing file is never overwritten.
    let (file, _) = org.issue("Ana Pop", "ana.cred");
    let before = std::fs::read(&file).unwrap();
    let out = issue(&[
        OsStr::new("--key"),
        org.key.as_os_str(),
        OsStr::new("--name"),
        OsStr::new("Bo"),
        OsStr::new("--out"),
        file.as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), before);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the credential file holds a private key"
    );
}

#[test]
fn a_broken_credential_file_stops_the_console_before_it_connects() {
    let org = Organisation::new();
    let file = org.dir.path().join("broken.cred");
    std::fs::write(&file, "name = \"Ana\"\n").unwrap();
    let cmd = console_command(
        "127.0.0.1:9",
        &format!("sha256:{}", "00".repeat(32)),
        &format!("7-{}-{}", WORDS[0], WORDS[1]),
        &["--credential", file.to_str().unwrap(), "--exec", "quit"],
    );
    let out = run_to_end(cmd);
    assert!(!out.status.success());
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].contains("credential file") && lines[0].contains("credential issue"),
        "{}",
        out.stderr
    );
}

fn assert_not_verified(start: &Value, reason: &str) {
    assert_eq!(start["verified"], false, "{start}");
    assert_eq!(start["not_verified"], reason, "{start}");
    assert!(start.get("credential_key").is_none(), "{start}");
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}
