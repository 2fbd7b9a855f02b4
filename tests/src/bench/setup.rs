//! Session set-up as the technician lives it, with the real programs: a
//! `sprijin-agent share` is waiting with its code (and the person's "y"
//! typed ahead), then `sprijin-console connect CODE --exec diag --exec quit
//! --json` starts; the time runs from starting the console to its first
//! `diag` event, the first snapshot shown. That covers the console's process
//! start, QUIC to the relay, the claim, the end-to-end handshake, the
//! person's consent and one diagnostics round trip.
//!
//! Between the agent's code and the console's start the person reads the
//! code out; [`READ_OUT`] stands for that, and gives the agent's sampler
//! time for its first snapshot, as it has in real use.

use std::time::{Duration, Instant};

use anyhow::bail;

use super::programs::{self, Agent, Relay};
use super::stats::Timings;
use crate::Proc;

/// The pause while the person reads the code to the technician.
pub const READ_OUT: Duration = Duration::from_millis(500);

/// How long one session may take from start to the end of both programs.
const SESSION: Duration = Duration::from_secs(30);

/// What the console prints with its first snapshot.
const FIRST_SNAPSHOT: &str = "\"event\":\"diag\"";

/// Times `sessions` set-ups one after another.
pub fn sessions(relay: &Relay, sessions: usize) -> anyhow::Result<Timings> {
    let mut timings = Timings::new();
    for i in 0..sessions {
        let mut agent = Agent::start(relay)?;
        std::thread::sleep(READ_OUT);
        let cmd = programs::console(relay, &agent.code, &["diag", "quit"])?;
        let start = Instant::now();
        let mut console = Proc::spawn(cmd);
        if console.stdout.wait_for(FIRST_SNAPSHOT, SESSION).is_none() {
            bail!(
                "session {i}: the console showed no snapshot: {} {}",
                console.stdout.text(),
                console.stderr.text()
            );
        }
        timings.record(start.elapsed());
        match console.wait(SESSION) {
            Some(status) if status.success() => {}
            other => bail!(
                "session {i}: the console did not end well ({other:?}): {}",
                console.stderr.text()
            ),
        }
        if agent.proc.wait(SESSION).is_none() {
            bail!("session {i}: the agent did not end after the session");
        }
    }
    Ok(timings)
}
