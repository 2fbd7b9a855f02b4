//! The agent on Linux.
