//! Talking to the person and collecting a file, end to end: a real relay,
//! agent and console on loopback. The agent's standard input is not a
//! terminal here, so each question takes the next line typed on it.
//!
//! A message shows on the person's screen, cleaned; a question comes back
//! with the typed answer, or with why there is none (an empty line, input
//! that ended, a timeout); a file comes whole with its SHA-256 only when
//! the person agrees, nothing on the disk is touched before they do, and a
//! file not sent is refused to the technician in the same words whatever
//! the reason, while the person's screen and the audit log say why. All of
//! it is in the audit log and in the report.

use std::process::ExitStatus;

use serde_json::Value;
use sprijin_tests::tmux::{Tmux, have_tmux};
use sprijin_tests::*;

/// Waits for the agent to finish after the session, successfully, and
/// returns what the person saw.
fn agent_finishes(agent: &mut AgentProc) -> String {
    let status = agent
        .proc
        .wait(STEP)
        .expect("the agent ends with the session");
    let said = agent.proc.stdout.text();
    assert!(
        status.success(),
        "agent failed: {said}\n{}",
        agent.proc.stderr.text()
    );
    assert_no_panic(&agent.proc.stderr.text());
    said
}

/// The audit records of one kind.
fn records_of(agent: &AgentProc, kind: &str) -> Vec<Value> {
    audit_records(agent.data_dir.path())
        .into_iter()
        .filter(|r| r["event"]["kind"] == kind)
        .map(|r| r["event"].clone())
        .collect()
}

/// Runs the console with `--exec` for each command, in `--json` mode.
fn exec_json(
    relay: &RelayProc,
    agent: &AgentProc,
    commands: &[String],
) -> (ExitStatus, Vec<Value>, String) {
    let mut args: Vec<&str> = vec!["--json"];
    for c in commands {
        args.push("--exec");
        args.push(c);
    }
    let out = console(relay, &agent.code, &args);
    assert_no_panic(&out.stderr);
    (out.status, json_lines(&out.stdout), out.stderr)
}

fn error_messages(events: &[Value]) -> Vec<String> {
    events_named(events, "error")
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_message_shows_on_the_agent_and_is_in_the_audit_log_and_report() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.md");
    let (status, events, stderr) = exec_json(
        &relay,
        &agent,
        &[
            "say I'm looking at the printer queue now \x1b[2J".to_string(),
            format!("report {}", report.display()),
        ],
    );
    assert!(status.success(), "{events:?}\n{stderr}");
    let said = events_named(&events, "said");
    assert_eq!(said.len(), 1, "{events:?}");
    assert_eq!(
        said[0]["text"],
        "I'm looking at the printer queue now \x1b[2J"
    );

    let screen = agent_finishes(&mut agent);
    assert!(
        screen.contains(
            "message from the technician: I'm looking at the printer queue now \u{FFFD}[2J"
        ),
        "{screen}"
    );
    assert!(!screen.contains('\x1b'), "{screen:?}");
    let messages = records_of(&agent, "message");
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0]["text"],
        "I'm looking at the printer queue now \u{FFFD}[2J"
    );
    assert!(audit_verify(agent.data_dir.path()).status.success());

    let md = std::fs::read_to_string(&report).unwrap();
    let conversation = md
        .split("## Conversation")
        .nth(1)
        .expect("a conversation section");
    assert!(
        conversation.contains("said: I'm looking at the printer queue now"),
        "{md}"
    );
    assert!(!md.contains('\x1b'), "{md:?}");
}

#[test]
fn a_question_returns_the_typed_answer_in_order_with_the_runs() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y", "  since Monday, after the update "], &[]);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.md");
    let (status, events, stderr) = exec_json(
        &relay,
        &agent,
        &[
            "say hello".to_string(),
            "ask When did it start?".to_string(),
            format!("report {}", report.display()),
        ],
    );
    assert!(status.success(), "{events:?}\n{stderr}");
    let answers = events_named(&events, "answer");
    assert_eq!(answers.len(), 1, "{events:?}");
    assert_eq!(answers[0]["answer"], "since Monday, after the update");

    let screen = agent_finishes(&mut agent);
    assert!(
        screen.contains("the technician asks: When did it start?"),
        "{screen}"
    );
    let questions = records_of(&agent, "question");
    assert_eq!(questions.len(), 1);
    assert_eq!(questions[0]["text"], "When did it start?");
    assert_eq!(questions[0]["answer"], "since Monday, after the update");
    assert!(questions[0].get("why").is_none(), "{}", questions[0]);
    // The message comes before the question, in the log as in the report.
    let kinds = audit_kinds(agent.data_dir.path());
    let message_at = kinds.iter().position(|k| k == "message").unwrap();
    let question_at = kinds.iter().position(|k| k == "question").unwrap();
    assert!(message_at < question_at, "{kinds:?}");

    let md = std::fs::read_to_string(&report).unwrap();
    let said_at = md.find("said: hello").expect("the message in the report");
    let asked_at = md.find("asked: When did it start?").expect("the question");
    assert!(said_at < asked_at, "{md}");
    assert!(
        md.contains("answer: since Monday, after the update"),
        "{md}"
    );
}

