//! Diagnostics: background sampling, findings rules and the local report.
//!
//! Data flows one way: [`collect`] reads the system through `sysinfo` into a
//! plain [`Snapshot`], with [`redact`] hiding likely secrets in process
//! command lines and the platform's diagnostics source
//! (`crate::platform::diag`) adding what `sysinfo` does not read (on Linux
//! files deleted but held open, open-file limits, routes, the kernel log;
//! on Windows CPU time, routes, services, a pending restart); [`windows`]
//! holds the pure half of the Windows source, compiled and tested
//! everywhere; [`folders`] measures folders that commonly fill a disk;
//! [`sampler`] does that on a thread every couple of seconds so a snapshot
//! is always ready, and runs the slow checks of [`probes`] (name
//! resolution, failed services, the clock) on a thread of their own;
//! [`watch`] takes one light reading a second and keeps what changed over
//! the last minutes (restart loops, disks filling, stalls, group limits,
//! the package manager); [`findings`] turns a snapshot into
//! [`Finding`]s with plain rules; [`report`] puts the two together for
//! `sprijin-agent diag`, and the session sends the same [`DiagReport`] to the
//! console. Rendering for people lives in `sprijin_proto::diag_text`, shared
//! with the console. [`clock`] compares this machine's clock with the
//! relay's, from what the relay said when it handed out the code.

pub mod clock;
pub mod collect;
pub mod error;
pub mod findings;
pub mod folders;
pub mod probes;
pub mod redact;
pub mod report;
pub mod sampler;
pub mod stuck;
pub mod watch;
pub mod windows;

pub use collect::Collector;
pub use error::DiagError;
pub use findings::{Thresholds, evaluate};
pub use report::{local_report, report_for, take_report};
pub use sampler::{DEFAULT_INTERVAL, Sampler};
pub use sprijin_proto::message::diag::{DiagReport, Finding, Severity, Snapshot};
