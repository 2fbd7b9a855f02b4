//! The folders that hold the agent's files: found the same way everywhere,
//! created so only the agent's user can enter them, and synced after a file
//! in them is created or renamed.

use std::io;
use std::path::Path;

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
