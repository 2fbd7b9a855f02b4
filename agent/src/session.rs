//! One sharing session, from asking the relay for a nameplate to the end.
//!
//! Flow: open a nameplate and show the code; wait to be paired; run the
//! end-to-end handshake; ask the person whether the technician may look; then
//! answer requests until either side ends. Messages to the console go through
//! one writer task, so runs stream output while diagnostics are answered.
//! Every decision and run is in the audit log before it takes effect.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sprijin_proto::catalog::{self, Catalog, Platform, SignedCatalog};
use sprijin_proto::client::{ConnectError, RelayLink};
use sprijin_proto::code::{Password, SessionCode};
use sprijin_proto::framing::FrameError;
use sprijin_proto::message::control::{
    ClientMsg, ErrorFrame, RelayMsg, Role, Technician, close_code,
};
use sprijin_proto::message::session::{AgentMsg, ConsoleMsg, Request, RequestId};
use sprijin_proto::secure::{self, SecureError};
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, debug, info_span};

use crate::audit::{AuditError, AuditEvent, AuditLog};
use crate::config::AgentConfig;
use crate::consent::{Answer, Consent};
use crate::diag::Sampler;
use crate::diag::{Thresholds, report_for};
use crate::identity::{self, IdentifyError, Identity};
use crate::script::catalog_memory;
use crate::script::runner::{self, RunEvent, RunSpec};

/// How many messages may wait for the writer before producers slow down;
/// this is what keeps a chatty script from growing the agent's memory.
const OUTBOX: usize = 64;

/// How a session ended, when it ended without an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The technician said goodbye or closed the session.
    ByTechnician,
    /// The person ended it (Ctrl-C).
    ByPerson,
    /// The person did not let the technician look.
    Declined,
}

