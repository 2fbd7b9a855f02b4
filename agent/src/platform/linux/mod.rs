//! The agent on Linux.

pub mod diag;
mod procfs;
mod open;

pub use open::open_no_follow;
