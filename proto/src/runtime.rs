//! The async runtime a session runs on, on the agent's side and the
//! console's alike.
//!
//! One thread. A session is a few QUIC connections with a few messages in
//! flight; on a multi-threaded runtime each datagram that arrives is read on
//! one worker and its reader woken on another, and that hand-off between
//! threads cost more than the work itself: session set-up took about a
//! millisecond longer on each side. Work that blocks (the audit log's disk
//! writes, reading a file, waiting for the person's keyboard) already runs
//! on blocking threads or threads of its own.

use tokio::runtime::{Builder, Runtime};

/// A single-threaded runtime with I/O and timers, for one session.
pub fn session() -> std::io::Result<Runtime> {
    Builder::new_current_thread().enable_all().build()
}
