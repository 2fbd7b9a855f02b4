//! `audit verify`: checks a log's whole chain, then that it is still the log
//! the data dir kept the id and head of, then (when given one) that it
//! reaches a head from a session report, then that no earlier entry records
//! a restart or damage. The first thing wrong is the error.

use std::fs::File;
use std::io;
use std::path::Path;

use super::chain::io_error;
use super::damage::{AuditError, Damage, HeadSource};
use super::head::Head;
use super::scan::{Notice, scan};
use super::state::{self, state_path};

/// The outcome of a successful [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Lines checked, all of them.
    pub lines: u64,
    /// The last line's seq and hash ([`Head::start`] for an empty log).
    pub head: Head,
    /// The log's id, from its first line.
    pub log_id: Option<String>,
    /// Things the log records about itself that are not damage, such as a
    /// line cut off by a failed write and removed.
    pub notes: Vec<String>,
}

/// Checks the log at `path`, and that it reaches `expected` when given.
pub fn verify(path: &Path, expected: Option<&Head>) -> Result<VerifyReport, AuditError> {
    let damaged = |damage| AuditError::Damaged {
        path: path.to_owned(),
        damage,
    };
    let kept = state::read(&state_path(path))?;
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(match kept {
                Ok(Some(kept)) if kept.seq > 0 => damaged(Damage::LogMissing { kept }),
                _ => io_error("open", path)(e),
            });
        }
        Err(e) => return Err(io_error("open", path)(e)),
    };
    let wanted: Vec<u64> = [
        kept.as_ref().ok().and_then(|k| k.as_ref()).map(|k| k.seq),
        expected.map(|h| h.seq),
    ]
    .into_iter()
    .flatten()
    .collect();
    let found = scan(file, &wanted).map_err(io_error("read", path))?;
    if let Some(damage) = found.damage.clone().or(found.stopped.clone()) {
        return Err(damaged(damage));
    }
    match &kept {
        Err(detail) => {
            return Err(damaged(Damage::StateUnreadable {
                detail: detail.clone(),
            }));
        }
        Ok(Some(kept)) => found.matches(kept).map_err(damaged)?,
        Ok(None) => {
            if let Some(log_id) = &found.log_id {
                return Err(damaged(Damage::StateMissing {
                    log_id: log_id.clone(),
                }));
            }
        }
    }
    if let Some(head) = expected {
        found.reaches(head, HeadSource::Given).map_err(damaged)?;
    }
    let mut notes = Vec::new();
    for notice in &found.notices {
        match notice {
            Notice::Damage(damage) => return Err(damaged(damage.clone())),
            Notice::Repaired { line, cut, bytes } => notes.push(format!(
                "line {line} records a repair: line {cut} was cut off by a failed write and its {bytes} bytes removed"
            )),
        }
    }
    Ok(VerifyReport {
        lines: found.lines,
        head: found.head(),
        log_id: found.log_id.clone(),
        notes,
    })
}
