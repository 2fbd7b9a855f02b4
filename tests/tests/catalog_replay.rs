//! An old or withdrawn catalog cannot be replayed, end to end with the real
//! relay, agent and console.
//!
//! A signature names its key, its signing time and its expiry. The agent
//! refuses an expired catalog, remembers in its data dir the newest signing
//! time it accepted from each key and refuses an older catalog from that key
//! in any later session, and tells a key it does not trust apart from files
//! changed after signing. Catalogs from the past are made the way they
//! existed: signed with the folder's key at an earlier time.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use sprijin_console::catalog_tool;
use sprijin_proto::catalog::{self, CatalogSignature, format_time};
use sprijin_proto::message::session::{AgentMsg, Request};
use sprijin_tests::*;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A script the person can approve, to show a catalog is usable.
const HELLO: &str = r#"
id = "hello"
title = "Say hello"
description = "Prints a greeting."
risk = "low"
platforms = ["linux"]
timeout_secs = 10
program = "echo"
args = ["hello", "{word}"]

[params.word]
pattern = '^[a-z]{1,16}$'
"#;

/// A script the organisation withdrew: only old catalogs still hold it.
const WITHDRAWN: &str = r#"
id = "withdrawn"
title = "Loosely checked echo"
description = "Prints anything; withdrawn because its pattern was too loose."
risk = "low"
platforms = ["linux"]
timeout_secs = 10
program = "echo"
args = ["{text}"]

[params.text]
pattern = '^.{1,200}$'
"#;

/// Signs `cat`'s folder as `catalog sign` would have at `signed_at`, valid
/// until `expires_at`: how a catalog signed in the past looks today.
fn sign_at(cat: &TestCatalog, signed_at: SystemTime, expires_at: SystemTime) {
    let key = catalog::parse_signing_key(&std::fs::read_to_string(&cat.key).unwrap()).unwrap();
    let files = catalog_tool::read_scripts(&cat.dir).unwrap();
    let signature = catalog::sign(&files, &key, signed_at, expires_at).unwrap();
    std::fs::write(cat.dir.join("catalog.sig"), signature).unwrap();
}

/// What `cat`'s signature file says.
fn signature_of(cat: &TestCatalog) -> CatalogSignature {
    CatalogSignature::parse(&std::fs::read(cat.dir.join("catalog.sig")).unwrap()).unwrap()
}

/// `sprijin-agent share` with a data dir the test keeps across sessions,
/// trusting `trusted`; returns the running agent and its code.
fn agent_in(
    relay: &RelayProc,
    data_dir: &Path,
    trusted: &Path,
    answers: &[&str],
) -> (Proc, String) {
    let mut cmd = Command::new(bin("sprijin-agent"));
    cmd.args(["share", "--relay", &relay.addr])
        .args(["--relay-fingerprint", &relay.fingerprint])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--trusted-key")
        .arg(trusted);
    let mut proc = Proc::spawn(cmd);
    proc.answer(answers);
    let code = proc.code();
    (proc, code)
}

/// Connects with `--catalog DIR --json`, runs `exec`, and returns the
/// agent's verdict on the catalog: `Ok(digest)` or `Err(reason)`.
fn send(relay: &RelayProc, code: &str, cat: &TestCatalog, exec: &str) -> Result<String, String> {
    let out = console(
        relay,
        code,
        &["--catalog", cat.dir_arg(), "--json", "--exec", exec],
    );
    assert_no_panic(&out.stderr);
    let events = json_lines(&out.stdout);
    let verdicts = events_named(&events, "catalog");
    assert_eq!(verdicts.len(), 1, "{}\n{}", out.stdout, out.stderr);
    let verdict = verdicts[0];
    if verdict["accepted"] == true {
        assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
        Ok(verdict["digest"].as_str().unwrap().to_owned())
    } else {
        assert!(!out.status.success(), "{}", out.stdout);
        Err(verdict["reason"].as_str().unwrap().to_owned())
    }
}

/// Nothing ran: no run in the audit log.
fn nothing_ran(data_dir: &Path) {
    let kinds = audit_kinds(data_dir);
    assert!(
        !kinds.iter().any(|k| k == "run_start" || k == "run_end"),
        "a run started: {kinds:?}"
    );
}

