//! Runs session commands against an open session and shows the results,
//! as text for people or as one JSON object per line (`--json`). It keeps the
//! session record the report is written from.

use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use sprijin_proto::catalog::{self, Script, ScriptId, SignedCatalog};
use sprijin_proto::diag_text;
use sprijin_proto::message::diag::DiagReport;
use sprijin_proto::message::session::{AgentMsg, Request, RequestId};
use sprijin_proto::text::{clean_line, clean_text};
use std::collections::BTreeMap;

use crate::command::{Command, HELP};
use crate::fetch::{FetchError, Receiving, Step};
use crate::output::RunOutput;
use crate::report::{Exchange, SessionRecord};
use crate::session::{AuditHead, Replies, Session, SessionError};
use sprijin_proto::path::direct::PathChange;

/// The catalog the console brought, parsed for listing and local checks.
pub struct LocalCatalog {
    pub dir: PathBuf,
    pub signed: SignedCatalog,
    pub scripts: BTreeMap<ScriptId, Script>,
}

impl LocalCatalog {
    pub fn load(dir: &Path) -> Result<LocalCatalog, DriverError> {
        let signed =
            crate::catalog_tool::load(dir).map_err(|e| DriverError::Catalog(e.to_string()))?;
        let scripts = catalog::parse_scripts(&signed.files)
            .map_err(|e| DriverError::Catalog(e.to_string()))?;
        Ok(LocalCatalog {
            dir: dir.to_path_buf(),
            signed,
            scripts,
        })
    }
}

/// A run's progress line on standard error, while its output streams.
pub struct RunProgress {
    started: Instant,
    received: u64,
    /// Whether the progress line is shown at all.
    shown: bool,
}

impl RunProgress {
    pub fn new(shown: bool) -> RunProgress {
        RunProgress {
            started: Instant::now(),
            received: 0,
            shown,
        }
    }

    fn tick(&self) {
        eprint!(
            "\r  {:.1} s, {} received ",
            self.started.elapsed().as_secs_f64(),
            diag_text::human_bytes(self.received)
        );
    }
}

/// Whether to keep going after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

pub struct Driver {
    pub session: Session,
    pub record: SessionRecord,
    json: bool,
    catalog: Option<LocalCatalog>,
    catalog_accepted: Option<Result<String, String>>,
    /// Set once an error saying the session ended was shown, so the end is
    /// not reported a second time when the console exits.
    end_reported: Cell<bool>,
    /// The output of each run under way, as it is being printed.
    outputs: BTreeMap<RequestId, RunOutput>,
}

impl Driver {
    pub fn new(
        session: Session,
        record: SessionRecord,
        json: bool,
        catalog: Option<LocalCatalog>,
    ) -> Self {
        Driver {
            session,
            record,
            json,
            catalog,
            catalog_accepted: None,
            end_reported: Cell::new(false),
            outputs: BTreeMap::new(),
        }
    }

    /// Prints a line of text, or a JSON event. The text is cleaned once
    /// more as a whole, so nothing that reaches the terminal holds a control
    /// character but a line break or a tab; fields from the agent are also
    /// cleaned one by one where they are put in, so none can add a line.
    fn emit(&self, text: impl AsRef<str>, event: serde_json::Value) {
        emit(self.json, text, event);
    }

    /// Announces the session.
    pub fn started(&self) {
        self.emit(
            format!(
                "connected to {} (verification words: {})",
                clean_line(&self.session.host),
                self.session.verification
            ),
            json!({"event": "session", "host": self.session.host, "verification": self.session.verification}),
        );
    }

    /// Sends the catalog, if the console has one, and reports the agent's
    /// verdict; a refused catalog is an error, since no script can run.
    pub async fn send_catalog(&mut self) -> Result<(), DriverError> {
        let Some(cat) = &self.catalog else {
            return Ok(());
        };
        let (_, mut replies) = self
            .session
            .request(Request::Catalog(cat.signed.clone()))
            .await?;
        let reply = replies.recv().await;
        if let Some(msg) = &reply {
            self.record.apply(msg);
        }
        let verdict = match reply {
            Some(AgentMsg::CatalogAccepted {
                scripts, digest, ..
            }) => {
                self.emit(
                    format!("the agent accepted the catalog ({scripts} scripts, digest {})", clean_line(&digest.chars().take(16).collect::<String>())),
                    json!({"event": "catalog", "accepted": true, "scripts": scripts, "digest": digest}),
                );
                Ok(digest)
            }
            Some(AgentMsg::Refused { reason, .. }) => {
                self.emit(
                    format!("the agent refused the catalog: {}", clean_line(&reason)),
                    json!({"event": "catalog", "accepted": false, "reason": reason}),
                );
                Err(reason)
            }
            _ => return Err(self.gone()),
        };
        self.record.catalog = Some(match &verdict {
            Ok(digest) => format!("{} (digest {digest})", cat.dir.display()),
            Err(reason) => format!("{} (refused: {reason})", cat.dir.display()),
        });
        let result = match &verdict {
            Ok(_) => Ok(()),
            Err(reason) => Err(DriverError::CatalogRefused(reason.clone())),
        };
        self.catalog_accepted = Some(verdict);
        result
    }

