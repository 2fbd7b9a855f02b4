//! Repair scripts end to end: a real relay, agent and console on loopback.
//!
//! Only a catalog signed by a key the agent trusts can run; every run needs
//! the person's yes; refusals say why and leave nothing running; output
//! arrives whole and in order up to the cap; timeouts and cancels stop the
//! whole process group while the session goes on; and the audit log holds
//! every decision in a chain that detects edits.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use sprijin_console::catalog_tool;
use sprijin_proto::catalog::{self, SignedCatalog};
use sprijin_proto::message::script::RunStatus;
use sprijin_proto::message::session::{AgentMsg, Request};
use sprijin_tests::*;

/// Prints the numbers 1 to n, one a line: plenty of output in many chunks.
const COUNT: &str = r#"
id = "count"
title = "Count lines"
description = "Prints the numbers from 1 to n, one a line."
risk = "low"
platforms = ["linux"]
timeout_secs = 60
program = "seq"
args = ["1", "{n}"]

[params.n]
pattern = '^[0-9]{1,6}$'
"#;

/// Starts a background child, writes its pid to a file and waits for it:
/// stopped only by its timeout of 2 s.
const HANG: &str = r#"
id = "hang"
title = "Hang past the timeout"
description = "Starts a child that sleeps for a minute and waits for it."
risk = "low"
platforms = ["linux"]
timeout_secs = 2
program = "sh"
args = ["-c", 'sleep 60 & echo $! > "$1"; wait', "sh", "{pidfile}"]

[params.pidfile]
pattern = '^/[A-Za-z0-9._/-]{1,200}$'
"#;

/// Prints 20 MB of zero bytes.
const FLOOD: &str = r#"
id = "flood"
title = "Print far too much"
description = "Prints twenty million zero bytes."
risk = "low"
platforms = ["linux"]
timeout_secs = 60
program = "head"
args = ["-c", "20000000", "/dev/zero"]
"#;

const FLOOD_BYTES: u64 = 20_000_000;

/// The same as [`HANG`] with a long timeout, to be cancelled.
fn hang_long() -> String {
    HANG.replace("id = \"hang\"", "id = \"hang-long\"")
        .replace("timeout_secs = 2", "timeout_secs = 600")
}

fn key_id_of(public: &Path) -> String {
    catalog::key_id(&catalog_tool::read_public_key(public).expect("a public key"))
}

/// The agent's audit log holds no run that started, and the agent never
/// asked the person about one.
fn assert_nothing_ran(agent: &AgentProc) {
    let kinds = audit_kinds(agent.data_dir.path());
    assert!(
        !kinds.iter().any(|k| k == "run_start" || k == "run_end"),
        "a run started: {kinds:?}"
    );
    let said = agent.proc.stdout.text();
    assert!(!said.contains(RUN_QUESTION), "the person was asked: {said}");
    assert!(!said.contains("running "), "something ran: {said}");
}

// 1. Output arrives complete and in order.

