//! One sharing session, from asking the relay for a nameplate to the end.
//!
//! Flow: open a nameplate and show the code; wait to be paired; accept the
//! console's end-to-end connection through the relay's forwarder and run the
//! handshake on it; close the relay connection, saying how set-up ended; ask
//! the person whether the technician may look; then answer requests until
//! either side ends. Short answers go through one writer task on the control
//! stream; each run, question and file transfer writes to a stream of its
//! own, so a long output never delays a diagnostics answer.
//! Every decision and run is in the audit log before it takes effect.
//!
//! Every run belongs to the session: the session owns its task, a cancel
//! reaches it while its question is still on the screen, and when the
//! session ends, in any way, every run is stopped and its end recorded
//! before `share` returns. A session ends cleanly only with the other
//! side's goodbye on the control stream; a stream that just stops, or a
//! connection that falls silent for the idle timeout, is a lost connection.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sprijin_proto::catalog::{Catalog, Platform, ScriptId, SignedCatalog};
use sprijin_proto::client::{ConnectError, LinkError};
use sprijin_proto::code::{Password, SessionCode};
use sprijin_proto::e2e::{self, E2eError};
use sprijin_proto::framing::FrameError;
use sprijin_proto::framing::FrameWriter;
use sprijin_proto::message::control::{Role, Technician, close_code};
use sprijin_proto::message::diag::PersonRun;
use sprijin_proto::message::script::RunStatus;
use sprijin_proto::message::session::{AgentMsg, ConsoleMsg, Request, RequestId};
use sprijin_proto::path::direct::{Direct, PathChange, Policy};
use sprijin_proto::path::{PathError, RelayedPath};
use sprijin_proto::text::clean_line;
use sprijin_proto::tls::{self, SessionIdentity, TlsError};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, info_span};

use crate::audit::{AuditError, AuditEvent, AuditLog, Head, StartedBy};
use crate::config::AgentConfig;
use crate::consent::Answer;
use crate::diag::Sampler;
use crate::diag::{Thresholds, report_for};
use crate::face::{Detail, EndedBy, Face, Notice, Question, RunUpdate};
use crate::identity::{self, IdentifyError, Identity};
use crate::script::catalog_memory;
use crate::script::not_run::NotRun;
use crate::script::runner::{self, RunEvent, RunSpec};

mod conversation;
mod fetch;

/// How many messages may wait for the writer before producers slow down;
/// this is what keeps a chatty script from growing the agent's memory.
const OUTBOX: usize = 64;

/// How long the end of a session waits for its runs to stop and be
/// recorded. A run stops within its grace periods (a few seconds); this
/// bounds a process stuck in the kernel.
const RUNS_STOP_LIMIT: Duration = Duration::from_secs(20);

/// How long, as a session ends, runs may still send their last messages
/// before sending is given up.
const SEND_GRACE: Duration = Duration::from_secs(5);

/// The same when the person ended the session: their stop must not wait on
/// a technician's console that does not read, so sending gets only this.
const PERSON_STOP_GRACE: Duration = Duration::from_secs(1);

/// How long the goodbye may take to leave after the runs' last messages.
const GOODBYE_GRACE: Duration = Duration::from_secs(1);

/// How long the agent waits, once paired, for the console's end-to-end
/// connection to arrive and its handshake to finish.
const SETUP_WAIT: Duration = Duration::from_secs(30);

/// How many messages of one run, question or transfer may wait for its
/// stream before that request's producer slows down.
const STREAM_OUTBOX: usize = 16;

/// How long after the person's yes the agent starts looking for a direct
/// path: the technician's first requests are answered first, without the
/// candidate exchange and the probes competing with them for the machine
/// and the network, and without the connection moving under them.
const DIRECT_AFTER: Duration = Duration::from_millis(250);

/// How a session ended, when it ended without an error (a lost connection
/// is [`AgentError::ConnectionLost`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The technician said goodbye (`Bye` on the control stream).
    ByTechnician,
    /// The person ended it (Ctrl-C).
    ByPerson,
    /// The person did not let the technician look.
    Declined,
}

