//! Processes stuck in uninterruptible sleep: how long each has been seen
//! so without a break. The state comes from the process table (`sysinfo`
//! reports it where the system has it, on Linux); the tracking is the same
//! everywhere.

use std::collections::HashMap;

/// How many stuck processes a snapshot lists at most.
pub const MAX_STUCK: usize = 10;

/// Tracks since when each process has been in uninterruptible sleep.
#[derive(Debug, Default)]
pub struct StuckTracker {
    since_ms: HashMap<u32, u64>,
}

impl StuckTracker {
    /// Records the processes in state D now; returns each with how long it
    /// has been seen so without a break.
    pub fn update(&mut self, now_ms: u64, in_d: &[u32]) -> Vec<(u32, u64)> {
        self.since_ms.retain(|pid, _| in_d.contains(pid));
        in_d.iter()
            .map(|&pid| {
                let since = *self.since_ms.entry(pid).or_insert(now_ms);
                (pid, now_ms.saturating_sub(since) / 1000)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_time_restarts_after_a_break() {
        let mut t = StuckTracker::default();
        assert_eq!(t.update(1_000, &[7]), [(7, 0)]);
        assert_eq!(t.update(61_000, &[7]), [(7, 60)]);
        assert_eq!(t.update(62_000, &[]), []);
        assert_eq!(t.update(63_000, &[7]), [(7, 0)]);
    }
}
