//! What the three Sprijin programs share on the command line, so each
//! `main.rs` only declares its arguments and calls its library:
//!
//! - `log`: the `--log-format` flag and the tracing set-up (text or one JSON
//!   object per line, on stderr, filtered by `RUST_LOG`);
//! - `exit`: how a program's result becomes its exit status, with an error
//!   printed as one clean line;
//! - `config_file`: reading a TOML config file whose keys are named like the
//!   program's flags, with errors that name the file, the line and the key;
//! - `pages`: shell completions and man pages generated from the clap
//!   definitions.
//!
//! It is a crate of its own rather than a module of `sprijin-proto`, because
//! the protocol library stays free of clap and of the logging set-up, which
//! only programs need.
#![forbid(unsafe_code)]

pub mod config_file;
pub mod exit;
pub mod log;
pub mod pages;

pub use exit::{exit, exit_with};
pub use log::{LogArgs, LogFormat};
