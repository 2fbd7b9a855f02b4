//! The agent's files on Linux and macOS: owner-only modes, folders synced
//! after a rename, the folder lock, and room set aside on the disk.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::Path;

/// Creates `folder` and those above it, only the agent's user may enter.
pub fn create_private_folder(folder: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(folder)
}

/// Makes files that `options` creates readable by the agent's user only.
pub fn owner_only(options: &mut OpenOptions) -> &mut OpenOptions {
    options.mode(0o600)
}

/// Syncs `folder`, so a file created or renamed in it survives a crash.
pub fn sync_folder(folder: &Path) -> io::Result<()> {
    File::open(folder).and_then(|dir| dir.sync_all())
}

/// What the folder lock is taken on: the folder itself.
pub fn open_folder_lock(folder: &Path) -> io::Result<File> {
    File::open(folder)
}

/// Writes all of `bytes` at `offset`, leaving the file's position alone.
pub fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    file.write_all_at(bytes, offset)
}

/// Bytes free for the agent's user on the disk that holds `file` (at `_path`).
pub fn free_space(file: &File, _path: &Path) -> io::Result<u64> {
    let stat = rustix::fs::fstatvfs(file)?;
    // The field types differ between platforms.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let free = u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize));
    Ok(free)
}

/// Sets `len` bytes aside past `offset` without growing the file.
/// `Ok(false)` when the file system cannot; an error of kind
/// `StorageFull` or `QuotaExceeded` when the room is not there.
#[cfg(target_os = "linux")]
pub fn set_aside(file: &File, offset: u64, len: u64) -> io::Result<bool> {
    use rustix::fs::FallocateFlags;
    use rustix::io::Errno;
    match rustix::fs::fallocate(file, FallocateFlags::KEEP_SIZE, offset, len) {
        Ok(()) => Ok(true),
        Err(Errno::OPNOTSUPP | Errno::NOSYS) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// macOS has no call that sets room aside without growing the file; the
/// free space is still checked.
#[cfg(not(target_os = "linux"))]
pub fn set_aside(_file: &File, _offset: u64, _len: u64) -> io::Result<bool> {
    Ok(false)
}