/// Shares this machine once: shows the code, serves one session, returns.
/// Everything the person sees and answers goes through `face`. `stop`
/// completes when the person wants to end (Ctrl-C, or End session in the
/// window); `code_ready`, if given, also receives the code (for programs
/// that embed the agent).
pub async fn share(
    config: AgentConfig,
    face: Arc<dyn Face>,
    stop: impl std::future::Future<Output = ()> + Send,
    code_ready: Option<oneshot::Sender<SessionCode>>,
) -> Result<Ending, AgentError> {
    // Opening locks the log, checks its disk has room and records what it
    // found, all before a code is shown.
    let audit = AuditLog::open(&config.audit_path())?;
    for note in audit.opened() {
        face.show(Notice::AuditNote(note.to_string()));
    }
    // What the person ran alone since the last session, for the report.
    let person_runs = audit.person_runs().to_vec();
    let audit = Arc::new(Mutex::new(audit));
    // Start sampling now, so the first snapshot is ready by the time a
    // technician asks for it.
    let sampler = Sampler::start(config.sample_interval)?;

    // The session's own TLS identity is made now, while the person reads
    // the code out, not while the technician waits.
    let identity = SessionIdentity::generate().map_err(AgentError::Tls)?;
    let server = tls::session_server_config(&identity, config.session_idle_timeout)
        .map_err(AgentError::Tls)?;

    let waiting = crate::relays::open(&config, &*face).await?;
    let (nameplate, expires) = (waiting.nameplate, waiting.expires_in_secs);
    let code = SessionCode::new(nameplate, Password::generate());
    face.show_code(&code, Duration::from_secs(expires));
    if let Some(tx) = code_ready {
        let _ = tx.send(code.clone());
    }

    tokio::pin!(stop);
    let (relay, technician, ticket, link) =
        match crate::relays::wait(waiting, &mut stop, &*face).await? {
            crate::relays::Waited::Paired {
                relay,
                technician,
                ticket,
                link,
            } => (relay, technician, ticket, link),
            crate::relays::Waited::Stopped => {
                face.show(Notice::Ended(EndedBy::StoppedSharing));
                return Ok(Ending::ByPerson);
            }
        };

    let span = info_span!("session", %nameplate);
    info!(parent: &span, "paired; waiting for the technician's console to set up the session");
    // The session's connection goes to the address the relay answered on.
    let path = RelayedPath::new(relay, ticket, Some(server)).map_err(AgentError::Path)?;
    let endpoint = path.endpoint().clone();
    let direct = path.direct();
    // The person's stop answers at once during set-up too.
    let set_up = tokio::time::timeout(SETUP_WAIT, async {
        let incoming = endpoint
            .accept()
            .await
            .ok_or_else(|| E2eError::Connection("the session endpoint closed".into()))?;
        let connection = incoming
            .await
            .map_err(|e| E2eError::Connection(e.to_string()))?;
        e2e::establish(Role::Agent, &code, connection, &identity).await
    });
    let set_up = tokio::select! {
        set_up = set_up => set_up.unwrap_or_else(|_| {
            Err(E2eError::Connection(format!(
                "the technician's console did not connect within {} s",
                SETUP_WAIT.as_secs()
            )))
        }),
        () = &mut stop => {
            if let Some(link) = &link {
                link.close_after_set_up(&Err::<(), _>(E2eError::Connection("sharing stopped".into())));
            }
            return stopped_while_connecting(&audit, &*face, &technician).await;
        }
    };
    // A relay connection the claim came on has done its work: close it.
    if let Some(link) = &link {
        link.close_after_set_up(&set_up);
    }
    let relay_endpoint = link.map(|link| link.endpoint.clone());
    let relay_closed = async move {
        if let Some(endpoint) = relay_endpoint {
            let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
        }
    };
    let session_connection = set_up.as_ref().ok().map(|e| e.connection.clone());
    let result = async move {
        let established = match set_up {
            Ok(e) => e,
            Err(e) if e.is_wrong_code() => {
                face.show(Notice::WrongCode);
                record(&audit, AuditEvent::Note {
                    text: format!("a connection with a wrong code was refused (claimed by {})", technician.name),
                }).await?;
                return Err(AgentError::Setup(e));
            }
            Err(e) => return Err(AgentError::Setup(e)),
        };
        let mut reader = established.reader;
        // The relay's word on who claimed is never shown as identity; only a
        // credential proven for this session is.
        let presented = tokio::select! {
            presented = identity::receive(&mut reader, identity::IDENTIFY_WAIT) => {
                presented.map_err(AgentError::Identify)?
            }
            () = &mut stop => return stopped_while_connecting(&audit, &*face, &technician).await,
        };
        let technician_shown = Identity::decide(
            &technician,
            &presented,
            &config.trusted_keys,
            &established.binding,
            std::time::SystemTime::now(),
        );
        face.show_connected(&technician_shown, &established.verification.to_string());
        record(&audit, AuditEvent::SessionStart {
            nameplate: nameplate.to_string(),
            technician: technician_shown.name.clone(),
            vouched: technician.vouched,
            verified: technician_shown.verified(),
            credential_key: technician_shown.key_id().map(str::to_owned),
            not_verified: technician_shown.reason().map(ToString::to_string),
        }).await?;

        let connection = established.connection.clone();
        let (outbox, outbox_rx) = mpsc::channel::<AgentMsg>(OUTBOX);
        let writer = tokio::spawn(write_loop(established.writer, outbox_rx));
        let _ = outbox.send(technician_shown.to_message()).await;

        let question = Question {
            text: format!(
                "technician {} wants to see this machine's state: system, processes, disks and network",
                clean_line(&technician_shown.to_string())
            ),
            detail: Detail::View {
                technician: technician_shown.clone(),
            },
        };
        // Ctrl-C while this question is on the screen ends the session.
        let answer = face
            .ask(&question, Box::pin(async {
                (&mut stop).await;
                "you ended the session".to_string()
            }))
            .await;
        record(&audit, AuditEvent::Consent {
            question: question.text,
            answer: answer.approved(),
        }).await?;
        let host = sampler
            .ready()
            .await
            .map(|s| s.host.name.clone())
            .unwrap_or_else(|_| "this machine".to_string());
        let _ = outbox
            .send(AgentMsg::Welcome {
                host,
                granted: answer.approved(),
            })
            .await;
        if !answer.approved() {
            let (reason, ending, shown) = match answer {
                Answer::Withdrawn => ("the person ended the session", Ending::ByPerson, EndedBy::PersonWhileAsked),
                _ => ("the person did not allow the session", Ending::Declined, EndedBy::Declined),
            };
            face.show(Notice::Ended(shown));
            end(&audit, &outbox, reason, &*face).await?;
            drop(outbox);
            let _ = writer.await;
            return Ok(ending);
        }

        // From here on, the console follows the audit log's head.
        let _heads = AbortOnDrop(tokio::spawn(send_heads(
            audit.lock().unwrap_or_else(|e| e.into_inner()).watch_head(),
            outbox.downgrade(),
        )));
        // Only now, with the person's yes, may the technician's side learn
        // where this machine is, if the organisation allows it at all.
        let path_follower = AbortOnDrop(tokio::spawn(follow_path(
            direct,
            connection.clone(),
            config.direct,
            audit.clone(),
            face.clone(),
        )));
        let ctx = Arc::new(Ctx {
            config,
            face: face.clone(),
            audit: audit.clone(),
            sampler,
            catalog: Mutex::new(None),
            runs: Mutex::new(HashMap::new()),
            outbox: outbox.clone(),
            connection,
            streams: Mutex::new(HashMap::new()),
            stream_writers: Mutex::new(JoinSet::new()),
            over: watch::Sender::new(false),
            thresholds: Thresholds::default(),
            person_runs: person_runs.clone(),
            viewing_noticed: Mutex::new(None),
        });
        let mut runs = JoinSet::new();
        // The first request read is here, after the person's yes: one the
        // console sent with its opening (its first snapshot) waited in the
        // stream until now, and after a no is never read.
        // `Err` is why the connection was lost.
        let ending: Result<Ending, String> = loop {
            tokio::select! {
                msg = reader.read_msg::<ConsoleMsg>() => match msg {
                    // Answering may wait for a console that does not read;
                    // the person's stop does not.
                    Ok(Some(ConsoleMsg::Request { id, request })) => tokio::select! {
                        () = handle(&ctx, &mut runs, id, request) => {}
                        () = &mut stop => break Ok(Ending::ByPerson),
                    },
                    Ok(Some(ConsoleMsg::Bye)) => break Ok(Ending::ByTechnician),
                    // Who the technician is was settled at the start.
                    Ok(Some(ConsoleMsg::Identify { .. })) => {}
                    // Only the goodbye ends a session: a stream that stops
                    // at a frame boundary is not an answer.
                    Ok(None) => break Err("the session stream ended without a goodbye".to_string()),
                    Err(e) => break Err(lost_reason(&ctx.connection, &e)),
                },
                Some(_) = runs.join_next(), if !runs.is_empty() => {}
                () = &mut stop => break Ok(Ending::ByPerson),
            }
        };
        let reason = match &ending {
            Ok(Ending::ByPerson) => {
                face.show(Notice::Ended(EndedBy::Person));
                "the person ended the session".to_string()
            }
            Ok(_) => {
                face.show(Notice::Ended(EndedBy::Technician));
                "the technician ended the session".to_string()
            }
            Err(why) => {
                let reason = format!("the connection was lost: {why}");
                face.show(Notice::Ended(EndedBy::Lost(reason.clone())));
                reason
            }
        };
        // What may still go to the console gets until `sending_ends`; a
        // lost connection gets nothing, the person's stop only a moment.
        let grace = match &ending {
            Err(_) => Duration::ZERO,
            Ok(Ending::ByPerson) => PERSON_STOP_GRACE,
            Ok(_) => SEND_GRACE,
        };
        let sending_ends = tokio::time::Instant::now() + grace;
        stop_runs(&ctx, &mut runs, &reason, sending_ends).await;
        // The runs' streams carry their last messages before the goodbye.
        ctx.flush_streams(sending_ends).await;
        // Nothing follows the end on the record: a move noticed from here
        // on (the console closing its side is one) is not a path change.
        drop(path_follower);
        end(&audit, &outbox, &reason, &*face).await?;
        drop(ctx);
        drop(outbox);
        let _ = tokio::time::timeout_at(sending_ends + GOODBYE_GRACE, writer).await;
        let ending = ending.map_err(AgentError::ConnectionLost)?;
        Ok(ending)
    }
    .instrument(span)
    .await;
    // Close at once rather than leave the console to notice by timeout.
    if let Some(connection) = session_connection {
        connection.close(close_code::ENDED.into(), b"session ended");
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), path.endpoint().wait_idle()).await;
    relay_closed.await;
    result
}

