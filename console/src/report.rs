//! The session record and the Markdown report written from it: when and with
//! whom, the machine, the findings, every run with its approval, status,
//! duration and the head and tail of its output, and the verification words.
//!
//! Most of what the report holds came from the agent's side, so none of it
//! goes in raw: fields are cleaned of control characters, escape sequences
//! and bidirectional marks and escaped for Markdown, code spans lose their
//! backticks, and run output is cleaned and kept inside its fenced block.

use std::fmt::Write as _;
use std::time::SystemTime;

use serde_json::json;
use sprijin_proto::diag_text;
use sprijin_proto::message::diag::DiagReport;
use sprijin_proto::message::session::AgentMsg;
use sprijin_proto::text::{clean_line, clean_text};

use crate::log::SessionLog;
use crate::session::AuditHead;
use sprijin_proto::path::direct::PathChange;

/// How many lines of a run's output the report keeps from each end.
const HEAD_TAIL_LINES: usize = 10;
/// How much output per run the record keeps, so a huge run stays cheap.
const KEEP_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    pub id: u32,
    pub script: String,
    pub params: Vec<(String, String)>,
    pub command: Option<String>,
    /// `None` while unanswered; the refusal reason when not approved.
    pub refused: Option<String>,
    pub status: Option<String>,
    pub success: bool,
    pub duration_ms: u64,
    pub bytes: u64,
    pub dropped: u64,
    pub output_sha256: Option<String>,
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl RunRecord {
    pub fn new(id: u32, script: &str, params: &[(String, String)]) -> Self {
        RunRecord {
            id,
            script: script.to_string(),
            params: params.to_vec(),
            ..Default::default()
        }
    }

    /// Keeps the first and the last [`KEEP_BYTES`] of output.
    pub fn add_output(&mut self, data: &[u8]) {
        let room = KEEP_BYTES.saturating_sub(self.head.len());
        let (to_head, rest) = data.split_at(room.min(data.len()));
        self.head.extend_from_slice(to_head);
        if !rest.is_empty() {
            self.tail.extend_from_slice(rest);
            if self.tail.len() > KEEP_BYTES {
                let cut = self.tail.len() - KEEP_BYTES;
                self.tail.drain(..cut);
            }
        }
    }

    /// The first and last lines of the output, with a gap marker between,
    /// cleaned for showing.
    pub fn head_and_tail(&self) -> String {
        let text = clean_text(&String::from_utf8_lossy(&self.head)).into_owned();
        let mut lines: Vec<&str> = text.lines().collect();
        if self.tail.is_empty() && lines.len() <= 2 * HEAD_TAIL_LINES {
            return text;
        }
        lines.truncate(HEAD_TAIL_LINES);
        let tail_text = if self.tail.is_empty() {
            text.clone()
        } else {
            clean_text(&String::from_utf8_lossy(&self.tail)).into_owned()
        };
        let tail: Vec<&str> = tail_text.lines().collect();
        let tail = &tail[tail.len().saturating_sub(HEAD_TAIL_LINES)..];
        format!("{}\n[...]\n{}\n", lines.join("\n"), tail.join("\n"))
    }
}

