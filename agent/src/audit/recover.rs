//! What the agent records when it opens a log, before anything else: the
//! first line of a new log with its id; the repair of a line cut off by a
//! failed write; damage found against the head the data dir kept (lines cut
//! off the end, a rewritten last line, a deleted or replaced log); and runs
//! that were under way when the agent last stopped. Each becomes an entry,
//! so the log stays usable and what happened to it stays on the record.

use std::path::Path;

use super::damage::Damage;
use super::event::AuditEvent;
use super::scan::Scan;
use super::state::{Found, Kept};

/// What to record on opening, and what to tell the person.
pub(super) struct Plan {
    /// The id the log goes on with.
    pub log_id: String,
    pub events: Vec<AuditEvent>,
    /// One line each, for the person.
    pub notes: Vec<String>,
}

/// A cut-off last line that was removed: its number and length.
pub(super) struct Cut {
    pub line: u64,
    pub bytes: u64,
}

fn fresh_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Decides what opening the log at `path` records, given what a scan of it
/// found, the state the data dir kept, and a removed cut-off line.
pub(super) fn plan(path: &Path, found: &Scan, kept: &Found, cut: Option<Cut>) -> Plan {
    let mut damage = Vec::new();
    let kept = match kept {
        Ok(kept) => kept.clone(),
        Err(detail) => {
            damage.push(Damage::StateUnreadable {
                detail: detail.clone(),
            });
            None
        }
    };
    let mut first = None;
    let mut start = None;
    let log_id = if found.lines == 0 {
        let (log_id, replaces) = match kept {
            Some(kept) if kept.seq > 0 => (fresh_id(), Some(kept)),
            Some(kept) => (kept.log_id, None),
            None => (fresh_id(), None),
        };
        first = Some(AuditEvent::LogStart {
            log_id: log_id.clone(),
            replaces: replaces.clone(),
        });
        if let Some(kept) = replaces {
            damage.push(Damage::Restarted { line: 1, kept });
        }
        log_id
    } else {
        if let Some(kept) = &kept {
            if let Err(d) = found.matches(kept) {
                damage.push(d);
            }
        } else if let (Some(log_id), true) = (&found.log_id, damage.is_empty()) {
            damage.push(Damage::StateMissing {
                log_id: log_id.clone(),
            });
        }
        match &found.log_id {
            Some(log_id) => log_id.clone(),
            // A log begun before logs had ids takes one now.
            None => {
                let log_id = fresh_id();
                start = Some(AuditEvent::LogStart {
                    log_id: log_id.clone(),
                    replaces: None,
                });
                log_id
            }
        }
    };

    let shown = path.display();
    let mut events: Vec<AuditEvent> = first.into_iter().collect();
    let mut notes = Vec::new();
    if let Some(cut) = cut {
        notes.push(format!(
            "audit log {shown}: line {} was cut off by a failed write; its {} bytes were removed and the repair recorded",
            cut.line, cut.bytes
        ));
        events.push(AuditEvent::Repaired {
            line: cut.line,
            bytes: cut.bytes,
            reason: "a failed write cut this line off; its partial bytes were removed when the agent next opened the log".into(),
        });
    }
    events.extend(start);
    for d in damage {
        notes.push(format!("audit log {shown} {d}; this is now on the record"));
        events.push(AuditEvent::Damaged {
            found: d.to_string(),
        });
    }
    for run in &found.open_runs {
        notes.push(format!(
            "run {} ({}) was under way when the agent last stopped; it is recorded as unfinished",
            run.run, run.script
        ));
        events.push(AuditEvent::RunUnfinished {
            run: run.run,
            script: run.script.clone(),
            reason: format!(
                "the agent stopped while the run was under way (its start is line {}); how it ended is unknown",
                run.line
            ),
        });
    }
    Plan {
        log_id,
        events,
        notes,
    }
}

/// The state to keep for a log with this id and head.
pub(super) fn kept(log_id: &str, seq: u64, hash: &str) -> Kept {
    Kept {
        log_id: log_id.to_owned(),
        seq,
        hash: hash.to_owned(),
    }
}
