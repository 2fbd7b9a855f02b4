//! The agent on Windows.
