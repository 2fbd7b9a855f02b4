//! The agent's local audit log: an append-only, hash-chained JSON-lines file.
//!
//! # Format
//!
//! Each line is one JSON object and ends with `\n`:
//!
//! ```text
//! {"seq":1,"time":"2026-03-01T09:30:00.123Z","prev":"000…000","event":{"kind":"session_start",…}}
//! ```
//!
//! - `seq` counts lines from 1, so it equals the line number.
//! - `time` is when the line was written, RFC 3339 in UTC with milliseconds.
//! - `prev` is the lower-case hex SHA-256 of the exact bytes of the previous
//!   line (without its `\n`), or 64 zeros on the first line.
//! - `event` is an [`AuditEvent`], tagged by `kind`.
//!
//! # Flow
//!
//! [`AuditLog::open`] creates the folder (0700) and the file (0600) if needed
//! and reads the existing lines once to find where the chain stands: the next
//! `seq` and the hash of the last line. A last line cut off mid-write stops
//! it with an error rather than building on a broken end.
//! [`AuditLog::append`] writes one whole line with a single write and waits
//! for it to reach the disk (`sync_data`) before returning, so a caller that
//! records "run starting" before it starts the run knows the record exists.
//! [`verify`] walks the chain and names the first line that does not fit.
//!
//! Changing, removing, inserting or reordering any line breaks the chain at
//! the next line. The last line has no successor, so a change to it alone is
//! only detected against a copy of [`VerifyReport::head`] kept elsewhere.
//!
//! One [`AuditLog`] owns the file: two writers would each continue the chain
//! from their own idea of the last line.

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sprijin_proto::message::script::RunEnd;

/// The longest line the log writes or reads, without its `\n`.
pub const MAX_LINE: usize = 1024 * 1024;

/// The `prev` of the first line: there is nothing before it.
pub const FIRST_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
}