/// The person stopped sharing while the technician's console was setting up
/// the session: it is recorded, and sharing ends at once.
async fn stopped_while_connecting(
    audit: &Arc<Mutex<AuditLog>>,
    face: &dyn Face,
    technician: &Technician,
) -> Result<Ending, AgentError> {
    face.show(Notice::Ended(EndedBy::StoppedSharing));
    record(
        audit,
        AuditEvent::Note {
            text: format!(
                "the person stopped sharing while {} was connecting",
                clean_line(&technician.name)
            ),
        },
    )
    .await?;
    Ok(Ending::ByPerson)
}

/// Why reading the control stream failed: the connection's own reason when
/// it is gone (an idle timeout says so), else the stream's error.
fn lost_reason(connection: &quinn::Connection, e: &FrameError) -> String {
    match connection.close_reason() {
        Some(quinn::ConnectionError::TimedOut) => {
            "the technician's console was not heard from within the session's idle timeout"
                .to_string()
        }
        Some(reason) => reason.to_string(),
        None => e.to_string(),
    }
}

/// Takes part in the direct path as `policy` says, and records each move
/// of the session's connection before the person is told of it.
async fn follow_path(
    direct: Direct,
    connection: quinn::Connection,
    policy: Policy,
    audit: Arc<Mutex<AuditLog>>,
    face: Arc<dyn Face>,
) {
    let (changes, mut moved) = mpsc::channel::<PathChange>(8);
    let _exchange = AbortOnDrop(tokio::spawn(async move {
        tokio::time::sleep(DIRECT_AFTER).await;
        if let Err(e) = direct.agent(connection, policy, changes).await {
            debug!("no direct path: {e}");
        }
    }));
    while let Some(change) = moved.recv().await {
        info!("{change}");
        let peer = change.direct.map(|a| a.to_string());
        let event = AuditEvent::PathChanged {
            path: change.kind().to_string(),
            peer: peer.clone(),
            reason: change.reason.clone(),
        };
        if let Err(e) = record(&audit, event).await {
            tracing::warn!("the move of the session's connection is not on the record: {e}");
        }
        face.show(Notice::Path {
            direct: change.direct.is_some(),
            peer,
            reason: change.reason,
        });
    }
}

