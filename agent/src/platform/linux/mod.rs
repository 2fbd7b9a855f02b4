//! The agent on Linux.

pub mod diag;
mod procfs;
