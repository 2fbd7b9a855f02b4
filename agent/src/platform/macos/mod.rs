//! The agent on macOS.

pub mod diag;
