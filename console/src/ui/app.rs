//! The interactive console's state and the intents that change it. Drawing
//! reads this state and never changes it; keys call small intent methods;
//! answers from the agent arrive through [`App::on_agent`].

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

use sprijin_proto::catalog::{Script, ScriptId, parse_assignment};
use sprijin_proto::message::diag::{DiagReport, Finding, PersonRun, ProcessInfo};
use sprijin_proto::message::script::OutStream;
use sprijin_proto::message::session::{AgentMsg, RequestId};
use sprijin_proto::text::{CleanStream, clean_line};

use crate::command::Command;
use crate::fetch::{Receiving, Step};
use crate::report::{Exchange, KeptFile, SessionRecord};

/// How many output lines a run view keeps.
const RUN_LINES: usize = 2000;

/// Columns between tab stops when a run's output is shown.
const TAB_STOP: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Overview,
    Findings,
    Processes,
    Catalog,
    Runs,
    /// Messages to the person, questions and their answers.
    Talk,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Overview,
        View::Findings,
        View::Processes,
        View::Catalog,
        View::Runs,
        View::Talk,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Findings => "Findings",
            View::Processes => "Processes",
            View::Catalog => "Catalog",
            View::Runs => "Runs",
            View::Talk => "Talk",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Cpu,
    Memory,
}

/// What the technician is being asked, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Typing parameters for a script, as `KEY=VALUE ...`.
    Params { script: String, input: String },
    /// Confirming a run before it is sent to the person.
    Confirm {
        script: String,
        params: Vec<(String, String)>,
    },
    /// Typing a message for the person's screen.
    Say { input: String },
    /// Typing a question for the person.
    Ask { input: String },
    /// Typing `PATH [LOCAL]` for a file to fetch from the person's machine.
    Fetch { input: String },
}

/// What the loop must do for the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Refresh,
    Run {
        script: String,
        params: Vec<(String, String)>,
    },
    Cancel(RequestId),
    Say(String),
    Ask(String),
    /// Ask the person for the file at `path`, to keep as `local`.
    Fetch {
        path: String,
        local: PathBuf,
    },
    Report,
    Quit,
}

/// A message, question or fetch sent to the person, and what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalkLine {
    pub id: RequestId,
    pub question: bool,
    /// The message, the question, or the path of the file asked for.
    pub text: String,
    /// `None` while waiting; the answer (or, for a message or a file, an
    /// empty text once done), or why there is none.
    pub reply: Option<Result<String, String>>,
    /// For a file asked for, how it is coming along.
    pub fetch: Option<FetchLine>,
}

/// A file asked for from the person's machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchLine {
    /// Where it is kept here.
    pub local: String,
    /// The size the agent announced once the person agreed.
    pub size: Option<u64>,
    pub received: u64,
    /// The file as kept, once its size and SHA-256 checked out.
    pub kept: Option<KeptFile>,
}

#[derive(Debug, Clone)]
pub struct RunView {
    pub id: RequestId,
    pub script: String,
    pub requested: Instant,
    pub started: Option<Instant>,
    pub finished: Option<Instant>,
    pub bytes: u64,
    pub lines: VecDeque<String>,
    partial: String,
    /// Output made safe to draw, one cleaner per stream.
    stdout: CleanStream,
    stderr: CleanStream,
    pub status: Option<String>,
    pub success: bool,
    pub refused: Option<String>,
}

impl RunView {
    /// Output from the agent, cleaned of control characters and escape
    /// sequences (a character cut between chunks is put back together), with
    /// tabs turned into spaces, since a tab would move the terminal's cursor
    /// past what the view drew.
    fn push_output(&mut self, stream: OutStream, data: &[u8]) {
        self.bytes += data.len() as u64;
        let text = match stream {
            OutStream::Stdout => self.stdout.push(data),
            OutStream::Stderr => self.stderr.push(data),
        };
        self.push_text(&text);
    }

    /// Adds what the output streams still held back at the end of the run.
    fn finish_output(&mut self) {
        let text = self.stdout.finish() + &self.stderr.finish();
        self.push_text(&text);
    }

    fn push_text(&mut self, text: &str) {
        let mut column = self.partial.chars().count();
        for c in text.chars() {
            match c {
                '\t' => {
                    let spaces = TAB_STOP - column % TAB_STOP;
                    self.partial.extend(std::iter::repeat_n(' ', spaces));
                    column += spaces;
                }
                '\n' => {
                    self.lines.push_back(std::mem::take(&mut self.partial));
                    if self.lines.len() > RUN_LINES {
                        self.lines.pop_front();
                    }
                    column = 0;
                }
                c => {
                    self.partial.push(c);
                    column += 1;
                }
            }
        }
    }