/// Asks one question the person does not answer and returns the console's
/// error and the audit record.
fn unanswered(answers: &[&str], close_input: bool, extra: &[&str]) -> (String, Value, String) {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, answers, extra);
    if close_input {
        agent.proc.close_stdin();
    }
    let (status, events, _) = exec_json(&relay, &agent, &["ask Is the printer on?".to_string()]);
    assert!(
        !status.success(),
        "an unanswered question is an error: {events:?}"
    );
    assert!(events_named(&events, "answer").is_empty(), "{events:?}");
    let errors = error_messages(&events);
    assert_eq!(errors.len(), 1, "{events:?}");
    let screen = agent_finishes(&mut agent);
    let questions = records_of(&agent, "question");
    assert_eq!(questions.len(), 1);
    assert!(questions[0].get("answer").is_none(), "{}", questions[0]);
    (errors[0].clone(), questions[0].clone(), screen)
}

#[test]
fn an_empty_answer_is_a_refusal_to_answer() {
    let (error, record, screen) = unanswered(&["y", ""], false, &[]);
    assert!(error.contains("the person chose not to answer"), "{error}");
    assert!(
        record["why"]
            .as_str()
            .unwrap()
            .contains("chose not to answer"),
        "{record}"
    );
    assert!(screen.contains("you chose not to answer"), "{screen}");
}

#[test]
fn input_that_ends_is_a_refusal_to_answer() {
    let (error, record, screen) = unanswered(&["y"], true, &[]);
    assert!(error.contains("input is closed"), "{error}");
    assert!(
        record["why"].as_str().unwrap().contains("input is closed"),
        "{record}"
    );
    assert!(screen.contains("not answered (input closed)"), "{screen}");
}

#[test]
fn an_unanswered_question_times_out() {
    let (error, record, screen) = unanswered(&["y"], false, &["--consent-timeout", "1"]);
    assert!(error.contains("did not answer within 1 s"), "{error}");
    assert!(
        record["why"].as_str().unwrap().contains("within 1 s"),
        "{record}"
    );
    assert!(screen.contains("no answer within 1 s"), "{screen}");
}

/// A file of `len` bytes that is not the same in any two places.
fn varied(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn a_fetched_file_arrives_whole_with_its_digest() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y", "y"], &[]);
    let remote = tempfile::tempdir().unwrap();
    let content = varied(1_000_003);
    let path = remote.path().join("app.log");
    std::fs::write(&path, &content).unwrap();
    let here = tempfile::tempdir().unwrap();
    let report = here.path().join("report.md");
    // Asked with an extra separator and a `.`, the person sees the plain path.
    let asked = format!("{}/.//app.log", remote.path().display());

    // With no local name, the file keeps its base name in the current folder.
    let mut cmd = console_command(
        &relay.addr,
        &relay.fingerprint,
        &agent.code,
        &[
            "--json",
            "--exec",
            &format!("fetch {asked}"),
            "--exec",
            &format!("report {}", report.display()),
        ],
    );
    cmd.current_dir(here.path());
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let events = json_lines(&out.stdout);
    let kept = here.path().join("app.log");
    assert_eq!(std::fs::read(&kept).unwrap(), content);
    assert!(!here.path().join("app.log.part").exists());
    let digest = sha256_hex(&content);
    let fetched = events_named(&events, "fetched");
    assert_eq!(fetched.len(), 1, "{events:?}");
    assert_eq!(fetched[0]["sha256"], digest.as_str());
    assert_eq!(fetched[0]["size"], content.len() as u64);

    let screen = agent_finishes(&mut agent);
    assert!(
        screen.contains(&format!(
            "the technician asks for a copy of this file:\n  {}\n",
            path.display()
        )),
        "{screen}"
    );
    assert!(!screen.contains(&asked), "{screen}");
    assert!(
        screen.contains(&format!("{} bytes", content.len())),
        "{screen}"
    );
    let sent = records_of(&agent, "file_sent");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["path"], path.display().to_string());
    assert_eq!(sent[0]["size"], content.len() as u64);
    assert_eq!(sent[0]["sha256"], digest.as_str());
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains(&digest), "{md}");
    assert!(md.contains("kept as `app.log`"), "{md}");
}