    fn gone(&self) -> DriverError {
        DriverError::Session(SessionError::Ended(
            self.session
                .ended()
                .unwrap_or_else(|| "the agent stopped answering".into()),
        ))
    }

    /// Runs one command. An `Err` means the command failed; the session may
    /// still be usable.
    pub async fn execute(&mut self, command: Command) -> Result<Flow, DriverError> {
        let result = self.execute_one(command).await;
        self.audit_head_events();
        self.path_events();
        result
    }

    /// A line on standard error (or a JSON event) for each change of the
    /// session's path.
    fn path_events(&mut self) {
        for change in self.record.new_path() {
            path_line(self.json, &change);
        }
    }

    /// With `--json`, an event for each new head of the agent's audit log.
    fn audit_head_events(&mut self) {
        if let Some(head) = self.record.new_audit_head()
            && self.json
        {
            self.emit("", audit_head_event(&head));
        }
    }

    /// Says goodbye, then shows the agent's final audit log head: the one
    /// the person's log must reach.
    pub async fn close(self) {
        let Driver {
            session,
            mut record,
            json,
            ..
        } = self;
        session.close().await;
        for change in record.new_path() {
            path_line(json, &change);
        }
        record.new_audit_head();
        let head = record.audit_head.borrow().clone();
        if let Some(head) = head {
            emit(
                json,
                format!(
                    "the agent's audit log head: {head} (check it on the machine with: sprijin-agent audit verify --head {head})"
                ),
                audit_head_event(&head),
            );
        }
    }

    async fn execute_one(&mut self, command: Command) -> Result<Flow, DriverError> {
        match command {
            Command::Diag => {
                let report = self.diagnostics().await?;
                self.emit(
                    diag_text::report(&report),
                    json!({"event": "diag", "snapshot": report.snapshot, "findings": report.findings, "person_runs": report.person_runs}),
                );
            }
            Command::Findings => {
                let report = self.diagnostics().await?;
                self.emit(
                    diag_text::findings(&report.findings),
                    json!({"event": "findings", "findings": report.findings}),
                );
            }
            Command::Processes => {
                let report = self.diagnostics().await?;
                self.emit(
                    diag_text::processes(&report.snapshot),
                    json!({"event": "processes", "processes": report.snapshot.processes}),
                );
            }
            Command::Scripts => self.scripts(),
            Command::Run { script, params } => self.run(script, params).await?,
            Command::Cancel { run } => {
                let (_, mut replies) = self.session.request(Request::Cancel { run }).await?;
                match replies.recv().await {
                    Some(AgentMsg::Ack { .. }) => self.emit(
                        format!("asked the agent to cancel run {run}"),
                        json!({"event": "cancel", "run": run}),
                    ),
                    Some(AgentMsg::Refused { reason, .. }) => {
                        return Err(DriverError::Refused(reason));
                    }
                    _ => return Err(self.gone()),
                }
            }
            Command::Report(path) => {
                let md = self.record.to_markdown();
                std::fs::write(&path, md)
                    .map_err(|e| DriverError::Report(path.display().to_string(), e.to_string()))?;
                self.emit(
                    format!("report written to {}", path.display()),
                    json!({"event": "report", "path": path.display().to_string()}),
                );
            }
            Command::Say(text) => self.say(text).await?,
            Command::Ask(text) => self.ask(text).await?,
            Command::Fetch { path, local } => self.fetch(path, local).await?,
            Command::Help => self.emit(HELP, json!({"event": "help", "text": HELP})),
            Command::Quit => return Ok(Flow::Quit),
        }
        Ok(Flow::Continue)
    }