/// Shares this machine once: prints the code, serves one session, returns.
/// `stop` completes when the person wants to end (Ctrl-C); `code_ready`, if
/// given, also receives the code (for programs that embed the agent).
pub async fn share(
    config: AgentConfig,
    consent: Arc<Consent>,
    stop: impl std::future::Future<Output = ()>,
    code_ready: Option<oneshot::Sender<SessionCode>>,
) -> Result<Ending, AgentError> {
    let audit = Arc::new(Mutex::new(AuditLog::open(&config.audit_path())?));
    // Start sampling now, so the first snapshot is ready by the time a
    // technician asks for it.
    let sampler = Sampler::start(config.sample_interval)?;

    let mut link = RelayLink::connect(&config.relay, config.relay_fingerprint, Role::Agent).await?;
    link.writer.write_msg(&ClientMsg::Open).await?;
    let (nameplate, expires) = match link.reader.expect_msg::<RelayMsg>().await? {
        RelayMsg::Opened {
            nameplate,
            expires_in_secs,
        } => (nameplate, expires_in_secs),
        RelayMsg::Error(e) => return Err(AgentError::Relay(e)),
        other => return Err(AgentError::Unexpected(format!("{other:?}"))),
    };
    let code = SessionCode::new(nameplate, Password::generate());
    println!("code: {code}");
    if let Some(tx) = code_ready {
        let _ = tx.send(code.clone());
    }
    println!(
        "read this code to your technician; it works once and expires in {} minutes",
        expires.div_ceil(60)
    );

    tokio::pin!(stop);
    let technician = tokio::select! {
        msg = link.reader.expect_msg::<RelayMsg>() => match msg? {
            RelayMsg::Paired { technician: Some(t) } => t,
            RelayMsg::Error(e) => return Err(AgentError::Relay(e)),
            other => return Err(AgentError::Unexpected(format!("{other:?}"))),
        },
        () = &mut stop => {
            println!("sharing stopped; the code no longer works");
            return Ok(Ending::ByPerson);
        }
    };

    let span = info_span!("session", %nameplate);
    let (connection, endpoint) = (link.connection.clone(), link.endpoint.clone());
    let result = async move {
        let established = match secure::establish(Role::Agent, &code, link.reader, link.writer).await {
            Ok(e) => e,
            Err(e) if e.is_wrong_code() => {
                println!(
                    "someone tried to connect with a wrong code; this code no longer works. If you are waiting for a technician, start again and read them the new code."
                );
                record(&audit, AuditEvent::Note {
                    text: format!("a connection with a wrong code was refused (claimed by {})", technician.name),
                })?;
                return Err(AgentError::Secure(e));
            }
            Err(e) => return Err(AgentError::Secure(e)),
        };
        let mut reader = established.reader;
        // The relay's word on who claimed is never shown as identity; only a
        // credential proven for this session is.
        let presented = identity::receive(&mut reader, identity::IDENTIFY_WAIT)
            .await
            .map_err(AgentError::Identify)?;
        let technician_shown = Identity::decide(
            &technician,
            &presented,
            &config.trusted_keys,
            &established.binding,
            std::time::SystemTime::now(),
        );
        println!("connected: technician {technician_shown}");
        println!("verification words: {}", established.verification);
        println!("press Ctrl-C at any time to end the session at once");
        record(&audit, AuditEvent::SessionStart {
            nameplate: nameplate.to_string(),
            technician: technician_shown.name.clone(),
            vouched: technician.vouched,
            verified: technician_shown.verified(),
            credential_key: technician_shown.key_id().map(str::to_owned),
            not_verified: technician_shown.reason().map(str::to_owned),
        })?;

        let (outbox, outbox_rx) = mpsc::channel::<AgentMsg>(OUTBOX);
        let writer = tokio::spawn(write_loop(established.writer, outbox_rx));
        let _ = outbox.send(technician_shown.to_message()).await;

        let question = format!(
            "technician {technician_shown} wants to see this machine's state: system, processes, disks and network"
        );
        let answer = consent.ask(&question).await;
        record(&audit, AuditEvent::Consent {
            question,
            answer: answer.approved(),
        })?;
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
            end(&audit, &outbox, "the person did not allow the session")?;
            drop(outbox);
            let _ = writer.await;
            return Ok(Ending::Declined);
        }

        let ctx = Arc::new(Ctx {
            config,
            consent,
            audit: audit.clone(),
            sampler,
            catalog: Mutex::new(None),
            runs: Mutex::new(HashMap::new()),
            outbox: outbox.clone(),
            thresholds: Thresholds::default(),
            viewing_noticed: Mutex::new(None),
        });
        let ending = loop {
            tokio::select! {
                msg = reader.recv::<ConsoleMsg>() => match msg {
                    Ok(Some(ConsoleMsg::Request { id, request })) => handle(&ctx, id, request).await,
                    Ok(Some(ConsoleMsg::Bye)) | Ok(None) => break Ending::ByTechnician,
                    // Who the technician is was settled at the start.
                    Ok(Some(ConsoleMsg::Identify { .. })) => {}
                    Err(e) => {
                        println!("the session was broken: {e}");
                        let reason = format!("session broken: {e}");
                        end(&audit, &outbox, &reason)?;
                        drop(ctx);
                        drop(outbox);
                        let _ = writer.await;
                        return Err(AgentError::Secure(e));
                    }
                },
                () = &mut stop => {
                    println!("you ended the session");
                    break Ending::ByPerson;
                }
            }
        };
        ctx.cancel_all();
        let reason = match ending {
            Ending::ByPerson => "the person ended the session",
            _ => "the technician ended the session",
        };
        if ending == Ending::ByTechnician {
            println!("the technician ended the session");
        }
        end(&audit, &outbox, reason)?;
        drop(ctx);
        drop(outbox);
        let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
        Ok(ending)
    }
    .instrument(span)
    .await;
    // Close at once rather than leave the console to notice by timeout; the
    // close code tells the relay's metrics whether the code was wrong.
    let close = match &result {
        Err(AgentError::Secure(e)) if e.is_wrong_code() => close_code::WRONG_CODE,
        _ => close_code::ENDED,
    };
    connection.close(close.into(), b"session ended");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    result
}