impl Damage {
    /// The first line found bad.
    pub fn line(&self) -> u64 {
        match self {
            Damage::NotJson { line, .. }
            | Damage::NotRecord { line, .. }
            | Damage::Empty { line }
            | Damage::Incomplete { line }
            | Damage::TooLong { line }
            | Damage::Changed { line }
            | Damage::Renumbered { line, .. }
            | Damage::OutOfPlace { line, .. } => *line,
            Damage::NoStart => 1,
            Damage::Missing { first, .. } => *first,
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

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("could not {action} audit log {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    /// Found by [`verify`].
    #[error("{}: audit log {damage}", path.display())]
    Damaged { path: PathBuf, damage: Damage },
    /// Found by [`AuditLog::open`]: the chain cannot be continued.
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

/// The outcome of a successful [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Lines checked, all of them.
    pub lines: u64,
    /// SHA-256 hex of the last line ([`FIRST_PREV`] for an empty log). Kept
    /// elsewhere, it also protects the last line, which has no successor.
    pub head: String,
}

/// An open audit log that appends to the end of the chain.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    next_seq: u64,
    /// Hash of the last line: the next line's `prev`.
    head: String,
    broken: bool,
}

impl AuditLog {
    /// Opens the log at `path`, creating it and its folder if needed, and
    /// finds the end of its chain.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(io_error("create the folder of", path))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io_error("open", path))?;

        let cannot_continue = |damage| AuditError::CannotContinue {
            path: path.to_owned(),
            damage,
        };
        let mut lines = LineReader::new(&file);
        let mut last: Option<(u64, Vec<u8>)> = None;
        while let Some((number, bytes)) = lines
            .next_line()
            .map_err(|problem| problem.into_error(path, cannot_continue))?
        {
            match &mut last {
                Some((n, kept)) => {
                    *n = number;
                    kept.clear();
                    kept.extend_from_slice(bytes);
                }
                None => last = Some((number, bytes.to_vec())),
            }
        }

        let (next_seq, head) = match last {
            None => {
                // A new file: make its name durable along with its content.
                sync_parent(path)?;
                (1, FIRST_PREV.to_owned())
            }
            Some((number, bytes)) => {
                let record = parse(number, &bytes).map_err(cannot_continue)?;
                (record.seq.saturating_add(1), sha256_hex(&bytes))
            }
        };
        Ok(AuditLog {
            path: path.to_owned(),
            file,
            next_seq,
            head,
            broken: false,
        })
    }

    /// Appends one line for `event` and returns once it is on disk.
    ///
    /// This blocks on the disk; from async code, call it where a short
    /// blocking wait is acceptable or move it to a blocking thread.
    pub fn append(&mut self, event: AuditEvent) -> Result<(), AuditError> {
        if self.broken {
            return Err(AuditError::Broken {
                path: self.path.clone(),
            });
        }
        let record = RecordOut {
            seq: self.next_seq,
            time: rfc3339_utc(SystemTime::now()),
            prev: &self.head,
            event: &event,
        };
        // JSON escapes control characters, so the line holds no raw `\n`.
        let mut line = serde_json::to_vec(&record).map_err(|err| AuditError::Encode {
            detail: err.to_string(),
        })?;
        if line.len() > MAX_LINE {
            return Err(AuditError::TooLarge { len: line.len() });
        }
        let hash = sha256_hex(&line);
        line.push(b'\n');

        // One write call in append mode, so the line is never interleaved;
        // if it or the sync fails, part of it may be on disk, and building
        // on that would hide the damage.
        if let Err(error) = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
        {
            self.broken = true;
            return Err(AuditError::Io {
                action: "write to",
                path: self.path.clone(),
                error,
            });
        }
        self.head = hash;
        self.next_seq = self.next_seq.saturating_add(1);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SHA-256 hex of the last line written (see [`VerifyReport::head`]).
    pub fn head(&self) -> &str {
        &self.head
    }
}

/// Checks the whole chain of the log at `path`.
pub fn verify(path: &Path) -> Result<VerifyReport, AuditError> {
    let file = File::open(path).map_err(io_error("open", path))?;
    let damaged = |damage| AuditError::Damaged {
        path: path.to_owned(),
        damage,
    };
    let mut lines = LineReader::new(file);
    let mut head = FIRST_PREV.to_owned();
    let mut count = 0;
    while let Some((number, bytes)) = lines
        .next_line()
        .map_err(|problem| problem.into_error(path, damaged))?
    {
        let record = parse(number, bytes).map_err(damaged)?;
        check_link(number, &record, &head).map_err(damaged)?;
        head = sha256_hex(bytes);
        count = number;
    }
    Ok(VerifyReport { lines: count, head })
}

/// Whether line `number` continues the chain whose last hash is `head`.
/// Every earlier line passed, so line `number` must carry seq `number`.
fn check_link(number: u64, record: &RecordIn, head: &str) -> Result<(), Damage> {
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
struct RecordOut<'a> {
    seq: u64,
    time: String,
    prev: &'a str,
    event: &'a AuditEvent,
}

/// What checking needs from a line. The event is kept as plain JSON so a
/// log holding kinds of events this build does not know still verifies.
#[derive(Deserialize)]
#[allow(dead_code)] // `time` and `event` are required to exist, not read.
struct RecordIn {
    seq: u64,
    time: String,
    prev: String,
    event: serde_json::Value,
}

fn parse(number: u64, bytes: &[u8]) -> Result<RecordIn, Damage> {
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
struct LineReader<R> {
    inner: BufReader<R>,
    number: u64,
    buf: Vec<u8>,
}

/// Why the next line could not be read.
enum ReadProblem {
    Io(io::Error),
    Damage(Damage),
}

impl ReadProblem {
    fn into_error(self, path: &Path, damaged: impl FnOnce(Damage) -> AuditError) -> AuditError {
        match self {
            ReadProblem::Io(error) => AuditError::Io {
                action: "read",
                path: path.to_owned(),
                error,
            },
            ReadProblem::Damage(damage) => damaged(damage),
        }
    }
}

impl<R: Read> LineReader<R> {
    fn new(inner: R) -> LineReader<R> {
        LineReader {
            inner: BufReader::new(inner),
            number: 0,
            buf: Vec::new(),
        }
    }

    /// The next line's number and bytes without `\n`, or `None` at the end.
    fn next_line(&mut self) -> Result<Option<(u64, &[u8])>, ReadProblem> {
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
            Some((b'\n', bytes)) => Ok(Some((line, bytes))),
            _ if self.buf.len() > MAX_LINE => Err(ReadProblem::Damage(Damage::TooLong { line })),
            // The file ended before the line did.
            _ => Err(ReadProblem::Damage(Damage::Incomplete { line })),
        }
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> AuditError {
    let path = path.to_owned();
    move |error| AuditError::Io {
        action,
        path,
        error,
    }
}

/// Syncs the folder holding `path`, so a newly created file survives a crash.
fn sync_parent(path: &Path) -> Result<(), AuditError> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error("sync the folder of", path))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `time` as RFC 3339 in UTC with milliseconds, e.g. `2026-03-01T09:30:00.123Z`.
/// A clock set before 1970 reads as 1970 rather than failing the record.
fn rfc3339_utc(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let in_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
        since.subsec_millis()
    )
}

/// Year, month and day of the proleptic Gregorian calendar for a count of
/// days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprijin_proto::message::script::RunStatus;
    use std::os::unix::fs::PermissionsExt;

    fn events() -> Vec<AuditEvent> {
        vec![
            AuditEvent::SessionStart {
                nameplate: "7".into(),
                technician: "ana".into(),
                vouched: true,
                verified: true,
                credential_key: Some("ed25519:0011223344556677".into()),
                not_verified: None,
            },
            AuditEvent::Consent {
                question: "allow ana to view this machine?".into(),
                answer: true,
            },
            AuditEvent::RunStart {
                run: 1,
                script: "flush-dns".into(),
                title: "Flush the DNS cache".into(),
                program: "resolvectl".into(),
                args: vec!["flush-caches".into()],
                catalog_digest: "ab".repeat(32),
                risk: "low".into(),
            },
            AuditEvent::run_end(
                1,
                "flush-dns",
                &RunEnd {
                    status: RunStatus::Exited { code: 0 },
                    duration_ms: 15,
                    bytes: 0,
                    dropped: 0,
                    output_sha256: sha256_hex(b""),
                },
            ),
            AuditEvent::SessionEnd {
                reason: "technician quit".into(),
            },
        ]
    }

    /// A log with one line per event from [`events`].
    fn written_log() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.jsonl");
        let mut log = AuditLog::open(&path).expect("open");
        for event in events() {
            log.append(event).expect("append");
        }
        (dir, path)
    }

