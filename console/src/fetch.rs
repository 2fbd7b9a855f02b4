//! Keeping a file fetched from the person's machine.
//!
//! The file is written to `LOCAL.part` as it arrives and hashed on the
//! way. Only when the agent's final message names the same size and
//! SHA-256 is it given its name, and never over an existing file (the
//! name is linked, which fails if it exists, then the part is removed).
//! Anything else removes the part. Nothing is written before the agent
//! says how big the file is, and never more than that: a piece that does
//! not fit ends the transfer.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sprijin_proto::message::session::AgentMsg;

use crate::report::KeptFile;

/// Where a fetched file is kept: `local` when given, else the file's base
/// name in the current folder.
pub fn local_for(path: &str, local: Option<PathBuf>) -> Result<PathBuf, FetchError> {
    if let Some(local) = local {
        return Ok(local);
    }
    Path::new(path)
        .file_name()
        .map(PathBuf::from)
        .ok_or_else(|| FetchError::NoName(path.to_string()))
}

/// A file being received.
pub struct Receiving {
    local: PathBuf,
    part: PathBuf,
    file: Option<File>,
    hash: Sha256,
    bytes: u64,
    /// The size the agent announced when it started sending.
    announced: Option<u64>,
}

impl Receiving {
    /// Prepares to receive into `local`; refuses when it exists.
    pub fn create(local: &Path) -> Result<Receiving, FetchError> {
        let shown = local.display().to_string();
        if local.symlink_metadata().is_ok() {
            return Err(FetchError::Exists(shown));
        }
        let mut part = local.as_os_str().to_owned();
        part.push(".part");
        let part = PathBuf::from(part);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&part)
            .map_err(|e| FetchError::Part(part.display().to_string(), e.to_string()))?;
        Ok(Receiving {
            local: local.to_path_buf(),
            part,
            file: Some(file),
            hash: Sha256::new(),
            bytes: 0,
            announced: None,
        })
    }

    /// The agent said `size` bytes follow; it may say so once.
    pub fn start(&mut self, size: u64) -> Result<(), FetchError> {
        if let Some(announced) = self.announced {
            return Err(FetchError::Restarted {
                announced,
                again: size,
            });
        }
        self.announced = Some(size);
        Ok(())
    }

    /// Where the file is kept once it checks out.
    pub fn local(&self) -> &Path {
        &self.local
    }

    pub fn received(&self) -> u64 {
        self.bytes
    }

    pub fn announced(&self) -> Option<u64> {
        self.announced
    }

    /// Writes one piece, if it fits within the announced size.
    pub fn write(&mut self, data: &[u8]) -> Result<(), FetchError> {
        let size = self.announced.ok_or(FetchError::NotStarted)?;
        if self.file.is_none() {
            return Err(FetchError::Closed);
        }
        let total = self.bytes.saturating_add(data.len() as u64);
        if total > size {
            self.file = None;
            return Err(FetchError::Size {
                expected: size,
                got: total,
            });
        }
        self.bytes = total;
        self.hash.update(data);
        let file = self.file.as_mut().ok_or(FetchError::Closed)?;
        file.write_all(data)
            .map_err(|e| FetchError::Write(self.part.display().to_string(), e.to_string()))
    }

    /// Takes one of the agent's answers to the fetch: the start, a piece,
    /// the end (checked, then the file is kept) or a refusal. The line
    /// console and the full-screen console both receive through this.
    pub fn on_agent(&mut self, msg: &AgentMsg) -> Step {
        match msg {
            AgentMsg::FileStart { size, .. } => match self.start(*size) {
                Ok(()) => Step::Started(*size),
                Err(e) => Step::Failed(e),
            },
            AgentMsg::FileChunk { data, .. } => match self.write(data) {
                Ok(()) => Step::Received,
                Err(e) => Step::Failed(e),
            },
            AgentMsg::FileEnd { size, sha256, .. } => match self.finish(*size, sha256) {
                Ok(kept) => Step::Kept(KeptFile {
                    local: kept.display().to_string(),
                    size: *size,
                    sha256: sha256.clone(),
                }),
                Err(e) => Step::Failed(e),
            },
            AgentMsg::Refused { reason, .. } => Step::Refused(reason.clone()),
            _ => Step::Other,
        }
    }

    /// Checks what arrived against the agent's `size` and `sha256` and, if
    /// both match, keeps the file under its name.
    /// Whatever the outcome, the part is gone afterwards.
    pub fn finish(&mut self, size: u64, sha256: &str) -> Result<PathBuf, FetchError> {
        let kept = self.check_and_keep(size, sha256);
        self.file = None;
        let _ = std::fs::remove_file(&self.part);
        kept
    }

    fn check_and_keep(&mut self, size: u64, sha256: &str) -> Result<PathBuf, FetchError> {
        if self.announced != Some(size) || self.bytes != size {
            return Err(FetchError::Size {
                expected: size,
                got: self.bytes,
            });
        }
        let got = hex::encode(std::mem::take(&mut self.hash).finalize());
        if !got.eq_ignore_ascii_case(sha256) {
            return Err(FetchError::Digest {
                expected: sha256.to_string(),
                got,
            });
        }
        let file = self.file.take().ok_or(FetchError::Closed)?;
        let shown = self.local.display().to_string();
        file.sync_all()
            .map_err(|e| FetchError::Write(self.part.display().to_string(), e.to_string()))?;
        drop(file);
        std::fs::hard_link(&self.part, &self.local).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                FetchError::Exists(shown.clone())
            } else {
                FetchError::Keep(shown.clone(), e.to_string())
            }
        })?;
        Ok(self.local.clone())
    }
}