/// Appends to the audit log on a blocking thread (the append waits for the
/// disk), so the session keeps answering meanwhile.
async fn record(audit: &Arc<Mutex<AuditLog>>, event: AuditEvent) -> Result<Head, AgentError> {
    let audit = audit.clone();
    tokio::task::spawn_blocking(move || {
        audit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(event)
            .map_err(AgentError::Audit)
    })
    .await
    .map_err(|e| AgentError::AuditTask(e.to_string()))?
}

/// Records the end, then tells the console the log's final head and says
/// goodbye, in that order, so the head arrives before the goodbye.
async fn end(
    audit: &Arc<Mutex<AuditLog>>,
    outbox: &mpsc::Sender<AgentMsg>,
    reason: &str,
    face: &dyn Face,
) -> Result<(), AgentError> {
    let recorded = record(
        audit,
        AuditEvent::SessionEnd {
            reason: reason.to_string(),
        },
    )
    .await;
    if let Ok(head) = &recorded {
        face.show_audit_head(head);
        let _ = outbox.try_send(AgentMsg::AuditHead {
            seq: head.seq,
            hash: head.hash.clone(),
        });
    }
    let _ = outbox.try_send(AgentMsg::Bye {
        reason: reason.to_string(),
    });
    recorded.map(drop)
}

/// Sends the audit log's head to the console now and after every entry,
/// until the session's outbox closes.
async fn send_heads(mut heads: watch::Receiver<Head>, outbox: mpsc::WeakSender<AgentMsg>) {
    loop {
        let head = heads.borrow_and_update().clone();
        let Some(outbox) = outbox.upgrade() else {
            return;
        };
        let msg = AgentMsg::AuditHead {
            seq: head.seq,
            hash: head.hash,
        };
        if outbox.send(msg).await.is_err() {
            return;
        }
        drop(outbox);
        if heads.changed().await.is_err() {
            return;
        }
    }
}

