//! Faults made on purpose on a running session, and the person's yes at a
//! real terminal.
//!
//! Every run belongs to its session: whether the relay is killed or paused
//! for longer than the session's idle timeout, the console killed, or the technician
//! quits or cancels, the run is stopped, its start and end are in the audit
//! log, and no process of it is left. Killing the agent kills the run too.
//! A cancel withdraws a question still on the screen; a request id already
//! in use is refused. A "y" typed before a question appears never answers it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sprijin_console::catalog_tool;
use sprijin_proto::code::SessionCode;
use sprijin_proto::message::script::RunStatus;
use sprijin_proto::message::session::{AgentMsg, ConsoleMsg, Request};
use sprijin_tests::tmux::{Tmux, have_tmux};
use sprijin_tests::*;

/// Writes its own pid and a background child's pid into a folder, then
/// waits; only a stop ends it.
const SLOW: &str = r#"
id = "slow"
title = "Wait a long time"
description = "Starts a child that sleeps, writes both pids and waits."
risk = "low"
platforms = ["linux"]
timeout_secs = 600
program = "sh"
args = ["-c", 'echo $$ > "$1/leader"; sleep 600 & echo $! > "$1/child"; wait', "sh", "{dir}"]

[params.dir]
pattern = '^/[A-Za-z0-9._/-]{1,200}$'
"#;

/// Says hello and ends.
const HELLO: &str = r#"
id = "hello"
title = "Say hello"
description = "Prints hello."
risk = "low"
platforms = ["linux"]
timeout_secs = 30
program = "echo"
args = ["hello"]
"#;

/// The session idle timeout these tests give both programs, in seconds:
/// how long a session survives silence (a relay gone, a peer killed).
const IDLE: &str = "10";

/// Once a session is silent for [`IDLE`] it is dead, plus room for
/// stopping the run on a loaded machine.
const LOST_WITHIN: Duration = Duration::from_secs(40);

/// How soon the person's stop ends the agent whatever the console does:
/// runs get their stop grace, sending a second, a loaded machine slack.
const PERSON_STOP_WITHIN: Duration = Duration::from_secs(10);

/// The pids a run of [`SLOW`] wrote: the script and its background child.
struct RunPids {
    leader: u32,
    child: u32,
}

impl RunPids {
    /// Waits for a run of [`SLOW`] in `dir` to have started both.
    fn wait(dir: &Path) -> RunPids {
        let child =
            wait_for_pid_file(&dir.join("child"), STEP).expect("the script wrote its child's pid");
        let leader =
            wait_for_pid_file(&dir.join("leader"), STEP).expect("the script wrote its pid");
        assert!(!process_gone(leader) && !process_gone(child));
        RunPids { leader, child }
    }

    fn assert_gone(&self, when: &str) {
        for pid in [self.leader, self.child] {
            assert!(
                wait_until_gone(pid, Duration::from_secs(10)),
                "process {pid} of the run is still there {when}"
            );
        }
    }
}

/// A folder for one run's pid files.
fn run_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The log holds the run's start and then its end, which says it was
/// stopped because the session ended (with `why` in the reason), and the
/// session's end after it.
fn assert_run_ended_with_session(data_dir: &Path, why: &str) {
    let kinds = audit_kinds(data_dir);
    let start = kinds.iter().position(|k| k == "run_start");
    let end = kinds.iter().position(|k| k == "run_end");
    let session_end = kinds.iter().rposition(|k| k == "session_end");
    assert!(
        matches!((start, end, session_end), (Some(s), Some(e), Some(x)) if s < e && e < x),
        "the log should hold run_start, run_end, session_end in order: {kinds:?}"
    );
    let ends = audit_events(data_dir, "run_end");
    let status = ends[0]["status"].as_str().unwrap_or_default();
    assert!(
        status.starts_with("cancelled: the session ended") && status.contains(why),
        "run end status: {status}"
    );
    let reason = audit_events(data_dir, "session_end")[0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains(why), "session end reason: {reason}");
}

