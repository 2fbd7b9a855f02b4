//! Times written out in UTC, for people and for logs. Every calendar
//! conversion outside the catalog's signature dates happens here, through
//! `humantime`.
//!
//! A time before 1970 reads as 1970 and a time past the year 9999 as its last
//! second, rather than failing: a wrong clock must not stop a record or a
//! report from being written.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last second that can be written: 9999-12-31T23:59:59Z.
pub const LATEST_SECOND: u64 = 253_402_300_799;

/// `at`, moved into the range that can be written.
fn writable(at: SystemTime) -> SystemTime {
    let latest = UNIX_EPOCH + Duration::new(LATEST_SECOND, 999_999_999);
    at.clamp(UNIX_EPOCH, latest)
}

/// RFC 3339 to the second: `2027-02-23T18:07:20Z`.
pub fn rfc3339_seconds(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(writable(at)).to_string()
}

/// RFC 3339 with milliseconds: `2026-03-01T09:30:00.123Z`.
pub fn rfc3339_millis(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(writable(at)).to_string()
}

/// Unix seconds as a date and time for a person: `2023-11-14 22:13:20 UTC`.
pub fn readable(unix_secs: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(unix_secs.min(LATEST_SECOND));
    let text = rfc3339_seconds(at);
    format!("{} UTC", text.trim_end_matches('Z').replacen('T', " ", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_millis(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    #[test]
    fn times_read_as_rfc3339_utc() {
        assert_eq!(
            rfc3339_seconds(at_millis(1_700_000_000_999)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(rfc3339_millis(at_millis(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(at_millis(951_782_400_005)),
            "2000-02-29T00:00:00.005Z"
        );
        assert_eq!(
            rfc3339_millis(at_millis(1_709_210_096_789)),
            "2024-02-29T12:34:56.789Z"
        );
        assert_eq!(
            rfc3339_millis(at_millis(4_102_444_799_999)),
            "2099-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn a_wrong_clock_still_gives_a_time() {
        assert_eq!(
            rfc3339_millis(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(readable(u64::MAX), "9999-12-31 23:59:59 UTC");
    }

    #[test]
    fn unix_times_read_as_utc_dates() {
        assert_eq!(readable(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(readable(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(readable(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(readable(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }
}