/// Ends a task when the scope that started it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Stops every run of the session and waits until each has stopped and
/// its end is in the audit log; the person is told. The runs' last
/// messages may go to the console until `sending_ends`, no later.
async fn stop_runs(
    ctx: &Ctx,
    runs: &mut JoinSet<()>,
    reason: &str,
    sending_ends: tokio::time::Instant,
) {
    if sending_ends <= tokio::time::Instant::now() {
        ctx.over.send_replace(true);
    }
    let live = ctx.stop_all(StopReason::SessionEnded(reason.to_string()));
    if live == 0 && runs.is_empty() {
        return;
    }
    ctx.face.show(Notice::StoppingRuns {
        count: live,
        reason: reason.to_string(),
    });
    let stopped = {
        let all_done = async { while runs.join_next().await.is_some() {} };
        tokio::pin!(all_done);
        let mut stopped = tokio::time::timeout_at(sending_ends, &mut all_done)
            .await
            .is_ok();
        if !stopped {
            // A console that no longer reads must not hold a run's end back.
            ctx.over.send_replace(true);
            stopped = tokio::time::timeout(RUNS_STOP_LIMIT, &mut all_done)
                .await
                .is_ok();
        }
        stopped
    };
    if !stopped {
        // Dropping a run kills its whole group with SIGKILL.
        runs.abort_all();
        while runs.join_next().await.is_some() {}
        let left: Vec<String> = ctx
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(id, _)| id.to_string())
            .collect();
        let text = format!(
            "run(s) {} did not stop within {} s after the session ended and were killed; their end was not recorded",
            left.join(", "),
            RUNS_STOP_LIMIT.as_secs()
        );
        ctx.face.show(Notice::Problem(text.clone()));
        if let Err(e) = record(&ctx.audit, AuditEvent::Note { text }).await {
            ctx.face.show(Notice::Problem(e.to_string()));
        }
    } else {
        ctx.face.show(Notice::RunsStopped);
    }
}

async fn write_loop(
    mut writer: FrameWriter<quinn::SendStream>,
    mut outbox: mpsc::Receiver<AgentMsg>,
) {
    while let Some(msg) = outbox.recv().await {
        if let Err(e) = writer.write_msg(&msg).await {
            debug!("cannot send to the console: {e}");
            break;
        }
    }
    let stream = writer.get_mut();
    let _ = stream.finish();
    // Let the last messages (the goodbye) arrive before the connection closes.
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.stopped()).await;
}

/// Writes one request's messages to a stream of its own, opened with the
/// first message; finishes it when the request is done and waits, for a
/// bounded time, until the console has it all.
async fn stream_loop(
    connection: quinn::Connection,
    id: RequestId,
    mut messages: mpsc::Receiver<AgentMsg>,
) {
    let Some(first) = messages.recv().await else {
        return;
    };
    let mut writer = match e2e::streams::open(&connection, id).await {
        Ok(w) => w,
        Err(e) => {
            debug!("cannot open the stream of request {id}: {e}");
            return;
        }
    };
    let mut next = Some(first);
    while let Some(msg) = next {
        if let Err(e) = writer.write_msg(&msg).await {
            debug!("cannot send request {id}'s answer to the console: {e}");
            return;
        }
        next = messages.recv().await;
    }
    let stream = writer.get_mut();
    let _ = stream.finish();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.stopped()).await;
}

struct Ctx {
    config: AgentConfig,
    face: Arc<dyn Face>,
    audit: Arc<Mutex<AuditLog>>,
    sampler: Sampler,
    catalog: Mutex<Option<Arc<Catalog>>>,
    /// The runs of this session that have not ended, by request id; each
    /// is stopped (or its question withdrawn) through its sender.
    runs: Mutex<HashMap<RequestId, watch::Sender<Option<StopReason>>>>,
    outbox: mpsc::Sender<AgentMsg>,
    /// The session's connection, for the streams of runs and transfers.
    connection: quinn::Connection,
    /// The stream of each run, question and transfer in progress, by
    /// request id; its messages go there instead of the control stream.
    streams: Mutex<HashMap<RequestId, mpsc::Sender<AgentMsg>>>,
    /// The tasks writing those streams.
    stream_writers: Mutex<JoinSet<()>>,
    /// Set once nothing more is sent to the console (the session is over).
    over: watch::Sender<bool>,
    thresholds: Thresholds,
    /// Repairs the person ran alone since the previous session.
    person_runs: Vec<PersonRun>,
    /// When the person was last told the technician is looking.
    viewing_noticed: Mutex<Option<std::time::Instant>>,
}

/// How often the person is reminded that the technician is looking.
const VIEWING_NOTICE_EVERY: Duration = Duration::from_secs(60);

