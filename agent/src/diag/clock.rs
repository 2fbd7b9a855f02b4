//! This machine's clock against the relay's. The relay tells its time
//! when it hands out a code: the waiting ticket says when the code expires
//! (Unix seconds, by the relay's clock) and the answer says how many
//! seconds that is from now, so the relay's "now" is their difference. It
//! is good to a second or two (whole seconds, and the answer's travel
//! time), which is plenty to see a clock minutes off.
//!
//! The comparison is a fact about this process's machine, learnt where the
//! relay answers (`crate::relays`) and read where snapshots are made, so it
//! is kept once for the process: [`record`] and [`latest`].

use std::sync::Mutex;
use std::time::SystemTime;

use sprijin_proto::message::diag::RelayClock;

/// The relay's clock as its answer tells it: `expires_at` (Unix seconds)
/// less `expires_in_secs`; `None` when the two cannot both be true.
pub fn relay_now_secs(expires_at: u64, expires_in_secs: u64) -> Option<u64> {
    expires_at.checked_sub(expires_in_secs)
}

/// This clock (`local_now_secs`, Unix seconds) less the relay's.
pub fn offset_secs(local_now_secs: u64, relay_now_secs: u64) -> i64 {
    let diff = i128::from(local_now_secs) - i128::from(relay_now_secs);
    i64::try_from(diff).unwrap_or(if diff > 0 { i64::MAX } else { i64::MIN })
}

/// The comparison for `relay` from a code's expiry as the relay gave it,
/// with this clock read now.
pub fn compare(relay: &str, expires_at: u64, expires_in_secs: u64) -> Option<RelayClock> {
    let relay_now = relay_now_secs(expires_at, expires_in_secs)?;
    // A clock before 1970 is as far off as it gets; 0 says so.
    let local = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Some(RelayClock {
        offset_secs: offset_secs(local, relay_now),
        relay: relay.to_string(),
    })
}

/// The latest comparison this process made.
static LATEST: Mutex<Option<RelayClock>> = Mutex::new(None);

/// Keeps `clock` as the latest comparison.
pub fn record(clock: RelayClock) {
    *LATEST.lock().unwrap_or_else(|e| e.into_inner()) = Some(clock);
}

/// The latest comparison; `None` before any relay answered.
pub fn latest() -> Option<RelayClock> {
    LATEST.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relays_now_is_the_expiry_less_the_time_left() {
        assert_eq!(relay_now_secs(1_800_000_600, 600), Some(1_800_000_000));
        assert_eq!(relay_now_secs(10, 600), None);
    }

    #[test]
    fn the_offset_says_which_clock_is_ahead() {
        assert_eq!(offset_secs(1_800_000_400, 1_800_000_000), 400);
        assert_eq!(offset_secs(1_800_000_000, 1_800_000_400), -400);
        assert_eq!(offset_secs(0, u64::MAX), i64::MIN);
    }

    #[test]
    fn a_relay_with_our_time_shows_no_offset() {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let c = compare("r:7420", now + 600, 600).unwrap();
        assert!(c.offset_secs.abs() <= 2, "{c:?}");
        assert_eq!(c.relay, "r:7420");
        assert_eq!(compare("r:7420", 5, 600), None);
    }
}
