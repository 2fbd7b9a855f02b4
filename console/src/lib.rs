//! The technician's console: connects to an agent through the relay, shows
//! diagnostics and findings, runs approved scripts and writes the report.
#![forbid(unsafe_code)]

pub mod catalog_tool;
