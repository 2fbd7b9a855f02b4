//! The agent on macOS.