impl Ctx {
    /// Tells the person the technician is looking, without repeating it
    /// on every refresh.
    fn notice_viewing(&self) {
        let mut last = self
            .viewing_noticed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= VIEWING_NOTICE_EVERY) {
            self.face.show(Notice::Viewing);
            *last = Some(std::time::Instant::now());
        }
    }

    /// Asks every run to stop; returns how many there were.
    fn stop_all(&self, reason: StopReason) -> usize {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        for stop in runs.values() {
            stop.send_replace(Some(reason.clone()));
        }
        runs.len()
    }

    async fn refuse(&self, id: RequestId, reason: impl Into<String>) {
        self.send(AgentMsg::Refused {
            id,
            reason: reason.into(),
        })
        .await;
    }

    /// Sends to the console, unless the session is over: a run must not
    /// wait on a connection that is gone. A message of a request that has
    /// a stream of its own goes there. False when it was not sent.
    async fn send(&self, msg: AgentMsg) -> bool {
        let stream = msg.request_id().and_then(|id| {
            self.streams
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&id)
                .cloned()
        });
        let outbox = stream.as_ref().unwrap_or(&self.outbox);
        let mut over = self.over.subscribe();
        tokio::select! {
            sent = outbox.send(msg) => sent.is_ok(),
            _ = over.wait_for(|over| *over) => false,
        }
    }

    /// Gives request `id` a stream of its own, opened when its first
    /// message is sent and finished once its sender is dropped.
    fn open_stream(&self, id: RequestId) {
        let (tx, rx) = mpsc::channel(STREAM_OUTBOX);
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        self.stream_writers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spawn(stream_loop(self.connection.clone(), id, rx));
    }

    /// Ends request `id`'s stream once what it holds is sent.
    fn close_stream(&self, id: RequestId) {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Waits, until `sending_ends` at the latest, for every request stream
    /// to send its last message.
    async fn flush_streams(&self, sending_ends: tokio::time::Instant) {
        let mut writers = std::mem::take(
            &mut *self
                .stream_writers
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        let _ = tokio::time::timeout_at(sending_ends, async {
            while writers.join_next().await.is_some() {}
        })
        .await;
    }
}

/// Why a run was asked to stop before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StopReason {
    /// The technician sent a cancel.
    Technician,
    /// The session ended, for this reason.
    SessionEnded(String),
}

impl StopReason {
    /// Said to the person when a question is withdrawn.
    fn withdrawn(&self) -> String {
        match self {
            StopReason::Technician => "the technician withdrew this request".to_string(),
            StopReason::SessionEnded(why) => format!("this request is withdrawn: {why}"),
        }
    }
}

/// Completes with the reason once the run is asked to stop.
async fn stop_requested(stop: &mut watch::Receiver<Option<StopReason>>) -> StopReason {
    match stop.wait_for(Option::is_some).await {
        Ok(reason) => reason.clone().unwrap_or(StopReason::Technician),
        // The session dropped the run's entry: it is over.
        Err(_) => StopReason::SessionEnded("the session ended".to_string()),
    }
}

async fn handle(ctx: &Arc<Ctx>, runs: &mut JoinSet<()>, id: RequestId, request: Request) {
    match request {
        Request::Diagnostics => {
            ctx.notice_viewing();
            // Normally ready long before; only the first seconds wait.
            let snapshot = match ctx.sampler.ready().await {
                Ok(s) => (*s).clone(),
                Err(e) => {
                    return ctx
                        .refuse(id, format!("diagnostics unavailable: {e}"))
                        .await;
                }
            };
            let mut report = report_for(snapshot, &ctx.thresholds);
            report.person_runs = ctx.person_runs.clone();
            let report = Box::new(report);
            ctx.send(AgentMsg::Diagnostics { id, report }).await;
        }
        Request::Catalog(signed) => accept_catalog(ctx, id, signed).await,
        Request::Run { script, params } => {
            spawn_tracked(ctx, runs, id, move |ctx, stop| async move {
                run_script(&ctx, id, script, params, stop).await
            })
            .await
        }
        Request::Cancel { run } => {
            let found = match ctx.runs.lock().unwrap_or_else(|e| e.into_inner()).get(&run) {
                Some(stop) => {
                    stop.send_if_modified(|reason| {
                        // A stop already under way keeps its reason.
                        reason.get_or_insert(StopReason::Technician);
                        true
                    });
                    true
                }
                None => false,
            };
            match found {
                true => {
                    ctx.send(AgentMsg::Ack { id }).await;
                }
                false => {
                    ctx.refuse(id, format!("there is no run {run} in progress to cancel"))
                        .await
                }
            }
        }
        Request::Say { text } => conversation::say(ctx, id, text).await,
        Request::Ask { text } => {
            spawn_tracked(ctx, runs, id, move |ctx, stop| async move {
                conversation::ask(&ctx, id, text, stop).await
            })
            .await
        }
        Request::Fetch { path } => {
            spawn_tracked(ctx, runs, id, move |ctx, stop| async move {
                fetch::fetch(&ctx, id, path, stop).await
            })
            .await
        }
    }
}