#[test]
fn a_signed_script_runs_and_its_output_arrives_complete_and_in_order() {
    let cat = TestCatalog::signed(&[("count", COUNT)]);
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y", "y"], &["--trusted-key", cat.public_arg()]);
    let out = console(
        &relay,
        &agent.code,
        &[
            "--catalog",
            cat.dir_arg(),
            "--exec",
            "run count n=20000",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let events = json_lines(&out.stdout);
    let catalog = events_named(&events, "catalog");
    assert_eq!(catalog.len(), 1, "{}", out.stdout);
    assert_eq!(catalog[0]["accepted"], true);
    assert_eq!(catalog[0]["scripts"], 1);

    let started = events_named(&events, "run_started");
    assert_eq!(started.len(), 1, "{}", out.stdout);
    assert_eq!(started[0]["program"], "seq");
    assert_eq!(started[0]["args"], serde_json::json!(["1", "20000"]));
    let run = started[0]["run"].clone();

    let mut received = String::new();
    for event in events_named(&events, "output") {
        assert_eq!(event["run"], run);
        assert_eq!(event["stream"], "stdout", "{event}");
        received.push_str(event["data"].as_str().expect("output data"));
    }
    let expected: String = (1..=20000).map(|n| format!("{n}\n")).collect();
    assert!(
        events_named(&events, "output").len() > 1,
        "the output came in several chunks"
    );
    assert!(received == expected, "the output differs from seq 1 20000");
    assert!(events_named(&events, "truncated").is_empty());

    let end = events_named(&events, "run_end");
    assert_eq!(end.len(), 1, "{}", out.stdout);
    assert_eq!(end[0]["run"], run);
    assert_eq!(end[0]["success"], true);
    assert_eq!(end[0]["status"], "exited with status 0");
    assert_eq!(end[0]["bytes"], expected.len() as u64);
    assert_eq!(end[0]["dropped"], 0);
    assert_eq!(end[0]["output_sha256"], sha256_hex(expected.as_bytes()));
    // The run end is the last word about the run.
    let last_output = events.iter().rposition(|e| e["event"] == "output");
    let end_at = events.iter().position(|e| e["event"] == "run_end");
    assert!(last_output < end_at);
    agent_finishes(&mut agent.proc);
}

// 2. Refusals: a clear reason, a non-zero exit, and nothing runs.

#[test]
fn without_a_trusted_key_no_script_runs() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y", "y"], &[]);
    assert!(
        agent
            .proc
            .stdout
            .text()
            .contains("no trusted catalog key is configured (--trusted-key)"),
        "{}",
        agent.proc.stdout.text()
    );
    let sample = sample_catalog();
    let out = console(
        &relay,
        &agent.code,
        &[
            "--catalog",
            sample.to_str().unwrap(),
            "--exec",
            "run echo-test word=hello",
        ],
    );
    assert!(!out.status.success(), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "the agent refused the catalog: catalog refused: no trusted catalog key is configured on this machine, so no scripts can run"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(
            "error: refused: no trusted catalog key is configured on this machine, so no scripts can run"
        ),
        "{}",
        out.stderr
    );
    agent_finishes(&mut agent.proc);
    assert_nothing_ran(&agent);
    assert_eq!(
        audit_events(agent.data_dir.path(), "catalog_refused").len(),
        1
    );
    let refused = audit_events(agent.data_dir.path(), "run_refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["script"], "echo-test");
}

#[test]
fn an_unsigned_catalog_is_refused_by_the_console_and_by_the_agent() {
    let cat = TestCatalog::sample_copy();
    std::fs::remove_file(cat.dir.join("catalog.sig")).unwrap();
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start_trusting(&relay, &["y", "y"]);

    // The console will not send a folder that was never signed.
    let out = console(
        &relay,
        &agent.code,
        &[
            "--catalog",
            cat.dir_arg(),
            "--exec",
            "run echo-test word=hello",
        ],
    );
    assert!(!out.status.success());
    assert_eq!(
        out.stderr.trim(),
        format!(
            "error: catalog {} is not signed: run `sprijin-console catalog sign {} --key FILE`",
            cat.dir.display(),
            cat.dir.display()
        )
    );

    // An unsigned catalog sent anyway is refused by the agent, and no run
    // is possible in that session.
    let files = catalog_tool::read_scripts(&cat.dir).unwrap();
    block_on(async {
        let session = connect_in_process(&relay, &agent.code, "Ana").await;
        let (_, mut replies) = session
            .request(Request::Catalog(SignedCatalog {
                files,
                signature: vec![],
            }))
            .await
            .unwrap();
        match next_reply(&mut replies).await {
            AgentMsg::Refused { reason, .. } => assert_eq!(
                reason,
                "catalog refused: the catalog is not signed; sign it with `sprijin-console catalog sign DIR --key FILE` and send it again"
            ),
            other => panic!("the unsigned catalog was not refused: {other:?}"),
        }
        let (_, mut replies) = session
            .request(Request::Run {
                script: "echo-test".parse().unwrap(),
                params: vec![("word".into(), "hello".into())],
            })
            .await
            .unwrap();
        match next_reply(&mut replies).await {
            AgentMsg::Refused { reason, .. } => assert_eq!(
                reason,
                "no verified catalog in this session: the console must send a signed catalog first"
            ),
            other => panic!("the run was not refused: {other:?}"),
        }
        session.close().await;
    });
    agent_finishes(&mut agent.proc);
    assert_nothing_ran(&agent);
    let refused = audit_events(agent.data_dir.path(), "catalog_refused");
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .contains("the catalog is not signed")
    );
}

#[test]
fn a_script_edited_after_signing_is_refused() {
    let cat = TestCatalog::sample_copy();
    let script = cat.dir.join("echo-test.toml");
    let text = std::fs::read_to_string(&script).unwrap();
    let edited = text.replace("program = \"echo\"", "program = \"printf\"");
    assert_ne!(edited, text);
    std::fs::write(&script, edited).unwrap();

    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start_trusting(&relay, &["y", "y"]);
    let out = console(
        &relay,
        &agent.code,
        &[
            "--catalog",
            cat.dir_arg(),
            "--exec",
            "run echo-test word=hello",
        ],
    );
    assert!(!out.status.success(), "{}", out.stdout);
    let reason = format!(
        "catalog refused: the catalog signature by key {} does not match its files: a file was changed, added, removed or renamed after signing",
        key_id_of(&dev_public_key())
    );
    assert!(
        out.stdout
            .contains(&format!("the agent refused the catalog: {reason}")),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(
            "error: refused: no verified catalog in this session: the console must send a signed catalog first"
        ),
        "{}",
        out.stderr
    );
    agent_finishes(&mut agent.proc);
    assert_nothing_ran(&agent);
    let refused = audit_events(agent.data_dir.path(), "catalog_refused");
    assert_eq!(refused.len(), 1);
    assert!(refused[0]["reason"].as_str().unwrap().contains(&reason));
}

#[test]
fn a_catalog_signed_by_an_untrusted_key_is_refused() {
    // Properly signed, but with a key of its own that the agent does not trust.
    let cat = TestCatalog::sample_copy();
    cat.sign();
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start_trusting(&relay, &["y", "y"]);
    let out = console(
        &relay,
        &agent.code,
        &[
            "--catalog",
            cat.dir_arg(),
            "--exec",
            "run echo-test word=hello",
            "--json",
        ],
    );
    assert!(!out.status.success(), "{}", out.stdout);
    let events = json_lines(&out.stdout);
    let catalog = events_named(&events, "catalog");
    assert_eq!(catalog.len(), 1, "{}", out.stdout);
    assert_eq!(catalog[0]["accepted"], false);
    let reason = catalog[0]["reason"].as_str().unwrap();
    let trusted = key_id_of(&dev_public_key());
    assert_eq!(
        reason,
        format!(
            "catalog refused: the catalog is signed by key {}, which this machine does not trust (it trusts {trusted}); send a catalog signed with a key this machine trusts",
            key_id_of(&cat.public)
        )
    );
    // The refused catalog is an error of its own, then so is the run.
    let errors = events_named(&events, "error");
    assert_eq!(errors.len(), 2, "{}", out.stdout);
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("no script can run in this session: catalog refused: "),
        "{}",
        out.stdout
    );
    assert_eq!(
        errors[1]["message"],
        "refused: no verified catalog in this session: the console must send a signed catalog first"
    );
    assert!(events_named(&events, "run_started").is_empty());
    agent_finishes(&mut agent.proc);
    assert_nothing_ran(&agent);
}

