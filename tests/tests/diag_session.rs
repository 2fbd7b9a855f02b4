//! Diagnostics through a real session: the snapshot names what is wrong on
//! this machine, arrives quickly, and reads well as text and as JSON; the
//! one a console asks for with its opening waits for the person's yes, and
//! after a no is never sent.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use sprijin_proto::diag_text::NO_FINDINGS;
use sprijin_proto::message::session::{AgentMsg, Request};
use sprijin_tests::*;

/// The share of one core at which the agent calls a process a CPU hog
/// (`Thresholds::default().process_cpu_percent`).
const HOG_PERCENT: f64 = 80.0;

/// How long to keep looking for a busy loop the agent measures as busy: on a
/// machine shared with other work it may get less than a whole core for a
/// while, and then no rule should fire.
const HOG_DEADLINE: Duration = Duration::from_secs(180);

/// Held by each test that runs a busy loop, so two loops never compete with
/// each other for the same cores.
static ONE_BUSY_LOOP: Mutex<()> = Mutex::new(());

fn one_busy_loop() -> MutexGuard<'static, ()> {
    ONE_BUSY_LOOP.lock().unwrap_or_else(|e| e.into_inner())
}

/// One session running `args` against a fresh relay and agent; returns
/// what the console printed. A relay of its own each time keeps repeated
/// attempts clear of the relay's limit on claims per address.
fn session(args: &[&str]) -> String {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let out = console(&relay, &agent.code, args);
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    agent
        .proc
        .wait(STEP)
        .expect("the agent ends with the session");
    out.stdout
}

/// The busy loop's row in a top-by-CPU list, if it is there.
fn hog_row(processes: &Value, pid: u32) -> Option<&Value> {
    processes["top_cpu"]
        .as_array()?
        .iter()
        .find(|p| p["pid"] == pid)
}

/// Whether a JSON finding is the CPU-hog finding about `pid`.
fn names_hog(finding: &Value, pid: u32) -> bool {
    // The subject is the pid as text, not as a number.
    let pid = pid.to_string();
    finding["id"] == "process-cpu-hog" && finding["subject"] == pid.as_str()
}

/// Runs `attempt` (one session) until it sees the busy loop `pid` named in
/// a finding, and returns what that attempt returned. Each attempt also says
/// how busy the agent measured the loop (percent of one core). When that
/// measure and the findings come from one snapshot (`one_snapshot`), a
/// measure clearly over the threshold must come with the finding at once;
/// otherwise a new sample may fall between the two requests.
fn until_hog_named<T>(
    pid: u32,
    one_snapshot: bool,
    mut attempt: impl FnMut() -> (f64, bool, T),
) -> T {
    let deadline = Instant::now() + HOG_DEADLINE;
    let mut measured_so_far = Vec::new();
    loop {
        let (measured, named, out) = attempt();
        eprintln!("the agent measured the busy loop {pid} at {measured:.1}% of a core");
        if one_snapshot && measured >= HOG_PERCENT + 1.0 {
            assert!(
                named,
                "the busy loop {pid} measured {measured}% of a core but no finding names it"
            );
        }
        if named {
            return out;
        }
        measured_so_far.push(measured);
        assert!(
            Instant::now() < deadline,
            "the busy loop {pid} never got a whole core: measured {measured_so_far:?}"
        );
    }
}

/// A `--exec diag --json` session in which the busy loop is named; returns
/// the diag event.
fn diag_with_hog(pid: u32) -> Value {
    until_hog_named(pid, true, || {
        let events = json_lines(&session(&["--exec", "diag", "--json"]));
        let diag = events_named(&events, "diag");
        assert_eq!(diag.len(), 1, "{events:?}");
        let diag = diag[0].clone();
        let measured = hog_row(&diag["snapshot"]["processes"], pid)
            .and_then(|row| row["cpu_percent"].as_f64())
            .unwrap_or(0.0);
        let named = diag["findings"]
            .as_array()
            .expect("findings are a list")
            .iter()
            .any(|f| names_hog(f, pid));
        (measured, named, diag)
    })
}

