//! The agent's files on Windows. The data folder is under the user's own
//! profile (`%LOCALAPPDATA%`), whose access list already keeps other users
//! out, so files need no mode of their own.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::FileExt;
use std::path::Path;

use windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceExW;

/// The file in a folder that its lock is taken on: Windows cannot lock a
/// folder itself.
const LOCK_FILE: &str = "agent.lock";

/// Creates `folder` and those above it.
pub fn create_private_folder(folder: &Path) -> io::Result<()> {
    std::fs::create_dir_all(folder)
}

/// Files inherit the private access list of the user's data folder.
pub fn owner_only(options: &mut OpenOptions) -> &mut OpenOptions {
    options
}

/// NTFS journals a folder's entries itself; a folder cannot be flushed
/// like a file.
pub fn sync_folder(_folder: &Path) -> io::Result<()> {
    Ok(())
}

/// What the folder lock is taken on: a lock file inside the folder.
pub fn open_folder_lock(folder: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(folder.join(LOCK_FILE))
}

/// Writes all of `bytes` at `offset`.
pub fn write_all_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        match file.seek_write(bytes, offset) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => {
                bytes = &bytes[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Bytes free for this user on the disk that holds `path`.
pub fn free_space(_file: &File, path: &Path) -> io::Result<u64> {
    let folder = crate::folder::of(path);
    let wide: Vec<u16> = folder.as_os_str().encode_wide().chain([0]).collect();
    let mut free: u64 = 0;
    // SAFETY: `wide` is a NUL-terminated UTF-16 string that lives across the
    // call; `free` is a valid place for one u64; the other outputs may be null.
    let ok = unsafe {
        GetDiskFreeSpaceExW(
            wide.as_ptr(),
            &mut free,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(free)
}

/// Windows cannot set room aside without growing the file; the free space
/// is still checked.
pub fn set_aside(_file: &File, _offset: u64, _len: u64) -> io::Result<bool> {
    Ok(false)
}
