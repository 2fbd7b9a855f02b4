//! The agent on Linux.

mod open;

pub use open::open_no_follow;