    async fn diagnostics(&mut self) -> Result<DiagReport, DriverError> {
        let (_, mut replies) = self.session.request(Request::Diagnostics).await?;
        match replies.recv().await {
            Some(msg @ AgentMsg::Diagnostics { .. }) => {
                self.record.apply(&msg);
                match msg {
                    AgentMsg::Diagnostics { report, .. } => Ok(*report),
                    _ => Err(self.gone()),
                }
            }
            Some(AgentMsg::Refused { reason, .. }) => Err(DriverError::Refused(reason)),
            _ => Err(self.gone()),
        }
    }

    /// Shows a message on the person's screen.
    async fn say(&mut self, text: String) -> Result<(), DriverError> {
        let (id, mut replies) = self
            .session
            .request(Request::Say { text: text.clone() })
            .await?;
        match replies.recv().await {
            Some(AgentMsg::Ack { .. }) => {
                self.record
                    .exchanged(id, Exchange::Said { text: text.clone() });
                self.emit(
                    format!("shown to the person: {}", clean_text(&text)),
                    json!({"event": "said", "request": id, "text": text}),
                );
                Ok(())
            }
            Some(AgentMsg::Refused { reason, .. }) => Err(DriverError::Refused(reason)),
            _ => Err(self.gone()),
        }
    }

    /// Asks the person a question and shows their typed answer.
    async fn ask(&mut self, question: String) -> Result<(), DriverError> {
        let (id, mut replies) = self
            .session
            .request(Request::Ask {
                text: question.clone(),
            })
            .await?;
        self.emit(
            format!(
                "ask {id}: waiting for the person's answer to: {}",
                clean_text(&question)
            ),
            json!({"event": "asked", "request": id, "question": question}),
        );
        match replies.recv().await {
            Some(AgentMsg::Answer { text, .. }) => {
                self.record.exchanged(
                    id,
                    Exchange::Asked {
                        question,
                        answer: Ok(text.clone()),
                    },
                );
                self.emit(
                    format!("ask {id}: the person answered: {}", clean_text(&text)),
                    json!({"event": "answer", "request": id, "answer": text}),
                );
                Ok(())
            }
            Some(AgentMsg::Refused { reason, .. }) => {
                self.record.exchanged(
                    id,
                    Exchange::Asked {
                        question,
                        answer: Err(reason.clone()),
                    },
                );
                Err(DriverError::Unanswered(reason))
            }
            _ => Err(self.gone()),
        }
    }

    /// Asks the person for a copy of the file at `path` and keeps it as
    /// `local` once its size and SHA-256 check out.
    async fn fetch(&mut self, path: String, local: Option<PathBuf>) -> Result<(), DriverError> {
        let local = crate::fetch::local_for(&path, local)?;
        // Before the person is asked: a name that cannot be used is found
        // here, not after they said yes.
        let mut receiving = Receiving::create(&local)?;
        let (id, mut replies) = self
            .session
            .request(Request::Fetch { path: path.clone() })
            .await?;
        self.emit(
            format!(
                "fetch {id}: asking the person to send {}...",
                clean_line(&path)
            ),
            json!({"event": "fetch_requested", "request": id, "path": path, "local": local.display().to_string()}),
        );
        let shown = !self.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let mut progress: Option<Instant> = None;
        let mut ticker = tokio::time::interval(Duration::from_millis(500));
        let result = loop {
            let msg = tokio::select! {
                msg = replies.recv() => msg,
                _ = ticker.tick(), if shown && progress.is_some() => {
                    if let (Some(started), Some(size)) = (progress, receiving.announced()) {
                        eprint!(
                            "\r  {:.1} s, {} of {} received ",
                            started.elapsed().as_secs_f64(),
                            diag_text::human_bytes(receiving.received()),
                            diag_text::human_bytes(size)
                        );
                    }
                    continue;
                }
            };
            let Some(msg) = msg else {
                break Err(self.gone());
            };
            match receiving.on_agent(&msg) {
                Step::Started(size) => {
                    progress = Some(Instant::now());
                    self.emit(
                        format!(
                            "fetch {id}: the person agreed; receiving {} ({size} bytes)",
                            diag_text::human_bytes(size)
                        ),
                        json!({"event": "fetch_started", "request": id, "size": size}),
                    );
                }
                Step::Kept(kept) => break Ok(kept),
                Step::Failed(e) => break Err(DriverError::Fetch(e)),
                Step::Refused(reason) => break Err(DriverError::Refused(reason)),
                Step::Received | Step::Other => {}
            }
        };
        if shown && progress.is_some() {
            eprint!("\r\x1b[K");
        }
        let kept = result.as_ref().map(Clone::clone).map_err(|e| e.to_string());
        self.record.exchanged(
            id,
            Exchange::Fetched {
                path: path.clone(),
                kept,
            },
        );
        let kept = result?;
        self.emit(
            format!(
                "fetch {id}: kept {} as {} ({} bytes, SHA-256 {})",
                clean_line(&path),
                clean_line(&kept.local),
                kept.size,
                clean_line(&kept.sha256)
            ),
            json!({"event": "fetched", "request": id, "path": path, "local": kept.local, "size": kept.size, "sha256": kept.sha256}),
        );
        Ok(())
    }

