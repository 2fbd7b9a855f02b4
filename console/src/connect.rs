//! `connect CODE`: open the session, send the catalog, then run the
//! technician's commands, from `--exec` or typed one per line.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::SystemTime;

use sprijin_proto::code::SessionCode;
use sprijin_proto::message::session::{AgentMsg, RequestId};
use sprijin_proto::text::clean_line;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::command::Command;
use crate::credential_tool::HeldCredential;
use crate::driver::{Driver, DriverError, Flow, LocalCatalog, RunProgress};
use crate::log::SessionLog;
use crate::report::SessionRecord;
use crate::session::{ConnectOptions, Replies, Session, ShownIdentity};

pub struct ConnectArgs {
    pub code: SessionCode,
    pub options: ConnectOptions,
    pub catalog: Option<PathBuf>,
    /// The technician's credential, proven to the agent in the session.
    pub credential: Option<HeldCredential>,
    pub exec: Vec<String>,
    pub json: bool,
    /// Where the console keeps its session logs.
    pub data_dir: PathBuf,
}

/// Runs a whole session. `Ok(true)` when every command succeeded.
pub async fn connect(args: ConnectArgs) -> Result<bool, DriverError> {
    let catalog = args
        .catalog
        .as_deref()
        .map(LocalCatalog::load)
        .transpose()?;
    if args.credential.as_ref().is_some_and(|c| !c.key_matches()) {
        eprintln!(
            "warning: the private key in the credential file is not the one its credential names; the agent will show your name as not verified"
        );
    }
    let terminal_ui = args.exec.is_empty()
        && !args.json
        && std::io::stdout().is_terminal()
        && std::io::stdin().is_terminal();
    // The terminal interface shows a snapshot first; so does an `--exec`
    // list that begins with one.
    let snapshot_ahead = terminal_ui
        || args.exec.first().is_some_and(|line| {
            matches!(
                line.parse::<Command>(),
                Ok(Command::Diag | Command::Findings | Command::Processes)
            )
        });
    let session = Session::connect_with(
        &args.code,
        &args.options,
        args.credential.as_ref(),
        snapshot_ahead,
    )
    .await?;
    let nameplate = args.code.nameplate().to_string();
    let log = match SessionLog::create(&args.data_dir, &nameplate) {
        Ok(log) => Some(log),
        Err(e) => {
            eprintln!(
                "warning: cannot keep a session log in {}: {e}",
                args.data_dir.display()
            );
            None
        }
    };
    let mut record = SessionRecord {
        started: SystemTime::now(),
        technician: args.options.technician.clone(),
        relay: args.options.relay.clone(),
        nameplate,
        host: session.host.clone(),
        verification: session.verification.clone(),
        catalog: None,
        latest: None,
        runs: Vec::new(),
        conversation: Vec::new(),
        log,
        audit_head: session.audit_head(),
        path: session.path(),
        path_logged: 0,
    };
    record.started();
    if terminal_ui {
        if let Some(line) = identity_line(session.identity.as_ref()) {
            println!("{line}");
        }
        let (mut record, ended) = crate::ui::run(session, record, catalog)
            .await
            .map_err(|e| DriverError::Terminal(e.to_string()))?;
        record.ended(ended.as_deref().unwrap_or("the technician quit"));
        if let Some(reason) = &ended {
            println!("the session ended: {}", clean_line(reason));
        }
        println!(
            "session with {} closed ({} runs)",
            clean_line(&record.host),
            record.runs.len()
        );
        return Ok(ended.is_none());
    }
    let mut driver = Driver::new(session, record, args.json, catalog);
    driver.started();
    show_identity(driver.session.identity.as_ref(), args.json);
    let mut ok = true;
    if let Err(e) = driver.send_catalog().await {
        driver.report_error(&e);
        ok = false;
    }
    if args.exec.is_empty() {
        ok &= interactive(&mut driver).await;
    } else {
        for line in &args.exec {
            match run_line(&mut driver, line).await {
                Some(Flow::Quit) => break,
                Some(Flow::Continue) => {}
                None => ok = false,
            }
            if driver.session.ended().is_some() {
                break;
            }
        }
    }
    let ended = driver.session.ended();
    driver
        .record
        .ended(ended.as_deref().unwrap_or("the technician quit"));
    if let Some(reason) = ended {
        if !driver.end_reported() {
            driver.report_error(&DriverError::Session(crate::session::SessionError::Ended(
                reason,
            )));
        }
        ok = false;
    }
    driver.close().await;
    Ok(ok)
}

/// Parses and runs one line; `None` when it failed (already reported).
async fn run_line(driver: &mut Driver, line: &str) -> Option<Flow> {
    let command = match line.parse::<Command>() {
        Ok(c) => c,
        Err(e) => {
            driver.report_error(&DriverError::Refused(e.to_string()));
            return None;
        }
    };
    match driver.execute(command).await {
        Ok(flow) => Some(flow),
        Err(e) => {
            driver.report_error(&e);
            None
        }
    }
}

