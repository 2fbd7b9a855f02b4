//! What the audit log records: one [`AuditEvent`] per line, tagged by `kind`.
//! New kinds are added at the end; a log holding kinds this build does not
//! know still verifies.

use serde::{Deserialize, Serialize};
use sprijin_proto::message::script::RunEnd;

use super::state::Kept;

/// Something the agent did or decided, as recorded.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditEvent {
    /// A technician's console paired with this agent.
    SessionStart {
        nameplate: String,
        technician: String,
        /// Whether the relay found the console's token on its list. That is
        /// the relay's access control, not proof of who the technician is.
        vouched: bool,
        /// Whether a credential signed by a trusted key, proven for this
        /// session, vouches for the name.
        #[serde(default)]
        verified: bool,
        /// The id of the trusted key that signed the credential.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential_key: Option<String>,
        /// Why the name is not verified.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_verified: Option<String>,
    },
    SessionEnd {
        reason: String,
    },
    /// A question put to the person, and their answer.
    Consent {
        question: String,
        answer: bool,
    },
    /// Written, and on disk, before the program starts.
    RunStart {
        run: u64,
        script: String,
        title: String,
        program: String,
        args: Vec<String>,
        catalog_digest: String,
        risk: String,
        /// Who started it: the technician in a session (also every run
        /// recorded before this field existed), or the person alone.
        #[serde(default)]
        by: StartedBy,
    },
    /// A requested run that never started: unknown script, invalid
    /// parameters, or the person said no.
    RunRefused {
        run: u64,
        script: String,
        reason: String,
    },
    RunEnd {
        run: u64,
        script: String,
        /// The run status as people read it, e.g. "exited with status 0".
        status: String,
        duration_ms: u64,
        bytes: u64,
        dropped: u64,
        output_sha256: String,
    },
    /// A catalog that failed verification and was not used.
    CatalogRefused {
        reason: String,
    },
    Note {
        text: String,
    },
    /// The first line of a log: its random id, which the data dir also
    /// keeps. `replaces` is set when the data dir said an earlier log with
    /// entries existed and the file was gone or empty.
    LogStart {
        log_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaces: Option<Kept>,
    },
    /// A run whose start is in the log but whose end is not: the agent
    /// stopped (was killed, or the machine went down) while it was under way.
    RunUnfinished {
        run: u64,
        script: String,
        reason: String,
    },
    /// A last line cut off by a failed write was removed.
    Repaired {
        /// The line that was cut off.
        line: u64,
        /// How many bytes of it were removed.
        bytes: u64,
        reason: String,
    },
    /// Damage found when the agent opened the log; it then went on, so the
    /// log stays usable and the damage stays on the record.
    Damaged {
        found: String,
    },
    /// A message from the technician, as shown to the person.
    Message {
        text: String,
    },
    /// A question from the technician, as shown to the person, and the
    /// typed answer; `why` says why there is none.
    Question {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<String>,
    },
    /// A file the person agreed to send was sent whole.
    FileSent {
        path: String,
        size: u64,
        sha256: String,
    },
    /// A file the technician asked for was not sent whole, and why;
    /// `path` is as the technician wrote it. What had already gone out
    /// when a transfer was cut short is `sent_bytes` (the first bytes of
    /// the file, handed to the session's stream: the technician holds at
    /// most these), with their SHA-256.
    FileRefused {
        path: String,
        reason: String,
        #[serde(default)]
        sent_bytes: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent_sha256: Option<String>,
    },
    /// After a run the person started alone: whether the finding it was
    /// meant to fix was still there when the machine was checked again.
    RunChecked {
        run: u64,
        finding: String,
        fixed: bool,
    },
    /// The session's connection moved: `path` is `direct` (straight to the
    /// technician's computer at `peer`) or `relayed` (through the relay).
    PathChanged {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        reason: String,
    },
}

/// Who started a run.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum StartedBy {
    /// The technician, in a session, with the person's yes.
    #[default]
    Technician,
    /// The person at the machine, from a finding.
    Person,
}

impl AuditEvent {
    /// The record of a finished run.
    pub fn run_end(run: u64, script: impl Into<String>, end: &RunEnd) -> AuditEvent {
        AuditEvent::RunEnd {
            run,
            script: script.into(),
            status: end.status.to_string(),
            duration_ms: end.duration_ms,
            bytes: end.bytes,
            dropped: end.dropped,
            output_sha256: end.output_sha256.clone(),
        }
    }
}
