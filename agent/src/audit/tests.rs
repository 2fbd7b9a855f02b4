use super::chain::sha256_hex;
use super::*;
use sprijin_proto::message::script::RunEnd;
use sprijin_proto::message::script::RunStatus;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn events() -> Vec<AuditEvent> {
    vec![
        AuditEvent::SessionStart {
            nameplate: "7".into(),
            technician: "ana".into(),
            vouched: true,
            verified: true,
            credential_key: Some("ed25519:0011223344556677".into()),
            not_verified: None,
        },
        AuditEvent::Consent {
            question: "allow ana to view this machine?".into(),
            answer: true,
        },
        AuditEvent::RunStart {
            run: 1,
            script: "flush-dns".into(),
            title: "Flush the DNS cache".into(),
            program: "resolvectl".into(),
            args: vec!["flush-caches".into()],
            catalog_digest: "ab".repeat(32),
            risk: "low".into(),
            by: StartedBy::Technician,
        },
        AuditEvent::run_end(
            1,
            "flush-dns",
            &RunEnd {
                status: RunStatus::Exited { code: 0 },
                duration_ms: 15,
                bytes: 0,
                dropped: 0,
                output_sha256: sha256_hex(b""),
            },
        ),
        AuditEvent::SessionEnd {
            reason: "technician quit".into(),
        },
    ]
}

/// A log with its `log_start` line, then one line per event from [`events`].
fn written_log() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path).expect("open");
    for event in events() {
        log.append(event).expect("append");
    }
    (dir, path)
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read log")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).expect("write log");
}

fn damage_of(result: Result<VerifyReport, AuditError>) -> Damage {
    match result {
        Err(err) => err.damage().cloned().expect("a damage error"),
        Ok(report) => panic!("verified {} lines, expected damage", report.lines),
    }
}

#[test]
fn appended_lines_verify() {
    let (_dir, path) = written_log();
    let report = verify(&path, None).expect("verify");
    assert_eq!(report.lines, 6);
    let lines = lines_of(&path);
    assert_eq!(report.head.seq, 6);
    assert_eq!(report.head.hash, sha256_hex(lines[5].as_bytes()));
    assert!(report.notes.is_empty());
}

#[test]
fn lines_have_the_documented_shape() {
    let (_dir, path) = written_log();
    let lines = lines_of(&path);
    let first: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
    assert_eq!(first["seq"], 1);
    assert_eq!(first["prev"], FIRST_PREV);
    assert_eq!(first["event"]["kind"], "log_start");
    let log_id = first["event"]["log_id"].as_str().expect("a log id");
    assert_eq!(log_id.len(), 32);
    assert!(first["event"].get("replaces").is_none());
    let time = first["time"].as_str().expect("time is a string");
    assert_eq!(time.len(), "2026-03-01T09:30:00.123Z".len());
    assert!(time.ends_with('Z'));

    let second: serde_json::Value = serde_json::from_str(&lines[1]).expect("json");
    assert_eq!(second["seq"], 2);
    assert_eq!(second["prev"], sha256_hex(lines[0].as_bytes()));

    let end: serde_json::Value = serde_json::from_str(&lines[4]).expect("json");
    assert_eq!(end["event"]["kind"], "run_end");
    assert_eq!(end["event"]["status"], "exited with status 0");

    for (line, event) in lines[1..].iter().zip(events()) {
        let value: serde_json::Value = serde_json::from_str(line).expect("json");
        let back: AuditEvent = serde_json::from_value(value["event"].clone()).expect("event");
        assert_eq!(back, event);
    }
}

#[test]
fn the_file_is_private_and_its_folders_are_created() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("a").join("b").join("audit.jsonl");
    AuditLog::open(&path).expect("open");
    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = std::fs::metadata(dir.path().join("a/b"))
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0);
}

#[test]
fn reopening_continues_the_chain() {
    let (_dir, path) = written_log();
    let mut log = AuditLog::open(&path).expect("reopen");
    let lines = lines_of(&path);
    assert_eq!(log.head().hash, sha256_hex(lines[5].as_bytes()));
    assert!(log.opened().is_empty(), "{:?}", log.opened());
    log.append(AuditEvent::Note {
        text: "agent restarted".into(),
    })
    .expect("append");
    drop(log);

    let report = verify(&path, None).expect("verify");
    assert_eq!(report.lines, 7);
    let last: serde_json::Value = serde_json::from_str(&lines_of(&path)[6]).expect("json");
    assert_eq!(last["seq"], 7);
}

