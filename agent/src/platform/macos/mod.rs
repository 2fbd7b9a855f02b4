//! The agent on macOS.

pub mod diag;
mod open;

pub use open::open_no_follow;
