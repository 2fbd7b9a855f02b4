//! What the data dir keeps beside the log: the log's id and the head of its
//! chain after the last entry (`audit.state` beside `audit.log`).
//!
//! The log alone cannot show that lines were cut off its end, that its last
//! line was rewritten, or that it was deleted and begun again: each of those
//! leaves a valid chain. Against the kept id and head, each is named.
//!
//! The file has a fixed length and is rewritten in place after each entry,
//! so keeping it up to date never needs more room on a full disk. It is
//! written after the log line is on disk and is not itself waited for: the
//! log is the record, and this is only a mark the log must reach. A killed
//! agent leaves it current (the system still writes it out); a power cut
//! may leave it some entries behind the log, which still reaches it. It is
//! never ahead of the log, since each write follows the line it names.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::chain::io_error;
use super::damage::AuditError;
use super::head::Head;

/// Bytes of the kept state, padded with spaces and ended by `\n`.
const STATE_LEN: usize = 256;

/// A log's id and head as the data dir keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    pub log_id: String,
    pub seq: u64,
    pub hash: String,
}

impl Kept {
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// Where the state of the log at `log` is kept.
pub fn state_path(log: &Path) -> PathBuf {
    log.with_extension("state")
}

/// What the state file holds: `Ok(None)` when it is missing or empty,
/// `Err` with the reason when it cannot be read as a state.
pub type Found = Result<Option<Kept>, String>;

/// Reads the kept state at `path` without changing anything.
pub fn read(path: &Path) -> Result<Found, AuditError> {
    match File::open(path) {
        Ok(file) => read_from(&file, path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Ok(None)),
        Err(e) => Err(io_error("read the head kept beside", path)(e)),
    }
}

fn read_from(file: &File, path: &Path) -> Result<Found, AuditError> {
    let mut text = String::new();
    match file.take(4 * STATE_LEN as u64).read_to_string(&mut text) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return Ok(Err(format!("{} is not text", path.display())));
        }
        Err(e) => return Err(io_error("read the head kept beside", path)(e)),
    }
    if text.trim().is_empty() {
        return Ok(Ok(None));
    }
    Ok(serde_json::from_str::<Kept>(text.trim())
        .map(Some)
        .map_err(|e| format!("{} is not a kept head ({e})", path.display())))
}

/// The state file, open for rewriting in place.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    file: File,
}

impl StateFile {
    /// Opens (creating, 0600) the state file at `path` and reads it.
    pub fn open(path: &Path) -> Result<(StateFile, Found), AuditError> {
        let file = crate::platform::owner_only(&mut OpenOptions::new())
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_error("open the head kept beside", path))?;
        let kept = read_from(&file, path)?;
        Ok((
            StateFile {
                path: path.to_owned(),
                file,
            },
            kept,
        ))
    }

    /// Replaces the kept state, without waiting for the disk.
    pub fn write(&mut self, kept: &Kept) -> Result<(), AuditError> {
        let mut bytes = serde_json::to_vec(kept).map_err(|e| AuditError::Encode {
            detail: e.to_string(),
        })?;
        if bytes.len() >= STATE_LEN {
            return Err(AuditError::Encode {
                detail: format!("the kept head is over {STATE_LEN} bytes"),
            });
        }
        bytes.resize(STATE_LEN - 1, b' ');
        bytes.push(b'\n');
        crate::platform::write_all_at(&self.file, &bytes, 0)
            .and_then(|()| self.file.set_len(STATE_LEN as u64))
            .map_err(io_error("update the head kept beside", &self.path))
    }
}
