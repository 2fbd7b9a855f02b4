//! What can go wrong while sampling and reporting diagnostics.

use thiserror::Error;

/// Failures of the diagnostics module. Readings that are merely missing
/// (no sensors, no swap, an unreadable process) are not errors: they show
/// up as empty or zero fields in the snapshot.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DiagError {
    /// The operating system refused a thread for the background sampler.
    #[error(
        "could not start the diagnostics sampler thread: {0}; free some system resources and try again"
    )]
    SpawnSampler(#[source] std::io::Error),

    /// The sampler thread ended before its first snapshot, so none will come.
    #[error("the diagnostics sampler stopped before its first snapshot; restart the agent")]
    SamplerStopped,

    /// The system gave no CPU or memory figures at all, so any report would
    /// be made up.
    #[error(
        "could not read this machine's cpu and memory figures; check that the system's process information (/proc on linux) is mounted and readable"
    )]
    NothingRead,

    /// The snapshot could not be written as JSON.
    #[error("could not encode the diagnostics as json: {0}; report this as a bug")]
    Json(#[source] serde_json::Error),
}
