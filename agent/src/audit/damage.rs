//! What can be wrong with a log ([`Damage`]), and the errors of the audit
//! module ([`AuditError`]). Every damage names the first line, or the
//! missing part, that does not fit, in words a person can act on.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::chain::MAX_LINE;
use super::head::Head;
use super::state::Kept;

/// Which head a log was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadSource {
    /// The head the data dir keeps beside the log, updated on every entry.
    Kept,
    /// The head given to `audit verify --head`, from a session report.
    Given,
}

impl fmt::Display for HeadSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeadSource::Kept => "kept beside the log",
            HeadSource::Given => "given with --head",
        })
    }
}

/// What is wrong with a log, naming the first line that does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Damage {
    #[error("line {line} is not valid JSON (at column {column})")]
    NotJson { line: u64, column: usize },
    #[error("line {line} is not an audit record: {detail}")]
    NotRecord { line: u64, detail: String },
    #[error("line {line} is empty")]
    Empty { line: u64 },
    #[error("line {line} is incomplete: it was cut off mid-write")]
    Incomplete { line: u64 },
    #[error("line {line} is longer than {MAX_LINE} bytes")]
    TooLong { line: u64 },
    #[error("line {line} was changed: its hash does not match line {}'s prev", line + 1)]
    Changed { line: u64 },
    #[error("line {line} was changed: it has seq {seq}, expected {line}")]
    Renumbered { line: u64, seq: u64 },
    #[error("line 1 does not start the chain: its prev is not 64 zeros")]
    NoStart,
    #[error("{}", Missing(*.first, *.last))]
    Missing { first: u64, last: u64 },
    #[error("line {line} is out of place: it has seq {seq} (lines were copied or reordered)")]
    OutOfPlace { line: u64, seq: u64 },
    #[error(
        "is missing: the data dir says log {} had {} entries (head {}); it was deleted",
        kept.log_id, kept.seq, kept.head()
    )]
    LogMissing { kept: Kept },
    #[error(
        "is empty, but log {} had {} entries (head {}): it was emptied",
        kept.log_id, kept.seq, kept.head()
    )]
    Emptied { kept: Kept },
    #[error("ends at line {lines}, short of the head {head} {against}: {}", Removed(*.lines + 1, head.seq))]
    Shortened {
        lines: u64,
        head: Head,
        against: HeadSource,
    },
    #[error("line {} was changed: its hash does not match the head {head} {against}", head.seq)]
    HeadChanged { head: Head, against: HeadSource },
    #[error("is log {found}, but the data dir keeps log {kept}: the log was replaced")]
    Replaced { found: String, kept: String },
    #[error("has no log id, but the data dir keeps log {kept}: the log was replaced")]
    NoLogId { kept: String },
    #[error(
        "is log {log_id}, but the head kept beside it is missing: it was deleted, so removed lines cannot be found"
    )]
    StateMissing { log_id: String },
    #[error("has a damaged head kept beside it: {detail}")]
    StateUnreadable { detail: String },
    #[error(
        "was started afresh at line {line}: the earlier log {} with {} entries (head {}) was deleted or emptied",
        kept.log_id, kept.seq, kept.head()
    )]
    Restarted { line: u64, kept: Kept },
    #[error("line {line} records damage the agent found when it opened the log: {found}")]
    Recorded { line: u64, found: String },
}

impl Damage {
    /// The first line found bad (the first missing one, when lines are gone).
    pub fn line(&self) -> u64 {
        match self {
            Damage::NotJson { line, .. }
            | Damage::NotRecord { line, .. }
            | Damage::Empty { line }
            | Damage::Incomplete { line }
            | Damage::TooLong { line }
            | Damage::Changed { line }
            | Damage::Renumbered { line, .. }
            | Damage::OutOfPlace { line, .. }
            | Damage::Restarted { line, .. }
            | Damage::Recorded { line, .. } => *line,
            Damage::Missing { first, .. } => *first,
            Damage::Shortened { lines, .. } => lines.saturating_add(1),
            Damage::HeadChanged { head, .. } => head.seq,
            Damage::NoStart
            | Damage::LogMissing { .. }
            | Damage::Emptied { .. }
            | Damage::Replaced { .. }
            | Damage::NoLogId { .. }
            | Damage::StateMissing { .. }
            | Damage::StateUnreadable { .. } => 1,
        }
    }
}

/// Words for a run of removed lines.
struct Missing(u64, u64);

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Missing(first, last) = *self;
        if first == last {
            write!(f, "line {first} is missing")?;
        } else {
            write!(f, "lines {first} to {last} are missing")?;
        }
        match first.checked_sub(1) {
            Some(before) if before > 0 => {
                write!(f, " (line {before} is followed by seq {})", last + 1)
            }
            _ => write!(f, " (the log starts at seq {})", last + 1),
        }
    }
}

/// Words for lines cut off the end.
struct Removed(u64, u64);

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Removed(first, last) = *self;
        if first == last {
            write!(f, "line {first} was removed")
        } else {
            write!(f, "lines {first} to {last} were removed")
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("could not {action} audit log {}: {error}{}", path.display(), hint(error))]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    /// Found by [`verify`](super::verify).
    #[error("{}: audit log {damage}", path.display())]
    Damaged { path: PathBuf, damage: Damage },
    /// Found by [`AuditLog::open`](super::AuditLog::open): the chain cannot be continued.
    #[error(
        "{}: cannot continue the audit log: {damage}; move the file aside to start a new log",
        path.display()
    )]
    CannotContinue { path: PathBuf, damage: Damage },
    #[error("audit record is {len} bytes, over the limit of {MAX_LINE}; it was not written")]
    TooLarge { len: usize },
    #[error("could not encode an audit record: {detail}")]
    Encode { detail: String },
    /// An earlier write failed and may have left part of a line behind.
    #[error(
        "audit log {} is not written to after a failed write; restart the agent to check it",
        path.display()
    )]
    Broken { path: PathBuf },
    /// Another agent holds the log.
    #[error(
        "audit log {} is in use by another agent on this machine; end that agent first, or give this one another --data-dir",
        path.display()
    )]
    Locked { path: PathBuf },
    /// The disk holding the log has too little room left for what comes next.
    #[error(
        "no room to write the audit log {}: {free} bytes free on its disk, {needed} needed; free some space there, or give the agent another --data-dir",
        path.display()
    )]
    NoRoom {
        path: PathBuf,
        free: u64,
        needed: u64,
    },
}

/// What to do about an I/O error, where there is something to say.
fn hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "; free some space on that disk, or give the agent another --data-dir"
        }
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            "; give the agent a --data-dir it can write to"
        }
        _ => "",
    }
}

impl AuditError {
    /// What is wrong with the log, when that is the error.
    pub fn damage(&self) -> Option<&Damage> {
        match self {
            AuditError::Damaged { damage, .. } | AuditError::CannotContinue { damage, .. } => {
                Some(damage)
            }
            _ => None,
        }
    }
}