fn record(audit: &Mutex<AuditLog>, event: AuditEvent) -> Result<(), AgentError> {
    audit
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .append(event)
        .map_err(AgentError::Audit)
}

fn end(
    audit: &Mutex<AuditLog>,
    outbox: &mpsc::Sender<AgentMsg>,
    reason: &str,
) -> Result<(), AgentError> {
    let _ = outbox.try_send(AgentMsg::Bye {
        reason: reason.to_string(),
    });
    record(
        audit,
        AuditEvent::SessionEnd {
            reason: reason.to_string(),
        },
    )
}

async fn write_loop(
    mut writer: secure::SecureWriter<quinn::SendStream>,
    mut outbox: mpsc::Receiver<AgentMsg>,
) {
    while let Some(msg) = outbox.recv().await {
        if let Err(e) = writer.send(&msg).await {
            debug!("cannot send to the console: {e}");
            break;
        }
    }
    let stream = writer.get_mut();
    let _ = stream.finish();
    // Let the last messages (the goodbye) arrive before the connection closes.
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.stopped()).await;
}

struct Ctx {
    config: AgentConfig,
    consent: Arc<Consent>,
    audit: Arc<Mutex<AuditLog>>,
    sampler: Sampler,
    catalog: Mutex<Option<Arc<Catalog>>>,
    runs: Mutex<HashMap<RequestId, oneshot::Sender<()>>>,
    outbox: mpsc::Sender<AgentMsg>,
    thresholds: Thresholds,
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
            println!(
                "the technician is looking at this machine's state (system, processes, disks, network)"
            );
            *last = Some(std::time::Instant::now());
        }
    }

    fn cancel_all(&self) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        for (_, cancel) in runs.drain() {
            let _ = cancel.send(());
        }
    }

    async fn refuse(&self, id: RequestId, reason: impl Into<String>) {
        let _ = self
            .outbox
            .send(AgentMsg::Refused {
                id,
                reason: reason.into(),
            })
            .await;
    }
}

async fn handle(ctx: &Arc<Ctx>, id: RequestId, request: Request) {
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
            let report = report_for(snapshot, &ctx.thresholds);
            let report = Box::new(report);
            let _ = ctx.outbox.send(AgentMsg::Diagnostics { id, report }).await;
        }
        Request::Catalog(signed) => accept_catalog(ctx, id, signed).await,
        Request::Run { script, params } => {
            let ctx = ctx.clone();
            tokio::spawn(async move { run_script(&ctx, id, script, params).await });
        }
        Request::Cancel { run } => {
            let cancel = ctx
                .runs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&run);
            match cancel {
                Some(cancel) => {
                    let _ = cancel.send(());
                    let _ = ctx.outbox.send(AgentMsg::Ack { id }).await;
                }
                None => {
                    ctx.refuse(id, format!("there is no run {run} in progress to cancel"))
                        .await
                }
            }
        }
    }
}

async fn accept_catalog(ctx: &Ctx, id: RequestId, signed: SignedCatalog) {
    let memory = ctx.config.catalog_memory_path();
    let now = std::time::SystemTime::now();
    match catalog_memory::accept(&signed, &ctx.config.trusted_keys, &memory, now) {
        Ok(catalog) => {
            println!(
                "the technician's script catalog is signed by a key you trust ({} scripts)",
                catalog.scripts.len()
            );
            let msg = AgentMsg::CatalogAccepted {
                id,
                scripts: catalog.scripts.len(),
                digest: catalog.digest.clone(),
            };
            *ctx.catalog.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(catalog));
            let _ = ctx.outbox.send(msg).await;
        }
        Err(e) => {
            let reason = format!("catalog refused: {e}");
            println!("{reason}; no scripts can run in this session");
            if let Err(e) = record(
                &ctx.audit,
                AuditEvent::CatalogRefused {
                    reason: reason.clone(),
                },
            ) {
                println!("{e}");
            }
            ctx.refuse(id, reason).await;
        }
    }
}