    fn lines_of(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .expect("read log")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn write_lines(path: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(path, text).expect("write log");
    }

    fn damage_of(result: Result<VerifyReport, AuditError>) -> Damage {
        match result {
            Err(err) => err.damage().cloned().expect("a damage error"),
            Ok(report) => panic!("verified {} lines, expected damage", report.lines),
        }
    }

    #[test]
    fn appended_lines_verify() {
        let (_dir, path) = written_log();
        let report = verify(&path).expect("verify");
        assert_eq!(report.lines, 5);
        let lines = lines_of(&path);
        assert_eq!(report.head, sha256_hex(lines[4].as_bytes()));
    }

    #[test]
    fn lines_have_the_documented_shape() {
        let (_dir, path) = written_log();
        let lines = lines_of(&path);
        let first: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
        assert_eq!(first["seq"], 1);
        assert_eq!(first["prev"], FIRST_PREV);
        assert_eq!(first["event"]["kind"], "session_start");
        assert_eq!(first["event"]["technician"], "ana");
        let time = first["time"].as_str().expect("time is a string");
        assert_eq!(time.len(), "2026-03-01T09:30:00.123Z".len());
        assert!(time.ends_with('Z'));

        let second: serde_json::Value = serde_json::from_str(&lines[1]).expect("json");
        assert_eq!(second["seq"], 2);
        assert_eq!(second["prev"], sha256_hex(lines[0].as_bytes()));

        let end: serde_json::Value = serde_json::from_str(&lines[3]).expect("json");
        assert_eq!(end["event"]["kind"], "run_end");
        assert_eq!(end["event"]["status"], "exited with status 0");

        for (line, event) in lines.iter().zip(events()) {
            let value: serde_json::Value = serde_json::from_str(line).expect("json");
            let back: AuditEvent = serde_json::from_value(value["event"].clone()).expect("event");
            assert_eq!(back, event);
        }
    }

    #[test]
    fn the_file_is_private_and_its_folders_are_created() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a").join("b").join("audit.jsonl");
        AuditLog::open(&path).expect("open");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(dir.path().join("a/b"))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
    }

