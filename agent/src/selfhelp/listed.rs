//! The numbered list `sprijin-agent check` printed, remembered in the data
//! folder, so `fix N` repairs the finding the person saw as number N even
//! when the machine's findings changed order since (one came or went).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sprijin_proto::message::diag::Finding;

use super::Checkup;

/// Name of the remembered list inside the agent's data dir.
pub const LIST_FILE: &str = "last-check.json";

/// The largest list read; a few hundred findings are a few dozen KiB.
const MAX_LIST_BYTES: u64 = 1024 * 1024;

/// One finding of the list, as the person saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    pub id: String,
    pub subject: Option<String>,
    pub title: String,
}

impl Listed {
    /// Whether `f` is this finding, checked again: the same rule about the
    /// same thing (its numbers may have changed).
    pub fn is(&self, f: &Finding) -> bool {
        f.id == self.id && f.subject == self.subject
    }
}

/// Why the list cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    #[error("no check to take the number from: run `sprijin-agent check` first")]
    None,
    #[error("cannot read the last check's list {}: {reason}; run `sprijin-agent check` again", .path.display())]
    Unreadable { path: PathBuf, reason: String },
}

/// Where the list is kept for the data folder `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(LIST_FILE)
}

/// Keeps `checkup`'s findings, in the order they were numbered.
pub fn remember(checkup: &Checkup, path: &Path) -> io::Result<()> {
    let listed: Vec<Listed> = checkup
        .items
        .iter()
        .map(|i| Listed {
            id: i.finding.id.clone(),
            subject: i.finding.subject.clone(),
            title: i.finding.title.clone(),
        })
        .collect();
    let mut bytes = serde_json::to_vec(&listed).map_err(io::Error::other)?;
    bytes.push(b'\n');
    crate::folder::replace(path, &bytes)
}

/// The list the last check remembered.
pub fn recall(path: &Path) -> Result<Vec<Listed>, ListError> {
    let unreadable = |reason: String| ListError::Unreadable {
        path: path.to_owned(),
        reason,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ListError::None),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let mut text = Vec::new();
    file.take(MAX_LIST_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| unreadable(e.to_string()))?;
    if text.len() as u64 > MAX_LIST_BYTES {
        return Err(unreadable(format!(
            "it is more than the limit of {MAX_LIST_BYTES} bytes"
        )));
    }
    serde_json::from_slice(&text).map_err(|e| unreadable(e.to_string()))
}
