//! Opening a file without following links, one folder at a time: each
//! folder on the way is opened relative to the one before with
//! `O_NOFOLLOW | O_DIRECTORY`, then the file with `O_NOFOLLOW`, so a link
//! anywhere fails instead of leading elsewhere. This is how macOS opens a
//! file the person agreed to send, and how Linux does when its kernel does
//! not offer `openat2`. Folders on the way must be readable by the agent.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, openat, statat};
use rustix::io::Errno;

use crate::platform::OpenError;

/// How the file itself is opened: read-only, never through a link, never
/// waiting (a FIFO with no writer), never as the controlling terminal.
pub(in crate::platform) const FILE_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

/// How each folder on the way is opened.
const FOLDER_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// The names after the root of a plain full path: `..` refused, `.` and
/// repeated separators dropped.
pub(in crate::platform) fn plain_names(path: &Path) -> Result<Vec<&OsStr>, OpenError> {
    let not_plain = || OpenError::NotPlain(path.to_path_buf());
    let mut components = path.components();
    if components.next() != Some(Component::RootDir) {
        return Err(not_plain());
    }
    components
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(not_plain()),
        })
        .collect()
}

/// `open_no_follow`, done folder by folder.
pub(in crate::platform) fn open_walking(path: &Path) -> Result<File, OpenError> {
    let names = plain_names(path)?;
    let Some((last, folders)) = names.split_last() else {
        let root = openat(CWD, "/", FILE_FLAGS, Mode::empty()).map_err(io)?;
        return Ok(File::from(root));
    };
    let mut folder: OwnedFd = openat(CWD, "/", FOLDER_FLAGS, Mode::empty()).map_err(io)?;
    for name in folders {
        folder = openat(&folder, *name, FOLDER_FLAGS, Mode::empty())
            .map_err(|e| not_opened(&folder, name, e))?;
    }
    let file = openat(&folder, *last, FILE_FLAGS, Mode::empty())
        .map_err(|e| not_opened(&folder, last, e))?;
    Ok(File::from(file))
}

/// Why `name` in `folder` did not open. `O_NOFOLLOW` on a link fails with
/// `ELOOP`; with `O_DIRECTORY` a system may say `ENOTDIR` instead, so then
/// the name is looked at (without following it) to tell a link apart.
fn not_opened(folder: &OwnedFd, name: &OsStr, e: Errno) -> OpenError {
    if e == Errno::LOOP {
        return OpenError::Link;
    }
    if e == Errno::NXIO {
        return OpenError::NotAFile;
    }
    if e == Errno::NOTDIR
        && statat(folder, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink)
    {
        return OpenError::Link;
    }
    io(e)
}

pub(in crate::platform) fn io(e: Errno) -> OpenError {
    OpenError::Io(e.into())
}

#[cfg(test)]
pub(in crate::platform) mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, symlink};

    /// Checks an implementation of `open_no_follow` on real files.
    pub fn opens_only_plain_paths_without_links(open: fn(&Path) -> Result<File, OpenError>) {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("notes.txt"), b"hello").unwrap();

        let mut text = String::new();
        open(&real.join("notes.txt"))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hello");
        let dotted = dir.path().join("real/./notes.txt");
        assert!(open(&dotted).is_ok());

        symlink(&real, dir.path().join("linked")).unwrap();
        let through = dir.path().join("linked/notes.txt");
        assert!(
            matches!(open(&through), Err(OpenError::Link)),
            "{through:?}"
        );
        symlink(real.join("notes.txt"), real.join("link.txt")).unwrap();
        assert!(matches!(open(&real.join("link.txt")), Err(OpenError::Link)));
        let up = dir.path().join("real/../real/notes.txt");
        assert!(matches!(open(&up), Err(OpenError::NotPlain(_))));
        assert!(matches!(
            open(Path::new("real/notes.txt")),
            Err(OpenError::NotPlain(_))
        ));
        match open(&real.join("missing")) {
            Err(OpenError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
        match open(&real.join("notes.txt/inside")) {
            Err(OpenError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotADirectory),
            other => panic!("{other:?}"),
        }
        // A FIFO with no writer opens at once rather than blocking.
        let fifo = real.join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let opened = open(&fifo).unwrap();
        assert!(opened.metadata().unwrap().file_type().is_fifo());
        // A socket cannot be opened as a file.
        let socket = real.join("socket");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert!(matches!(open(&socket), Err(OpenError::NotAFile)));
        // The magic links of /proc are links too.
        assert!(matches!(
            open(Path::new("/proc/self/root/etc/hostname")),
            Err(OpenError::Link) | Err(OpenError::Io(_))
        ));
    }

    #[test]
    fn walking_opens_only_plain_paths_without_links() {
        opens_only_plain_paths_without_links(open_walking);
    }

    #[test]
    fn plain_names_drop_dots_and_refuse_going_up() {
        let names = plain_names(Path::new("//etc/./ssh//sshd_config")).unwrap();
        assert_eq!(names, ["etc", "ssh", "sshd_config"]);
        assert!(plain_names(Path::new("/etc/../root")).is_err());
        assert!(plain_names(Path::new("etc")).is_err());
        assert_eq!(plain_names(Path::new("/")).unwrap().len(), 0);
    }
}