#[test]
fn a_new_log_holds_only_its_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).expect("open");
    let report = verify(&path, None).expect("verify");
    assert_eq!(report.lines, 1);
    assert_eq!(report.head, log.head());
    assert_eq!(report.log_id.as_deref(), Some(log.log_id()));
}

#[test]
fn an_edited_line_is_named() {
    let (_dir, path) = written_log();
    let mut lines = lines_of(&path);
    lines[3] = lines[3].replace("flush-caches", "flush-cache");
    write_lines(&path, &lines);
    let err = verify(&path, None).expect_err("edited log");
    assert_eq!(err.damage(), Some(&Damage::Changed { line: 4 }));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: audit log line 4 was changed: its hash does not match line 5's prev",
            path.display()
        )
    );
}

#[test]
fn an_edited_seq_is_named() {
    let (_dir, path) = written_log();
    let mut lines = lines_of(&path);
    lines[1] = lines[1].replacen("\"seq\":2", "\"seq\":9", 1);
    write_lines(&path, &lines);
    assert_eq!(
        damage_of(verify(&path, None)),
        Damage::Renumbered { line: 2, seq: 9 }
    );
}

#[test]
fn a_deleted_line_is_named() {
    let (_dir, path) = written_log();
    let mut lines = lines_of(&path);
    lines.remove(2);
    write_lines(&path, &lines);
    let damage = damage_of(verify(&path, None));
    assert_eq!(damage, Damage::Missing { first: 3, last: 3 });
    assert_eq!(
        damage.to_string(),
        "line 3 is missing (line 2 is followed by seq 4)"
    );
}

#[test]
fn deleted_first_lines_are_named() {
    let (_dir, path) = written_log();
    let lines = lines_of(&path);
    write_lines(&path, &lines[2..]);
    let damage = damage_of(verify(&path, None));
    assert_eq!(damage, Damage::Missing { first: 1, last: 2 });
    assert_eq!(
        damage.to_string(),
        "lines 1 to 2 are missing (the log starts at seq 3)"
    );
}

#[test]
fn swapped_lines_are_found() {
    let (_dir, path) = written_log();
    let mut lines = lines_of(&path);
    lines.swap(1, 2);
    write_lines(&path, &lines);
    assert_eq!(
        damage_of(verify(&path, None)),
        Damage::Missing { first: 2, last: 2 }
    );
}

#[test]
fn a_line_that_is_not_json_is_named() {
    let (_dir, path) = written_log();
    let mut lines = lines_of(&path);
    lines[2] = "{\"seq\":3, oops".into();
    write_lines(&path, &lines);
    let damage = damage_of(verify(&path, None));
    assert!(matches!(damage, Damage::NotJson { line: 3, .. }));
    assert!(damage.to_string().starts_with("line 3 is not valid JSON"));

    lines[2] = "{\"seq\":3}".into();
    write_lines(&path, &lines);
    assert_eq!(
        damage_of(verify(&path, None)),
        Damage::NotRecord {
            line: 3,
            detail: "missing field `time`".into()
        }
    );

    lines[2] = String::new();
    write_lines(&path, &lines);
    assert_eq!(damage_of(verify(&path, None)), Damage::Empty { line: 3 });
}

#[test]
fn a_line_cut_off_by_a_failed_write_is_repaired_on_open() {
    let (_dir, path) = written_log();
    let whole = std::fs::read(&path).expect("read");
    // A write that failed part way: half a line after the last whole one.
    let mut text = whole.clone();
    text.extend_from_slice(b"{\"seq\":7,\"time\":\"2026-");
    std::fs::write(&path, &text).expect("write");

    assert_eq!(
        damage_of(verify(&path, None)),
        Damage::Incomplete { line: 7 }
    );
    let log = AuditLog::open(&path).expect("a cut-off line is repaired");
    assert_eq!(log.opened().len(), 1, "{:?}", log.opened());
    assert!(log.opened()[0].contains("line 7 was cut off by a failed write"));
    drop(log);
    let lines = lines_of(&path);
    assert_eq!(lines.len(), 7);
    assert!(std::fs::read(&path).expect("read").starts_with(&whole));
    let repaired: serde_json::Value = serde_json::from_str(&lines[6]).expect("json");
    assert_eq!(repaired["event"]["kind"], "repaired");
    assert_eq!(repaired["event"]["line"], 7);
    assert_eq!(repaired["event"]["bytes"], 22);
    let report = verify(&path, None).expect("a repaired log verifies");
    assert_eq!(report.lines, 7);
    assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
}