    #[test]
    fn reopening_continues_the_chain() {
        let (_dir, path) = written_log();
        let mut log = AuditLog::open(&path).expect("reopen");
        let lines = lines_of(&path);
        assert_eq!(log.head(), sha256_hex(lines[4].as_bytes()));
        log.append(AuditEvent::Note {
            text: "agent restarted".into(),
        })
        .expect("append");
        drop(log);

        let report = verify(&path).expect("verify");
        assert_eq!(report.lines, 6);
        let last: serde_json::Value = serde_json::from_str(&lines_of(&path)[5]).expect("json");
        assert_eq!(last["seq"], 6);
    }

    #[test]
    fn an_empty_log_verifies() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.jsonl");
        AuditLog::open(&path).expect("open");
        let report = verify(&path).expect("verify");
        assert_eq!(report.lines, 0);
        assert_eq!(report.head, FIRST_PREV);
    }

    #[test]
    fn an_edited_line_is_named() {
        let (_dir, path) = written_log();
        let mut lines = lines_of(&path);
        lines[2] = lines[2].replace("flush-caches", "flush-cache");
        write_lines(&path, &lines);
        let err = verify(&path).expect_err("edited log");
        assert_eq!(err.damage(), Some(&Damage::Changed { line: 3 }));
        assert_eq!(
            err.to_string(),
            format!(
                "{}: audit log line 3 was changed: its hash does not match line 4's prev",
                path.display()
            )
        );
    }

    #[test]
    fn an_edited_seq_is_named() {
        let (_dir, path) = written_log();
        let mut lines = lines_of(&path);
        lines[1] = lines[1].replacen("\"seq\":2", "\"seq\":9", 1);
        write_lines(&path, &lines);
        assert_eq!(
            damage_of(verify(&path)),
            Damage::Renumbered { line: 2, seq: 9 }
        );
    }

    #[test]
    fn a_deleted_line_is_named() {
        let (_dir, path) = written_log();
        let mut lines = lines_of(&path);
        lines.remove(2);
        write_lines(&path, &lines);
        let damage = damage_of(verify(&path));
        assert_eq!(damage, Damage::Missing { first: 3, last: 3 });
        assert_eq!(
            damage.to_string(),
            "line 3 is missing (line 2 is followed by seq 4)"
        );
    }

    #[test]
    fn deleted_first_lines_are_named() {
        let (_dir, path) = written_log();
        let lines = lines_of(&path);
        write_lines(&path, &lines[2..]);
        let damage = damage_of(verify(&path));
        assert_eq!(damage, Damage::Missing { first: 1, last: 2 });
        assert_eq!(
            damage.to_string(),
            "lines 1 to 2 are missing (the log starts at seq 3)"
        );
    }

    #[test]
    fn swapped_lines_are_found() {
        let (_dir, path) = written_log();
        let mut lines = lines_of(&path);
        lines.swap(1, 2);
        write_lines(&path, &lines);
        assert_eq!(
            damage_of(verify(&path)),
            Damage::Missing { first: 2, last: 2 }
        );
    }

    #[test]
    fn a_line_that_is_not_json_is_named() {
        let (_dir, path) = written_log();
        let mut lines = lines_of(&path);
        lines[2] = "{\"seq\":3, oops".into();
        write_lines(&path, &lines);
        let damage = damage_of(verify(&path));
        assert!(matches!(damage, Damage::NotJson { line: 3, .. }));
        assert!(damage.to_string().starts_with("line 3 is not valid JSON"));

        lines[2] = "{\"seq\":3}".into();
        write_lines(&path, &lines);
        assert_eq!(
            damage_of(verify(&path)),
            Damage::NotRecord {
                line: 3,
                detail: "missing field `time`".into()
            }
        );

        lines[2] = String::new();
        write_lines(&path, &lines);
        assert_eq!(damage_of(verify(&path)), Damage::Empty { line: 3 });
    }

    #[test]
    fn a_cut_off_last_line_stops_open_and_verify() {
        let (_dir, path) = written_log();
        let text = std::fs::read(&path).expect("read");
        // Drop the last line's end and part of its text, as a crash might.
        std::fs::write(&path, &text[..text.len() - 10]).expect("write");

        assert_eq!(damage_of(verify(&path)), Damage::Incomplete { line: 5 });
        let err = AuditLog::open(&path).expect_err("cut-off log");
        assert!(matches!(err, AuditError::CannotContinue { .. }));
        assert_eq!(err.damage(), Some(&Damage::Incomplete { line: 5 }));
        assert_eq!(
            err.to_string(),
            format!(
                "{}: cannot continue the audit log: line 5 is incomplete: it was cut off \
                 mid-write; move the file aside to start a new log",
                path.display()
            )
        );
    }

    #[test]
    fn a_garbled_last_line_stops_open() {
        let (_dir, path) = written_log();
        let mut lines = lines_of(&path);
        lines[4] = "garbage".into();
        write_lines(&path, &lines);
        let err = AuditLog::open(&path).expect_err("garbled log");
        assert!(matches!(
            err.damage(),
            Some(Damage::NotJson { line: 5, .. })
        ));
    }

    #[test]
    fn an_overlong_line_is_refused_and_the_log_stays_usable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.jsonl");
        let mut log = AuditLog::open(&path).expect("open");
        let err = log
            .append(AuditEvent::Note {
                text: "x".repeat(MAX_LINE),
            })
            .expect_err("too large");
        assert!(matches!(err, AuditError::TooLarge { .. }));
        log.append(AuditEvent::Note { text: "ok".into() })
            .expect("append");
        assert_eq!(verify(&path).expect("verify").lines, 1);

        // A line over the limit written by someone else is named, not read.
        let mut text = std::fs::read(&path).expect("read");
        text.extend(std::iter::repeat_n(b'x', MAX_LINE + 1));
        text.push(b'\n');
        std::fs::write(&path, text).expect("write");
        assert_eq!(damage_of(verify(&path)), Damage::TooLong { line: 2 });
    }

    #[test]
    fn newlines_in_events_stay_inside_one_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.jsonl");
        let mut log = AuditLog::open(&path).expect("open");
        log.append(AuditEvent::Note {
            text: "two\nlines\r\n".into(),
        })
        .expect("append");
        assert_eq!(lines_of(&path).len(), 1);
        assert_eq!(verify(&path).expect("verify").lines, 1);
    }

    #[test]
    fn a_missing_log_is_an_io_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = verify(&dir.path().join("none.jsonl")).expect_err("missing");
        assert!(matches!(err, AuditError::Io { action: "open", .. }));
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let at = |secs: u64, millis: u64| {
            rfc3339_utc(UNIX_EPOCH + std::time::Duration::from_millis(secs * 1000 + millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_709_210_096, 789), "2024-02-29T12:34:56.789Z");
        assert_eq!(at(4_102_444_799, 999), "2099-12-31T23:59:59.999Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - std::time::Duration::from_secs(1)),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
