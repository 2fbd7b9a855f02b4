//! The relay's ticket secret: 32 random bytes made on first start and kept
//! in the data dir (mode 0600, written durably), so tickets issued before a
//! restart still check after it and sessions carry on.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::RngCore;

const KEY_FILE: &str = "ticket-key";
const KEY_LEN: usize = 32;

/// Loads the secret from `dir`, making the folder and a new secret when
/// there is none yet.
pub fn load_or_create(dir: &Path) -> Result<[u8; KEY_LEN], TicketKeyError> {
    let path = dir.join(KEY_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            return bytes
                .try_into()
                .map_err(|_| TicketKeyError::Malformed(path.clone()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(TicketKeyError::io(&path, e)),
    }
    fs::create_dir_all(dir).map_err(|e| TicketKeyError::io(dir, e))?;
    let mut key = [0u8; KEY_LEN];
    rand::rngs::OsRng.fill_bytes(&mut key);
    // Written beside, synced, then renamed into place and the folder
    // synced: a crash leaves either no key or the whole key.
    let partial = dir.join(format!("{KEY_FILE}.partial"));
    let _ = fs::remove_file(&partial);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| TicketKeyError::io(&partial, e))?;
    file.write_all(&key)
        .and_then(|_| file.sync_all())
        .map_err(|e| TicketKeyError::io(&partial, e))?;
    fs::rename(&partial, &path).map_err(|e| TicketKeyError::io(&path, e))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TicketKeyError::io(dir, e))?;
    Ok(key)
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TicketKeyError {
    #[error("cannot use the ticket key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the ticket key {0} is not 32 bytes: remove it to make a new one (sessions in progress then end)"
    )]
    Malformed(PathBuf),
}

impl TicketKeyError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        TicketKeyError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_key_is_made_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(&dir.path().join("relay")).unwrap();
        let second = load_or_create(&dir.path().join("relay")).unwrap();
        assert_eq!(first, second);
        let mode = fs::metadata(dir.path().join("relay").join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_damaged_key_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is not 32 bytes"), "{err}");
    }
}
