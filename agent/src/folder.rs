//! The folders that hold the agent's files: found the same way everywhere,
//! created so only the agent's user can enter them, and synced after a file
//! in them is created or renamed.

use std::fs::{DirBuilder, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// The folder that holds `path` (`.` for a bare file name).
pub fn of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Creates the folder that holds `path`, and those above it, owner-only
/// (mode 0700); returns it.
pub fn create_private(path: &Path) -> io::Result<&Path> {
    let folder = of(path);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)?;
    Ok(folder)
}

/// Syncs the folder that holds `path`, so a file created or renamed there
/// survives a crash.
pub fn sync(path: &Path) -> io::Result<()> {
    File::open(of(path)).and_then(|dir| dir.sync_all())
}
