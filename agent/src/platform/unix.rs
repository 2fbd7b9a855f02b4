//! What Linux and macOS do the same way.