#[test]
fn a_busy_process_is_named_in_a_cpu_hog_finding() {
    let _alone = one_busy_loop();
    let busy = BusyLoop::start(Duration::from_secs(2));
    let pid = busy.pid();
    let diag = diag_with_hog(pid);
    let finding = diag["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| names_hog(f, pid))
        .expect("the finding");
    assert_eq!(finding["severity"], "Warning");
    assert_eq!(finding["script"], "stop-process");
    let title = finding["title"].as_str().unwrap();
    assert!(
        title.starts_with("Process ") && title.contains(&format!("(pid {pid}) is using ")),
        "{title}"
    );
    let evidence = finding["evidence"].as_array().unwrap();
    assert!(
        evidence
            .iter()
            .any(|e| e["label"] == "pid" && e["value"] == pid.to_string().as_str()),
        "{finding}"
    );
    assert!(
        evidence.iter().any(|e| e["label"] == "cpu"
            && e["value"].as_str().unwrap().ends_with("% of one core")),
        "{finding}"
    );
    drop(busy);
}

#[test]
fn a_snapshot_through_the_session_returns_in_well_under_a_second() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let session = connect_in_process(&relay, &agent.code, "Ana").await;
        // The first may wait for the sampler's first reading.
        let (_, mut replies) = session.request(Request::Diagnostics).await.unwrap();
        assert!(matches!(
            next_reply(&mut replies).await,
            AgentMsg::Diagnostics { .. }
        ));
        let mut took = Vec::new();
        for _ in 0..5 {
            let asked = Instant::now();
            let (_, mut replies) = session.request(Request::Diagnostics).await.unwrap();
            match next_reply(&mut replies).await {
                AgentMsg::Diagnostics { report, .. } => {
                    assert!(report.snapshot.taken_at_ms > 0, "an empty snapshot");
                    assert!(report.snapshot.processes.count > 0);
                    // The relay's time came with the code: one machine, one
                    // clock, so no offset beyond rounding.
                    let clock = report
                        .snapshot
                        .relay_clock
                        .as_ref()
                        .expect("the snapshot compares the clock with the relay's");
                    assert!(clock.offset_secs.abs() <= 2, "{clock:?}");
                    assert_eq!(clock.relay, relay.addr);
                    assert!(report.findings.iter().all(|f| f.id != "clock-off"));
                }
                other => panic!("expected diagnostics, got {other:?}"),
            }
            took.push(asked.elapsed());
        }
        assert!(
            took.iter().all(|t| *t < Duration::from_secs(1)),
            "snapshot round trips took {took:?}"
        );
        session.close().await;
    });
    agent
        .proc
        .wait(STEP)
        .expect("the agent ends with the session");
}

/// What the console prints with a snapshot.
const DIAG_EVENT: &str = "\"event\":\"diag\"";

/// `--exec diag` sends its request with the opening, before the person is
/// asked; the agent answers it only once the person says yes.
#[test]
fn a_snapshot_asked_with_the_opening_waits_for_the_persons_yes() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &[], &[]);
    let mut console = Proc::spawn(console_command(
        &relay.addr,
        &relay.fingerprint,
        &agent.code,
        &[
            "--name", "Ana", "--json", "--exec", "diag", "--exec", "quit",
        ],
    ));
    agent
        .proc
        .stdout
        .wait_for("wants to see this machine's state", STEP)
        .expect("the person is asked");
    // The request is at the agent by now; while the question is open it
    // stays unanswered.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !console.stdout.text().contains(DIAG_EVENT),
        "a snapshot before the person's yes: {}",
        console.stdout.text()
    );
    agent.proc.answer(&["y"]);
    console
        .stdout
        .wait_for(DIAG_EVENT, STEP)
        .unwrap_or_else(|| panic!("no snapshot after the yes: {}", console.stderr.text()));
    let status = wait_end(&mut console, STEP, "the console");
    assert!(status.success(), "{}", console.stderr.text());
    wait_end(&mut agent.proc, STEP, "the agent");
}

/// The snapshot asked for with the opening answers the first diagnostics
/// request: it is request 1 and needs no request of its own; the next one
/// is asked anew.
#[test]
fn the_first_diagnostics_request_takes_the_snapshot_asked_with_the_opening() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    block_on(async {
        let code = agent.code.parse().expect("a valid code");
        let options = connect_options(&relay, "Ana");
        let session = tokio::time::timeout(
            STEP,
            sprijin_console::session::Session::connect_with(&code, &options, None, true),
        )
        .await
        .expect("the session opens in time")
        .expect("the session opens");
        for expected in [1, 2] {
            let (id, mut replies) = session.request(Request::Diagnostics).await.unwrap();
            assert_eq!(id, expected);
            match next_reply(&mut replies).await {
                AgentMsg::Diagnostics { report, .. } => {
                    assert!(report.snapshot.processes.count > 0);
                }
                other => panic!("expected diagnostics, got {other:?}"),
            }
        }
        session.close().await;
    });
    wait_end(&mut agent.proc, STEP, "the agent");
}

/// After the person's no, the snapshot the console asked for with its
/// opening is never sent, and the record says no.
#[test]
fn after_a_no_the_snapshot_asked_with_the_opening_is_never_sent() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["n"], &[]);
    let out = console(&relay, &agent.code, &["--json", "--exec", "diag"]);
    assert!(!out.status.success(), "{}", out.stdout);
    assert!(
        out.stderr.contains("the person declined the session"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains(DIAG_EVENT), "{}", out.stdout);
    assert!(!out.stdout.contains("\"snapshot\""), "{}", out.stdout);
    wait_end(&mut agent.proc, STEP, "the agent");
    let consent = audit_events(agent.data_dir.path(), "consent");
    assert_eq!(consent.len(), 1, "{consent:?}");
    assert_eq!(consent[0]["answer"], false, "{consent:?}");
}