/// What the technician is told of every file not sent, whatever the reason.
const NOT_SENT: &str =
    "refused: the file was not sent; the person's screen and the agent's audit log say why";

/// Fetches each path into a fresh folder in one session, with these
/// answers and agent flags. Every fetch must be refused; returns the
/// console's errors, the audit log's reasons, what the person saw and the
/// agent.
fn refused_fetches(
    paths: &[&str],
    answers: &[&str],
    extra: &[&str],
) -> (Vec<String>, Vec<String>, String, AgentProc) {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, answers, extra);
    let here = tempfile::tempdir().unwrap();
    let commands: Vec<String> = paths
        .iter()
        .enumerate()
        .map(|(i, path)| format!("fetch {path} {}", here.path().join(i.to_string()).display()))
        .collect();
    let (status, events, _) = exec_json(&relay, &agent, &commands);
    assert!(!status.success(), "a refused fetch is an error: {events:?}");
    assert!(events_named(&events, "fetched").is_empty(), "{events:?}");
    let errors = error_messages(&events);
    assert_eq!(errors.len(), paths.len(), "{events:?}");
    assert_eq!(
        std::fs::read_dir(here.path()).unwrap().count(),
        0,
        "nothing is kept"
    );
    let screen = agent_finishes(&mut agent);
    assert!(records_of(&agent, "file_sent").is_empty());
    let reasons: Vec<String> = records_of(&agent, "file_refused")
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        reasons.len(),
        paths.len(),
        "{:?}",
        audit_kinds(agent.data_dir.path())
    );
    assert!(audit_verify(agent.data_dir.path()).status.success());
    (errors, reasons, screen, agent)
}

/// A folder on "the person's machine": `real/notes.txt`, `real/big.bin` of
/// 2000 bytes, and `linked`, a link to `real`.
fn remote_files() -> tempfile::TempDir {
    let remote = tempfile::tempdir().unwrap();
    let real = remote.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("notes.txt"), "secret").unwrap();
    std::fs::write(real.join("big.bin"), vec![0u8; 2000]).unwrap();
    std::os::unix::fs::symlink(&real, remote.path().join("linked")).unwrap();
    remote
}

/// A file this process may not read: one with no permissions, or, when the
/// tests run as root (who may read it anyway), a write-only kernel setting.
fn unreadable(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let locked = dir.join("locked.txt");
    std::fs::write(&locked, "private").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let denied = |p: &std::path::Path| {
        std::fs::File::open(p).is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
    };
    if denied(&locked) {
        return locked;
    }
    let setting = std::path::PathBuf::from("/proc/sys/vm/compact_memory");
    assert!(
        denied(&setting),
        "no file on this machine refuses to be read by this process"
    );
    setting
}

#[test]
fn every_refused_fetch_tells_the_technician_the_same_words_and_the_audit_log_why() {
    let remote = remote_files();
    let root = remote.path().display().to_string();
    let denied = unreadable(remote.path());
    let paths = [
        format!("{root}/linked/notes.txt"),
        format!("{root}/real/../real/notes.txt"),
        format!("{root}/real/missing.txt"),
        denied.display().to_string(),
        format!("{root}/real/big.bin"),
        format!("{root}/real/notes.txt"),
        "real/notes.txt".to_string(),
    ];
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    // Yes to all but the last question; `..` and the relative path are
    // never asked about.
    let (errors, reasons, screen, agent) = refused_fetches(
        &paths,
        &["y", "y", "y", "y", "y", "n"],
        &["--fetch-cap", "1000"],
    );
    for error in &errors {
        assert_eq!(error, NOT_SENT, "{errors:#?}");
    }
    let expected = [
        "has a link on its way",
        "goes up a folder with `..`",
        "does not exist",
        "permission denied",
        "over this machine's limit",
        "the person declined to send",
        "is not a full path",
    ];
    for (reason, expected) in reasons.iter().zip(expected) {
        assert!(reason.contains(expected), "{reason:?} lacks {expected:?}");
    }
    // Each real reason is on the person's screen.
    for reason in &reasons {
        assert!(
            screen.contains(&format!("the file was not sent: {reason}")),
            "{reason}\n{screen}"
        );
    }
    // The person was asked about each plain full path, `..` never.
    assert_eq!(screen.matches("asks for a copy of this file").count(), 5);
    let consents = records_of(&agent, "consent");
    assert_eq!(consents.last().unwrap()["answer"], false);
}