/// An agent trusting `cat`, and an interactive line console (commands on
/// its standard input) with `cat`, connected; the view is approved. The
/// session stays on the relay (`--direct never`): these are the relay's
/// faults, which a direct session does not notice (`direct_nat.rs`).
fn session_with_console(
    relay: &RelayProc,
    cat: &TestCatalog,
    answers: &[&str],
) -> (AgentProc, Proc) {
    let agent = AgentProc::start(
        relay,
        answers,
        &[
            "--trusted-key",
            cat.public_arg(),
            "--session-idle-timeout",
            IDLE,
            "--direct",
            "never",
        ],
    );
    let console = console_interactive(
        relay,
        &agent.code,
        &["--catalog", cat.dir_arg(), "--session-idle-timeout", IDLE],
    );
    assert!(
        console
            .stdout
            .wait_for("accepted the catalog", STEP)
            .is_some(),
        "the console did not connect: {}\n{}",
        console.stdout.text(),
        console.stderr.text()
    );
    (agent, console)
}

/// Types `run slow dir=DIR` at the console and waits for the run to go.
fn start_slow_run(console: &mut Proc, dir: &Path) -> RunPids {
    console.answer(&[&format!("run slow dir={}", dir.display())]);
    assert!(
        console.stdout.wait_for("approved; running", STEP).is_some(),
        "the run did not start: {}\n{}",
        console.stdout.text(),
        console.stderr.text()
    );
    RunPids::wait(dir)
}

/// The agent was told the connection was lost, not that anyone said goodbye.
fn assert_agent_lost_connection(agent: &AgentProc) {
    let said = agent.proc.stdout.text();
    assert!(said.contains("the connection was lost"), "{said}");
    assert!(!said.contains("the technician ended the session"), "{said}");
    assert!(said.contains("stopping 1 run(s) of this session"), "{said}");
    assert_no_panic(&agent.proc.stderr.text());
}

// 1. Faults mid-run: the run ends on the record and leaves nothing behind.

#[test]
fn a_relay_killed_mid_run_ends_the_run_on_the_record() {
    let cat = TestCatalog::signed(&[("slow", SLOW)]);
    let mut relay = RelayProc::start(&[]);
    let (mut agent, mut console) = session_with_console(&relay, &cat, &["y", "y"]);
    let pids = start_slow_run(&mut console, &run_dir(cat.root.path(), "run"));

    relay.proc.child.kill().unwrap();
    let killed = Instant::now();
    let status = wait_end(&mut agent.proc, LOST_WITHIN, "the agent");
    assert!(!status.success());
    assert!(killed.elapsed() < LOST_WITHIN);
    assert_agent_lost_connection(&agent);
    assert_run_ended_with_session(agent.data_dir.path(), "the connection was lost");
    pids.assert_gone("after the relay died");
    // The technician is told the same.
    wait_end(&mut console, LOST_WITHIN, "the console");
    assert!(
        console.stderr.text().contains("the connection was lost"),
        "{}",
        console.stderr.text()
    );
}

