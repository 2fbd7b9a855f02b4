//! The folders that hold the agent's files: found the same way everywhere,
//! created so only the agent's user can enter them, and synced after a file
//! in them is created or renamed.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::platform;

/// The folder that holds `path` (`.` for a bare file name).
pub fn of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Creates the folder that holds `path`, and those above it, owner-only;
/// returns it.
pub fn create_private(path: &Path) -> io::Result<&Path> {
    let folder = of(path);
    platform::create_private_folder(folder)?;
    Ok(folder)
}

/// Syncs the folder that holds `path`, so a file created or renamed there
/// survives a crash.
pub fn sync(path: &Path) -> io::Result<()> {
    platform::sync_folder(of(path))
}

/// Replaces the file at `path` with `bytes`, owner-only, so a crash leaves
/// either the old file or the new one, never half of one: written to a
/// temporary file beside it, synced, renamed over it, then the folder
/// synced. The folder is created if needed.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    create_private(path)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let written = platform::owner_only(&mut OpenOptions::new())
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temporary)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| fs::rename(&temporary, path));
    if let Err(cause) = written {
        let _ = fs::remove_file(&temporary);
        return Err(cause);
    }
    // The rename is durable only once the folder is.
    sync(path)
}
