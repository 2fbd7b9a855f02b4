//! The line format and its chain: how a record is written and read back,
//! how one line links to the one before it, and the plain helpers both
//! need (hashing, time stamps, reading a line at a time under a bound).

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::damage::{AuditError, Damage};
use super::event::AuditEvent;

/// The longest line the log writes or reads, without its `\n`.
pub const MAX_LINE: usize = 1024 * 1024;

/// The `prev` of the first line: there is nothing before it.
pub const FIRST_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Whether line `number` continues the chain whose last hash is `head`.
/// Every earlier line passed, so line `number` must carry seq `number`.
pub(super) fn check_link(number: u64, record: &RecordIn, head: &str) -> Result<(), Damage> {
    let linked = record.prev == head;
    let in_place = record.seq == number;
    match (linked, in_place) {
        (true, true) => Ok(()),
        // The link holds, so this line is the one that was edited.
        (true, false) => Err(Damage::Renumbered {
            line: number,
            seq: record.seq,
        }),
        (false, true) if number == 1 => Err(Damage::NoStart),
        (false, true) => Err(Damage::Changed { line: number - 1 }),
        (false, false) if record.seq > number => Err(Damage::Missing {
            first: number,
            last: record.seq - 1,
        }),
        (false, false) => Err(Damage::OutOfPlace {
            line: number,
            seq: record.seq,
        }),
    }
}

#[derive(Serialize)]
pub(super) struct RecordOut<'a> {
    pub seq: u64,
    pub time: String,
    pub prev: &'a str,
    pub event: &'a AuditEvent,
}

/// What checking needs from a line. The event is kept as plain JSON so a
/// log holding kinds of events this build does not know still verifies.
#[derive(Deserialize)]
#[allow(dead_code)] // `time` and `event` are required to exist, not read.
pub(super) struct RecordIn {
    pub seq: u64,
    pub time: String,
    pub prev: String,
    pub event: serde_json::Value,
}

pub(super) fn parse(number: u64, bytes: &[u8]) -> Result<RecordIn, Damage> {
    if bytes.is_empty() {
        return Err(Damage::Empty { line: number });
    }
    serde_json::from_slice(bytes).map_err(|err| match err.classify() {
        serde_json::error::Category::Data => Damage::NotRecord {
            line: number,
            // serde_json's own "at line 1 column N" would be confusing here.
            detail: match err.to_string().rsplit_once(" at line ") {
                Some((detail, _)) => detail.to_owned(),
                None => err.to_string(),
            },
        },
        _ => Damage::NotJson {
            line: number,
            column: err.column(),
        },
    })
}

/// Reads a log line by line, never holding more than [`MAX_LINE`] bytes.
pub(super) struct LineReader<R> {
    inner: BufReader<R>,
    number: u64,
    buf: Vec<u8>,
    /// Bytes up to the end of the last whole line read.
    end: u64,
}

/// Why the next line could not be read.
pub(super) enum ReadProblem {
    Io(io::Error),
    Damage(Damage),
}

impl<R: Read> LineReader<R> {
    pub(super) fn new(inner: R) -> LineReader<R> {
        LineReader {
            inner: BufReader::new(inner),
            number: 0,
            buf: Vec::new(),
            end: 0,
        }
    }

    /// The offset just past the last whole line read: where a line cut
    /// off mid-write begins.
    pub(super) fn end(&self) -> u64 {
        self.end
    }

    /// The next line's number and bytes without `\n`, or `None` at the end.
    pub(super) fn next_line(&mut self) -> Result<Option<(u64, &[u8])>, ReadProblem> {
        self.buf.clear();
        let limit = u64::try_from(MAX_LINE)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let read = (&mut self.inner)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(ReadProblem::Io)?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        let line = self.number;
        match self.buf.split_last() {
            Some((b'\n', bytes)) => {
                self.end += self.buf.len() as u64;
                Ok(Some((line, bytes)))
            }
            _ if self.buf.len() > MAX_LINE => Err(ReadProblem::Damage(Damage::TooLong { line })),
            // The file ended before the line did.
            _ => Err(ReadProblem::Damage(Damage::Incomplete { line })),
        }
    }
}

pub(super) fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> AuditError {
    let path = path.to_owned();
    move |error| AuditError::Io {
        action,
        path,
        error,
    }
}

/// Syncs the folder holding `path`, so a newly created file survives a crash.
pub(super) fn sync_parent(path: &Path) -> Result<(), AuditError> {
    crate::folder::sync(path).map_err(io_error("sync the folder of", path))
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