#[test]
fn nothing_is_opened_before_the_person_says_yes() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let remote = tempfile::tempdir().unwrap();
    let fifo = remote.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // A writer waits on the FIFO: its open returns once anyone opens the
    // FIFO to read, which tells when the agent touched it.
    let (opened_tx, opened) = std::sync::mpsc::channel();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let end = std::fs::OpenOptions::new().write(true).open(&fifo);
            let _ = opened_tx.send(());
            drop(end);
        })
    };
    let here = tempfile::tempdir().unwrap();
    let cmd = console_command(
        &relay.addr,
        &relay.fingerprint,
        &agent.code,
        &[
            "--json",
            "--exec",
            &format!(
                "fetch {} {}",
                fifo.display(),
                here.path().join("got").display()
            ),
        ],
    );
    let mut console = Proc::spawn(cmd);
    console.close_stdin();
    let asked = agent
        .proc
        .stdout
        .wait_for("asks for a copy of this file", STEP);
    assert!(
        asked.is_some(),
        "the person was not asked: {}",
        agent.proc.stdout.text()
    );
    assert!(
        opened.try_recv().is_err(),
        "the agent opened the file before the person answered"
    );
    agent.proc.answer(&["y"]);
    // After the yes it is opened, found to be no regular file and refused.
    assert!(opened.recv_timeout(STEP).is_ok(), "the yes opened nothing");
    writer.join().unwrap();
    let status = console.wait(STEP * 2).expect("the console ends");
    assert!(!status.success());
    let events = json_lines(&console.stdout.text());
    assert_eq!(error_messages(&events), [NOT_SENT], "{events:?}");
    agent_finishes(&mut agent);
    let refused = records_of(&agent, "file_refused");
    assert_eq!(refused.len(), 1);
    let reason = refused[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("is not a regular file"), "{reason}");
    assert_eq!(refused[0]["sent_bytes"], 0);
}

#[test]
fn a_device_is_refused_after_the_yes() {
    let (errors, reasons, _, _) = refused_fetches(&["/dev/zero"], &["y", "y"], &[]);
    assert_eq!(errors, [NOT_SENT]);
    assert!(reasons[0].contains("is not a regular file"), "{reasons:?}");
}

#[test]
fn an_existing_local_file_is_never_overwritten() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y", "y"], &[]);
    let remote = tempfile::tempdir().unwrap();
    let path = remote.path().join("app.log");
    std::fs::write(&path, "new").unwrap();
    let here = tempfile::tempdir().unwrap();
    let local = here.path().join("mine.log");
    std::fs::write(&local, "mine").unwrap();
    let (status, events, _) = exec_json(
        &relay,
        &agent,
        &[format!("fetch {} {}", path.display(), local.display())],
    );
    assert!(!status.success(), "{events:?}");
    let errors = error_messages(&events);
    assert!(errors[0].contains("already exists"), "{errors:?}");
    assert_eq!(std::fs::read_to_string(&local).unwrap(), "mine");
    let screen = agent_finishes(&mut agent);
    // The person was never asked.
    assert!(!screen.contains("asks for a copy"), "{screen}");
    assert!(records_of(&agent, "file_sent").is_empty());
}

#[test]
fn a_file_that_changes_while_read_is_not_kept() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y", "y"], &[]);
    let remote = tempfile::tempdir().unwrap();
    let path = remote.path().join("busy.log");
    std::fs::write(&path, varied(4_000_000)).unwrap();
    // A writer keeps appending until the test ends, as a busy log does.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::io::Write::write_all(&mut f, b"another line\n");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let here = tempfile::tempdir().unwrap();
    let local = here.path().join("busy.log");
    let (status, events, _) = exec_json(
        &relay,
        &agent,
        &[format!("fetch {} {}", path.display(), local.display())],
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(!status.success(), "{events:?}");
    let errors = error_messages(&events);
    assert_eq!(errors, [NOT_SENT]);
    assert_eq!(std::fs::read_dir(here.path()).unwrap().count(), 0);
    let screen = agent_finishes(&mut agent);
    assert!(screen.contains("changed while it was read"), "{screen}");
    let refused = records_of(&agent, "file_refused");
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("changed while it was read"),
        "{refused:?}"
    );
    // What had gone out is on the record: every byte the agent sent, and
    // their digest.
    let sent_bytes = refused[0]["sent_bytes"].as_u64().unwrap_or_default();
    assert!(sent_bytes > 3_000_000, "{refused:?}");
    let sent_sha256 = refused[0]["sent_sha256"].as_str().unwrap_or_default();
    assert_eq!(sent_sha256.len(), 64, "{refused:?}");
    assert!(records_of(&agent, "file_sent").is_empty());
}

