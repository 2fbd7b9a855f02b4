//! Everything about the agent that differs by operating system, one module
//! per system: `linux`, `macos` and `windows`, with what Linux and macOS
//! share in `unix`. Each system module offers the same names, re-exported
//! here, so session, consent, audit and catalog code never needs a `cfg`.
//!
//! What every system module offers:
//!
//! - `open_no_follow(path: &Path) -> Result<File, OpenError>`: opens the
//!   file at `path` for reading, for a file the person agreed to send.
//!   `path` must be absolute and plain: `..` is refused
//!   ([`OpenError::NotPlain`]), `.` and repeated separators are ignored.
//!   No symbolic link is followed anywhere on the way, neither in a folder
//!   nor as the file itself, and no "magic" link such as `/proc/PID/root`
//!   (on Windows: no reparse point, junction or symbolic link); meeting
//!   one is [`OpenError::Link`]. The open never blocks (a FIFO with no
//!   writer, a device) and never makes a terminal the controlling one; it
//!   opens anything it may (a folder, a FIFO): the caller checks that what
//!   it got is a regular file. What cannot be opened as a file at all (a
//!   socket) may be [`OpenError::NotAFile`]. Nothing is created or
//!   changed. Every other failure is [`OpenError::Io`] with the system's
//!   error.

use std::path::PathBuf;

#[cfg(unix)]
mod unix;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub use macos::*;

// Calling Windows' APIs needs unsafe code; each block says why it is sound.
#[cfg(windows)]
#[allow(unsafe_code)]
mod windows;
#[cfg(windows)]
pub use windows::*;

/// Why `open_no_follow` opened nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The path is not absolute, or goes up a folder with `..`.
    #[error("{} is not a plain full path: it must start at the root and hold no `..`", .0.display())]
    NotPlain(PathBuf),
    /// A symbolic link (or another kind of link) is on the way.
    #[error("a link is on the way")]
    Link,
    /// Something that cannot be opened as a file, such as a socket.
    #[error("not a file that can be opened (a socket or a device)")]
    NotAFile,
    #[error(transparent)]
    Io(std::io::Error),
}
