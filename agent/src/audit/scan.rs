//! One pass over a log that both [`verify`](super::verify) and
//! [`AuditLog::open`](super::AuditLog::open) need: it checks the chain,
//! hashes every line, and collects what the lines say about the log itself
//! (its id, restarts and damage recorded earlier) and runs that started but
//! never ended. Comparing the result with a kept or given head names
//! lines cut off the end, a rewritten last line, or a replaced log.

use std::io::Read;

use super::chain::{FIRST_PREV, LineReader, ReadProblem, check_link, parse, sha256_hex};
use super::damage::{Damage, HeadSource};
use sprijin_proto::message::diag::PersonRun;

use super::event::{AuditEvent, StartedBy};
use super::head::Head;
use super::state::Kept;

/// A run whose start is in the log and whose end is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRun {
    /// The line of its `run_start`.
    pub line: u64,
    pub run: u64,
    pub script: String,
    /// Which session (counted in the log) it belongs to.
    session: u64,
}

/// Something an earlier entry says about the log itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Damage or a restart found by the agent when it opened the log.
    Damage(Damage),
    /// A cut-off line was removed; the entry at `line` says so.
    Repaired { line: u64, cut: u64, bytes: u64 },
}

/// What one pass over a log found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Whole lines read.
    pub lines: u64,
    /// Hash of the last whole line, or [`FIRST_PREV`].
    pub hash: String,
    /// Offset just past the last whole line.
    pub end: u64,
    /// The first chain damage; the scan goes on reading past it.
    pub damage: Option<Damage>,
    /// Why reading stopped early: a cut-off or overlong last line.
    pub stopped: Option<Damage>,
    /// Whether the last whole line could be read as a record, and if not why.
    pub last_unreadable: Option<Damage>,
    /// The id in the log's first `log_start`.
    pub log_id: Option<String>,
    pub notices: Vec<Notice>,
    pub open_runs: Vec<OpenRun>,
    /// Runs the person started alone since the last session began, by run.
    person_runs: Vec<(u64, PersonRun)>,
    /// The hashes of the lines asked for, by line.
    wanted: Vec<(u64, Option<String>)>,
}

impl Scan {
    /// The runs the person started alone after the log's last session
    /// began, oldest first, with how each ended.
    pub fn person_runs(&self) -> Vec<PersonRun> {
        self.person_runs.iter().map(|(_, r)| r.clone()).collect()
    }

    pub fn head(&self) -> Head {
        Head {
            seq: self.lines,
            hash: self.hash.clone(),
        }
    }

    /// The hash of line `seq`, if it was asked for and exists.
    fn hash_of(&self, seq: u64) -> Option<&str> {
        if seq == 0 {
            return Some(FIRST_PREV);
        }
        self.wanted
            .iter()
            .find(|(n, _)| *n == seq)
            .and_then(|(_, h)| h.as_deref())
    }

    /// Whether the log still reaches `head`: at least as long, and the
    /// line at its seq has its hash.
    pub fn reaches(&self, head: &Head, source: HeadSource) -> Result<(), Damage> {
        if self.lines < head.seq {
            return Err(Damage::Shortened {
                lines: self.lines,
                head: head.clone(),
                against: source,
            });
        }
        match self.hash_of(head.seq) {
            Some(hash) if hash == head.hash => Ok(()),
            _ => Err(Damage::HeadChanged {
                head: head.clone(),
                against: source,
            }),
        }
    }

    /// Whether this log is the one the data dir kept the state of.
    pub fn matches(&self, kept: &Kept) -> Result<(), Damage> {
        if self.lines == 0 {
            return match kept.seq {
                0 => Ok(()),
                _ => Err(Damage::Emptied { kept: kept.clone() }),
            };
        }
        match &self.log_id {
            Some(id) if *id != kept.log_id => {
                return Err(Damage::Replaced {
                    found: id.clone(),
                    kept: kept.log_id.clone(),
                });
            }
            None => {
                return Err(Damage::NoLogId {
                    kept: kept.log_id.clone(),
                });
            }
            Some(_) => {}
        }
        self.reaches(&kept.head(), HeadSource::Kept)
    }
}

