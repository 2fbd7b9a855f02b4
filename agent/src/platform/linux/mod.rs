//! The agent on Linux.

mod cgroups;
mod clock;
pub mod diag;
mod open;
mod packages;
mod procfs;
mod watch;

pub use watch::WatchReader;

pub use open::open_no_follow;

pub use super::unix::files::*;
pub use super::unix::places::*;
pub use super::unix::run::*;
pub use super::unix::terminal::*;

/// Whether standard input is missing or is `/dev/null`, as when the agent
/// was started from a desktop menu rather than a terminal or a pipe.
pub fn stdin_is_absent() -> bool {
    match std::fs::read_link("/proc/self/fd/0") {
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        Ok(target) => target == std::path::Path::new("/dev/null"),
    }
}
