//! What the person sees and answers, whatever shows it.
//!
//! The session decides; a [`Face`] shows. Every sentence for the person and
//! every question goes through this one interface, so the same session can
//! be served at a terminal ([`terminal`], for servers, scripts and tests)
//! or in a window ([`window`], for the people Sprijin helps). A face only
//! shows and asks: what an answer means, and what is recorded, stays with
//! the session.
//!
//! Questions are asked one at a time, each with its details, a timeout and
//! a way for the session to withdraw it; the face returns how the person
//! answered.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sprijin_proto::catalog::{Script, display_command};
use sprijin_proto::code::SessionCode;
use sprijin_proto::text::{clean_line, clean_text};

use crate::audit::{Head, StartedBy};
use crate::consent::{Answer, TextAnswer};
use crate::identity::Identity;

pub mod choose;
pub mod launch;
pub mod strings;
pub mod terminal;
pub mod window;

/// Completes with the reason, told to the person, when the session takes
/// a question back.
pub type Withdrawn<'a> = Pin<Box<dyn Future<Output = String> + Send + 'a>>;

/// A question on the screen, completing with the person's answer.
pub type Asking<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The person's side of a session.
pub trait Face: Send + Sync {
    /// The code to read to the technician and how long it stays valid.
    fn show_code(&self, code: &SessionCode, valid_for: Duration);

    /// Who connected (verified by the organisation or not) and the words
    /// both sides can compare.
    fn show_connected(&self, technician: &Identity, words: &str);

    /// Something the person should know.
    fn show(&self, notice: Notice);

    /// A message from the technician, already cleaned.
    fn show_message(&self, text: &str);

    /// A run began or ended.
    fn show_run(&self, run: RunUpdate);

    /// The audit log's head once the session's end is recorded.
    fn show_audit_head(&self, head: &Head);

    /// Asks a yes/no question and waits for the answer, until the timeout
    /// or until `withdrawn` completes.
    fn ask<'a>(&'a self, question: &'a Question, withdrawn: Withdrawn<'a>) -> Asking<'a, Answer>;

    /// Asks the technician's question (their words, already cleaned) and
    /// waits for a typed answer, with the same rules as [`ask`](Self::ask).
    fn ask_text<'a>(
        &'a self,
        question: &'a str,
        withdrawn: Withdrawn<'a>,
    ) -> Asking<'a, TextAnswer>;
}

/// A yes/no question: the words the audit log records (and the terminal
/// shows), and its parts for a face that lays them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub text: String,
    pub detail: Detail,
}

impl Question {
    /// The question before `script` runs with `args`: its title, what it
    /// does, its risk, the exact command and when it is stopped, every
    /// part cleaned. `by` is who wants it run.
    pub fn run(by: StartedBy, script: &Script, args: &[String]) -> Question {
        let asks = match by {
            StartedBy::Technician => "the technician asks to run a repair script",
            StartedBy::Person => "you asked to run a repair script",
        };
        Question {
            text: format!(
                "{asks}:\n  {title}\n  {description}\n  risk: {risk}\n  command: {command}\n  stops after {timeout} s",
                title = clean_line(&script.title),
                description = clean_text(&script.description).replace('\n', "\n  "),
                risk = script.risk,
                command = clean_line(&display_command(&script.program, args)),
                timeout = script.timeout_secs,
            ),
            detail: Detail::Run {
                by,
                title: clean_line(&script.title).into_owned(),
                description: clean_text(&script.description).into_owned(),
                risk: script.risk.to_string(),
                program: clean_line(&script.program).into_owned(),
                args: args.iter().map(|a| clean_line(a).into_owned()).collect(),
                stops_after_secs: script.timeout_secs,
            },
        }
    }
}

/// What a question is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// May the technician see this machine's state?
    View {
        /// Who asks, and how their name stands.
        technician: Identity,
    },
    /// May this script run? Every part is cleaned.
    Run {
        /// Who asks: the technician, or the person from a finding.
        by: StartedBy,
        title: String,
        description: String,
        risk: String,
        program: String,
        args: Vec<String>,
        stops_after_secs: u64,
    },
    /// May this file be sent? Its size is not known yet: nothing is
    /// opened before the person agrees.
    File { path: String },
}

/// A run's progress, for the person's list of what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunUpdate {
    Started {
        id: u64,
        script: String,
        title: String,
        by: StartedBy,
    },
    Ended {
        id: u64,
        script: String,
        /// How it ended, in words (`exit 0`, `timed out`, ...).
        status: String,
        /// Set when the end of the session stopped it.
        stopped_because: Option<String>,
    },
}