/// Asks the person a yes/no question that a stop withdraws, and records the
/// question and the answer before anything acts on it. Returns the answer
/// and, when the question was withdrawn, why.
async fn ask_recorded(
    ctx: &Ctx,
    question: Question,
    stop: &mut watch::Receiver<Option<StopReason>>,
) -> Result<(Answer, Option<StopReason>), AgentError> {
    let mut withdrawn = None;
    let answer = ctx
        .face
        .ask(
            &question,
            Box::pin(async {
                let reason = stop_requested(stop).await;
                let said = reason.withdrawn();
                withdrawn = Some(reason);
                said
            }),
        )
        .await;
    record(
        &ctx.audit,
        AuditEvent::Consent {
            question: question.text,
            answer: answer.approved(),
        },
    )
    .await?;
    Ok((answer, withdrawn))
}

/// Starts a request that waits for the person (a run, a question, a file)
/// as a task of the session, stopped by a cancel naming it or when the
/// session ends. A request id already in use is refused without touching
/// the task that holds it, so its cancel still reaches it.
async fn spawn_tracked<F, Fut>(ctx: &Arc<Ctx>, runs: &mut JoinSet<()>, id: RequestId, task: F)
where
    F: FnOnce(Arc<Ctx>, watch::Receiver<Option<StopReason>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let stop = match ctx.runs.lock().unwrap_or_else(|e| e.into_inner()).entry(id) {
        Entry::Occupied(_) => None,
        Entry::Vacant(slot) => {
            let (tx, rx) = watch::channel(None);
            slot.insert(tx);
            Some(rx)
        }
    };
    let Some(stop) = stop else {
        return ctx
            .refuse(
                id,
                format!("request id {id} is already in use in this session"),
            )
            .await;
    };
    ctx.open_stream(id);
    let work = task(ctx.clone(), stop);
    let ctx = ctx.clone();
    runs.spawn(async move {
        work.await;
        ctx.close_stream(id);
        ctx.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    });
}

async fn accept_catalog(ctx: &Ctx, id: RequestId, signed: SignedCatalog) {
    let memory = ctx.config.catalog_memory_path();
    let now = std::time::SystemTime::now();
    match catalog_memory::accept(&signed, &ctx.config.trusted_keys, &memory, now) {
        Ok(catalog) => {
            // Kept for the person's own repairs after the session; a
            // failure costs them only that.
            let kept = crate::selfhelp::catalog::kept_path(&ctx.config);
            if let Err(e) = crate::selfhelp::catalog::keep(&signed, &kept) {
                ctx.face.show(Notice::Problem(format!(
                    "cannot keep the catalog in {} for repairs you run yourself: {e}",
                    kept.display()
                )));
            }
            ctx.face.show(Notice::CatalogAccepted {
                scripts: catalog.scripts.len(),
            });
            let msg = AgentMsg::CatalogAccepted {
                id,
                scripts: catalog.scripts.len(),
                digest: catalog.digest.clone(),
            };
            *ctx.catalog.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(catalog));
            ctx.send(msg).await;
        }
        Err(e) => {
            let reason = format!("catalog refused: {e}");
            ctx.face.show(Notice::CatalogRefused {
                reason: reason.clone(),
            });
            if let Err(e) = record(
                &ctx.audit,
                AuditEvent::CatalogRefused {
                    reason: reason.clone(),
                },
            )
            .await
            {
                ctx.face.show(Notice::Problem(e.to_string()));
            }
            ctx.refuse(id, reason).await;
        }
    }
}

async fn run_script(
    ctx: &Ctx,
    id: RequestId,
    script_id: ScriptId,
    params: Vec<(String, String)>,
    mut stop: watch::Receiver<Option<StopReason>>,
) {
    if let Err(not_run) = approve_and_run(ctx, id, &script_id, &params, &mut stop).await {
        let reason = not_run.to_string();
        let event = AuditEvent::RunRefused {
            run: u64::from(id),
            script: script_id.to_string(),
            reason: reason.clone(),
        };
        if let Err(e) = record(&ctx.audit, event).await {
            ctx.face.show(Notice::Problem(e.to_string()));
        }
        ctx.refuse(id, reason).await;
    }
}

