//! The agent's local audit log: an append-only, hash-chained JSON-lines file,
//! with its id and latest head kept beside it.
//!
//! # Format
//!
//! Each line is one JSON object and ends with `\n`:
//!
//! ```text
//! {"seq":1,"time":"2026-03-01T09:30:00.123Z","prev":"000…000","event":{"kind":"log_start",…}}
//! ```
//!
//! - `seq` counts lines from 1, so it equals the line number.
//! - `time` is when the line was written, RFC 3339 in UTC with milliseconds.
//! - `prev` is the lower-case hex SHA-256 of the exact bytes of the previous
//!   line (without its `\n`), or 64 zeros on the first line.
//! - `event` is an [`AuditEvent`], tagged by `kind`. The first line is a
//!   `log_start` holding the log's random id.
//!
//! Beside `audit.log`, `audit.state` keeps the log's id and its head (the
//! last line's seq and hash, written `SEQ:HASH`), rewritten after every line.
//!
//! # Flow
//!
//! [`AuditLog::open`] creates the folder (0700) and the files (0600) if
//! needed, locks the folder so a second agent cannot write the same log,
//! checks the disk has room, and reads the lines once: it removes a last
//! line cut off by a failed write, compares the log with the kept id and
//! head, and records what it found, and any run left unfinished, as entries.
//! [`AuditLog::append`] writes one whole line with a single write, waits for
//! it to reach the disk (`sync_data`), updates the kept head, and returns the
//! new head, so a caller that records "run starting" before it starts the
//! run knows the record exists. The agent sends each head to the console,
//! whose report shows the last one.
//! [`verify`] walks the chain, then checks it against the kept id and head
//! and, when given, a head from a report; it names the first thing wrong.
//!
//! Changing, removing, inserting or reordering any line breaks the chain at
//! the next line. Lines cut off the end, a rewritten last line, or a log
//! deleted and begun again leave a valid chain; the kept id and head name
//! them. Someone who rewrites both the log and the state beside it is caught
//! only by a head kept elsewhere: the one in the technician's report.

mod chain;
mod damage;
mod event;
mod head;
mod log;
mod recover;
mod room;
mod scan;
mod state;
mod verify;

pub use chain::{FIRST_PREV, MAX_LINE};
pub use damage::{AuditError, Damage, HeadSource};
pub use event::{AuditEvent, StartedBy};
pub use head::{Head, HeadParseError};
pub use log::AuditLog;
pub use room::ROOM;
pub use state::{Kept, state_path};
pub use verify::{VerifyReport, verify};

#[cfg(test)]
mod tests;
