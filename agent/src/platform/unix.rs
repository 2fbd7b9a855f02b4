//! What Linux and macOS do the same way.

pub(super) mod open;