/// The full-screen console's command line for this session.
fn full_screen(relay: &RelayProc, agent: &AgentProc, logs: &std::path::Path) -> String {
    format!(
        "{} connect {} --relay {} --relay-fingerprint {} --name Ana --data-dir {}; echo EXITED-$?; sleep 60",
        bin("sprijin-console").display(),
        agent.code,
        relay.addr,
        relay.fingerprint,
        logs.display()
    )
}

#[test]
fn the_full_screen_console_sends_messages_and_shows_answers() {
    if !have_tmux() {
        return;
    }
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y", "the blue one"], &[]);
    let logs = tempfile::tempdir().unwrap();
    let command = full_screen(&relay, &agent, logs.path());
    let tmux = Tmux::start("talk", (100, 30), &command);
    tmux.wait_for("1 Overview", STEP);
    tmux.wait_for("6 Talk", STEP);

    tmux.keys(&["m"]);
    tmux.wait_for("Message for the person", STEP);
    tmux.keys(&["-l", "I am checking the spooler"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("shown", STEP);
    assert!(
        agent
            .proc
            .stdout
            .wait_for(
                "message from the technician: I am checking the spooler",
                STEP
            )
            .is_some()
    );

    tmux.keys(&["a"]);
    tmux.wait_for("Question for the person", STEP);
    tmux.keys(&["-l", "Which printer?"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("answer: the blue one", STEP);

    tmux.keys(&["q"]);
    tmux.wait_for("EXITED-0", STEP);
    agent_finishes(&mut agent);
    let questions = records_of(&agent, "question");
    assert_eq!(questions.len(), 1);
    assert_eq!(questions[0]["text"], "Which printer?");
    assert_eq!(questions[0]["answer"], "the blue one");
    assert_eq!(records_of(&agent, "message").len(), 1);
}

#[test]
fn the_full_screen_console_fetches_a_file_and_shows_it_kept() {
    if !have_tmux() {
        return;
    }
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y", "y", "y"], &[]);
    let remote = tempfile::tempdir().unwrap();
    let content = varied(700_001);
    let path = remote.path().join("app.log");
    std::fs::write(&path, &content).unwrap();
    let here = tempfile::tempdir().unwrap();
    let local = here.path().join("got.log");
    let logs = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(
        "fetch",
        (100, 30),
        &full_screen(&relay, &agent, logs.path()),
    );
    tmux.wait_for("6 Talk", STEP);

    tmux.keys(&["f"]);
    tmux.wait_for("Fetch a file", STEP);
    tmux.keys(&["-l", &format!("{} {}", path.display(), local.display())]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("kept as", STEP);
    let digest = sha256_hex(&content);
    assert!(screen.contains("f fetch a file"), "{screen}");
    assert!(
        screen.contains(&format!("you asked for the file {}", path.display())),
        "{screen}"
    );
    assert!(
        screen.contains(&format!(
            "kept as {} ({} bytes)",
            local.display(),
            content.len()
        )),
        "{screen}"
    );
    assert!(screen.contains(&format!("SHA-256 {digest}")), "{screen}");
    assert_eq!(std::fs::read(&local).unwrap(), content);
    assert!(!here.path().join("got.log.part").exists());

    // A file that is not there is refused, and nothing is kept.
    tmux.keys(&["f"]);
    tmux.wait_for("Fetch a file", STEP);
    let missing = remote.path().join("missing.log");
    let not_kept = here.path().join("missing.log");
    tmux.keys(&[
        "-l",
        &format!("{} {}", missing.display(), not_kept.display()),
    ]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("not kept: refused:", STEP);
    assert!(!not_kept.exists());
    assert_eq!(std::fs::read_dir(here.path()).unwrap().count(), 1);

    tmux.keys(&["q"]);
    tmux.wait_for("EXITED-0", STEP);
    let said = agent_finishes(&mut agent);
    assert!(
        said.contains("the technician asks for a copy of this file"),
        "{said}"
    );
    let sent = records_of(&agent, "file_sent");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["path"], path.display().to_string());
    assert_eq!(sent[0]["size"], content.len() as u64);
    assert_eq!(sent[0]["sha256"], digest.as_str());
    assert_eq!(records_of(&agent, "file_refused").len(), 1);
}
