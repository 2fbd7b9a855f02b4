//! Messages inside the end-to-end session, after the handshake.
//!
//! The console asks, the agent answers. Every request carries an id chosen by
//! the console and every answer names it. The console's messages and the
//! agent's short answers travel on the control stream; the agent answers a
//! run, a question or a file transfer on a unidirectional stream of its own
//! that starts with a [`StreamHead`], so several runs can stream at once
//! while diagnostics requests are still answered at once.

use serde::{Deserialize, Serialize};

use super::diag::DiagReport;
use super::script::{OutStream, RunEnd};
use crate::catalog::{ScriptId, SignedCatalog};
use crate::credential::Presentation;

/// A request id, chosen by the console, unique within a session.
pub type RequestId = u32;

/// The first frame of every stream the agent opens for one request: the
/// protocol version and the request whose answers follow on it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHead {
    pub version: u16,
    pub id: RequestId,
}

/// What the console sends.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum ConsoleMsg {
    Request {
        id: RequestId,
        request: Request,
    },
    /// The technician ends the session.
    Bye,
    /// Who the technician is: sent once, first, right after the handshake.
    /// `None` when the technician has no credential; the agent then shows
    /// the name as not verified.
    Identify {
        presentation: Option<Box<Presentation>>,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Request {
    /// The latest snapshot and its findings.
    Diagnostics,
    /// The organisation's signed catalog, for the agent to verify.
    Catalog(SignedCatalog),
    /// Run a catalog script with these parameter values. The id is checked
    /// as it is read; the values stay as typed, because the agent checks them
    /// against the script's own rules and says why it refuses one.
    Run {
        script: ScriptId,
        params: Vec<(String, String)>,
    },
    /// Stop the run started by request `run`.
    Cancel { run: RequestId },
    /// A message shown on the person's screen; answered with `Ack`.
    Say { text: String },
    /// A question the person answers by typing; answered with `Answer`, or
    /// `Refused` when they did not answer.
    Ask { text: String },
    /// A copy of the file at `path` (absolute, on the agent's machine), if
    /// the person agrees: `FileStart`, `FileChunk`s, then `FileEnd`; or
    /// `Refused`.
    Fetch { path: String },
}

/// What the agent sends.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum AgentMsg {
    /// The person's answer to letting the technician see this machine; sent
    /// once, first. Without it granted, the session ends.
    Welcome {
        host: String,
        granted: bool,
    },
    Diagnostics {
        id: RequestId,
        report: Box<DiagReport>,
    },
    CatalogAccepted {
        id: RequestId,
        scripts: usize,
        digest: String,
    },
    /// The person approved and the program started.
    RunStarted {
        id: RequestId,
        program: String,
        args: Vec<String>,
    },
    Output {
        id: RequestId,
        stream: OutStream,
        // As one byte string, not a sequence of numbers: the same bytes on
        // the wire, at copying speed instead of one call per byte.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Output went over the cap; the rest is counted, not sent.
    Truncated {
        id: RequestId,
        cap: u64,
    },
    RunEnded {
        id: RequestId,
        end: RunEnd,
    },
    /// The request was refused: the reason says why, for people.
    Refused {
        id: RequestId,
        reason: String,
    },
    /// The request was accepted and needs no other answer (a cancel: the
    /// run itself then ends as cancelled).
    Ack {
        id: RequestId,
    },
    /// The agent ends the session (the person pressed Ctrl-C, or an error).
    Bye {
        reason: String,
    },
    /// How the agent shows the technician to the person, sent before the
    /// welcome: `verified` when it accepted the credential; `shown` is the
    /// line the person sees, `reason` why the name is not verified.
    Identity {
        verified: bool,
        shown: String,
        reason: Option<String>,
    },
    /// The head of the agent's audit log: the seq and SHA-256 hex of its
    /// last line. Sent when the session starts, after every entry, and
    /// before the goodbye; `audit verify --head SEQ:HASH` checks the log
    /// still reaches it.
    AuditHead {
        seq: u64,
        hash: String,
    },
    /// The person's typed answer to an `Ask`.
    Answer {
        id: RequestId,
        text: String,
    },
    /// The person agreed to send the file: `size` bytes follow.
    FileStart {
        id: RequestId,
        path: String,
        size: u64,
    },
    /// The next piece of the file.
    FileChunk {
        id: RequestId,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// The whole file was sent: its size and SHA-256 (hex), which the
    /// console checks before it keeps the file.
    FileEnd {
        id: RequestId,
        size: u64,
        sha256: String,
    },
}

impl AgentMsg {
    /// The request this message answers, if any.
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            AgentMsg::Diagnostics { id, .. }
            | AgentMsg::CatalogAccepted { id, .. }
            | AgentMsg::RunStarted { id, .. }
            | AgentMsg::Output { id, .. }
            | AgentMsg::Truncated { id, .. }
            | AgentMsg::RunEnded { id, .. }
            | AgentMsg::Refused { id, .. }
            | AgentMsg::Ack { id }
            | AgentMsg::Answer { id, .. }
            | AgentMsg::FileStart { id, .. }
            | AgentMsg::FileChunk { id, .. }
            | AgentMsg::FileEnd { id, .. } => Some(*id),
            AgentMsg::Welcome { .. }
            | AgentMsg::Bye { .. }
            | AgentMsg::Identity { .. }
            | AgentMsg::AuditHead { .. } => None,
        }
    }

    /// True when no more messages will follow for its request.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            AgentMsg::Diagnostics { .. }
                | AgentMsg::CatalogAccepted { .. }
                | AgentMsg::RunEnded { .. }
                | AgentMsg::Refused { .. }
                | AgentMsg::Ack { .. }
                | AgentMsg::Answer { .. }
                | AgentMsg::FileEnd { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_and_file_messages_name_their_request_and_end_it_once() {
        let file = [
            AgentMsg::FileStart {
                id: 7,
                path: "/a".into(),
                size: 1,
            },
            AgentMsg::FileChunk {
                id: 7,
                data: vec![1],
            },
            AgentMsg::FileEnd {
                id: 7,
                size: 1,
                sha256: "x".into(),
            },
        ];
        assert!(file.iter().all(|m| m.request_id() == Some(7)));
        let finals: Vec<bool> = file.iter().map(AgentMsg::is_final).collect();
        assert_eq!(finals, [false, false, true]);
        let answer = AgentMsg::Answer {
            id: 3,
            text: "yes".into(),
        };
        assert_eq!(answer.request_id(), Some(3));
        assert!(answer.is_final());
    }
}
