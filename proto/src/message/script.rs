//! How a script run ends, as both sides see it.
//!
//! The agent's runner streams a run's output as chunks tagged with an
//! [`OutStream`], and when the run is over it sends one [`RunEnd`]: how the
//! program ended ([`RunStatus`]), how long it took, how much output it
//! produced, how much of that was dropped by the output cap, and a digest of
//! what was forwarded. The console shows the status through its `Display`
//! and can check the digest against the chunks it received; the agent writes
//! the same facts into its audit log.
//!
//! These types travel in bincode's serde mode and are printed as JSON, so
//! they use plain derives only: attributes such as `flatten`, `untagged` or
//! `skip_serializing_if` do not survive a non-self-describing format.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which of the program's output pipes a chunk came from.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutStream {
    Stdout,
    Stderr,
}

impl fmt::Display for OutStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutStream::Stdout => "stdout",
            OutStream::Stderr => "stderr",
        })
    }
}

/// How a run ended.
///
/// `TimedOut` and `Cancelled` take precedence over the signal the program
/// died of: the agent sent that signal itself, so reporting it as
/// `Signalled` would hide the reason.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    /// The program exited by itself with this status.
    Exited { code: i32 },
    /// The program was killed by a signal the agent did not send.
    Signalled { signal: i32 },
    /// The run exceeded its time limit; the agent stopped its process group.
    TimedOut { after_secs: u64 },
    /// The technician or the person cancelled the run; the agent stopped its
    /// process group.
    Cancelled,
    /// The program never ran. `reason` is one line for people and names the
    /// program, e.g. "resolvectl is not installed on this machine (not found
    /// in PATH)".
    FailedToStart { reason: String },
    /// The program ran and ended, but the agent could not read how (the
    /// operating system refused to report its exit status).
    Unknown { reason: String },
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunStatus::Exited { code } => write!(f, "exited with status {code}"),
            RunStatus::Signalled { signal } => write!(f, "killed by signal {signal}"),
            RunStatus::TimedOut { after_secs } => {
                write!(f, "timed out after {after_secs} s and was stopped")
            }
            RunStatus::Cancelled => f.write_str("cancelled"),
            RunStatus::FailedToStart { reason } => write!(f, "could not start: {reason}"),
            RunStatus::Unknown { reason } => {
                write!(f, "ended, but its exit status could not be read: {reason}")
            }
        }
    }
}

/// The summary sent once when a run is over.
///
/// Byte accounting: `bytes` counts everything the program wrote to stdout
/// and stderr; the first `bytes - dropped` of those (in arrival order) were
/// forwarded, the rest went over the output cap and were only counted.
///
/// `output_sha256` covers exactly the forwarded bytes, in the order they
/// were forwarded (stdout and stderr chunks interleaved as they arrived).
/// Dropped bytes are left out on purpose: nobody keeps a copy of them, so a
/// digest over them could never be checked, while a digest over the
/// forwarded bytes lets the console confirm that what it received and what
/// the agent recorded in its audit log are the same.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RunEnd {
    pub status: RunStatus,
    /// Wall time from start to end of the run, in milliseconds.
    pub duration_ms: u64,
    /// Output bytes the program produced, forwarded or not.
    pub bytes: u64,
    /// Output bytes produced beyond the cap and therefore not forwarded.
    pub dropped: u64,
    /// Lower-case hex SHA-256 of the forwarded output bytes.
    pub output_sha256: String,
}

impl RunEnd {
    /// Whether the program ran and exited with status 0.
    pub fn success(&self) -> bool {
        self.status == RunStatus::Exited { code: 0 }
    }

    /// How many output bytes were forwarded.
    pub fn forwarded(&self) -> u64 {
        self.bytes.saturating_sub(self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(status: RunStatus) -> RunEnd {
        RunEnd {
            status,
            duration_ms: 12,
            bytes: 10,
            dropped: 4,
            output_sha256: "ab".repeat(32),
        }
    }

    #[test]
    fn status_reads_as_a_sentence() {
        let cases = [
            (RunStatus::Exited { code: 0 }, "exited with status 0"),
            (RunStatus::Exited { code: 3 }, "exited with status 3"),
            (RunStatus::Signalled { signal: 9 }, "killed by signal 9"),
            (
                RunStatus::TimedOut { after_secs: 30 },
                "timed out after 30 s and was stopped",
            ),
            (RunStatus::Cancelled, "cancelled"),
            (
                RunStatus::FailedToStart {
                    reason: "resolvectl is not installed on this machine".into(),
                },
                "could not start: resolvectl is not installed on this machine",
            ),
            (
                RunStatus::Unknown {
                    reason: "no child processes".into(),
                },
                "ended, but its exit status could not be read: no child processes",
            ),
        ];
        for (status, text) in cases {
            assert_eq!(status.to_string(), text);
        }
    }

    #[test]
    fn only_exit_status_zero_is_success() {
        assert!(end(RunStatus::Exited { code: 0 }).success());
        assert!(!end(RunStatus::Exited { code: 1 }).success());
        assert!(!end(RunStatus::Signalled { signal: 15 }).success());
        assert!(!end(RunStatus::TimedOut { after_secs: 1 }).success());
        assert!(!end(RunStatus::Cancelled).success());
        assert!(!end(RunStatus::FailedToStart { reason: "x".into() }).success());
        assert!(!end(RunStatus::Unknown { reason: "x".into() }).success());
    }

    #[test]
    fn forwarded_is_produced_minus_dropped() {
        assert_eq!(end(RunStatus::Cancelled).forwarded(), 6);
    }

    #[test]
    fn run_end_survives_bincode() {
        let config = bincode::config::standard();
        for status in [
            RunStatus::Exited { code: -1 },
            RunStatus::Signalled { signal: 9 },
            RunStatus::TimedOut { after_secs: 30 },
            RunStatus::Cancelled,
            RunStatus::FailedToStart {
                reason: "nope".into(),
            },
            RunStatus::Unknown {
                reason: "gone".into(),
            },
        ] {
            let original = end(status);
            let bytes = bincode::serde::encode_to_vec(&original, config).expect("encode");
            let (decoded, used): (RunEnd, usize) =
                bincode::serde::decode_from_slice(&bytes, config).expect("decode");
            assert_eq!(used, bytes.len());
            assert_eq!(decoded, original);
        }
        let bytes = bincode::serde::encode_to_vec(OutStream::Stderr, config).expect("encode");
        let (decoded, _): (OutStream, usize) =
            bincode::serde::decode_from_slice(&bytes, config).expect("decode");
        assert_eq!(decoded, OutStream::Stderr);
    }
}