/// Checks a run request, asks the person, and runs the script. An `Err` is
/// the reason nothing ran, for the technician and the audit log.
async fn approve_and_run(
    ctx: &Ctx,
    id: RequestId,
    script_id: &ScriptId,
    params: &[(String, String)],
    stop: &mut watch::Receiver<Option<StopReason>>,
) -> Result<(), NotRun> {
    let catalog = ctx
        .catalog
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let Some(catalog) = catalog else {
        return Err(if ctx.config.trusted_keys.is_empty() {
            NotRun::NoTrustedKey
        } else {
            NotRun::NoCatalog
        });
    };
    let script = catalog
        .get(script_id.as_str())
        .ok_or_else(|| NotRun::UnknownScript {
            script: script_id.to_string(),
        })?;
    if !Platform::current().is_some_and(|p| script.runs_on(p)) {
        return Err(NotRun::WrongPlatform {
            script: script_id.to_string(),
        });
    }
    let args = script.bind(params).map_err(NotRun::Params)?;
    let question = Question::run(StartedBy::Technician, script, &args);
    // A run whose records could not be written is refused before the
    // person is asked, not after they said yes.
    ctx.audit
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check_writable()
        .map_err(|e| NotRun::Unrecorded(e.into()))?;
    let (answer, withdrawn) = ask_recorded(ctx, question, stop)
        .await
        .map_err(NotRun::Unrecorded)?;
    if let Some(reason) = withdrawn {
        return Err(match reason {
            StopReason::Technician => NotRun::WithdrawnByTechnician {
                script: script_id.to_string(),
            },
            StopReason::SessionEnded(why) => NotRun::WithdrawnAsSessionEnded {
                script: script_id.to_string(),
                why,
            },
        });
    }
    if !answer.approved() {
        return Err(NotRun::NotApproved {
            script: script_id.to_string(),
            answer,
        });
    }
    // A yes given just as the session ended does not start anything.
    let ended = stop.borrow().clone();
    if let Some(StopReason::SessionEnded(why)) = ended {
        return Err(NotRun::SessionEnded {
            script: script_id.to_string(),
            why,
        });
    }
    // The run is on disk before it starts: if the agent dies mid-run, the
    // log still shows what was started and who approved it.
    record(
        &ctx.audit,
        AuditEvent::RunStart {
            run: u64::from(id),
            script: script_id.to_string(),
            title: script.title.clone(),
            program: script.program.clone(),
            args: args.clone(),
            catalog_digest: catalog.digest.clone(),
            risk: script.risk.to_string(),
            by: StartedBy::Technician,
        },
    )
    .await
    .map_err(NotRun::Unrecorded)?;
    ctx.face.show_run(RunUpdate::Started {
        id: u64::from(id),
        script: script_id.to_string(),
        title: clean_line(&script.title).into_owned(),
        by: StartedBy::Technician,
    });
    ctx.send(AgentMsg::RunStarted {
        id,
        program: script.program.clone(),
        args: args.clone(),
    })
    .await;
    let spec = RunSpec {
        program: script.program.clone(),
        args,
        timeout: Duration::from_secs(script.timeout_secs),
        output_cap: ctx.config.output_cap,
    };
    let (events_tx, mut events) = mpsc::channel(8);
    let forward = async {
        while let Some(event) = events.recv().await {
            let msg = match event {
                RunEvent::Output { stream, data } => AgentMsg::Output { id, stream, data },
                RunEvent::Truncated { cap } => AgentMsg::Truncated { id, cap },
            };
            if !ctx.send(msg).await {
                break;
            }
        }
    };
    let mut stopped_by = None;
    let cancelled = async {
        stopped_by = Some(stop_requested(stop).await);
    };
    let (end, ()) = tokio::join!(runner::run(spec, events_tx, cancelled), forward);
    let mut event = AuditEvent::run_end(u64::from(id), script_id.as_str(), &end);
    let stopped_because = match (&end.status, stopped_by) {
        (RunStatus::Cancelled, Some(StopReason::SessionEnded(why))) => {
            if let AuditEvent::RunEnd { status, .. } = &mut event {
                *status = format!("{status}: the session ended ({why})");
            }
            Some(why)
        }
        _ => None,
    };
    ctx.face.show_run(RunUpdate::Ended {
        id: u64::from(id),
        script: script_id.to_string(),
        status: end.status.to_string(),
        stopped_because,
    });
    if let Err(e) = record(&ctx.audit, event).await {
        ctx.face.show(Notice::Problem(e.to_string()));
    }
    ctx.send(AgentMsg::RunEnded { id, end }).await;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Relays(#[from] crate::relays::RelaysError),
    #[error(transparent)]
    Setup(E2eError),
    #[error(transparent)]
    Tls(TlsError),
    #[error(transparent)]
    Path(PathError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("the audit log could not be written: {0}")]
    AuditTask(String),
    #[error("the connection was lost: {0}")]
    ConnectionLost(String),
    #[error(transparent)]
    Diag(#[from] crate::diag::DiagError),
    #[error(transparent)]
    Identify(IdentifyError),
}

impl From<ConnectError> for AgentError {
    fn from(e: ConnectError) -> Self {
        AgentError::Link(e.into())
    }
}

impl From<FrameError> for AgentError {
    fn from(e: FrameError) -> Self {
        AgentError::Link(e.into())
    }
}

// Kept for callers that show who connected.
pub type PairedWith = Technician;