    /// The output lines, with a last line that has no newline yet.
    pub fn all_lines(&self) -> impl Iterator<Item = &str> {
        self.lines
            .iter()
            .map(String::as_str)
            .chain((!self.partial.is_empty()).then_some(self.partial.as_str()))
    }

    pub fn is_running(&self) -> bool {
        self.status.is_none() && self.refused.is_none()
    }

    /// A short state for lists.
    pub fn state(&self) -> String {
        match (&self.refused, &self.status, self.started) {
            (Some(reason), _, _) => format!("not run: {reason}"),
            (None, Some(status), _) => status.clone(),
            (None, None, Some(_)) => "running".into(),
            (None, None, None) => "waiting for the person's approval".into(),
        }
    }
}

pub struct App {
    pub host: String,
    pub verification: String,
    pub technician: String,
    pub view: View,
    pub report: Option<DiagReport>,
    pub refreshed: Option<Instant>,
    pub pending_diag: Option<RequestId>,
    pub sort: Sort,
    pub selected: [usize; 6],
    pub scripts: Vec<(ScriptId, Script)>,
    pub catalog_state: String,
    pub runs: Vec<RunView>,
    pub talk: Vec<TalkLine>,
    /// The files being received, by request.
    receiving: BTreeMap<RequestId, Receiving>,
    pub prompt: Option<Prompt>,
    pub status: String,
    pub ended: Option<String>,
    pub record: SessionRecord,
}

impl App {
    pub fn new(record: SessionRecord, scripts: Vec<(ScriptId, Script)>) -> App {
        App {
            host: record.host.clone(),
            verification: record.verification.clone(),
            technician: record.technician.clone(),
            view: View::Overview,
            report: None,
            refreshed: None,
            pending_diag: None,
            sort: Sort::Cpu,
            selected: [0; 6],
            catalog_state: if scripts.is_empty() {
                "no catalog: start the console with --catalog DIR to run scripts".into()
            } else {
                "sent to the agent for verification".into()
            },
            scripts,
            runs: Vec::new(),
            talk: Vec::new(),
            receiving: BTreeMap::new(),
            prompt: None,
            status: "loading the machine's state...".into(),
            ended: None,
            record,
        }
    }

    fn view_index(&self) -> usize {
        View::ALL.iter().position(|v| *v == self.view).unwrap_or(0)
    }

    pub fn selected(&self) -> usize {
        self.selected[self.view_index()]
    }

    pub fn next_view(&mut self) {
        self.view = View::ALL[(self.view_index() + 1) % View::ALL.len()];
    }

    pub fn prev_view(&mut self) {
        self.view = View::ALL[(self.view_index() + View::ALL.len() - 1) % View::ALL.len()];
    }

    pub fn show(&mut self, view: View) {
        self.view = view;
    }

    fn rows(&self) -> usize {
        match self.view {
            View::Overview | View::Findings => self.findings().len(),
            View::Processes => self.processes().len(),
            View::Catalog => self.scripts.len(),
            View::Runs => self.runs.len(),
            View::Talk => self.talk.len(),
        }
    }

    pub fn select_next(&mut self) {
        let rows = self.rows();
        let i = self.view_index();
        if rows > 0 {
            self.selected[i] = (self.selected[i] + 1).min(rows - 1);
        }
    }

    pub fn select_prev(&mut self) {
        let i = self.view_index();
        self.selected[i] = self.selected[i].saturating_sub(1);
    }

    pub fn toggle_sort(&mut self) {
        self.sort = match self.sort {
            Sort::Cpu => Sort::Memory,
            Sort::Memory => Sort::Cpu,
        };
    }

    /// Findings, most severe first.
    pub fn findings(&self) -> Vec<&Finding> {
        let mut list: Vec<&Finding> = self.report.iter().flat_map(|r| r.findings.iter()).collect();
        list.sort_by_key(|f| std::cmp::Reverse(f.severity));
        list
    }

    pub fn processes(&self) -> &[ProcessInfo] {
        match (&self.report, self.sort) {
            (Some(r), Sort::Cpu) => &r.snapshot.processes.top_cpu,
            (Some(r), Sort::Memory) => &r.snapshot.processes.top_memory,
            (None, _) => &[],
        }
    }

