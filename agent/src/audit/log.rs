//! [`AuditLog`]: the open log the agent appends to. Opening takes the lock,
//! checks there is room, repairs a cut-off last line and records what it
//! found (see `recover`); each append is on disk, and the kept head
//! updated, before it returns.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sprijin_proto::message::diag::PersonRun;
use tokio::sync::watch;

use super::chain::{MAX_LINE, RecordOut, io_error, sha256_hex, sync_parent};
use super::damage::{AuditError, Damage};
use super::event::AuditEvent;
use super::head::Head;
use super::recover::{self, Cut};
use super::room;
use super::scan::scan;
use super::state::{StateFile, state_path};

/// An open audit log that appends to the end of the chain.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    /// The lock on the log's folder, held while the log is open.
    _lock: File,
    state: StateFile,
    log_id: String,
    next_seq: u64,
    /// The last line: the next line's `prev` is its hash.
    head: Head,
    broken: bool,
    heads: watch::Sender<Head>,
    /// What opening found and recorded, for the person.
    opened: Vec<String>,
    /// The person's runs since the last session, as opening found them.
    person_runs: Vec<PersonRun>,
}

impl AuditLog {
    /// Opens the log at `path`, creating it and its folder if needed; takes
    /// the folder's lock so no other agent writes the same log; checks the
    /// disk has room; removes a last line cut off mid-write; and records
    /// what it found (see [`AuditLog::opened`]).
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let folder =
            crate::folder::create_private(path).map_err(io_error("create the folder of", path))?;
        let lock = crate::platform::open_folder_lock(folder)
            .map_err(io_error("open the folder of", path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(AuditError::Locked {
                    path: path.to_owned(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_error("lock the folder of", path)(e)),
        }
        let file = crate::platform::owner_only(&mut OpenOptions::new())
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_error("open", path))?;
        room::ensure(&file, path)?;
        let (state, kept) = StateFile::open(&state_path(path))?;

        let wanted: Vec<u64> = kept
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map(|k| k.seq)
            .into_iter()
            .collect();
        let mut found = scan(&file, &wanted).map_err(io_error("read", path))?;
        let cannot_continue = |damage| AuditError::CannotContinue {
            path: path.to_owned(),
            damage,
        };
        let cut = match found.stopped.take() {
            Some(Damage::Incomplete { line }) => {
                let len = file
                    .metadata()
                    .map_err(io_error("check the size of", path))?
                    .len();
                file.set_len(found.end)
                    .and_then(|()| file.sync_data())
                    .map_err(io_error("repair", path))?;
                Some(Cut {
                    line,
                    bytes: len.saturating_sub(found.end),
                })
            }
            Some(damage) => return Err(cannot_continue(damage)),
            None => None,
        };
        // Building on a last line that cannot be read would hide it.
        if let Some(damage) = found.last_unreadable.take() {
            return Err(cannot_continue(damage));
        }
        sync_parent(path)?;

        let plan = recover::plan(path, &found, &kept, cut);
        let (heads, _) = watch::channel(found.head());
        let mut log = AuditLog {
            path: path.to_owned(),
            file,
            _lock: lock,
            state,
            log_id: plan.log_id,
            next_seq: found.lines.saturating_add(1),
            head: found.head(),
            broken: false,
            heads,
            opened: plan.notes,
            person_runs: found.person_runs(),
        };
        // The id is kept before the first line names it.
        log.keep()?;
        for event in plan.events {
            log.append(event)?;
        }
        Ok(log)
    }

    /// Appends one line for `event` and returns, once it is on disk and the
    /// kept head updated, the log's new head.
    ///
    /// This blocks on the disk; from async code, call it where a short
    /// blocking wait is acceptable or move it to a blocking thread.
    pub fn append(&mut self, event: AuditEvent) -> Result<Head, AuditError> {
        if self.broken {
            return Err(AuditError::Broken {
                path: self.path.clone(),
            });
        }
        let record = RecordOut {
            seq: self.next_seq,
            time: sprijin_proto::utc::rfc3339_millis(SystemTime::now()),
            prev: &self.head.hash,
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
        self.head = Head {
            seq: self.next_seq,
            hash,
        };
        self.next_seq = self.next_seq.saturating_add(1);
        self.keep()?;
        self.heads.send_replace(self.head.clone());
        Ok(self.head.clone())
    }

    /// Writes the current head to the state kept beside the log.
    fn keep(&mut self) -> Result<(), AuditError> {
        let kept = recover::kept(&self.log_id, self.head.seq, &self.head.hash);
        self.state.write(&kept).inspect_err(|_| self.broken = true)
    }

    /// Checks that the log can take what a run records (its question, start
    /// and end): it is not broken by a failed write, and its disk has room.
    pub fn check_writable(&mut self) -> Result<(), AuditError> {
        if self.broken {
            return Err(AuditError::Broken {
                path: self.path.clone(),
            });
        }
        room::ensure(&self.file, &self.path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log's random id, recorded in its first line and kept beside it.
    pub fn log_id(&self) -> &str {
        &self.log_id
    }

    /// The last line's seq and hash.
    pub fn head(&self) -> Head {
        self.head.clone()
    }

    /// Follows the head: the receiver sees every new head after an append.
    pub fn watch_head(&self) -> watch::Receiver<Head> {
        self.heads.subscribe()
    }

    /// What opening the log found and recorded (a repaired line, damage,
    /// a restarted log, unfinished runs), one line each for the person.
    pub fn opened(&self) -> &[String] {
        &self.opened
    }

    /// The runs the person started alone after the last session began, as
    /// the log held them when it was opened, oldest first.
    pub fn person_runs(&self) -> &[PersonRun] {
        &self.person_runs
    }
}