impl RunUpdate {
    /// The line the terminal shows.
    pub fn line(&self) -> String {
        match self {
            RunUpdate::Started {
                script,
                by: StartedBy::Technician,
                ..
            } => format!("running {script} for the technician"),
            RunUpdate::Started { script, .. } => format!("running {script}, as you asked"),
            RunUpdate::Ended {
                script,
                stopped_because: Some(why),
                ..
            } => format!("{script} was stopped: {why}"),
            RunUpdate::Ended { script, status, .. } => format!("{script} finished: {status}"),
        }
    }
}

/// How a session ended, as the person is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndedBy {
    /// The person stopped sharing before anyone connected.
    StoppedSharing,
    /// The person ended it.
    Person,
    /// The person ended it while the first question was on the screen.
    PersonWhileAsked,
    /// The person did not let the technician look.
    Declined,
    /// The technician said goodbye.
    Technician,
    /// The connection was lost, for this reason.
    Lost(String),
    /// The session could not go on, for this reason.
    Failed(String),
}

/// Something the session tells the person.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// What opening the audit log found.
    AuditNote(String),
    /// A connection with a wrong code was refused; the code is burned.
    WrongCode,
    /// The technician is looking at this machine's state.
    Viewing,
    CatalogAccepted {
        scripts: usize,
    },
    CatalogRefused {
        reason: String,
    },
    /// The session is ending and runs are being stopped.
    StoppingRuns {
        count: usize,
        reason: String,
    },
    RunsStopped,
    FileSending {
        path: String,
        size: String,
    },
    FileSent {
        path: String,
        size: String,
        sha256: String,
    },
    FileNotSent {
        reason: String,
    },
    /// A relay of the list did not answer; the next is tried.
    RelayUnusable {
        relay: String,
        reason: String,
        next: String,
    },
    /// The connection to the relay was lost while waiting; the agent
    /// reconnects and the code stays the same.
    RelayLost {
        relay: String,
        reason: String,
    },
    /// Back at the relay after a lost connection; the code still works.
    RelayBack {
        relay: String,
    },
    /// The session's connection moved: straight to the technician's
    /// computer at `peer`, or back through the relay.
    Path {
        direct: bool,
        peer: Option<String>,
        reason: String,
    },
    /// The session ended.
    Ended(EndedBy),
    /// Something failed; the words say what.
    Problem(String),
}

impl Notice {
    /// The line the terminal prints, if any.
    pub fn line(&self) -> Option<String> {
        Some(match self {
            Notice::AuditNote(note) => format!("note: {note}"),
            Notice::WrongCode => "someone tried to connect with a wrong code; this code no longer works. If you are waiting for a technician, start again and read them the new code.".to_string(),
            Notice::Path {
                direct: true,
                peer,
                ..
            } => format!(
                "the session now goes straight to the technician's computer ({}), not through the relay",
                peer.as_deref().unwrap_or("address not known")
            ),
            Notice::Path { reason, .. } => {
                format!("the session goes through the relay again: {reason}")
            }
            Notice::Viewing => "the technician is looking at this machine's state (system, processes, disks, network)".to_string(),
            Notice::CatalogAccepted { scripts } => format!(
                "the technician's script catalog is signed by a key you trust ({scripts} scripts)"
            ),
            Notice::CatalogRefused { reason } => {
                format!("{reason}; no scripts can run in this session")
            }
            Notice::StoppingRuns { count, reason } => {
                format!("stopping {count} run(s) of this session: {reason}")
            }
            Notice::RunsStopped => "every run of this session is stopped and recorded".to_string(),
            Notice::FileSending { path, size } => {
                format!("sending {path} ({size}) to the technician")
            }
            Notice::FileSent { path, size, sha256 } => {
                format!("sent {path} ({size}) to the technician, SHA-256 {sha256}")
            }
            Notice::FileNotSent { reason } => format!("the file was not sent: {reason}"),
            Notice::RelayUnusable { relay, reason, next } => {
                format!("relay {relay} cannot be used ({reason}); trying {next}")
            }
            Notice::RelayLost { relay, reason } => format!(
                "the connection to relay {relay} was lost ({reason}); reconnecting, your code stays the same"
            ),
            Notice::RelayBack { relay } => {
                format!("reconnected to relay {relay}; your code still works")
            }
            Notice::Ended(by) => match by {
                EndedBy::StoppedSharing => "sharing stopped; the code no longer works".to_string(),
                EndedBy::Person => "you ended the session".to_string(),
                EndedBy::Technician => "the technician ended the session".to_string(),
                EndedBy::Lost(why) => why.clone(),
                EndedBy::PersonWhileAsked | EndedBy::Declined | EndedBy::Failed(_) => return None,
            },
            Notice::Problem(text) => text.clone(),
        })
    }
}
