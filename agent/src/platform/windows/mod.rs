//! The agent on Windows.

pub mod diag;

/// Nothing beyond the snapshots is watched here yet.
pub use crate::diag::watch::NothingToWatch as WatchReader;
mod diag_cpu;
mod diag_network;
mod diag_registry;
mod diag_services;
mod files;
mod open;
mod places;
mod run;
mod terminal;

pub use files::*;
pub use open::open_no_follow;
pub use places::*;
pub use run::*;
pub use terminal::*;