    fn scripts(&self) {
        let Some(cat) = &self.catalog else {
            self.emit(
                "no catalog: start the console with --catalog DIR to run scripts",
                json!({"event": "scripts", "scripts": [], "reason": "no catalog"}),
            );
            return;
        };
        let mut text = String::new();
        if let Some(Err(reason)) = &self.catalog_accepted {
            text.push_str(&format!(
                "the agent refused this catalog, so none of these can run: {reason}\n"
            ));
        }
        let mut list = Vec::new();
        for (id, s) in &cat.scripts {
            let params: Vec<&String> = s.params.keys().collect();
            let usage = params
                .iter()
                .map(|p| format!(" {p}=..."))
                .collect::<String>();
            text.push_str(&format!(
                "{:<20} {:<7} {}\n    run {id}{usage}\n",
                id.as_str(),
                s.risk.to_string(),
                clean_line(&s.title)
            ));
            list.push(json!({"id": id.as_str(), "title": s.title, "risk": s.risk.to_string(), "params": params}));
        }
        self.emit(
            text.trim_end(),
            json!({"event": "scripts", "scripts": list}),
        );
    }

    /// Runs a script to its end, showing its output as it comes.
    async fn run(
        &mut self,
        script: ScriptId,
        params: Vec<(String, String)>,
    ) -> Result<(), DriverError> {
        let (id, mut replies) = self.start_run(script, params).await?;
        let mut progress =
            RunProgress::new(!self.json && std::io::IsTerminal::is_terminal(&std::io::stderr()));
        let mut ticker = tokio::time::interval(Duration::from_millis(500));
        loop {
            let msg = tokio::select! {
                msg = replies.recv() => msg,
                _ = ticker.tick(), if progress.shown => {
                    progress.tick();
                    continue;
                }
            };
            if let Some(done) = self.run_message(id, msg, &mut progress) {
                return done;
            }
        }
    }

    /// Checks a run locally and asks the agent for it; the run's answers
    /// arrive on the returned channel, for [`Driver::run_message`].
    pub async fn start_run(
        &mut self,
        script: ScriptId,
        params: Vec<(String, String)>,
    ) -> Result<(RequestId, Replies), DriverError> {
        // Check locally first, so a typo never reaches the person's screen.
        if let Some(cat) = &self.catalog {
            let Some(s) = cat.scripts.get(&script) else {
                return Err(DriverError::Refused(format!(
                    "there is no script \"{script}\" in the catalog; type scripts for the list"
                )));
            };
            s.bind(&params)
                .map_err(|e| DriverError::Refused(e.to_string()))?;
        }
        let (id, replies) = self
            .session
            .request(Request::Run {
                script: script.clone(),
                params: params.clone(),
            })
            .await?;
        self.record.run_requested(id, script.as_str(), &params);
        self.emit(
            format!("run {id}: asking the person to approve {script}..."),
            json!({"event": "run_requested", "run": id, "script": script}),
        );
        Ok((id, replies))
    }