#[test]
fn a_relay_paused_mid_run_ends_the_session_within_the_idle_timeout() {
    let cat = TestCatalog::signed(&[("slow", SLOW)]);
    let relay = RelayProc::start(&[]);
    let (mut agent, mut console) = session_with_console(&relay, &cat, &["y", "y"]);
    let pids = start_slow_run(&mut console, &run_dir(cat.root.path(), "run"));

    let stopped = Command::new("kill")
        .args(["-STOP", &relay.proc.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let paused = Instant::now();
    let status = wait_end(&mut agent.proc, LOST_WITHIN, "the agent");
    assert!(!status.success());
    assert!(paused.elapsed() < LOST_WITHIN);
    assert_agent_lost_connection(&agent);
    assert_run_ended_with_session(agent.data_dir.path(), "the connection was lost");
    pids.assert_gone("after the relay stopped answering");
    // Dropping the relay kills it, paused or not.
}

#[test]
fn a_console_killed_mid_run_ends_the_run_on_the_record() {
    let cat = TestCatalog::signed(&[("slow", SLOW)]);
    let relay = RelayProc::start(&[]);
    let (mut agent, mut console) = session_with_console(&relay, &cat, &["y", "y"]);
    let pids = start_slow_run(&mut console, &run_dir(cat.root.path(), "run"));

    console.child.kill().unwrap();
    let status = wait_end(&mut agent.proc, LOST_WITHIN, "the agent");
    assert!(!status.success());
    assert_agent_lost_connection(&agent);
    assert_run_ended_with_session(agent.data_dir.path(), "the connection was lost");
    pids.assert_gone("after the console died");
}

#[test]
fn an_agent_killed_mid_run_leaves_no_process_of_the_run() {
    let cat = TestCatalog::signed(&[("slow", SLOW)]);
    let relay = RelayProc::start(&[]);
    let (mut agent, mut console) = session_with_console(&relay, &cat, &["y", "y"]);
    let pids = start_slow_run(&mut console, &run_dir(cat.root.path(), "run"));

    agent.proc.child.kill().unwrap();
    let _ = agent.proc.child.wait();
    pids.assert_gone("after the agent was killed");
    // The start was on disk before the run began.
    assert_eq!(audit_events(agent.data_dir.path(), "run_start").len(), 1);
}

// 2. A silent connection is a lost connection, never a goodbye.

#[test]
fn a_session_silent_for_its_idle_timeout_is_a_lost_connection_on_both_sides() {
    let cat = TestCatalog::signed(&[("slow", SLOW)]);
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(
        &relay,
        &["y", "y"],
        &[
            "--trusted-key",
            cat.public_arg(),
            "--session-idle-timeout",
            "4",
            // The relay falls silent: the session must be on it.
            "--direct",
            "never",
        ],
    );
    let mut console = console_interactive(
        &relay,
        &agent.code,
        &["--catalog", cat.dir_arg(), "--session-idle-timeout", "4"],
    );
    assert!(
        console
            .stdout
            .wait_for("accepted the catalog", STEP)
            .is_some(),
        "{}\n{}",
        console.stdout.text(),
        console.stderr.text()
    );
    let pids = start_slow_run(&mut console, &run_dir(cat.root.path(), "run"));

    // The relay stops forwarding: nothing of the session arrives any more.
    let stopped = Command::new("kill")
        .args(["-STOP", &relay.proc.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let status = wait_end(&mut agent.proc, STEP, "the agent");
    assert!(!status.success());
    assert_agent_lost_connection(&agent);
    assert!(
        agent.proc.stdout.text().contains("idle timeout"),
        "{}",
        agent.proc.stdout.text()
    );
    assert_run_ended_with_session(agent.data_dir.path(), "the connection was lost");
    pids.assert_gone("after the session fell silent");

    let status = wait_end(&mut console, STEP, "the console");
    assert!(!status.success());
    let said = console.stderr.text();
    assert!(said.contains("the connection was lost"), "{said}");
    assert!(said.contains("idle timeout"), "{said}");
    let _ = Command::new("kill")
        .args(["-CONT", &relay.proc.child.id().to_string()])
        .status();
}

// 3. The technician cancels, quits or reuses an id.

#[test]
fn cancel_withdraws_a_question_still_on_the_screen() {
    let cat = TestCatalog::signed(&[("slow", SLOW)]);
    let dir = run_dir(cat.root.path(), "run");
    let relay = RelayProc::start(&[]);
    // Only the view is answered; the run's question stays on the screen.
    let mut agent = AgentProc::start(&relay, &["y"], &["--trusted-key", cat.public_arg()]);
    let signed = catalog_tool::load(&cat.dir).unwrap();
    let dir_arg = dir.display().to_string();
    block_on(async {
        // A hostile name cannot reach the person's terminal raw.
        let session = connect_in_process(&relay, &agent.code, "Ana\x1b[2J\u{202e}").await;
        send_catalog(&session, signed).await;
        let (run, mut replies) = session
            .request(Request::Run {
                script: "slow".parse().unwrap(),
                params: vec![("dir".into(), dir_arg)],
            })
            .await
            .unwrap();
        let question = tokio::task::spawn_blocking({
            let stdout = agent.proc.stdout.clone();
            move || stdout.wait_for(RUN_QUESTION, STEP)
        });
        assert!(
            question.await.unwrap().is_some(),
            "the person was not asked"
        );

        let (_, mut cancel) = session.request(Request::Cancel { run }).await.unwrap();
        match next_reply(&mut cancel).await {
            AgentMsg::Ack { .. } => {}
            other => panic!("the cancel was not taken: {other:?}"),
        }
        match next_reply(&mut replies).await {
            AgentMsg::Refused { reason, .. } => {
                assert!(reason.contains("withdrew"), "{reason}")
            }
            other => panic!("the run was not withdrawn: {other:?}"),
        }
        session.close().await;
    });
    // A yes typed now answers nothing.
    agent.proc.answer(&["y"]);
    let status = wait_end(&mut agent.proc, STEP, "the agent");
    assert!(status.success(), "{}", agent.proc.stderr.text());
    let said = agent.proc.stdout.text();
    assert!(
        said.contains("the technician withdrew this request"),
        "{said}"
    );
    let question = said
        .lines()
        .find(|l| l.contains("wants to see this machine's state"))
        .expect("the view question");
    assert!(
        !question.contains('\x1b') && !question.contains('\u{202e}'),
        "{question:?}"
    );
    let kinds = audit_kinds(agent.data_dir.path());
    assert!(!kinds.iter().any(|k| k == "run_start"), "{kinds:?}");
    let refused = audit_events(agent.data_dir.path(), "run_refused");
    assert_eq!(refused.len(), 1, "{kinds:?}");
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("withdrew"),
        "{refused:?}"
    );
    assert!(!dir.join("leader").exists(), "the script ran");
}

/// A console built from the protocol library, so it can send what the real
/// console never would: two requests with the same id.
struct Raw(RawConsole);

impl Raw {
    async fn connect(relay: &RelayProc, code: &str) -> Raw {
        let code: SessionCode = code.parse().unwrap();
        let mut raw = RawConsole::connect(&relay.addr, &relay.fingerprint, &code)
            .await
            .expect("the session is set up");
        raw.writer
            .write_msg(&ConsoleMsg::Identify { presentation: None })
            .await
            .unwrap();
        let welcome = loop {
            match tokio::time::timeout(STEP, raw.inbox.recv()).await.unwrap() {
                Some(AgentMsg::Identity { .. }) | Some(AgentMsg::AuditHead { .. }) => continue,
                other => break other,
            }
        };
        assert!(matches!(
            welcome,
            Some(AgentMsg::Welcome { granted: true, .. })
        ));
        Raw(raw)
    }

    async fn send(&mut self, id: u32, request: Request) {
        self.0
            .writer
            .write_msg(&ConsoleMsg::Request { id, request })
            .await
            .unwrap();
    }

    /// Waits for the agent to ask about run `id` of [`SLOW`] in `dir`,
    /// answers yes at its terminal, and waits until the run started both
    /// its processes.
    async fn approved(
        &mut self,
        id: u32,
        agent_stdout: Lines,
        stdin: &mut Option<std::process::ChildStdin>,
        dir: &Path,
    ) -> RunPids {
        let asked = tokio::task::spawn_blocking(move || agent_stdout.wait_for(RUN_QUESTION, STEP));
        assert!(asked.await.unwrap().is_some());
        if let Some(stdin) = stdin {
            use std::io::Write;
            writeln!(stdin, "y").unwrap();
        }
        assert!(matches!(
            self.next().await,
            AgentMsg::RunStarted { id: started, .. } if started == id
        ));
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || RunPids::wait(&dir))
            .await
            .unwrap()
    }

    /// The next message that is not run output.
    async fn next(&mut self) -> AgentMsg {
        loop {
            let msg = tokio::time::timeout(STEP, self.0.inbox.recv())
                .await
                .expect("the agent answers in time")
                .expect("the session goes on");
            if !matches!(msg, AgentMsg::Output { .. } | AgentMsg::AuditHead { .. }) {
                return msg;
            }
        }
    }
}

#[test]
fn a_request_id_already_in_use_is_refused_and_the_first_run_can_still_be_cancelled() {
    let cat = TestCatalog::signed(&[("slow", SLOW)]);
    let dir = run_dir(cat.root.path(), "run");
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y"], &["--trusted-key", cat.public_arg()]);
    let signed = catalog_tool::load(&cat.dir).unwrap();
    let run = Request::Run {
        script: "slow".parse().unwrap(),
        params: vec![("dir".into(), dir.display().to_string())],
    };
    let agent_stdout = agent.proc.stdout.clone();
    let mut stdin = agent.proc.stdin.take();
    block_on(async {
        let mut console = Raw::connect(&relay, &agent.code).await;
        console.send(7, Request::Catalog(signed)).await;
        assert!(matches!(
            console.next().await,
            AgentMsg::CatalogAccepted { id: 7, .. }
        ));
        console.send(8, run.clone()).await;
        console.send(8, run).await;
        match console.next().await {
            AgentMsg::Refused { id: 8, reason } => {
                assert!(reason.contains("already in use"), "{reason}")
            }
            other => panic!("the second request was not refused: {other:?}"),
        }
        // The person approves the first request.
        let pids = console.approved(8, agent_stdout, &mut stdin, &dir).await;
        console.send(9, Request::Cancel { run: 8 }).await;
        let mut acked = false;
        let end = loop {
            match console.next().await {
                AgentMsg::Ack { id: 9 } => acked = true,
                AgentMsg::RunEnded { id: 8, end } => break end,
                other => panic!("unexpected: {other:?}"),
            }
        };
        assert!(acked);
        assert_eq!(end.status, RunStatus::Cancelled);
        tokio::task::spawn_blocking(move || pids.assert_gone("after the cancel"))
            .await
            .unwrap();
        console.0.writer.write_msg(&ConsoleMsg::Bye).await.unwrap();
        let _ = console.0.writer.get_mut().finish();
        while tokio::time::timeout(STEP, console.0.inbox.recv())
            .await
            .is_ok_and(|m| m.is_some())
        {}
    });
    let status = wait_end(&mut agent.proc, STEP, "the agent");
    assert!(status.success(), "{}", agent.proc.stdout.text());
    assert_eq!(audit_events(agent.data_dir.path(), "run_start").len(), 1);
    let ends = audit_events(agent.data_dir.path(), "run_end");
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["status"], "cancelled");
}

/// How many diagnostics requests a console that never reads sends: their
/// answers are several times the session's stream window, so the agent's
/// outgoing queue is full long before the last.
const FLOOD: u32 = 1000;

#[test]
fn ctrl_c_ends_the_session_even_when_the_console_never_reads() {
    let cat = TestCatalog::signed(&[("slow", SLOW)]);
    let dir = run_dir(cat.root.path(), "run");
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y"], &["--trusted-key", cat.public_arg()]);
    let signed = catalog_tool::load(&cat.dir).unwrap();
    let agent_stdout = agent.proc.stdout.clone();
    let mut stdin = agent.proc.stdin.take();
    // The console lives on this runtime until the test ends, answering
    // keep-alives, so the connection is never lost.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (pids, _console) = runtime.block_on(async {
        let mut console = Raw::connect(&relay, &agent.code).await;
        console.send(1, Request::Catalog(signed)).await;
        assert!(matches!(
            console.next().await,
            AgentMsg::CatalogAccepted { id: 1, .. }
        ));
        let run = Request::Run {
            script: "slow".parse().unwrap(),
            params: vec![("dir".into(), dir.display().to_string())],
        };
        console.send(2, run).await;
        let pids = console.approved(2, agent_stdout, &mut stdin, &dir).await;
        // From now on the console keeps its connection but reads nothing,
        // and asks for far more than the agent can send.
        console.0.hold_control.send_replace(true);
        for id in 0..FLOOD {
            console.send(100 + id, Request::Diagnostics).await;
        }
        // The agent's control stream is blocked by flow control once the
        // console's window is full; it says so with STREAM_DATA_BLOCKED.
        let deadline = Instant::now() + STEP;
        while console.0.connection.stats().frame_rx.stream_data_blocked == 0 {
            assert!(
                Instant::now() < deadline,
                "the agent never filled the console's window"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (pids, console)
    });
    let interrupted = Instant::now();
    agent.proc.interrupt();
    let status = wait_end(&mut agent.proc, PERSON_STOP_WITHIN, "the interrupted agent");
    let took = interrupted.elapsed();
    assert!(
        took < PERSON_STOP_WITHIN,
        "the agent took {took:?} to end after Ctrl-C"
    );
    assert!(status.code().is_some(), "the agent did not exit by itself");
    pids.assert_gone("after the person stopped the session");
    assert_run_ended_with_session(agent.data_dir.path(), "the person ended the session");
    assert!(audit_verify(agent.data_dir.path()).status.success());
}

/// A file larger than a console that stops reading takes in (its inbox
/// and the connection's windows), so the transfer is under way when the
/// person stops.
const LARGE_FILE: usize = 100 * 1024 * 1024;

#[test]
fn ctrl_c_mid_transfer_records_what_went_out() {
    use sha2::Digest;
    let remote = tempfile::tempdir().unwrap();
    let path = remote.path().join("big.bin");
    let content: Vec<u8> = (0..LARGE_FILE).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let relay = RelayProc::start(&[]);
    let cap = (2 * LARGE_FILE).to_string();
    let mut agent = AgentProc::start(&relay, &["y", "y"], &["--fetch-cap", &cap]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The console stays on this runtime until the test ends.
    let _console = runtime.block_on(async {
        let mut console = Raw::connect(&relay, &agent.code).await;
        let fetch = Request::Fetch {
            path: path.display().to_string(),
        };
        console.send(1, fetch).await;
        loop {
            if let AgentMsg::FileStart { size, .. } = console.next().await {
                assert_eq!(size, LARGE_FILE as u64);
                break;
            }
        }
        // From here the console reads nothing: once what it holds is
        // full, the agent's stream is blocked by flow control.
        let deadline = Instant::now() + STEP;
        while console.0.connection.stats().frame_rx.stream_data_blocked == 0 {
            assert!(
                Instant::now() < deadline,
                "the agent never filled the console's window"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        console
    });
    agent.proc.interrupt();
    wait_end(&mut agent.proc, PERSON_STOP_WITHIN, "the interrupted agent");
    let kinds = audit_kinds(agent.data_dir.path());
    let refused = audit_events(agent.data_dir.path(), "file_refused");
    assert_eq!(refused.len(), 1, "{kinds:?}");
    let reason = refused[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("was not sent whole"), "{reason}");
    let sent = refused[0]["sent_bytes"].as_u64().unwrap_or_default() as usize;
    assert!(sent > 0 && sent < LARGE_FILE, "{refused:?}");
    assert_eq!(
        refused[0]["sent_sha256"],
        hex::encode(sha2::Sha256::digest(&content[..sent])),
        "the digest is of the {sent} bytes that went out"
    );
    assert!(audit_events(agent.data_dir.path(), "file_sent").is_empty());
    let refused_at = kinds.iter().position(|k| k == "file_refused");
    let ended_at = kinds.iter().rposition(|k| k == "session_end");
    assert!(refused_at < ended_at, "{kinds:?}");
    assert!(audit_verify(agent.data_dir.path()).status.success());
}

#[test]
fn ctrl_c_while_the_console_is_setting_up_ends_sharing_at_once() {
    let relay = RelayProc::start(&[]);
    let data_dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin("sprijin-agent"));
    cmd.args(["share", "--relay", &relay.addr])
        .args(["--relay-fingerprint", &relay.fingerprint])
        .arg("--data-dir")
        .arg(data_dir.path())
        .env("RUST_LOG", "sprijin_agent=info");
    let mut agent = Proc::spawn(cmd);
    let code: SessionCode = agent.code().parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A console that claims the code and then never connects end to end:
    // the agent waits for it, until the person stops.
    let _claimed = runtime.block_on(claim(&relay.addr, &relay.fingerprint, &code));
    assert!(
        agent.stderr.wait_for("paired; waiting", STEP).is_some(),
        "the agent was not paired: {}",
        agent.stderr.text()
    );
    let interrupted = Instant::now();
    agent.interrupt();
    wait_end(&mut agent, PERSON_STOP_WITHIN, "the interrupted agent");
    let took = interrupted.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "Ctrl-C took {took:?} during set-up"
    );
    let notes = audit_events(data_dir.path(), "note");
    assert!(
        notes.iter().any(|n| n["text"]
            .as_str()
            .unwrap_or_default()
            .contains("stopped sharing while Ana")),
        "{notes:?}"
    );
}

#[test]
fn cancel_and_quit_typed_at_the_line_console_work_while_a_run_goes_on() {
    let cat = TestCatalog::signed(&[("slow", SLOW)]);
    let relay = RelayProc::start(&[]);
    let (mut agent, mut console) = session_with_console(&relay, &cat, &["y", "y", "y"]);

    // The catalog was request 1, so this run is 2.
    let first = start_slow_run(&mut console, &run_dir(cat.root.path(), "first"));
    console.answer(&["cancel 2"]);
    assert!(
        console
            .stdout
            .wait_for("asked the agent to cancel run 2", STEP)
            .is_some(),
        "{}\n{}",
        console.stdout.text(),
        console.stderr.text()
    );
    assert!(console.stdout.wait_for("run 2: cancelled", STEP).is_some());
    first.assert_gone("after the cancel");

    // The prompt is free during a run: quit ends the session at once. (The
    // cancel was request 3, so this run is 4.)
    let second = start_slow_run_numbered(&mut console, &run_dir(cat.root.path(), "second"), 4);
    console.answer(&["quit"]);
    let status = wait_end(&mut console, Duration::from_secs(15), "the console");
    assert!(
        console
            .stdout
            .text()
            .contains("run 4 is still going: the agent stops it as the session ends"),
        "{}",
        console.stdout.text()
    );
    let _ = status;
    let status = wait_end(&mut agent.proc, STEP, "the agent");
    assert!(status.success(), "{}", agent.proc.stdout.text());
    second.assert_gone("after the technician quit");
    let ends = audit_events(agent.data_dir.path(), "run_end");
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert_eq!(ends[0]["status"], "cancelled");
    assert_eq!(
        ends[1]["status"],
        "cancelled: the session ended (the technician ended the session)"
    );
    assert_eq!(audit_events(agent.data_dir.path(), "run_start").len(), 2);
    assert!(
        agent
            .proc
            .stdout
            .text()
            .contains("stopping 1 run(s) of this session: the technician ended the session")
    );
}

/// Like [`start_slow_run`], waiting for run `id` to be approved.
fn start_slow_run_numbered(console: &mut Proc, dir: &Path, id: u32) -> RunPids {
    console.answer(&[&format!("run slow dir={}", dir.display())]);
    assert!(
        console
            .stdout
            .wait_for(&format!("run {id}: approved; running"), STEP)
            .is_some(),
        "run {id} did not start: {}\n{}",
        console.stdout.text(),
        console.stderr.text()
    );
    RunPids::wait(dir)
}

// 4. At a real terminal, a yes answers only the question on the screen.

/// The prompt of a yes/no question at the terminal.
const PROMPT: &str = "allow? [y/N]";

/// Starts the agent at a real terminal (tmux) with `cat`'s key trusted and
/// a 3 s consent timeout; returns the terminal and the code it shows.
fn agent_at_a_terminal(
    name: &str,
    relay: &RelayProc,
    cat: &TestCatalog,
    data: &Path,
) -> (Tmux, SessionCode) {
    let command = format!(
        "{} share --relay {} --relay-fingerprint {} --data-dir {} --trusted-key {} --consent-timeout 3 2>/dev/null; echo AGENT-EXITED; sleep 60",
        bin("sprijin-agent").display(),
        relay.addr,
        relay.fingerprint,
        data.display(),
        cat.public_arg(),
    );
    let tmux = Tmux::start(name, (200, 50), &command);
    let screen = tmux.wait_until("the code", STEP, |s| s.contains("code: "));
    let code = screen
        .lines()
        .find_map(|l| l.trim().strip_prefix("code: "))
        .expect("a code line")
        .trim()
        .parse()
        .unwrap();
    (tmux, code)
}

/// Connects a console session to `code` on a task of `runtime`.
fn connect_console(
    runtime: &tokio::runtime::Runtime,
    relay: &RelayProc,
    code: SessionCode,
) -> tokio::task::JoinHandle<sprijin_console::session::Session> {
    let options = connect_options(relay, "Ana");
    runtime.spawn(async move {
        sprijin_console::session::Session::connect(&code, &options)
            .await
            .expect("the session opens")
    })
}

#[test]
fn a_yes_typed_before_the_question_does_not_approve_the_run() {
    if !have_tmux() {
        return;
    }
    let cat = TestCatalog::signed(&[("hello", HELLO)]);
    let relay = RelayProc::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let (tmux, code) = agent_at_a_terminal("consent", &relay, &cat, data.path());
    let signed = catalog_tool::load(&cat.dir).unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let session = connect_console(&runtime, &relay, code);
    // The person allows the view, then types one more yes, with no run
    // question on the screen.
    tmux.wait_until("the view question", STEP, |s| s.contains(PROMPT));
    tmux.type_line("y");
    tmux.wait_until("the view approved", STEP, |s| s.contains("approved"));
    tmux.type_line("yes");
    // The terminal echoes what it holds for the agent.
    tmux.wait_until("the extra yes", STEP, |s| {
        s.lines().any(|l| l.trim() == "yes")
    });
    let session = runtime.block_on(session).unwrap();

    runtime.block_on(async {
        send_catalog(&session, signed).await;
        let hello = || Request::Run {
            script: "hello".parse().unwrap(),
            params: vec![],
        };
        // The early yes must not answer this: the question times out.
        let (_, mut replies) = session.request(hello()).await.unwrap();
        match next_reply(&mut replies).await {
            AgentMsg::Refused { reason, .. } => {
                assert!(reason.contains("did not answer in time"), "{reason}")
            }
            other => panic!("the early yes approved the run: {other:?}"),
        }
        tmux.wait_until("the time-out said", STEP, |s| {
            s.contains("no answer within 3 s, so this is declined")
        });

        // A yes typed once the question's prompt shows does approve.
        let (_, mut replies) = session.request(hello()).await.unwrap();
        tmux.wait_until("the second run question's prompt", STEP, |s| {
            s.matches(RUN_QUESTION).count() == 2 && s.matches(PROMPT).count() == 3
        });
        tmux.type_line("y");
        match next_reply(&mut replies).await {
            AgentMsg::RunStarted { .. } => {}
            other => panic!("the run was not approved: {other:?}"),
        }
        session.close().await;
    });
    tmux.wait_until("the agent's end", STEP, |s| s.contains("AGENT-EXITED"));

    let consents: Vec<bool> = audit_events(data.path(), "consent")
        .iter()
        .map(|c| c["answer"].as_bool().unwrap_or(true))
        .collect();
    assert_eq!(consents, vec![true, false, true]);
    assert_eq!(audit_events(data.path(), "run_refused").len(), 1);
    assert_eq!(audit_events(data.path(), "run_start").len(), 1);
}

#[test]
fn a_quick_second_yes_does_not_approve_the_next_question_unread() {
    if !have_tmux() {
        return;
    }
    let cat = TestCatalog::signed(&[("hello", HELLO)]);
    let relay = RelayProc::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let (tmux, code) = agent_at_a_terminal("quick-yes", &relay, &cat, data.path());
    let signed = catalog_tool::load(&cat.dir).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let session = connect_console(&runtime, &relay, code);
    tmux.wait_until("the view question", STEP, |s| s.contains(PROMPT));
    tmux.type_line("y");
    let session = runtime.block_on(session).unwrap();

    runtime.block_on(async {
        send_catalog(&session, signed).await;
        let hello = || Request::Run {
            script: "hello".parse().unwrap(),
            params: vec![],
        };
        // Two run questions at once: the second waits for the first.
        let (_, mut first) = session.request(hello()).await.unwrap();
        let (_, mut second) = session.request(hello()).await.unwrap();
        tmux.wait_until("the first run question's prompt", STEP, |s| {
            s.matches(PROMPT).count() == 2
        });
        // The person answers it, and types the next "y" as soon as the
        // next question starts to show: before they could have read it.
        tmux.type_line("y");
        tmux.wait_until("the second run question", STEP, |s| {
            s.matches(RUN_QUESTION).count() == 2
        });
        tmux.type_line("y");
        let typed_at = tmux.screen();
        assert!(
            typed_at.matches(PROMPT).count() == 2,
            "the next question's prompt already showed when the quick yes was typed (it must wait a second, or this machine took that long to type):\n{typed_at}"
        );
        // Whichever was asked first ran; the other was not answered.
        let (first, second) = tokio::join!(next_reply(&mut first), next_reply(&mut second));
        let mut outcomes: Vec<String> = [first, second]
            .iter()
            .map(|reply| match reply {
                AgentMsg::RunStarted { .. } => "started".to_string(),
                AgentMsg::Refused { reason, .. } => reason.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        outcomes.sort();
        assert_eq!(outcomes[0], "started", "{outcomes:?}");
        assert!(
            outcomes[1].contains("did not answer in time"),
            "the quick yes answered the unread question: {outcomes:?}"
        );
        session.close().await;
    });
    tmux.wait_until("the agent's end", STEP, |s| s.contains("AGENT-EXITED"));
    let consents: Vec<bool> = audit_events(data.path(), "consent")
        .iter()
        .map(|c| c["answer"].as_bool().unwrap_or(true))
        .collect();
    assert_eq!(consents, vec![true, true, false]);
}