/// What one answer from the agent did to a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The person agreed: this many bytes follow.
    Started(u64),
    /// A piece arrived and was written.
    Received,
    /// The size and digest matched and the file was kept.
    Kept(KeptFile),
    /// The agent (or the person) refused, for this reason.
    Refused(String),
    /// The file could not be received or did not check out; not kept.
    Failed(FetchError),
    /// Not part of a fetch.
    Other,
}

impl Drop for Receiving {
    /// A part that was not kept is removed.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.part);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("{0} names no file: give the local name too, as fetch PATH LOCAL")]
    NoName(String),
    #[error(
        "{0} already exists here; nothing was asked: choose another name with fetch PATH LOCAL"
    )]
    Exists(String),
    #[error(
        "cannot create {0}: {1}; nothing was asked (remove a leftover part, or choose another name)"
    )]
    Part(String, String),
    #[error("cannot write {0}: {1}; the file was not kept")]
    Write(String, String),
    #[error("cannot keep the file as {0}: {1}")]
    Keep(String, String),
    #[error("the file arrived with {got} bytes where the agent said {expected}; it was not kept")]
    Size { expected: u64, got: u64 },
    #[error("the file's SHA-256 is {got} where the agent said {expected}; it was not kept")]
    Digest { expected: String, got: String },
    #[error("the file was already closed")]
    Closed,
    #[error("the agent sent part of the file before saying its size; it was not kept")]
    NotStarted,
    #[error(
        "the agent announced the file's size twice ({announced}, then {again} bytes); it was not kept"
    )]
    Restarted { announced: u64, again: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_name_defaults_to_the_base_name() {
        assert_eq!(
            local_for("/var/log/syslog", None).unwrap(),
            PathBuf::from("syslog")
        );
        assert_eq!(
            local_for("/var/log/syslog", Some("x.log".into())).unwrap(),
            PathBuf::from("x.log")
        );
        assert!(matches!(local_for("/", None), Err(FetchError::NoName(_))));
    }

    #[test]
    fn a_file_is_kept_only_when_size_and_digest_match() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("got.txt");
        let digest = hex::encode(Sha256::digest(b"hello world"));

        let mut r = Receiving::create(&local).unwrap();
        r.start(11).unwrap();
        r.write(b"hello ").unwrap();
        r.write(b"world").unwrap();
        assert_eq!(r.finish(11, &digest).unwrap(), local);
        assert_eq!(std::fs::read(&local).unwrap(), b"hello world");
        assert!(!dir.path().join("got.txt.part").exists());

        // An existing file is never replaced.
        assert!(matches!(
            Receiving::create(&local),
            Err(FetchError::Exists(_))
        ));

        let other = dir.path().join("other.txt");
        let mut r = Receiving::create(&other).unwrap();
        r.start(11).unwrap();
        r.write(b"hello wOrld").unwrap();
        assert!(matches!(
            r.finish(11, &digest),
            Err(FetchError::Digest { .. })
        ));
        assert!(!other.exists());
        assert!(!dir.path().join("other.txt.part").exists());

        let mut r = Receiving::create(&other).unwrap();
        r.start(5).unwrap();
        assert!(matches!(
            r.write(b"hello world"),
            Err(FetchError::Size { .. })
        ));
        drop(r);
        assert!(!dir.path().join("other.txt.part").exists());
    }

    #[test]
    fn nothing_is_written_beyond_the_announced_size() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("got.bin");
        let part = dir.path().join("got.bin.part");

        // A piece before the size is refused, and nothing is written.
        let mut r = Receiving::create(&local).unwrap();
        assert_eq!(r.write(b"early"), Err(FetchError::NotStarted));
        assert_eq!(std::fs::metadata(&part).unwrap().len(), 0);
        drop(r);

        // A piece that does not fit is refused whole; what fitted stays
        // within the size, and the transfer is over.
        let mut r = Receiving::create(&local).unwrap();
        r.start(8).unwrap();
        r.write(b"12345").unwrap();
        assert!(matches!(r.write(b"6789"), Err(FetchError::Size { .. })));
        assert_eq!(std::fs::metadata(&part).unwrap().len(), 5);
        assert_eq!(r.write(b"6"), Err(FetchError::Closed));
        assert_eq!(r.received(), 5);
        assert!(matches!(r.start(1), Err(FetchError::Restarted { .. })));
        drop(r);
        assert!(!part.exists());
    }
}