    pub fn script(&self, id: &str) -> Option<&Script> {
        self.scripts
            .iter()
            .find(|(sid, _)| sid.as_str() == id)
            .map(|(_, s)| s)
    }

    /// Enter: run the selected finding's suggested script, or the selected
    /// catalog script, after asking for what is missing.
    pub fn activate(&mut self) {
        let (script, subject) = match self.view {
            View::Overview | View::Findings => {
                let Some(f) = self.findings().get(self.selected()).copied() else {
                    return;
                };
                let Some(script) = f.script.clone() else {
                    self.status = format!("no script is suggested for: {}", f.title);
                    return;
                };
                (script, f.subject.clone())
            }
            View::Catalog => match self.scripts.get(self.selected()) {
                Some((id, _)) => (id.as_str().to_string(), None),
                None => return,
            },
            View::Processes => {
                let Some(p) = self.processes().get(self.selected()) else {
                    return;
                };
                ("stop-process".to_string(), Some(p.pid.to_string()))
            }
            View::Runs | View::Talk => return,
        };
        self.begin_run(script, subject);
    }

    fn begin_run(&mut self, script: String, subject: Option<String>) {
        let Some(spec) = self.script(&script) else {
            self.status = format!("the catalog has no script {script:?}");
            return;
        };
        let names: Vec<String> = spec.params.keys().cloned().collect();
        self.prompt = match (names.as_slice(), subject) {
            ([], _) => Some(Prompt::Confirm {
                script,
                params: Vec::new(),
            }),
            ([only], Some(subject)) => Some(Prompt::Confirm {
                script,
                params: vec![(only.clone(), subject)],
            }),
            _ => Some(Prompt::Params {
                input: names
                    .iter()
                    .map(|n| format!("{n}="))
                    .collect::<Vec<_>>()
                    .join(" "),
                script,
            }),
        };
    }

    /// The text being typed in the prompt, if it takes text.
    fn input(&mut self) -> Option<&mut String> {
        match &mut self.prompt {
            Some(
                Prompt::Params { input, .. }
                | Prompt::Say { input }
                | Prompt::Ask { input }
                | Prompt::Fetch { input },
            ) => Some(input),
            _ => None,
        }
    }

    pub fn type_char(&mut self, c: char) {
        if let Some(input) = self.input() {
            input.push(c);
        }
    }

    pub fn backspace(&mut self) {
        if let Some(input) = self.input() {
            input.pop();
        }
    }

    /// Opens the prompt for a message (`question` false) or a question.
    pub fn begin_talk(&mut self, question: bool) {
        let input = String::new();
        self.prompt = Some(if question {
            Prompt::Ask { input }
        } else {
            Prompt::Say { input }
        });
    }

    /// A message or question was sent to the agent as request `id`.
    pub fn talk_requested(&mut self, id: RequestId, question: bool, text: String) {
        self.status = if question {
            "waiting for the person's answer...".into()
        } else {
            "sending the message...".into()
        };
        self.talk.push(TalkLine {
            id,
            question,
            text,
            reply: None,
            fetch: None,
        });
        self.view = View::Talk;
        self.selected[self.view_index()] = self.talk.len() - 1;
    }

    /// Opens the prompt for a file to fetch.
    pub fn begin_fetch(&mut self) {
        self.prompt = Some(Prompt::Fetch {
            input: String::new(),
        });
    }