#[test]
fn an_expired_catalog_is_refused_by_the_agent() {
    let cat = TestCatalog::unsigned(&[("hello", HELLO)]);
    // Signed 100 days ago for 90 days: it expired 10 days ago.
    let now = SystemTime::now();
    sign_at(&cat, now - 100 * DAY, now - 10 * DAY);
    let sig = signature_of(&cat);

    let relay = RelayProc::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let (mut agent, code) = agent_in(&relay, data.path(), &cat.public, &["y", "y"]);
    let reason = send(&relay, &code, &cat, "run hello word=old").unwrap_err();
    assert_eq!(
        reason,
        format!(
            "catalog refused: the catalog expired on {} (signed on {} by key {}); ask the organisation for a newly signed catalog",
            format_time(sig.expires_at),
            format_time(sig.signed_at),
            sig.key_id
        )
    );
    agent_finishes(&mut agent);
    assert!(
        agent.stdout.text().contains(&reason),
        "the person is told: {}",
        agent.stdout.text()
    );
    let refused = audit_events(data.path(), "catalog_refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["reason"], reason);
    nothing_ran(data.path());
    assert!(
        !data.path().join("catalog-memory.json").exists(),
        "a refused catalog is not remembered"
    );
}

#[test]
fn an_older_catalog_is_refused_after_a_newer_one_was_accepted() {
    // Thirty days ago the organisation signed a catalog with a script it has
    // withdrawn since; today it signs the current one with the same key.
    let old = TestCatalog::unsigned(&[("hello", HELLO), ("withdrawn", WITHDRAWN)]);
    let now = SystemTime::now();
    let current = TestCatalog::unsigned(&[("hello", HELLO)]);
    std::fs::copy(&old.key, &current.key).unwrap();
    std::fs::copy(&old.public, &current.public).unwrap();
    sign_at(&old, now - 30 * DAY, now + 60 * DAY);
    current.sign();
    let (old_sig, current_sig) = (signature_of(&old), signature_of(&current));
    assert_eq!(old_sig.key_id, current_sig.key_id);

    let relay = RelayProc::start(&[]);
    let data = tempfile::tempdir().unwrap();

    // Before any newer one was seen, the old catalog is still good.
    let (mut agent, code) = agent_in(&relay, data.path(), &old.public, &["y"]);
    send(&relay, &code, &old, "scripts").expect("the old catalog is accepted at first");
    agent_finishes(&mut agent);

    // The current catalog is accepted and used.
    let (mut agent, code) = agent_in(&relay, data.path(), &old.public, &["y", "y"]);
    send(&relay, &code, &current, "run hello word=today").expect("the current catalog");
    agent_finishes(&mut agent);
    assert_eq!(audit_events(data.path(), "run_end").len(), 1);

    // A later session, by a new agent process with the same data dir: the
    // old catalog and its withdrawn script are refused, with both dates.
    let (mut agent, code) = agent_in(&relay, data.path(), &old.public, &["y", "y"]);
    let reason = send(&relay, &code, &old, "run withdrawn text=anything").unwrap_err();
    assert_eq!(
        reason,
        format!(
            "catalog refused: the catalog was signed on {}, before the newest catalog this machine already accepted from key {}, signed on {}; an older catalog may hold withdrawn scripts, so send the current catalog",
            format_time(old_sig.signed_at),
            old_sig.key_id,
            format_time(current_sig.signed_at)
        )
    );
    agent_finishes(&mut agent);
    let refused = audit_events(data.path(), "catalog_refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["reason"], reason);
    let runs = audit_events(data.path(), "run_start");
    assert_eq!(runs.len(), 1, "only the current catalog's run: {runs:?}");
    assert_eq!(runs[0]["script"], "hello");
    assert!(
        audit_events(data.path(), "run_refused")
            .iter()
            .any(|r| r["script"] == "withdrawn")
    );

    // The current catalog still works there.
    let (mut agent, code) = agent_in(&relay, data.path(), &old.public, &["y"]);
    send(&relay, &code, &current, "scripts").expect("the current catalog again");
    agent_finishes(&mut agent);
}

#[test]
fn an_untrusted_key_and_a_tampered_catalog_are_told_apart() {
    let trusted = TestCatalog::signed(&[("hello", HELLO)]);
    let foreign = TestCatalog::signed(&[("hello", HELLO)]);
    let relay = RelayProc::start(&[]);
    let trusted_id = signature_of(&trusted).key_id;

    let data = tempfile::tempdir().unwrap();
    let (mut agent, code) = agent_in(&relay, data.path(), &trusted.public, &["y"]);
    let untrusted = send(&relay, &code, &foreign, "scripts").unwrap_err();
    agent_finishes(&mut agent);
    assert_eq!(
        untrusted,
        format!(
            "catalog refused: the catalog is signed by key {}, which this machine does not trust (it trusts {trusted_id}); send a catalog signed with a key this machine trusts",
            signature_of(&foreign).key_id
        )
    );

    let script = trusted.dir.join("hello.toml");
    let text = std::fs::read_to_string(&script).unwrap();
    std::fs::write(&script, text.replace("{1,16}", "{1,200}")).unwrap();
    let (mut agent, code) = agent_in(&relay, data.path(), &trusted.public, &["y"]);
    let tampered = send(&relay, &code, &trusted, "scripts").unwrap_err();
    agent_finishes(&mut agent);
    assert_eq!(
        tampered,
        format!(
            "catalog refused: the catalog signature by key {trusted_id} does not match its files: a file was changed, added, removed or renamed after signing, or the signature file was edited; sign the catalog again"
        )
    );
    let refused: Vec<Value> = audit_events(data.path(), "catalog_refused")
        .into_iter()
        .map(|r| r["reason"].clone())
        .collect();
    assert_eq!(refused, [untrusted, tampered]);
    nothing_ran(data.path());
}

#[test]
fn a_signed_pattern_that_escapes_its_anchors_is_refused_by_the_agent() {
    // `catalog sign` and the console refuse this pattern, so it is signed
    // here directly and sent with the console library, as a careless tool or
    // a hostile technician might.
    let cat =
        TestCatalog::unsigned(&[("hello", &HELLO.replace("'^[a-z]{1,16}$'", r"'^a)|(?:b$'"))]);
    let now = SystemTime::now();
    sign_at(&cat, now, now + DAY);
    let signed = catalog_tool::load(&cat.dir).unwrap();
    let relay = RelayProc::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let (mut agent, code) = agent_in(&relay, data.path(), &cat.public, &["y", "y"]);
    let reason = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let session = connect_in_process(&relay, &code, "Ana").await;
        let (_, mut replies) = session.request(Request::Catalog(signed)).await.unwrap();
        let reason = match next_reply(&mut replies).await {
            AgentMsg::Refused { reason, .. } => reason,
            other => panic!("the catalog was not refused: {other:?}"),
        };
        let (_, mut replies) = session
            .request(Request::Run {
                script: "hello".parse().unwrap(),
                params: vec![("word".into(), "a;reboot".into())],
            })
            .await
            .unwrap();
        assert!(matches!(
            next_reply(&mut replies).await,
            AgentMsg::Refused { .. }
        ));
        session.close().await;
        reason
    });
    agent_finishes(&mut agent);
    assert!(
        reason.starts_with(r#"catalog refused: catalog file "hello.toml" is not a valid script: "#)
            && reason.contains(r#"pattern "^a)|(?:b$" does not compile on its own"#),
        "{reason}"
    );
    assert_eq!(audit_events(data.path(), "catalog_refused").len(), 1);
    nothing_ran(data.path());
}

#[test]
fn catalog_sign_refuses_an_expiry_in_the_past() {
    let cat = TestCatalog::unsigned(&[("hello", HELLO)]);
    let yesterday = format_time(SystemTime::now() - DAY);
    let cases = [
        (
            "2020-01-01".to_owned(),
            "error: --expires: expiry \"2020-01-01\" is in the past (2020-01-01T00:00:00Z, and it is now ".to_owned(),
        ),
        (
            yesterday.clone(),
            format!("error: --expires: expiry \"{yesterday}\" is in the past ({yesterday}, and it is now "),
        ),
        (
            "2027-02-30".to_owned(),
            "error: --expires: expiry \"2027-02-30\" is not valid: it is not a calendar date; give a date as YYYY-MM-DD or an RFC 3339 time".to_owned(),
        ),
        (
            "in three months".to_owned(),
            "error: --expires: expiry \"in three months\" is not valid".to_owned(),
        ),
    ];
    for (expires, expected) in cases {
        let out = catalog_tool(&[
            "sign".as_ref(),
            cat.dir.as_os_str(),
            "--key".as_ref(),
            cat.key.as_os_str(),
            "--expires".as_ref(),
            expires.as_ref(),
        ]);
        assert!(!out.status.success(), "{expires}: {}", out.stdout);
        let error = out.stderr.trim();
        assert!(error.starts_with(&expected), "{error}");
        assert_eq!(error.lines().count(), 1, "{error}");
    }
    assert!(!cat.dir.join("catalog.sig").exists(), "nothing was signed");
}