/// Reads the whole log from `file`, keeping the hashes of lines `wanted`.
/// An I/O error while reading is returned as is.
pub fn scan(file: impl Read, wanted: &[u64]) -> Result<Scan, std::io::Error> {
    let mut found = Scan {
        hash: FIRST_PREV.to_owned(),
        wanted: wanted.iter().map(|&n| (n, None)).collect(),
        ..Scan::default()
    };
    let mut sessions = 0u64;
    let mut lines = LineReader::new(file);
    loop {
        let (number, bytes) = match lines.next_line() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(ReadProblem::Io(e)) => return Err(e),
            Err(ReadProblem::Damage(damage)) => {
                found.stopped = Some(damage);
                break;
            }
        };
        let hash = sha256_hex(bytes);
        for (n, h) in &mut found.wanted {
            if *n == number {
                *h = Some(hash.clone());
            }
        }
        let record = match parse(number, bytes) {
            Ok(record) => {
                if found.damage.is_none() {
                    found.damage = check_link(number, &record, &found.hash).err();
                }
                found.last_unreadable = None;
                Some(record)
            }
            Err(damage) => {
                found.last_unreadable = Some(damage.clone());
                found.damage.get_or_insert(damage);
                None
            }
        };
        found.hash = hash;
        found.lines = number;
        let time = record.as_ref().map(|r| r.time.clone()).unwrap_or_default();
        // Kinds this build does not know are skipped, not errors.
        let event = record.and_then(|r| serde_json::from_value::<AuditEvent>(r.event).ok());
        if let Some(event) = &event {
            follow_person_runs(&mut found.person_runs, event, time);
        }
        match event {
            Some(AuditEvent::LogStart { log_id, replaces }) => {
                if found.log_id.is_none() {
                    found.log_id = Some(log_id);
                }
                if let Some(kept) = replaces {
                    found
                        .notices
                        .push(Notice::Damage(Damage::Restarted { line: number, kept }));
                }
            }
            Some(AuditEvent::Damaged { found: what }) => {
                found.notices.push(Notice::Damage(Damage::Recorded {
                    line: number,
                    found: what,
                }));
            }
            Some(AuditEvent::Repaired { line, bytes, .. }) => {
                found.notices.push(Notice::Repaired {
                    line: number,
                    cut: line,
                    bytes,
                });
            }
            Some(AuditEvent::SessionStart { .. }) => sessions += 1,
            Some(AuditEvent::RunStart { run, script, .. }) => found.open_runs.push(OpenRun {
                line: number,
                run,
                script,
                session: sessions,
            }),
            Some(AuditEvent::RunEnd { run, .. }) => {
                if let Some(at) = found
                    .open_runs
                    .iter()
                    .rposition(|r| r.run == run && r.session == sessions)
                {
                    found.open_runs.remove(at);
                }
            }
            Some(AuditEvent::RunUnfinished { run, .. }) => {
                if let Some(at) = found.open_runs.iter().position(|r| r.run == run) {
                    found.open_runs.remove(at);
                }
            }
            _ => {}
        }
    }
    found.end = lines.end();
    for (_, run) in &mut found.person_runs {
        if run.status.is_empty() {
            run.status = UNFINISHED.to_owned();
        }
    }
    Ok(found)
}

/// The person's run `run`, the latest of that number.
fn started(runs: &mut [(u64, PersonRun)], run: u64) -> Option<&mut PersonRun> {
    runs.iter_mut()
        .rev()
        .find(|(r, _)| *r == run)
        .map(|(_, p)| p)
}

/// How a person's run that has a start and no end is told.
const UNFINISHED: &str = "did not finish: the agent stopped during it";

/// Keeps `runs` to the person's runs since the last session start, each
/// with its end and its check as they come.
fn follow_person_runs(runs: &mut Vec<(u64, PersonRun)>, event: &AuditEvent, time: String) {
    match event {
        AuditEvent::SessionStart { .. } => runs.clear(),
        AuditEvent::RunStart {
            run,
            script,
            title,
            by: StartedBy::Person,
            ..
        } => runs.push((
            *run,
            PersonRun {
                started_at: time,
                script: script.clone(),
                title: title.clone(),
                status: String::new(),
                fixed: None,
            },
        )),
        AuditEvent::RunEnd { run, status, .. } => {
            if let Some(p) = started(runs, *run) {
                p.status = status.clone();
            }
        }
        AuditEvent::RunUnfinished { run, .. } => {
            if let Some(p) = started(runs, *run) {
                p.status = UNFINISHED.to_owned();
            }
        }
        AuditEvent::RunChecked { run, fixed, .. } => {
            if let Some(p) = started(runs, *run) {
                p.fixed = Some(*fixed);
            }
        }
        _ => {}
    }
}