    /// Reads `PATH [LOCAL]` as the line console's `fetch` does; the local
    /// name defaults to the file's base name in the current folder.
    fn parse_fetch(input: &str) -> Result<(String, PathBuf), String> {
        match format!("fetch {input}").parse::<Command>() {
            Ok(Command::Fetch { path, local }) => crate::fetch::local_for(&path, local)
                .map(|local| (path, local))
                .map_err(|e| e.to_string()),
            Ok(_) => Err("usage: fetch PATH [LOCAL]".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// A fetch was sent to the agent as request `id`; what arrives goes
    /// into `receiving`.
    pub fn fetch_requested(&mut self, id: RequestId, path: String, receiving: Receiving) {
        self.status = format!("asking the person to send {path}...");
        self.talk.push(TalkLine {
            id,
            question: false,
            text: path,
            reply: None,
            fetch: Some(FetchLine {
                local: receiving.local().display().to_string(),
                size: None,
                received: 0,
                kept: None,
            }),
        });
        self.receiving.insert(id, receiving);
        self.view = View::Talk;
        self.selected[self.view_index()] = self.talk.len() - 1;
    }

    /// A part of a fetch's answer; false when `msg` is not one.
    fn on_fetch(&mut self, msg: &AgentMsg) -> bool {
        let Some(id) = msg.request_id() else {
            return false;
        };
        let Some(receiving) = self.receiving.get_mut(&id) else {
            return false;
        };
        let step = receiving.on_agent(msg);
        let received = receiving.received();
        let Some(line) = self.talk.iter_mut().find(|t| t.id == id) else {
            return true;
        };
        let Some(fetch) = line.fetch.as_mut() else {
            return true;
        };
        fetch.received = received;
        let kept = match step {
            Step::Started(size) => {
                fetch.size = Some(size);
                self.status = format!(
                    "the person agreed; receiving {}...",
                    sprijin_proto::diag_text::human_bytes(size)
                );
                return true;
            }
            Step::Received | Step::Other => return true,
            Step::Kept(kept) => Ok(kept),
            Step::Failed(e) => Err(e.to_string()),
            Step::Refused(reason) => Err(format!("refused: {reason}")),
        };
        self.receiving.remove(&id);
        self.status = match &kept {
            Ok(k) => format!("kept {} as {}", line.text, k.local),
            Err(why) => format!("the file was not kept: {why}"),
        };
        fetch.kept = kept.as_ref().ok().cloned();
        line.reply = Some(kept.as_ref().map(|_| String::new()).map_err(Clone::clone));
        self.record.exchanged(
            id,
            Exchange::Fetched {
                path: line.text.clone(),
                kept,
            },
        );
        true
    }

    /// An answer to a message or question; false when `msg` is not one.
    fn on_talk(&mut self, msg: &AgentMsg) -> bool {
        let Some(id) = msg.request_id() else {
            return false;
        };
        let Some(line) = self.talk.iter_mut().find(|t| t.id == id) else {
            return false;
        };
        let reply = match msg {
            AgentMsg::Ack { .. } => Ok(String::new()),
            AgentMsg::Answer { text, .. } => Ok(text.clone()),
            AgentMsg::Refused { reason, .. } => Err(reason.clone()),
            _ => return true,
        };
        // A message that was not shown is not part of the conversation.
        let exchange = match (line.question, &reply) {
            (true, answer) => Some(Exchange::Asked {
                question: line.text.clone(),
                answer: answer.clone(),
            }),
            (false, Ok(_)) => Some(Exchange::Said {
                text: line.text.clone(),
            }),
            (false, Err(_)) => None,
        };
        self.status = match (line.question, &reply) {
            (true, Ok(answer)) => format!("the person answered: {answer}"),
            (false, Ok(_)) => "the message is on the person's screen".into(),
            (_, Err(why)) => format!("no answer: {why}"),
        };
        line.reply = Some(reply);
        if let Some(exchange) = exchange {
            self.record.exchanged(id, exchange);
        }
        true
    }

    pub fn cancel_prompt(&mut self) {
        self.prompt = None;
        self.status = "cancelled".into();
    }

    /// Enter in a prompt: parameters go to confirmation, confirmation to a run.
    pub fn submit_prompt(&mut self) -> Option<Action> {
        match self.prompt.take()? {
            Prompt::Params { script, input } => {
                let parsed = shell_words::split(&input)
                    .map_err(|e| e.to_string())
                    .and_then(|words| {
                        words
                            .iter()
                            .map(|w| parse_assignment(w).map_err(|e| e.to_string()))
                            .collect::<Result<Vec<_>, _>>()
                    });
                let checked = parsed.and_then(|params| match self.script(&script) {
                    Some(spec) => spec
                        .bind(&params)
                        .map(|_| params)
                        .map_err(|e| e.to_string()),
                    None => Err(format!("the catalog has no script {script:?}")),
                });
                match checked {
                    Ok(params) => self.prompt = Some(Prompt::Confirm { script, params }),
                    Err(e) => {
                        self.status = e;
                        self.prompt = Some(Prompt::Params { script, input });
                    }
                }
                None
            }
            Prompt::Confirm { script, params } => Some(Action::Run { script, params }),
            Prompt::Say { input } | Prompt::Ask { input } if input.trim().is_empty() => {
                self.status = "nothing was typed, so nothing was sent".into();
                None
            }
            Prompt::Say { input } => Some(Action::Say(input.trim().to_string())),
            Prompt::Ask { input } => Some(Action::Ask(input.trim().to_string())),
            Prompt::Fetch { input } => match App::parse_fetch(&input) {
                Ok((path, local)) => Some(Action::Fetch { path, local }),
                Err(e) => {
                    self.status = e;
                    self.prompt = Some(Prompt::Fetch { input });
                    None
                }
            },
        }
    }

    /// The run the Runs view has selected, or the newest.
    pub fn current_run(&self) -> Option<&RunView> {
        match self.view {
            View::Runs => self.runs.get(self.selected()),
            _ => self.runs.last(),
        }
    }

    pub fn cancel_run(&mut self) -> Option<Action> {
        let run = self.current_run().filter(|r| r.is_running())?;
        Some(Action::Cancel(run.id))
    }

    /// A run was sent to the agent as request `id`.
    pub fn run_requested(&mut self, id: RequestId, script: String, params: &[(String, String)]) {
        self.record.run_requested(id, &script, params);
        self.runs.push(RunView {
            id,
            script: script.clone(),
            requested: Instant::now(),
            started: None,
            finished: None,
            bytes: 0,
            lines: VecDeque::new(),
            partial: String::new(),
            stdout: CleanStream::new(),
            stderr: CleanStream::new(),
            status: None,
            success: false,
            refused: None,
        });
        self.view = View::Runs;
        self.selected[self.view_index()] = self.runs.len() - 1;
        self.status = format!("asking the person to approve {script}...");
    }

    pub fn on_agent(&mut self, msg: AgentMsg) {
        self.record.apply(&msg);
        if self.on_fetch(&msg) || self.on_talk(&msg) {
            return;
        }
        let id = msg.request_id();
        let run = id.and_then(|id| self.runs.iter_mut().find(|r| r.id == id));
        match (msg, run) {
            (AgentMsg::Diagnostics { report, .. }, _) => {
                if self.status.starts_with("loading") {
                    self.status = ran_alone(&report.person_runs).unwrap_or_else(|| "ready".into());
                }
                self.report = Some(*report);
                self.refreshed = Some(Instant::now());
                self.pending_diag = None;
            }
            (AgentMsg::CatalogAccepted { scripts, .. }, _) => {
                self.catalog_state = format!("verified by the agent ({scripts} scripts)");
            }
            (AgentMsg::RunStarted { .. }, Some(run)) => {
                run.started = Some(Instant::now());
                self.status = format!("the person approved {}; it is running", run.script);
            }
            (AgentMsg::Output { stream, data, .. }, Some(run)) => run.push_output(stream, &data),
            (AgentMsg::Truncated { cap, .. }, Some(run)) => {
                run.lines.push_back(format!(
                    "[output over {cap} bytes: the rest is counted, not shown]"
                ));
            }
            (AgentMsg::RunEnded { end, .. }, Some(run)) => {
                run.finish_output();
                run.finished = Some(Instant::now());
                run.success = end.success();
                run.status = Some(end.status.to_string());
                self.status = format!("{}: {}", run.script, end.status);
            }
            (AgentMsg::Refused { reason, .. }, Some(run)) => {
                self.status = format!("{} was not run: {reason}", run.script);
                run.refused = Some(reason);
            }
            (AgentMsg::Refused { reason, .. }, None) => {
                if self.pending_diag == id {
                    self.pending_diag = None;
                }
                if reason.starts_with("catalog refused") {
                    self.catalog_state = reason.clone();
                }
                self.status = reason;
            }
            _ => {}
        }
    }

    pub fn on_ended(&mut self, reason: String) {
        // A file still on its way is not kept; its part is removed.
        for (id, receiving) in std::mem::take(&mut self.receiving) {
            drop(receiving);
            let why = format!("the session ended before the whole file arrived: {reason}");
            if let Some(line) = self.talk.iter_mut().find(|t| t.id == id) {
                line.reply = Some(Err(why.clone()));
                self.record.exchanged(
                    id,
                    Exchange::Fetched {
                        path: line.text.clone(),
                        kept: Err(why),
                    },
                );
            }
        }
        self.status = format!("{reason}; press q to leave");
        self.ended = Some(reason);
    }
}

/// The repairs the person ran alone since the last session, in one line
/// for the status bar; `None` when there were none.
fn ran_alone(runs: &[PersonRun]) -> Option<String> {
    if runs.is_empty() {
        return None;
    }
    let each: Vec<String> = runs
        .iter()
        .map(|r| {
            let after = match r.fixed {
                Some(true) => "fixed",
                Some(false) => "still there",
                None => r.status.as_str(),
            };
            format!("{} ({after})", clean_line(&r.script))
        })
        .collect();
    Some(format!(
        "since the last session the person ran: {}",
        each.join(", ")
    ))
}