async fn run_script(ctx: &Ctx, id: RequestId, script_id: String, params: Vec<(String, String)>) {
    if let Err(reason) = approve_and_run(ctx, id, &script_id, &params).await {
        let event = AuditEvent::RunRefused {
            run: u64::from(id),
            script: script_id,
            reason: reason.clone(),
        };
        if let Err(e) = record(&ctx.audit, event) {
            println!("{e}");
        }
        ctx.refuse(id, reason).await;
    }
}

/// Checks a run request, asks the person, and runs the script. An `Err` is
/// the reason nothing ran, for the technician and the audit log.
async fn approve_and_run(
    ctx: &Ctx,
    id: RequestId,
    script_id: &str,
    params: &[(String, String)],
) -> Result<(), String> {
    let catalog = ctx
        .catalog
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let Some(catalog) = catalog else {
        return Err(if ctx.config.trusted_keys.is_empty() {
            "no trusted catalog key is configured on this machine, so no scripts can run"
                .to_string()
        } else {
            "no verified catalog in this session: the console must send a signed catalog first"
                .to_string()
        });
    };
    let script = catalog
        .get(script_id)
        .ok_or_else(|| format!("there is no script {script_id:?} in the signed catalog"))?;
    if !Platform::current().is_some_and(|p| script.runs_on(p)) {
        return Err(format!(
            "script {script_id:?} is not made for this platform"
        ));
    }
    let args = script.bind(params).map_err(|e| format!("refused: {e}"))?;
    let question = format!(
        "the technician asks to run a repair script:\n  {title}\n  {description}\n  risk: {risk}\n  command: {command}\n  stops after {timeout} s",
        title = script.title,
        description = script.description,
        risk = script.risk,
        command = catalog::display_command(&script.program, &args),
        timeout = script.timeout_secs,
    );
    let answer = ctx.consent.ask(&question).await;
    record(
        &ctx.audit,
        AuditEvent::Consent {
            question,
            answer: answer.approved(),
        },
    )
    .map_err(|e| format!("nothing was run: {e}"))?;
    if !answer.approved() {
        return Err(not_approved(answer, script_id));
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
        },
    )
    .map_err(|e| format!("nothing was run: {e}"))?;
    let (cancel_tx, cancel_rx) = oneshot::channel();
    ctx.runs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, cancel_tx);
    println!("running {script_id} for the technician");
    let _ = ctx
        .outbox
        .send(AgentMsg::RunStarted {
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
            if ctx.outbox.send(msg).await.is_err() {
                break;
            }
        }
    };
    let cancelled = async move {
        let _ = cancel_rx.await;
    };
    let (end, ()) = tokio::join!(runner::run(spec, events_tx, cancelled), forward);
    ctx.runs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    println!("{script_id} finished: {}", end.status);
    if let Err(e) = record(
        &ctx.audit,
        AuditEvent::run_end(u64::from(id), script_id, &end),
    ) {
        println!("{e}");
    }
    let _ = ctx.outbox.send(AgentMsg::RunEnded { id, end }).await;
    Ok(())
}

/// Why a run did not start when the person did not say yes, as a sentence
/// for the technician and the audit log.
fn not_approved(answer: Answer, script_id: &str) -> String {
    match answer {
        Answer::NoInput => {
            format!("nobody answered whether to run {script_id}: the agent's input is closed")
        }
        Answer::NoAnswer => format!("the person did not answer in time whether to run {script_id}"),
        Answer::No | Answer::Yes => format!("the person declined the run of {script_id}"),
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("relay refused: {0}")]
    Relay(ErrorFrame),
    #[error("relay connection failed: {0}")]
    Frame(#[from] FrameError),
    #[error("unexpected message from the relay: {0}")]
    Unexpected(String),
    #[error(transparent)]
    Secure(SecureError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Diag(#[from] crate::diag::DiagError),
    #[error(transparent)]
    Identify(IdentifyError),
}

// Kept for callers that show who connected.
pub type PairedWith = Technician;