#[test]
fn a_garbled_last_line_stops_open() {
    let (_dir, path) = written_log();
    let mut lines = lines_of(&path);
    lines[5] = "garbage".into();
    write_lines(&path, &lines);
    let err = AuditLog::open(&path).expect_err("garbled log");
    assert!(matches!(
        err.damage(),
        Some(Damage::NotJson { line: 6, .. })
    ));
}

#[test]
fn an_overlong_line_is_refused_and_the_log_stays_usable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path).expect("open");
    let err = log
        .append(AuditEvent::Note {
            text: "x".repeat(MAX_LINE),
        })
        .expect_err("too large");
    assert!(matches!(err, AuditError::TooLarge { .. }));
    log.append(AuditEvent::Note { text: "ok".into() })
        .expect("append");
    assert_eq!(verify(&path, None).expect("verify").lines, 2);

    // A line over the limit written by someone else is named, not read.
    let mut text = std::fs::read(&path).expect("read");
    text.extend(std::iter::repeat_n(b'x', MAX_LINE + 1));
    text.push(b'\n');
    std::fs::write(&path, text).expect("write");
    assert_eq!(damage_of(verify(&path, None)), Damage::TooLong { line: 3 });
}

#[test]
fn newlines_in_events_stay_inside_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path).expect("open");
    log.append(AuditEvent::Note {
        text: "two\nlines\r\n".into(),
    })
    .expect("append");
    assert_eq!(lines_of(&path).len(), 2);
    assert_eq!(verify(&path, None).expect("verify").lines, 2);
}

#[test]
fn a_missing_log_is_an_io_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = verify(&dir.path().join("none.jsonl"), None).expect_err("missing");
    assert!(matches!(err, AuditError::Io { action: "open", .. }));
}

/// The log cut to its first `keep` lines, as a person with an editor might.
fn keep_lines(path: &Path, keep: usize) {
    let lines = lines_of(path);
    write_lines(path, &lines[..keep]);
}

#[test]
fn a_deleted_last_line_is_named_against_the_kept_head() {
    let (_dir, path) = written_log();
    keep_lines(&path, 5);
    let damage = damage_of(verify(&path, None));
    assert!(
        matches!(damage, Damage::Shortened { lines: 5, ref head, against: HeadSource::Kept } if head.seq == 6),
        "{damage:?}"
    );
    assert!(
        damage.to_string().ends_with("line 6 was removed"),
        "{damage}"
    );
}

#[test]
fn an_edited_last_line_is_named_against_the_kept_head() {
    let (_dir, path) = written_log();
    let mut lines = lines_of(&path);
    lines[5] = lines[5].replace("technician quit", "technician quiT");
    write_lines(&path, &lines);
    let damage = damage_of(verify(&path, None));
    assert!(
        matches!(damage, Damage::HeadChanged { ref head, .. } if head.seq == 6),
        "{damage:?}"
    );
}

#[test]
fn an_emptied_or_deleted_log_is_named() {
    let (_dir, path) = written_log();
    std::fs::write(&path, b"").expect("empty");
    assert!(matches!(
        damage_of(verify(&path, None)),
        Damage::Emptied { kept } if kept.seq == 6
    ));
    std::fs::remove_file(&path).expect("delete");
    assert!(matches!(
        damage_of(verify(&path, None)),
        Damage::LogMissing { kept } if kept.seq == 6
    ));
}

#[test]
fn a_log_started_afresh_is_named_and_noted_on_open() {
    let (_dir, path) = written_log();
    let old_id = verify(&path, None).expect("verify").log_id.expect("id");
    std::fs::remove_file(&path).expect("delete");
    let log = AuditLog::open(&path).expect("open anew");
    assert_ne!(log.log_id(), old_id);
    assert!(
        log.opened()
            .iter()
            .any(|n| n.contains("was started afresh")),
        "{:?}",
        log.opened()
    );
    drop(log);
    let damage = damage_of(verify(&path, None));
    assert!(
        matches!(&damage, Damage::Restarted { line: 1, kept } if kept.log_id == old_id && kept.seq == 6),
        "{damage:?}"
    );
}