/// One exchange with the person, in the order of the session's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// A message shown on the person's screen.
    Said { text: String },
    /// A question, and the answer or why there is none.
    Asked {
        question: String,
        answer: Result<String, String>,
    },
    /// A file asked for: where it was kept, its size and SHA-256, or why
    /// it was not.
    Fetched {
        path: String,
        kept: Result<KeptFile, String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptFile {
    pub local: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationEntry {
    /// The request number, shared with the runs.
    pub id: u32,
    pub at: SystemTime,
    pub exchange: Exchange,
}

/// Everything the console saw in one session.
pub struct SessionRecord {
    pub started: SystemTime,
    pub technician: String,
    pub relay: String,
    pub nameplate: String,
    pub host: String,
    pub verification: String,
    pub catalog: Option<String>,
    pub latest: Option<DiagReport>,
    pub runs: Vec<RunRecord>,
    /// Messages, questions and files, in order.
    pub conversation: Vec<ConversationEntry>,
    /// The console's session log, when one could be opened.
    pub log: Option<SessionLog>,
    /// The agent's audit log head, as it last reported it.
    pub audit_head: tokio::sync::watch::Receiver<Option<AuditHead>>,
    /// Every change of the session's path, in order; empty while it has
    /// always gone through the relay.
    pub path: tokio::sync::watch::Receiver<Vec<PathChange>>,
    /// How many of those are in the session log already.
    pub path_logged: usize,
}

impl SessionRecord {
    pub fn run_mut(&mut self, id: u32) -> Option<&mut RunRecord> {
        self.runs.iter_mut().find(|r| r.id == id)
    }

    fn log(&mut self, kind: &str, fields: serde_json::Value) {
        if let Some(log) = &mut self.log {
            log.event(kind, fields);
        }
    }

    /// Notes the start of the session in the log.
    pub fn started(&mut self) {
        let fields = json!({
            "technician": self.technician, "relay": self.relay, "nameplate": self.nameplate,
            "host": self.host, "verification": self.verification,
        });
        self.log("session_start", fields);
    }

    /// Notes a new head of the agent's audit log in the session log and
    /// returns it, once per head.
    pub fn new_audit_head(&mut self) -> Option<AuditHead> {
        if !self.audit_head.has_changed().unwrap_or(false) {
            return None;
        }
        let head = self.audit_head.borrow_and_update().clone()?;
        self.log(
            "audit_head",
            json!({ "seq": head.seq, "hash": head.hash, "head": head.to_string() }),
        );
        Some(head)
    }

    /// Notes the changes of the session's path not yet noted in the
    /// session log, and returns them.
    pub fn new_path(&mut self) -> Vec<PathChange> {
        let new: Vec<PathChange> = self
            .path
            .borrow_and_update()
            .iter()
            .skip(self.path_logged)
            .cloned()
            .collect();
        self.path_logged += new.len();
        for change in &new {
            self.log(
                "path",
                json!({
                    "path": change.kind(),
                    "peer": change.direct.map(|a| a.to_string()),
                    "reason": change.reason,
                }),
            );
        }
        new
    }

    /// Whether the session is on a direct path now.
    pub fn is_direct(&self) -> bool {
        self.path
            .borrow()
            .last()
            .is_some_and(|c| c.direct.is_some())
    }

    /// Notes the end of the session in the log.
    pub fn ended(&mut self, reason: &str) {
        self.log("session_end", json!({ "reason": reason }));
    }

    /// A run was asked for as request `id`.
    pub fn run_requested(&mut self, id: u32, script: &str, params: &[(String, String)]) {
        self.runs.push(RunRecord::new(id, script, params));
        self.log(
            "run_requested",
            json!({ "run": id, "script": script, "params": params }),
        );
    }

    /// Notes an exchange with the person, for the report and the log.
    pub fn exchanged(&mut self, id: u32, exchange: Exchange) {
        let fields = match &exchange {
            Exchange::Said { text } => json!({ "request": id, "said": text }),
            Exchange::Asked { question, answer } => match answer {
                Ok(a) => json!({ "request": id, "asked": question, "answer": a }),
                Err(why) => json!({ "request": id, "asked": question, "unanswered": why }),
            },
            Exchange::Fetched { path, kept } => match kept {
                Ok(k) => json!({
                    "request": id, "fetched": path, "local": k.local,
                    "size": k.size, "sha256": k.sha256,
                }),
                Err(why) => json!({ "request": id, "fetched": path, "not_kept": why }),
            },
        };
        self.log("conversation", fields);
        self.conversation.push(ConversationEntry {
            id,
            at: SystemTime::now(),
            exchange,
        });
    }

    /// Notes what an answer from the agent says about a run or the machine.
    pub fn apply(&mut self, msg: &AgentMsg) {
        match msg {
            AgentMsg::CatalogAccepted {
                digest, scripts, ..
            } => {
                self.log(
                    "catalog_accepted",
                    json!({ "digest": digest, "scripts": scripts }),
                );
            }
            AgentMsg::RunStarted { id, program, args } => {
                self.log(
                    "run_started",
                    json!({ "run": id, "program": program, "args": args }),
                );
            }
            AgentMsg::RunEnded { id, end } => {
                self.log("run_end", json!({
                    "run": id, "status": end.status.to_string(), "duration_ms": end.duration_ms,
                    "bytes": end.bytes, "dropped": end.dropped, "output_sha256": end.output_sha256,
                }));
            }
            AgentMsg::Refused { id, reason } => {
                self.log("refused", json!({ "request": id, "reason": reason }));
            }
            _ => {}
        }
        match msg {
            AgentMsg::Diagnostics { report, .. } => self.latest = Some((**report).clone()),
            AgentMsg::RunStarted { id, program, args } => {
                if let Some(r) = self.run_mut(*id) {
                    r.command = Some(sprijin_proto::catalog::display_command(program, args));
                }
            }
            AgentMsg::Output { id, data, .. } => {
                if let Some(r) = self.run_mut(*id) {
                    r.add_output(data);
                }
            }
            AgentMsg::RunEnded { id, end } => {
                if let Some(r) = self.run_mut(*id) {
                    r.status = Some(end.status.to_string());
                    r.success = end.success();
                    r.duration_ms = end.duration_ms;
                    r.bytes = end.bytes;
                    r.dropped = end.dropped;
                    r.output_sha256 = Some(end.output_sha256.clone());
                }
            }
            AgentMsg::Refused { id, reason } => {
                if let Some(r) = self.run_mut(*id) {
                    r.refused = Some(reason.clone());
                }
            }
            _ => {}
        }
    }

    /// The report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Support session on {}\n", escape(&self.host));
        let _ = writeln!(md, "| | |\n|---|---|");
        let _ = writeln!(md, "| Started | {} |", rfc3339(self.started));
        let _ = writeln!(md, "| Report written | {} |", rfc3339(SystemTime::now()));
        let _ = writeln!(md, "| Technician | {} |", escape(&self.technician));
        let _ = writeln!(md, "| Machine | {} |", escape(&self.host));
        let _ = writeln!(
            md,
            "| Relay | {} (nameplate {}) |",
            escape(&self.relay),
            self.nameplate
        );
        let _ = writeln!(
            md,
            "| Verification words | {} |",
            escape(&self.verification)
        );
        let _ = writeln!(
            md,
            "| Catalog | {} |",
            self.catalog
                .as_deref()
                .map(escape)
                .unwrap_or_else(|| "none".into())
        );
        let _ = writeln!(
            md,
            "| Agent's audit log head | {} |",
            match &*self.audit_head.borrow() {
                Some(head) =>
                    format!("`{head}` (on the machine: `sprijin-agent audit verify --head {head}`)"),
                None => "not received".into(),
            }
        );
        md.push('\n');
        match &self.latest {
            Some(report) => {
                let _ = writeln!(
                    md,
                    "## Machine\n\n```text\n{}```\n",
                    fence_safe(&diag_text::machine(&report.snapshot))
                );
                let _ = writeln!(md, "## Findings\n");
                if report.findings.is_empty() {
                    let _ = writeln!(md, "No findings: nothing looked wrong.\n");
                }
                for f in &report.findings {
                    let _ = write!(md, "- **{:?}** {}", f.severity, escape(&f.title));
                    if let Some(script) = &f.script {
                        let _ = write!(md, " (suggested script: `{}`)", code(script));
                    }
                    md.push('\n');
                    for e in &f.evidence {
                        let _ = writeln!(md, "  - {}: {}", escape(&e.label), escape(&e.value));
                    }
                }
                md.push('\n');
                if !report.person_runs.is_empty() {
                    let _ = writeln!(md, "## Run by the person since the last session\n");
                    for r in &report.person_runs {
                        let after = diag_text::after_check(r);
                        let _ = writeln!(
                            md,
                            "- {} `{}` ({}): {}{after}",
                            escape(&r.started_at),
                            code(&r.script),
                            escape(&r.title),
                            escape(&r.status)
                        );
                    }
                    md.push('\n');
                }
            }
            None => {
                let _ = writeln!(
                    md,
                    "## Machine\n\nNo diagnostics were taken in this session.\n"
                );
            }
        }
        let _ = writeln!(md, "## Runs\n");
        if self.runs.is_empty() {
            let _ = writeln!(md, "No scripts were run.\n");
        }
        for run in &self.runs {
            let _ = writeln!(md, "### Run {}: `{}`\n", run.id, code(&run.script));
            if let Some(command) = &run.command {
                let _ = writeln!(md, "- Command: `{}`", code(command));
            }
            match (&run.refused, &run.status) {
                (Some(reason), _) => {
                    let _ = writeln!(md, "- Approval: not run: {}", escape(reason));
                }
                (None, Some(status)) => {
                    let _ = writeln!(md, "- Approval: approved by the person");
                    let _ = writeln!(md, "- Status: {}", escape(status));
                    let _ = writeln!(md, "- Duration: {:.1} s", run.duration_ms as f64 / 1000.0);
                    let _ = writeln!(
                        md,
                        "- Output: {} bytes ({} dropped over the cap)",
                        run.bytes, run.dropped
                    );
                    if let Some(sha) = &run.output_sha256 {
                        let _ = writeln!(md, "- Output SHA-256: `{}`", code(sha));
                    }
                }
                (None, None) => {
                    let _ = writeln!(md, "- Status: did not finish while the console watched");
                }
            }
            let out = run.head_and_tail();
            if !out.is_empty() {
                let _ = writeln!(md, "\n```text\n{}```", fence_safe(&out));
            }
            md.push('\n');
        }
        let _ = writeln!(md, "## Conversation\n");
        if self.conversation.is_empty() {
            let _ = writeln!(md, "No messages, questions or files in this session.\n");
        } else {
            let _ = writeln!(
                md,
                "In the order they were made; request numbers are shared with the runs.\n"
            );
        }
        for entry in &self.conversation {
            let _ = write!(md, "- {}, request {}: ", rfc3339(entry.at), entry.id);
            let _ = match &entry.exchange {
                Exchange::Said { text } => writeln!(md, "said: {}", escape(text)),
                Exchange::Asked { question, answer } => match answer {
                    Ok(a) => writeln!(md, "asked: {}\n  - answer: {}", escape(question), escape(a)),
                    Err(why) => writeln!(
                        md,
                        "asked: {}\n  - no answer: {}",
                        escape(question),
                        escape(why)
                    ),
                },
                Exchange::Fetched { path, kept } => match kept {
                    Ok(k) => writeln!(
                        md,
                        "file `{}`: kept as `{}`, {} bytes, SHA-256 `{}`",
                        code(path),
                        code(&k.local),
                        k.size,
                        code(&k.sha256)
                    ),
                    Err(why) => writeln!(md, "file `{}`: not kept: {}", code(path), escape(why)),
                },
            };
        }
        md
    }
}

/// Keeps text from breaking out of a fenced block.
fn fence_safe(text: &str) -> String {
    let mut t = text.replace("```", "'''");
    if !t.ends_with('\n') {
        t.push('\n');
    }
    t
}

/// Escapes characters that would change Markdown structure in table cells
/// and list items; line breaks become spaces, and other control characters,
/// escape sequence introducers and bidirectional marks are neutralised.
fn escape(text: &str) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    let mut out = String::with_capacity(one_line.len());
    for c in clean_line(&one_line).chars() {
        match c {
            '|' | '*' | '_' | '`' | '<' | '>' | '[' | ']' | '#' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Text for inside a code span: one clean line with no backtick to end the
/// span early.
fn code(text: &str) -> String {
    clean_line(text).replace('`', "'")
}

/// A UTC timestamp like `2026-11-25T15:24:32Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_620_272)),
            "2026-11-25T15:24:32Z"
        );
    }

    #[test]
    fn long_output_keeps_head_and_tail() {
        let mut run = RunRecord::new(1, "x", &[]);
        for i in 0..100 {
            run.add_output(format!("line {i}\n").as_bytes());
        }
        let text = run.head_and_tail();
        assert!(text.contains("line 0\n") && text.contains("line 99") && text.contains("[...]"));
        assert!(!text.contains("line 50\n"));
    }

    #[test]
    fn markdown_escapes_hostile_text() {
        let record = SessionRecord {
            started: UNIX_EPOCH,
            technician: "Ana | <script>".into(),
            relay: "r".into(),
            nameplate: "1".into(),
            host: "h".into(),
            verification: "a-b-c-d".into(),
            catalog: None,
            latest: None,
            runs: vec![],
            conversation: vec![],
            log: None,
            audit_head: tokio::sync::watch::channel(None).1,
            path: tokio::sync::watch::channel(Vec::new()).1,
            path_logged: 0,
        };
        let md = record.to_markdown();
        assert!(md.contains("Ana \\| \\<script\\>"), "{md}");
        assert!(
            md.contains("| Agent's audit log head | not received |"),
            "{md}"
        );
    }
    #[test]
    fn hostile_run_output_and_names_stay_inside_the_report() {
        use sprijin_proto::message::diag::{Evidence, Finding, Severity};
        use sprijin_proto::message::script::{OutStream, RunEnd, RunStatus};

        let evil = "a\x1b]0;pwned\x07\x1b[2J\u{202E}b\rc\n# Forged heading\n```\n| x |";
        let mut report = DiagReport::default();
        report.snapshot.host.name = evil.into();
        report.findings.push(Finding {
            id: "x".into(),
            severity: Severity::Warning,
            title: evil.into(),
            evidence: vec![Evidence::new(evil, evil)],
            subject: None,
            script: Some("fix`\n# Forged".into()),
            params: Vec::new(),
        });
        report
            .person_runs
            .push(sprijin_proto::message::diag::PersonRun {
                started_at: evil.into(),
                script: evil.into(),
                title: evil.into(),
                status: evil.into(),
                fixed: Some(true),
            });
        let mut record = SessionRecord {
            started: UNIX_EPOCH,
            technician: "Ana".into(),
            relay: "r".into(),
            nameplate: "1".into(),
            host: evil.into(),
            verification: "a-b-c-d".into(),
            catalog: None,
            latest: None,
            runs: vec![],
            conversation: vec![],
            log: None,
            audit_head: tokio::sync::watch::channel(None).1,
            path: tokio::sync::watch::channel(Vec::new()).1,
            path_logged: 0,
        };
        record.apply(&AgentMsg::Diagnostics {
            id: 1,
            report: Box::new(report),
        });
        record.run_requested(2, "fix`x", &[]);
        record.apply(&AgentMsg::RunStarted {
            id: 2,
            program: "sh".into(),
            args: vec![evil.into()],
        });
        record.apply(&AgentMsg::Output {
            id: 2,
            stream: OutStream::Stdout,
            data: evil.as_bytes().to_vec(),
        });
        record.apply(&AgentMsg::RunEnded {
            id: 2,
            end: RunEnd {
                status: RunStatus::FailedToStart {
                    reason: evil.into(),
                },
                duration_ms: 1,
                bytes: 1,
                dropped: 0,
                output_sha256: "ab`\n# x".into(),
            },
        });
        record.exchanged(3, Exchange::Said { text: evil.into() });
        record.exchanged(
            4,
            Exchange::Asked {
                question: evil.into(),
                answer: Ok(evil.into()),
            },
        );
        record.exchanged(
            5,
            Exchange::Fetched {
                path: evil.into(),
                kept: Ok(KeptFile {
                    local: evil.into(),
                    size: 1,
                    sha256: evil.into(),
                }),
            },
        );
        record.exchanged(
            6,
            Exchange::Fetched {
                path: evil.into(),
                kept: Err(evil.into()),
            },
        );
        let md = record.to_markdown();
        let unsafe_chars: Vec<char> = md
            .chars()
            .filter(|&c| c != '\n' && clean_line(&c.to_string()) != c.to_string())
            .collect();
        assert!(unsafe_chars.is_empty(), "{unsafe_chars:?} in {md}");
        // The only headings are the report's own, and the fences pair up:
        // the one block of run output stays one block.
        let mut in_fence = false;
        let headings: Vec<&str> = md
            .lines()
            .filter(|l| {
                in_fence ^= l.starts_with("```");
                !in_fence && l.starts_with('#')
            })
            .collect();
        assert_eq!(
            headings,
            [
                "# Support session on a�\\]0;pwned��\\[2J�b c \\# Forged heading \\`\\`\\` \\| x \\|",
                "## Machine",
                "## Findings",
                "## Run by the person since the last session",
                "## Runs",
                "### Run 2: `fix'x`",
                "## Conversation",
            ],
            "{md}"
        );
        assert_eq!(
            md.lines().filter(|l| l.starts_with("```")).count(),
            4,
            "{md}"
        );
        assert!(
            md.contains("a�]0;pwned��[2J�b�c\n# Forged heading\n'''\n| x |"),
            "{md}"
        );
    }
}
