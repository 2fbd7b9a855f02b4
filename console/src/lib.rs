//! The technician's console: connects to an agent through the relay, shows
//! diagnostics and findings, runs approved scripts and writes the report.
//!
//! `session` holds the connection and routes answers to requests; `command`
//! parses what the technician types; `driver` runs commands and shows the
//! results; `output` shows a run's output, made safe for a terminal or exact
//! for `--json`; `report` keeps the session record and writes Markdown;
//! `connect` is the way in (`redirect` claims the code at the relay that
//! owns it; `config` is its config file, `cli` merges it
//! with the flags and holds the work behind each command line; the demo, in its
//! own package, uses `connect` too); `catalog_tool` is the catalog key and
//! signing tooling; `credential_tool` issues and loads technician
//! credentials.
#![forbid(unsafe_code)]

pub mod catalog_tool;
pub mod cli;
pub mod command;
pub mod config;
pub mod connect;
pub mod credential_tool;
pub mod driver;
pub mod fetch;
pub mod log;
pub mod output;
pub mod redirect;
pub mod report;
pub mod session;
pub mod ui;