#[test]
fn another_log_in_place_of_the_kept_one_is_named() {
    let (dir, path) = written_log();
    let other = dir.path().join("other").join("audit.jsonl");
    let mut log = AuditLog::open(&other).expect("open other");
    for event in events() {
        log.append(event).expect("append");
    }
    drop(log);
    std::fs::copy(&other, &path).expect("replace");
    assert!(matches!(
        damage_of(verify(&path, None)),
        Damage::Replaced { .. }
    ));
}

#[test]
fn a_given_head_must_be_reached() {
    let (_dir, path) = written_log();
    let head = verify(&path, None).expect("verify").head;
    verify(&path, Some(&head)).expect("reaches its own head");
    let ahead = Head {
        seq: 9,
        hash: head.hash.clone(),
    };
    assert!(matches!(
        damage_of(verify(&path, Some(&ahead))),
        Damage::Shortened {
            lines: 6,
            against: HeadSource::Given,
            ..
        }
    ));
    let other = Head {
        seq: 6,
        hash: "ab".repeat(32),
    };
    assert!(matches!(
        damage_of(verify(&path, Some(&other))),
        Damage::HeadChanged {
            against: HeadSource::Given,
            ..
        }
    ));
    assert_eq!(head.to_string().parse::<Head>(), Ok(head));
    assert!("6:xyz".parse::<Head>().is_err());
}

#[test]
fn a_second_writer_is_refused() {
    let (_dir, path) = written_log();
    let first = AuditLog::open(&path).expect("open");
    let err = AuditLog::open(&path).expect_err("locked");
    assert!(matches!(err, AuditError::Locked { .. }), "{err}");
    drop(first);
    AuditLog::open(&path).expect("open after the first closed");
}

#[test]
fn a_run_without_an_end_is_recorded_as_unfinished_on_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path).expect("open");
    for event in events().into_iter().take(3) {
        log.append(event).expect("append");
    }
    drop(log);
    let log = AuditLog::open(&path).expect("reopen");
    assert_eq!(log.opened().len(), 1, "{:?}", log.opened());
    drop(log);
    let lines = lines_of(&path);
    let last: serde_json::Value = serde_json::from_str(&lines[4]).expect("json");
    assert_eq!(last["event"]["kind"], "run_unfinished");
    assert_eq!(last["event"]["run"], 1);
    assert_eq!(last["event"]["script"], "flush-dns");
    // Recorded once: the next open finds nothing left to record.
    let log = AuditLog::open(&path).expect("reopen");
    assert!(log.opened().is_empty(), "{:?}", log.opened());
    verify(&path, None).expect("verify");
}

#[test]
fn append_returns_the_new_head_and_tells_watchers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path).expect("open");
    let mut heads = log.watch_head();
    let head = log
        .append(AuditEvent::Note { text: "hi".into() })
        .expect("append");
    assert_eq!(head.seq, 2);
    assert_eq!(head, log.head());
    assert!(heads.has_changed().expect("open"));
    assert_eq!(*heads.borrow_and_update(), head);
}

/// Writes a chain of `events` as a build without log ids did: no
/// `log_start` line and nothing kept beside the log.
fn write_chain_without_id(path: &Path, events: &[AuditEvent]) {
    let mut prev = FIRST_PREV.to_owned();
    let mut text = String::new();
    for (n, event) in events.iter().enumerate() {
        let line = serde_json::to_string(&serde_json::json!({
            "seq": n + 1,
            "time": "2026-03-01T09:30:00.123Z",
            "prev": prev,
            "event": event,
        }))
        .expect("json");
        prev = sha256_hex(line.as_bytes());
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(path, text).expect("write");
}

#[test]
fn a_log_from_before_ids_takes_one_and_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    let events = events();
    write_chain_without_id(&path, &events);
    let report = verify(&path, None).expect("an old log verifies");
    assert_eq!(report.log_id, None);

    let log = AuditLog::open(&path).expect("open");
    assert!(log.opened().is_empty(), "{:?}", log.opened());
    let log_id = log.log_id().to_owned();
    drop(log);
    let report = verify(&path, None).expect("verify");
    assert_eq!(report.lines, 6);
    assert_eq!(report.log_id, Some(log_id));
}

