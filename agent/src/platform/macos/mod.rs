//! The agent on macOS.

pub mod diag;

/// Nothing beyond the snapshots is watched here yet.
pub use crate::diag::watch::NothingToWatch as WatchReader;
mod open;

pub use open::open_no_follow;

pub use super::unix::files::*;
pub use super::unix::places::*;
pub use super::unix::run::*;
pub use super::unix::terminal::*;

/// Whether standard input is missing or is `/dev/null`. macOS has no
/// `/proc` to ask: standard input counts as given.
pub fn stdin_is_absent() -> bool {
    false
}