    /// Shows one answer to run `id` (`None`: the answers ended early).
    /// Returns the run's result once it is over.
    pub fn run_message(
        &mut self,
        id: RequestId,
        msg: Option<AgentMsg>,
        progress: &mut RunProgress,
    ) -> Option<Result<(), DriverError>> {
        if let Some(msg) = &msg {
            self.record.apply(msg);
        }
        match msg {
            Some(AgentMsg::RunStarted { program, args, .. }) => {
                let command = catalog::display_command(&program, &args);
                self.emit(
                    format!("run {id}: approved; running {}", clean_line(&command)),
                    json!({"event": "run_started", "run": id, "program": program, "args": args}),
                );
            }
            Some(AgentMsg::Output { stream, data, .. }) => {
                progress.received += data.len() as u64;
                let json = self.json;
                self.outputs
                    .entry(id)
                    .or_insert_with(|| RunOutput::new(id, json))
                    .chunk(stream, &data);
            }
            Some(AgentMsg::Truncated { cap, .. }) => self.emit(
                format!(
                    "[run {id}: output over {} — the rest is counted, not shown]",
                    diag_text::human_bytes(cap)
                ),
                json!({"event": "truncated", "run": id, "cap": cap}),
            ),
            Some(AgentMsg::RunEnded { end, .. }) => {
                if progress.shown {
                    eprint!("\r\x1b[K");
                }
                self.finish_output(id);
                let status = end.status.to_string();
                let mut text = format!(
                    "run {id}: {} after {:.1} s, {} of output",
                    clean_line(&status),
                    end.duration_ms as f64 / 1000.0,
                    diag_text::human_bytes(end.bytes)
                );
                if end.dropped > 0 {
                    text.push_str(&format!(
                        " ({} dropped over the cap)",
                        diag_text::human_bytes(end.dropped)
                    ));
                }
                self.emit(text, json!({"event": "run_end", "run": id, "status": status, "success": end.success(), "duration_ms": end.duration_ms, "bytes": end.bytes, "dropped": end.dropped, "output_sha256": end.output_sha256}));
                return Some(if end.success() {
                    Ok(())
                } else {
                    Err(DriverError::RunFailed(status))
                });
            }
            Some(AgentMsg::Refused { reason, .. }) => {
                self.finish_output(id);
                return Some(Err(DriverError::Refused(reason)));
            }
            Some(_) => {}
            None => {
                self.finish_output(id);
                return Some(Err(self.gone()));
            }
        }
        None
    }

    /// Prints what run `id`'s output still holds back.
    fn finish_output(&mut self, id: RequestId) {
        if let Some(mut output) = self.outputs.remove(&id) {
            output.finish();
        }
    }

    /// True when an error already told that the session ended.
    pub fn end_reported(&self) -> bool {
        self.end_reported.get()
    }

    /// Reports a failed command the same way in both modes.
    pub fn report_error(&self, error: &DriverError) {
        if matches!(error, DriverError::Session(SessionError::Ended(_))) {
            self.end_reported.set(true);
        }
        let mut err = std::io::stderr().lock();
        if self.json {
            let event = json!({"event": "error", "message": error.to_string()});
            let _ = writeln!(std::io::stdout().lock(), "{event}");
        }
        let _ = writeln!(err, "error: {}", clean_line(&error.to_string()));
    }
}

/// Prints a line of text, or a JSON event.
fn emit(json: bool, text: impl AsRef<str>, event: serde_json::Value) {
    // Whole, so a long snapshot goes out in one write rather than in pieces
    // of the standard output's buffer.
    let line = if json {
        format!("{event}\n")
    } else {
        format!("{}\n", clean_text(text.as_ref()))
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

/// Says how the session's path changed: a JSON event on standard output,
/// or a line on standard error, which the agent's output never shares.
fn path_line(json: bool, change: &PathChange) {
    if json {
        emit(true, "", path_event(change));
    } else {
        let _ = writeln!(
            std::io::stderr().lock(),
            "{}",
            clean_line(&change.to_string())
        );
    }
}

fn path_event(change: &PathChange) -> serde_json::Value {
    json!({
        "event": "path",
        "path": change.kind(),
        "peer": change.direct.map(|a| a.to_string()),
        "reason": change.reason,
    })
}

fn audit_head_event(head: &AuditHead) -> serde_json::Value {
    json!({"event": "audit_head", "seq": head.seq, "hash": head.hash, "head": head.to_string()})
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("refused: {0}")]
    Refused(String),
    #[error("the script {0}")]
    RunFailed(String),
    #[error("cannot write the report to {0}: {1}")]
    Report(String, String),
    #[error("{0}")]
    Catalog(String),
    #[error("terminal error: {0}")]
    Terminal(String),
    #[error("no script can run in this session: {0}")]
    CatalogRefused(String),
    #[error("no answer: {0}")]
    Unanswered(String),
    #[error(transparent)]
    Fetch(#[from] FetchError),
}