/// Reads commands from standard input, one per line, until `quit`, the end
/// of input, or the end of the session.
///
/// A `run` goes on in the background, its output shown as it comes, so the
/// prompt stays free: `cancel RUN` and `quit` act at once while a run goes
/// on. Every other command (and the end of input) waits until the runs in
/// progress have ended, so commands still take effect in the order given
/// and a report includes the runs before it.
async fn interactive(driver: &mut Driver) -> bool {
    let tty = std::io::stdin().is_terminal();
    if tty {
        println!("type help for the commands, quit to end");
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    // Every running run's answers, tagged with its id; `None` when its
    // answers ended before the run did.
    let (run_tx, mut run_rx) = mpsc::channel::<(RequestId, Option<AgentMsg>)>(64);
    let mut running: BTreeSet<RequestId> = BTreeSet::new();
    // The tasks passing each run's answers on; they stop when this returns.
    let mut forwards = JoinSet::new();
    // A command (`None`: the end of input) waiting for the runs to end;
    // nothing more is read meanwhile.
    let mut waiting: Option<Option<Command>> = None;
    let mut ok = true;
    let mut prompt = true;
    loop {
        let command = if running.is_empty()
            && let Some(command) = waiting.take()
        {
            match command {
                Some(command) => command,
                None => return ok,
            }
        } else {
            if tty && prompt && waiting.is_none() {
                use std::io::Write;
                print!("> ");
                let _ = std::io::stdout().flush();
            }
            prompt = true;
            let line = tokio::select! {
                line = lines.next_line(), if waiting.is_none() => line,
                Some((id, msg)) = run_rx.recv() => {
                    prompt = false;
                    if let Some(done) = driver.run_message(id, msg, &mut RunProgress::new(false)) {
                        running.remove(&id);
                        if let Err(e) = done {
                            driver.report_error(&e);
                            ok = false;
                        }
                        prompt = true;
                    }
                    continue;
                }
                _ = driver.session.wait_ended() => return false,
            };
            let line = match line {
                Ok(Some(line)) => line,
                Ok(None) | Err(_) => {
                    waiting = Some(None);
                    continue;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let command = match line.parse::<Command>() {
                Ok(c) => c,
                Err(e) => {
                    driver.report_error(&DriverError::Refused(e.to_string()));
                    ok = false;
                    continue;
                }
            };
            if !running.is_empty() && !matches!(command, Command::Cancel { .. } | Command::Quit) {
                waiting = Some(Some(command));
                continue;
            }
            command
        };
        match command {
            Command::Run { script, params } => match driver.start_run(script, params).await {
                Ok((id, replies)) => {
                    running.insert(id);
                    while forwards.try_join_next().is_some() {}
                    forwards.spawn(forward_run(id, replies, run_tx.clone()));
                }
                Err(e) => {
                    driver.report_error(&e);
                    ok = false;
                }
            },
            Command::Quit => {
                stop_notice(&running);
                return ok;
            }
            command => match driver.execute(command).await {
                Ok(Flow::Quit) => return ok,
                Ok(Flow::Continue) => {}
                Err(e) => {
                    driver.report_error(&e);
                    ok = false;
                }
            },
        }
        if driver.session.ended().is_some() {
            return false;
        }
    }
}

/// Tells the technician how the person sees them, and whether the agent
/// accepted their credential.
fn show_identity(identity: Option<&ShownIdentity>, json: bool) {
    use std::io::Write;
    let Some(identity) = identity else { return };
    let mut out = std::io::stdout().lock();
    if json {
        let event = serde_json::json!({
            "event": "identity",
            "verified": identity.verified,
            "shown": identity.shown,
            "reason": identity.reason,
        });
        let _ = writeln!(out, "{event}");
    } else if let Some(line) = identity_line(Some(identity)) {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

fn identity_line(identity: Option<&ShownIdentity>) -> Option<String> {
    let identity = identity?;
    Some(if identity.verified {
        format!(
            "the agent accepted your credential; the person sees: {}",
            identity.shown
        )
    } else {
        format!(
            "the agent did not verify your name ({}); the person sees: {}",
            identity.reason.as_deref().unwrap_or("no reason given"),
            identity.shown
        )
    })
}

/// Passes a run's answers on, tagged with its id, until its last one.
async fn forward_run(
    id: RequestId,
    mut replies: Replies,
    to: mpsc::Sender<(RequestId, Option<AgentMsg>)>,
) {
    while let Some(msg) = replies.recv().await {
        let last = msg.is_final();
        if to.send((id, Some(msg))).await.is_err() || last {
            return;
        }
    }
    let _ = to.send((id, None)).await;
}

/// Says which runs the agent stops because the technician leaves.
fn stop_notice(running: &BTreeSet<RequestId>) {
    for id in running {
        println!("run {id} is still going: the agent stops it as the session ends");
    }
}