#[test]
fn a_damaged_kept_head_is_named_then_recorded_on_open() {
    let (_dir, path) = written_log();
    std::fs::write(state_path(&path), b"not a head").expect("write");
    assert!(matches!(
        damage_of(verify(&path, None)),
        Damage::StateUnreadable { .. }
    ));
    let log = AuditLog::open(&path).expect("open");
    assert_eq!(log.opened().len(), 1, "{:?}", log.opened());
    drop(log);
    let damage = damage_of(verify(&path, None));
    assert!(
        matches!(&damage, Damage::Recorded { line: 7, found } if found.contains("damaged head")),
        "{damage:?}"
    );
}

#[test]
fn opening_a_shortened_log_records_the_damage_and_goes_on() {
    let (_dir, path) = written_log();
    keep_lines(&path, 4);
    let log = AuditLog::open(&path).expect("open");
    // Line 4 starts a run whose end was cut off with the rest.
    assert_eq!(log.opened().len(), 2, "{:?}", log.opened());
    assert!(log.opened()[0].contains("lines 5 to 6 were removed"));
    assert!(log.opened()[1].contains("recorded as unfinished"));
    drop(log);
    let lines = lines_of(&path);
    assert_eq!(lines.len(), 6);
    let damaged: serde_json::Value = serde_json::from_str(&lines[4]).expect("json");
    assert_eq!(damaged["event"]["kind"], "damaged");
    // The damage stays named, though the log goes on from where it was cut.
    assert!(matches!(
        damage_of(verify(&path, None)),
        Damage::Recorded { line: 5, .. }
    ));
}

fn person_run(run: u64, script: &str) -> AuditEvent {
    AuditEvent::RunStart {
        run,
        script: script.into(),
        title: format!("Run {script}"),
        program: "true".into(),
        args: Vec::new(),
        catalog_digest: "ab".repeat(32),
        risk: "low".into(),
        by: StartedBy::Person,
    }
}

fn ended(run: u64, script: &str, code: i32) -> AuditEvent {
    AuditEvent::run_end(
        run,
        script,
        &RunEnd {
            status: RunStatus::Exited { code },
            duration_ms: 5,
            bytes: 0,
            dropped: 0,
            output_sha256: sha256_hex(b""),
        },
    )
}

#[test]
fn the_persons_runs_since_the_last_session_are_read_back_with_their_ends() {
    let (_dir, path) = written_log();
    {
        let mut log = AuditLog::open(&path).unwrap();
        // A technician's run, and the person's runs after the session.
        log.append(person_run(10, "flush-dns")).unwrap();
        log.append(ended(10, "flush-dns", 0)).unwrap();
        log.append(AuditEvent::RunChecked {
            run: 10,
            finding: "name-resolution-failing".into(),
            fixed: false,
        })
        .unwrap();
        log.append(person_run(13, "clear-my-cache")).unwrap();
        log.append(ended(13, "clear-my-cache", 0)).unwrap();
        log.append(AuditEvent::RunChecked {
            run: 13,
            finding: "disk-nearly-full".into(),
            fixed: true,
        })
        .unwrap();
        // One the agent was killed during.
        log.append(person_run(16, "clear-my-cache")).unwrap();
    }
    let log = AuditLog::open(&path).unwrap();
    let runs = log.person_runs();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert_eq!(
        (
            runs[0].script.as_str(),
            runs[0].status.as_str(),
            runs[0].fixed
        ),
        ("flush-dns", "exited with status 0", Some(false))
    );
    assert_eq!(runs[1].fixed, Some(true));
    assert!(runs[1].started_at.ends_with('Z'), "{}", runs[1].started_at);
    assert!(runs[2].status.starts_with("did not finish"), "{runs:?}");
    assert_eq!(runs[2].fixed, None);
    drop(log);

    // A session starts: the next session sees none of them again. The
    // technician's own runs never count.
    let mut log = AuditLog::open(&path).unwrap();
    log.append(events().remove(0)).unwrap();
    log.append(events().remove(2)).unwrap();
    drop(log);
    assert!(AuditLog::open(&path).unwrap().person_runs().is_empty());
}
