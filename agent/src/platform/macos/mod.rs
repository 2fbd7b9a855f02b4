//! The agent on macOS.

mod open;

pub use open::open_no_follow;