#[test]
fn an_unknown_script_is_refused_by_the_console_and_by_the_agent() {
    let sample = sample_catalog();
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start_trusting(&relay, &["y"]);
    let out = console(
        &relay,
        &agent.code,
        &[
            "--catalog",
            sample.to_str().unwrap(),
            "--exec",
            "run no-such-script",
        ],
    );
    assert!(!out.status.success());
    assert!(
        out.stderr.contains(
            "error: refused: there is no script \"no-such-script\" in the catalog; type scripts for the list"
        ),
        "{}",
        out.stderr
    );
    agent_finishes(&mut agent.proc);
    assert_nothing_ran(&agent);
    // The console stopped it: nothing reached the agent.
    assert!(audit_events(agent.data_dir.path(), "run_refused").is_empty());

    // Sent anyway, the agent refuses it itself.
    let mut agent = AgentProc::start_trusting(&relay, &["y"]);
    let signed = catalog_tool::load(&sample).unwrap();
    block_on(async {
        let session = connect_in_process(&relay, &agent.code, "Ana").await;
        send_catalog(&session, signed).await;
        let reason = refused_run(&session, "no-such-script", &[]).await;
        assert_eq!(
            reason,
            "there is no script \"no-such-script\" in the signed catalog"
        );
        session.close().await;
    });
    agent_finishes(&mut agent.proc);
    assert_nothing_ran(&agent);
    let refused = audit_events(agent.data_dir.path(), "run_refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["script"], "no-such-script");
}

#[test]
fn a_script_made_for_another_platform_is_refused_by_the_agent() {
    // The end-to-end tests run the Linux agent; the sample catalog's
    // Windows scripts are signed and valid, but not for this machine.
    let sample = sample_catalog();
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start_trusting(&relay, &["y"]);
    let signed = catalog_tool::load(&sample).unwrap();
    block_on(async {
        let session = connect_in_process(&relay, &agent.code, "Ana").await;
        send_catalog(&session, signed).await;
        let reason = refused_run(&session, "windows-flush-dns", &[]).await;
        assert_eq!(
            reason,
            "script \"windows-flush-dns\" is not made for this platform"
        );
        session.close().await;
    });
    agent_finishes(&mut agent.proc);
    assert_nothing_ran(&agent);
    let refused = audit_events(agent.data_dir.path(), "run_refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["script"], "windows-flush-dns");
}

/// Asks for a run and expects it refused; returns the reason.
async fn refused_run(
    session: &sprijin_console::session::Session,
    script: &str,
    params: &[(&str, &str)],
) -> String {
    let (_, mut replies) = session
        .request(Request::Run {
            script: script.parse().unwrap(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
        .await
        .unwrap();
    match next_reply(&mut replies).await {
        AgentMsg::Refused { reason, .. } => reason,
        other => panic!("the run of {script} was not refused: {other:?}"),
    }
}

/// Values a shell would act on, and one that would forge a line on the
/// person's screen.
const HOSTILE: &[&str] = &["a; rm -rf /", "$(id)", "a\nb"];

/// The part of the refusal both sides give for a hostile `word`.
fn hostile_reason(value: &str) -> String {
    let problem = if value.contains('\n') {
        "it contains the invisible or control character \\u{a}; values must be one line of visible text".to_string()
    } else {
        "it does not match the pattern \"^[a-z]{1,16}$\"; give a value that does".to_string()
    };
    format!("value {value:?} for parameter word of script echo-test is refused: {problem}")
}

#[test]
fn hostile_parameter_values_are_refused_by_the_console_and_by_the_agent() {
    let sample = sample_catalog();
    let relay = RelayProc::start(&[]);

    // The console checks first, so the person never sees them.
    let mut agent = AgentProc::start_trusting(&relay, &["y"]);
    let mut args = vec!["--catalog".to_string(), sample.display().to_string()];
    for value in HOSTILE {
        args.push("--exec".into());
        args.push(format!("run echo-test 'word={value}'"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = console(&relay, &agent.code, &args);
    assert!(!out.status.success());
    for value in HOSTILE {
        let line = format!("error: refused: {}", hostile_reason(value));
        assert!(
            out.stderr.lines().any(|l| l == line),
            "{line}\nnot in:\n{}",
            out.stderr
        );
    }
    agent_finishes(&mut agent.proc);
    assert_nothing_ran(&agent);
    assert!(audit_events(agent.data_dir.path(), "run_refused").is_empty());

    // With the console's check bypassed, the agent refuses them itself,
    // before asking the person (no answer is waiting on its input).
    let mut agent = AgentProc::start_trusting(&relay, &["y"]);
    let signed = catalog_tool::load(&sample).unwrap();
    block_on(async {
        let session = connect_in_process(&relay, &agent.code, "Ana").await;
        send_catalog(&session, signed).await;
        for value in HOSTILE {
            let reason = refused_run(&session, "echo-test", &[("word", value)]).await;
            assert_eq!(reason, format!("refused: {}", hostile_reason(value)));
            assert!(!reason.contains('\n'), "{reason}");
        }
        session.close().await;
    });
    agent_finishes(&mut agent.proc);
    assert_nothing_ran(&agent);
    let refused = audit_events(agent.data_dir.path(), "run_refused");
    assert_eq!(refused.len(), HOSTILE.len());
    for (record, value) in refused.iter().zip(HOSTILE) {
        assert_eq!(record["script"], "echo-test");
        assert_eq!(
            record["reason"],
            format!("refused: {}", hostile_reason(value))
        );
    }
}

#[test]
fn a_denied_run_does_not_start() {
    let sample = sample_catalog();
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start_trusting(&relay, &["y", "n"]);
    let out = console(
        &relay,
        &agent.code,
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
            .contains("error: refused: the person declined the run of echo-test"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("approved; running"), "{}", out.stdout);
    agent_finishes(&mut agent.proc);
    // The person was asked, with the exact command, and said no.
    let said = agent.proc.stdout.text();
    assert!(said.contains("command: echo sprijin hello"), "{said}");
    let kinds = audit_kinds(agent.data_dir.path());
    assert!(!kinds.iter().any(|k| k == "run_start"), "{kinds:?}");
    let consents = audit_events(agent.data_dir.path(), "consent");
    assert_eq!(consents.len(), 2);
    assert_eq!(consents[1]["answer"], false);
    let refused = audit_events(agent.data_dir.path(), "run_refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0]["reason"],
        "the person declined the run of echo-test"
    );
}

#[test]
fn an_unanswered_run_question_counts_as_no() {
    let sample = sample_catalog();
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start_trusting(&relay, &["y"]);
    // Nobody can answer the next question.
    agent.proc.close_stdin();
    let out = console(
        &relay,
        &agent.code,
        &[
            "--catalog",
            sample.to_str().unwrap(),
            "--exec",
            "run echo-test word=hello",
        ],
    );
    assert!(!out.status.success());
    let expected = "nobody answered whether to run echo-test: the agent's input is closed";
    assert!(
        out.stderr.contains(&format!("error: refused: {expected}")),
        "{}",
        out.stderr
    );
    agent_finishes(&mut agent.proc);
    let kinds = audit_kinds(agent.data_dir.path());
    assert!(!kinds.iter().any(|k| k == "run_start"), "{kinds:?}");
    let consents = audit_events(agent.data_dir.path(), "consent");
    assert_eq!(consents.len(), 2);
    assert_eq!(consents[1]["answer"], false);
    let refused = audit_events(agent.data_dir.path(), "run_refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["reason"], expected);
}

// 3. Timeouts and cancels stop the whole group; the session goes on.

#[test]
fn a_script_past_its_timeout_is_stopped_with_its_children_and_the_session_goes_on() {
    let cat = TestCatalog::signed(&[("hang", HANG)]);
    let pidfile = cat.root.path().join("child.pid");
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y", "y"], &["--trusted-key", cat.public_arg()]);
    let run = format!("run hang pidfile={}", pidfile.display());
    let out = console(
        &relay,
        &agent.code,
        &[
            "--catalog",
            cat.dir_arg(),
            "--exec",
            &run,
            "--exec",
            "diag",
            "--json",
        ],
    );
    // The run failed, so the console reports failure; the diag still ran.
    assert!(!out.status.success(), "{}", out.stdout);
    let events = json_lines(&out.stdout);
    let end = events_named(&events, "run_end");
    assert_eq!(end.len(), 1, "{}", out.stdout);
    assert_eq!(end[0]["status"], "timed out after 2 s and was stopped");
    assert_eq!(end[0]["success"], false);
    let duration = end[0]["duration_ms"].as_u64().unwrap();
    assert!(duration >= 2000, "stopped after {duration} ms");
    let errors = events_named(&events, "error");
    assert_eq!(errors.len(), 1, "{}", out.stdout);
    assert_eq!(
        errors[0]["message"],
        "the script timed out after 2 s and was stopped"
    );
    let end_at = events.iter().position(|e| e["event"] == "run_end");
    let diag_at = events.iter().position(|e| e["event"] == "diag");
    assert!(diag_at.is_some(), "no diag after the run: {}", out.stdout);
    assert!(end_at < diag_at);

    let child = wait_for_pid_file(&pidfile, STEP).expect("the script wrote its child's pid");
    assert!(
        wait_until_gone(child, Duration::from_secs(5)),
        "the script's child {child} outlived the run"
    );
    agent_finishes(&mut agent.proc);
    let ends = audit_events(agent.data_dir.path(), "run_end");
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["status"], "timed out after 2 s and was stopped");
}

#[test]
fn a_cancelled_run_is_stopped_with_its_children_and_the_session_goes_on() {
    let cat = TestCatalog::signed(&[("hang-long", &hang_long())]);
    let pidfile = cat.root.path().join("child.pid");
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y", "y"], &["--trusted-key", cat.public_arg()]);
    let signed = catalog_tool::load(&cat.dir).unwrap();
    let pidfile_arg = pidfile.display().to_string();
    block_on(async {
        let session = connect_in_process(&relay, &agent.code, "Ana").await;
        send_catalog(&session, signed).await;
        let (run, mut replies) = session
            .request(Request::Run {
                script: "hang-long".parse().unwrap(),
                params: vec![("pidfile".into(), pidfile_arg)],
            })
            .await
            .unwrap();
        match next_reply(&mut replies).await {
            AgentMsg::RunStarted { program, .. } => assert_eq!(program, "sh"),
            other => panic!("the run did not start: {other:?}"),
        }
        let child = tokio::task::block_in_place(|| wait_for_pid_file(&pidfile, STEP))
            .expect("the script wrote its child's pid");
        assert!(!process_gone(child));

        let cancelled_at = Instant::now();
        session.request(Request::Cancel { run }).await.unwrap();
        let end = loop {
            match next_reply(&mut replies).await {
                AgentMsg::RunEnded { end, .. } => break end,
                AgentMsg::Output { .. } => {}
                other => panic!("unexpected answer to the run: {other:?}"),
            }
        };
        assert_eq!(end.status, RunStatus::Cancelled);
        // SIGTERM reaches the whole group at once; the grace periods bound it.
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(15),
            "the cancel took {:?}",
            cancelled_at.elapsed()
        );
        assert!(
            tokio::task::block_in_place(|| wait_until_gone(child, Duration::from_secs(5))),
            "the script's child {child} outlived the cancel"
        );

        // The session is still usable.
        let (_, mut replies) = session.request(Request::Diagnostics).await.unwrap();
        assert!(matches!(
            next_reply(&mut replies).await,
            AgentMsg::Diagnostics { .. }
        ));
        session.close().await;
    });
    agent_finishes(&mut agent.proc);
    let ends = audit_events(agent.data_dir.path(), "run_end");
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["status"], "cancelled");
}

// 4. Output over the cap.

#[test]
fn output_over_the_cap_is_cut_at_the_cap_and_the_agent_stays_small() {
    const CAP: u64 = 65536;
    let cat = TestCatalog::signed(&[("flood", FLOOD)]);
    let relay = RelayProc::start(&[]);
    let agent = AgentProc::start(
        &relay,
        &["y", "y"],
        &[
            "--trusted-key",
            cat.public_arg(),
            "--output-cap",
            &CAP.to_string(),
        ],
    );
    let agent_pid = agent.proc.child.id();
    let mut console =
        console_interactive(&relay, &agent.code, &["--catalog", cat.dir_arg(), "--json"]);
    console.answer(&["run flood"]);
    console
        .stdout
        .wait_for("\"event\":\"run_end\"", STEP * 2)
        .unwrap_or_else(|| panic!("the run did not end: {}", console.stderr.text()));

    // The session answers at once after the flood.
    let asked = Instant::now();
    console.answer(&["diag"]);
    console
        .stdout
        .wait_for("\"event\":\"diag\"", STEP)
        .unwrap_or_else(|| panic!("no diag after the flood: {}", console.stderr.text()));
    let diag_took = asked.elapsed();
    let peak_kib = peak_rss_kib(agent_pid).expect("the agent is running");
    eprintln!("after the flood: diag in {diag_took:?}, agent peak memory {peak_kib} KiB");

    console.answer(&["quit"]);
    let status = console.wait(STEP).expect("the console quits");
    assert!(status.success(), "{}", console.stderr.text());
    let events = json_lines(&console.stdout.text());

    let forwarded: usize = events_named(&events, "output")
        .iter()
        .map(|e| e["data"].as_str().expect("output data").len())
        .sum();
    assert_eq!(forwarded as u64, CAP);
    assert!(
        events_named(&events, "output").iter().all(|e| e["data"]
            .as_str()
            .unwrap()
            .bytes()
            .all(|b| b == 0))
    );
    let markers = events_named(&events, "truncated");
    assert_eq!(markers.len(), 1);
    assert_eq!(markers[0]["cap"], CAP);
    // The marker follows the last forwarded chunk.
    let marker_at = events.iter().position(|e| e["event"] == "truncated");
    let last_output = events.iter().rposition(|e| e["event"] == "output");
    assert!(last_output < marker_at);

    let end = events_named(&events, "run_end");
    assert_eq!(end.len(), 1);
    assert_eq!(end[0]["success"], true);
    assert_eq!(end[0]["bytes"], FLOOD_BYTES);
    assert_eq!(end[0]["dropped"], FLOOD_BYTES - CAP);
    assert_eq!(
        end[0]["output_sha256"],
        sha256_hex(&vec![0u8; CAP as usize])
    );

    assert!(
        diag_took < Duration::from_secs(5),
        "the diag after the flood took {diag_took:?}"
    );
    assert!(
        peak_kib < 100 * 1024,
        "the agent's memory peaked at {peak_kib} KiB"
    );
}

// 5. The audit log.

#[test]
fn the_audit_log_holds_every_decision_and_run_and_detects_an_edit() {
    let sample = sample_catalog();
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start_trusting(&relay, &["y", "y", "n"]);
    let nameplate = agent.code.split('-').next().unwrap().to_string();
    let out = console(
        &relay,
        &agent.code,
        &[
            "--catalog",
            sample.to_str().unwrap(),
            "--name",
            "Ana",
            // The record checked line by line below: the session stays on
            // the relay, so no path move joins it at a moment of its own.
            "--direct",
            "never",
            "--json",
            "--exec",
            "run echo-test word=hello",
            "--exec",
            "run echo-test word=world",
            "--exec",
            "quit",
        ],
    );
    // The second run was declined.
    assert!(!out.status.success(), "{}", out.stdout);
    agent_finishes(&mut agent.proc);
    let events = json_lines(&out.stdout);
    let digest = events_named(&events, "catalog")[0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let console_end = events_named(&events, "run_end");
    assert_eq!(console_end.len(), 1, "{}", out.stdout);

    let dir = agent.data_dir.path();
    assert_eq!(
        audit_kinds(dir),
        [
            "log_start",
            "session_start",
            "consent",
            "consent",
            "run_start",
            "run_end",
            "consent",
            "run_refused",
            "session_end"
        ]
    );
    // The first line starts the log; the session's records follow.
    let events: Vec<Value> = audit_records(dir)
        .into_iter()
        .skip(1)
        .map(|r| r["event"].clone())
        .collect();
    assert_eq!(events[0]["technician"], "Ana");
    assert_eq!(events[0]["nameplate"], nameplate);
    assert_eq!(events[1]["answer"], true);
    assert!(
        events[1]["question"].as_str().unwrap().contains(
            "technician Ana (name not verified: no credential) wants to see this machine's state"
        ),
        "{}",
        events[1]
    );
    assert_eq!(events[2]["answer"], true);
    let question = events[2]["question"].as_str().unwrap();
    assert!(question.contains("Echo a word back"), "{question}");
    assert!(
        question.contains("command: echo sprijin hello"),
        "{question}"
    );

    let start = &events[3];
    assert_eq!(start["script"], "echo-test");
    assert_eq!(start["program"], "echo");
    assert_eq!(start["args"], serde_json::json!(["sprijin", "hello"]));
    assert_eq!(start["catalog_digest"], digest.as_str());
    assert_eq!(digest.len(), 64);
    assert_eq!(start["risk"], "low");
    assert_eq!(start["run"], console_end[0]["run"]);

    let end = &events[4];
    assert_eq!(end["script"], "echo-test");
    assert_eq!(end["run"], start["run"]);
    assert_eq!(end["status"], "exited with status 0");
    assert_eq!(end["bytes"], 14);
    assert_eq!(end["dropped"], 0);
    assert_eq!(end["output_sha256"], sha256_hex(b"sprijin hello\n"));
    assert_eq!(end["output_sha256"], console_end[0]["output_sha256"]);

    assert_eq!(events[5]["answer"], false);
    assert!(
        events[5]["question"]
            .as_str()
            .unwrap()
            .contains("command: echo sprijin world")
    );
    assert_eq!(events[6]["script"], "echo-test");
    assert_eq!(
        events[6]["reason"],
        "the person declined the run of echo-test"
    );
    assert_eq!(events[7]["reason"], "the technician ended the session");

    // Records follow each other in time and chain from line to line.
    let records = audit_records(dir);
    for (n, record) in records.iter().enumerate() {
        assert_eq!(record["seq"], n as u64 + 1);
    }
    let verified = audit_verify(dir);
    assert!(verified.status.success(), "{}", verified.stderr);
    assert!(
        verified
            .stdout
            .contains("the chain of 9 lines is intact (head 9:"),
        "{}",
        verified.stdout
    );

    // Change one character inside line 3's event.
    let path = dir.join("audit.log");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let at = lines[2].find("\"event\":").expect("line 3 has an event");
    let (head, event) = lines[2].split_at(at);
    let changed = event.replacen("technician", "tecnhician", 1);
    assert_ne!(changed, event);
    lines[2] = format!("{head}{changed}");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let verified = audit_verify(dir);
    assert!(!verified.status.success(), "an edited log verified");
    assert_eq!(
        verified.stderr.trim(),
        format!(
            "error: {}: audit log line 3 was changed: its hash does not match line 4's prev",
            path.display()
        )
    );
}
