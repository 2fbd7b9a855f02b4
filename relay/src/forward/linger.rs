//! Whether the forwarder keeps reading its socket for a moment after a
//! forwarded datagram instead of sleeping until the next one.
//!
//! A sleeping forwarder is woken by the system for each datagram, which on
//! a virtual machine costs tens of microseconds of the round trip: more than
//! the forwarding itself. Interactive sessions (a command and its answer,
//! a snapshot and the next request) send one datagram and wait for the
//! reply, so after forwarding one the forwarder reads again for
//! [`LINGER`], yielding its core to anything else that can run between
//! reads. During a bulk transfer datagrams arrive faster than it forwards
//! them and it seldom sleeps anyway; there the lingering would only take
//! time from the two ends on the same machine, so while the last
//! millisecond carried more than [`BULK_BYTES`] it sleeps as before.

use std::time::{Duration, Instant};

/// How long the forwarder reads on after forwarding.
pub const LINGER: Duration = Duration::from_micros(50);

/// The window the forwarded bytes are counted over.
const WINDOW: Duration = Duration::from_millis(1);

/// Bytes forwarded in one [`WINDOW`] from which traffic is bulk (64 MB/s).
const BULK_BYTES: u64 = 64 * 1024;

/// The longest the forwarder reads on without giving way to the other
/// tasks on its thread (the control endpoint), should small datagrams keep
/// coming.
const GIVE_WAY_EVERY: Duration = Duration::from_millis(1);

/// Counts forwarded bytes and says until when to read on.
pub struct Linger {
    window_start: Instant,
    window_bytes: u64,
    bulk: bool,
    until: Option<Instant>,
    /// When the forwarder last slept or gave way.
    since_yield: Instant,
}

impl Linger {
    pub fn new(now: Instant) -> Linger {
        Linger {
            window_start: now,
            window_bytes: 0,
            bulk: false,
            until: None,
            since_yield: now,
        }
    }

    /// A batch that forwarded `bytes` ended at `now`.
    pub fn forwarded(&mut self, bytes: u64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= WINDOW {
            // A window that ended long ago says nothing about now.
            self.bulk = elapsed < 2 * WINDOW && self.window_bytes >= BULK_BYTES;
            self.window_start = now;
            self.window_bytes = 0;
        }
        self.window_bytes += bytes;
        self.until = (bytes > 0 && !self.bulk).then(|| now + LINGER);
    }

    /// Whether to read again at once rather than wait to be woken.
    pub fn reading_on(&mut self, now: Instant) -> bool {
        match self.until {
            Some(until) if now < until => true,
            _ => {
                self.until = None;
                self.since_yield = now;
                false
            }
        }
    }

    /// Whether the forwarder, reading on, has not given way for so long
    /// that it must now.
    pub fn give_way(&mut self, now: Instant) -> bool {
        let due = now.saturating_duration_since(self.since_yield) >= GIVE_WAY_EVERY;
        if due {
            self.since_yield = now;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_datagram_forwarded_reads_on_for_a_moment() {
        let start = Instant::now();
        let mut linger = Linger::new(start);
        assert!(!linger.reading_on(start));
        linger.forwarded(100, start);
        assert!(linger.reading_on(start + LINGER / 2));
        assert!(!linger.reading_on(start + LINGER));
        assert!(!linger.reading_on(start + LINGER / 2), "it stopped");
    }

    #[test]
    fn reading_on_without_end_gives_way_every_millisecond() {
        let start = Instant::now();
        let mut linger = Linger::new(start);
        let mut at = start;
        let mut gave_way = 0;
        // A small datagram every 20 µs for 10 ms: never bulk, never asleep.
        for _ in 0..500 {
            linger.forwarded(100, at);
            at += Duration::from_micros(20);
            assert!(linger.reading_on(at));
            if linger.give_way(at) {
                gave_way += 1;
            }
        }
        assert!((9..=10).contains(&gave_way), "{gave_way}");
    }

    #[test]
    fn nothing_forwarded_sleeps() {
        let start = Instant::now();
        let mut linger = Linger::new(start);
        linger.forwarded(0, start);
        assert!(!linger.reading_on(start));
    }

    #[test]
    fn bulk_traffic_sleeps_and_interactive_traffic_after_it_reads_on() {
        let start = Instant::now();
        let mut linger = Linger::new(start);
        let step = Duration::from_micros(50);
        let mut at = start;
        // 32 KiB every 50 µs: 640 KiB a millisecond.
        for _ in 0..40 {
            linger.forwarded(32 * 1024, at);
            at += step;
        }
        assert!(!linger.reading_on(at - step), "bulk: no reading on");
        // Then one small datagram after a pause.
        at += Duration::from_millis(5);
        linger.forwarded(200, at);
        assert!(linger.reading_on(at));
    }

    #[test]
    fn a_quick_exchange_of_small_datagrams_reads_on() {
        let start = Instant::now();
        let mut linger = Linger::new(start);
        let mut at = start;
        // A 1 KiB message every 70 µs, back and forth: 14 KiB a millisecond.
        for _ in 0..100 {
            linger.forwarded(1024, at);
            assert!(linger.reading_on(at));
            at += Duration::from_micros(70);
        }
    }
}
