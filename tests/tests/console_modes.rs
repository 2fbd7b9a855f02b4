//! The console without a terminal: commands read from piped standard input,
//! one per line, and the Markdown report of the session.

use std::process::Command;

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};
use sprijin_tests::*;

#[test]
fn piped_commands_run_a_whole_session_and_write_a_valid_report() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start_trusting(&relay, &["y", "y"]);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("session.md");
    let mut cmd = Command::new(bin("sprijin-console"));
    cmd.args([
        "connect",
        &agent.code,
        "--relay",
        &relay.addr,
        "--relay-fingerprint",
        &relay.fingerprint,
    ])
    .args(["--name", "Ana Pop", "--catalog"])
    .arg(sample_catalog())
    .arg("--data-dir")
    .arg(dir.path().join("console"));
    let mut console = Proc::spawn(cmd);
    console.answer(&[
        "diag",
        "findings",
        "run echo-test word=pipedmarker",
        &format!("report {}", report.display()),
        "quit",
    ]);
    console.close_stdin();
    let status = console.wait(STEP * 2).expect("console finishes at quit");
    let out = console.stdout.text();
    assert!(status.success(), "{out}\n{}", console.stderr.text());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    assert!(out.contains(&format!("Host      {host}")), "{out}");
    assert!(out.contains("sprijin pipedmarker"), "{out}");
    assert!(out.contains("report written to"), "{out}");
    agent.proc.wait(STEP);

    // The console kept its own log of the session, one JSON object a line.
    let logs: Vec<_> = std::fs::read_dir(dir.path().join("console/sessions"))
        .unwrap()
        .collect();
    assert_eq!(logs.len(), 1);
    let log = std::fs::read_to_string(logs[0].as_ref().unwrap().path()).unwrap();
    let kinds: Vec<String> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    // The agent's audit log head is noted as it moves, and the session's
    // path as it changes (on loopback it goes direct at no fixed point
    // among the runs); the rest in order.
    assert!(kinds.iter().any(|k| k == "audit_head"), "{log}");
    let kinds: Vec<&String> = kinds
        .iter()
        .filter(|k| *k != "audit_head" && *k != "path")
        .collect();
    assert_eq!(
        kinds,
        [
            "session_start",
            "catalog_accepted",
            "run_requested",
            "run_started",
            "run_end",
            "session_end"
        ],
        "{log}"
    );

    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains(&host), "{md}");
    assert!(md.contains("Ana Pop"), "{md}");
    assert!(md.contains("## Findings"), "{md}");
    assert!(md.contains("approved by the person"), "{md}");
    assert!(md.contains("exited with status 0"), "{md}");
    let words = out
        .lines()
        .find_map(|l| l.split("verification words: ").nth(1))
        .map(|w| w.trim_end_matches(')').to_string())
        .unwrap();
    assert!(md.contains(&words), "{md}");

    // Valid Markdown: the structure parses as intended and the run's output
    // sits in a code block, not loose in the text.
    let mut headings = Vec::new();
    let mut in_heading = None;
    let mut in_code = false;
    let mut code = String::new();
    let mut tables = 0;
    for event in Parser::new_ext(&md, pulldown_cmark::Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => in_heading = Some((level, String::new())),
            Event::End(TagEnd::Heading(_)) => headings.extend(in_heading.take()),
            Event::Start(Tag::CodeBlock(_)) => in_code = true,
            Event::End(TagEnd::CodeBlock) => in_code = false,
            Event::Start(Tag::Table(_)) => tables += 1,
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, h)) = &mut in_heading {
                    h.push_str(&t);
                }
                if in_code {
                    code.push_str(&t);
                }
            }
            _ => {}
        }
    }
    let titles: Vec<(HeadingLevel, &str)> =
        headings.iter().map(|(l, t)| (*l, t.as_str())).collect();
    assert_eq!(
        titles[0],
        (
            HeadingLevel::H1,
            format!("Support session on {host}").as_str()
        )
    );
    for section in ["Machine", "Findings", "Runs"] {
        assert!(titles.contains(&(HeadingLevel::H2, section)), "{titles:?}");
    }
    assert!(
        titles
            .iter()
            .any(|(l, t)| *l == HeadingLevel::H3 && t.contains("echo-test")),
        "{titles:?}"
    );
    assert_eq!(tables, 1, "one summary table");
    assert!(
        code.contains("sprijin pipedmarker"),
        "the output is in a code block: {code}"
    );
    let mut html = String::new();
    pulldown_cmark::html::push_html(
        &mut html,
        Parser::new_ext(&md, pulldown_cmark::Options::ENABLE_TABLES),
    );
    assert!(html.contains("<table>") && html.contains("<h1>"), "{html}");
}

#[test]
fn a_denied_run_is_reported_plainly_and_fails_the_exec() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start_trusting(&relay, &["y", "n"]);
    let out = console(
        &relay,
        &agent.code,
        &[
            "--catalog",
            sample_catalog().to_str().unwrap(),
            "--exec",
            "run echo-test word=nope",
            "--exec",
            "quit",
        ],
    );
    assert!(!out.status.success());
    assert!(
        out.stderr
            .contains("the person declined the run of echo-test"),
        "{}",
        out.stderr
    );
    agent.proc.wait(STEP);
}

#[test]
fn the_person_ending_the_session_is_told_to_the_technician() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let mut cmd = Command::new(bin("sprijin-console"));
    cmd.args([
        "connect",
        &agent.code,
        "--relay",
        &relay.addr,
        "--relay-fingerprint",
        &relay.fingerprint,
    ]);
    let mut console = Proc::spawn(cmd);
    console
        .stdout
        .wait_for("connected to", STEP)
        .expect("console connects");
    agent
        .proc
        .stdout
        .wait_for("press Ctrl-C", STEP)
        .expect("agent is in the session");
    agent.proc.interrupt();
    assert!(
        agent
            .proc
            .wait(STEP)
            .expect("agent ends on Ctrl-C")
            .success()
    );
    assert!(agent.proc.stdout.text().contains("you ended the session"));
    let status = console.wait(STEP).expect("console notices the end");
    assert!(!status.success());
    assert!(
        console
            .stderr
            .text()
            .contains("the person ended the session"),
        "{}",
        console.stderr.text()
    );
}