/// Field names of a JSON object.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[test]
fn processes_and_findings_read_as_text_and_as_json() {
    // The busy loop makes sure there is a finding to show.
    let _alone = one_busy_loop();
    let busy = BusyLoop::start(Duration::from_secs(2));
    let pid = busy.pid();

    // Text, for people.
    let text = until_hog_named(pid, false, || {
        let text = session(&["--exec", "processes", "--exec", "findings"]);
        // The loop's row in the CPU table: PID CPU% MEMORY ...
        let measured = text
            .lines()
            .take_while(|l| *l != "Top by memory")
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|words| words.first() == Some(&pid.to_string().as_str()))
            .and_then(|words| words.get(1)?.parse().ok())
            .unwrap_or(0.0);
        let named = text.lines().any(|l| {
            l.starts_with("[WARNING] Process ") && l.contains(&format!("(pid {pid}) is using "))
        });
        (measured, named, text)
    });
    let lines: Vec<&str> = text.lines().collect();
    let by_cpu = lines
        .iter()
        .position(|l| l.starts_with("Top by CPU (") && l.contains(" processes, zombies: "))
        .unwrap_or_else(|| panic!("no CPU table:\n{text}"));
    let by_memory = lines
        .iter()
        .position(|l| *l == "Top by memory")
        .unwrap_or_else(|| panic!("no memory table:\n{text}"));
    assert!(by_cpu < by_memory);
    for table in [by_cpu, by_memory] {
        let header = lines[table + 1].split_whitespace().collect::<Vec<_>>();
        assert_eq!(
            header,
            ["PID", "CPU%", "MEMORY", "USER", "NAME", "COMMAND"],
            "{text}"
        );
        // Rows start with a pid.
        let row = lines[table + 2].split_whitespace().next().unwrap_or("");
        assert!(row.parse::<u32>().is_ok(), "{text}");
    }
    assert!(!text.contains(NO_FINDINGS), "{text}");
    let title = lines
        .iter()
        .position(|l| l.starts_with("[WARNING] Process ") && l.contains(&format!("(pid {pid})")))
        .unwrap_or_else(|| panic!("no finding names the busy loop {pid}:\n{text}"));
    let details: Vec<&str> = lines[title + 1..]
        .iter()
        .take_while(|l| l.starts_with("    "))
        .map(|l| l.trim())
        .collect();
    assert!(details.contains(&format!("pid: {pid}").as_str()), "{text}");
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("cpu: ") && d.ends_with("% of one core")),
        "{text}"
    );
    assert!(
        details.contains(&"suggested script: stop-process"),
        "{text}"
    );
    assert!(!text.contains('{'), "text mode printed JSON:\n{text}");

    // JSON, for programs.
    let events = until_hog_named(pid, false, || {
        let events = json_lines(&session(&[
            "--exec",
            "processes",
            "--exec",
            "findings",
            "--json",
        ]));
        let measured = events_named(&events, "processes")
            .first()
            .and_then(|e| hog_row(&e["processes"], pid))
            .and_then(|row| row["cpu_percent"].as_f64())
            .unwrap_or(0.0);
        let named = events_named(&events, "findings")
            .first()
            .and_then(|e| e["findings"].as_array())
            .is_some_and(|list| list.iter().any(|f| names_hog(f, pid)));
        (measured, named, events)
    });
    let processes = events_named(&events, "processes");
    assert_eq!(processes.len(), 1, "{events:?}");
    assert_eq!(keys(processes[0]), ["event", "processes"]);
    let table = &processes[0]["processes"];
    assert_eq!(keys(table), ["count", "top_cpu", "top_memory", "zombies"]);
    assert!(table["count"].as_u64().unwrap() > 0);
    let process_keys = [
        "command",
        "cpu_percent",
        "memory_bytes",
        "name",
        "pid",
        "start_time_secs",
        "status",
        "user",
    ];
    for list in ["top_cpu", "top_memory"] {
        let rows = table[list].as_array().unwrap();
        assert!(!rows.is_empty(), "{list} is empty");
        for row in rows {
            assert_eq!(keys(row), process_keys, "{row}");
        }
    }
    assert!(hog_row(table, pid).is_some(), "{table}");

    let findings = events_named(&events, "findings");
    assert_eq!(findings.len(), 1, "{events:?}");
    assert_eq!(keys(findings[0]), ["event", "findings"]);
    for finding in findings[0]["findings"].as_array().unwrap() {
        assert_eq!(
            keys(finding),
            [
                "evidence", "id", "params", "script", "severity", "subject", "title"
            ],
            "{finding}"
        );
        for evidence in finding["evidence"].as_array().unwrap() {
            assert_eq!(keys(evidence), ["label", "value"]);
        }
    }
    drop(busy);
}
