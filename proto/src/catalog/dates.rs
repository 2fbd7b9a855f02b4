//! The dates in a catalog signature: when it was signed and when it expires.
//!
//! A date travels as RFC 3339 text in UTC to the second
//! (`2027-02-23T18:07:20Z`): one spelling per instant, so the signed bytes
//! are the same whoever formats them, and people read it at a glance. The
//! current time is always an argument, never read here, so every check is
//! tested with any clock.

use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::{CatalogError, shown};

/// How long a signature is valid when `catalog sign` is given no expiry.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// Longest `--expires` text looked at; anything longer is refused unread.
const MAX_EXPIRY_INPUT: usize = 64;

/// The canonical text of a time: RFC 3339, UTC, whole seconds.
pub fn format_time(at: SystemTime) -> String {
    let utc = OffsetDateTime::from(at);
    utc.replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        // Only a time past the year 9999 cannot be written this way; such a
        // time never comes out of [`parse_time`] or [`parse_expiry`].
        .unwrap_or_else(|| format!("{utc}"))
}

/// Reads a time written by [`format_time`]; any other spelling is refused,
/// so one instant has one text. The error says what is wrong with the text.
pub fn parse_time(text: &str) -> Result<SystemTime, String> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| format!("{} is not an RFC 3339 time", shown(text)))?;
    let at = SystemTime::from(parsed);
    if format_time(at) != text {
        return Err(format!(
            "{} is not written as UTC to the second (like 2027-02-23T18:07:20Z)",
            shown(text)
        ));
    }
    Ok(at)
}

/// Reads the expiry a person gave to `catalog sign --expires`: a date
/// `YYYY-MM-DD` (the signature expires at the start of that day, UTC) or an
/// RFC 3339 time with its offset. It must be later than `now`.
pub fn parse_expiry(input: &str, now: SystemTime) -> Result<SystemTime, CatalogError> {
    let invalid = |reason: &str| CatalogError::InvalidExpiry {
        input: input.to_owned(),
        reason: reason.to_owned(),
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(invalid("it is empty"));
    }
    if text.len() > MAX_EXPIRY_INPUT {
        return Err(invalid("it is far too long for a date"));
    }
    let is_date = text.len() == 10 && text.as_bytes().get(4) == Some(&b'-');
    let parsed = if is_date {
        OffsetDateTime::parse(&format!("{text}T00:00:00Z"), &Rfc3339)
    } else {
        OffsetDateTime::parse(text, &Rfc3339)
    };
    let expires = SystemTime::from(parsed.map_err(|_| {
        invalid(if is_date {
            "it is not a calendar date"
        } else {
            "it is neither a date YYYY-MM-DD nor an RFC 3339 time"
        })
    })?);
    if expires <= now {
        return Err(CatalogError::ExpiryInPast {
            input: input.to_owned(),
            expires,
            now,
        });
    }
    Ok(expires)
}

/// The expiry of a signature made at `now` without `--expires`.
pub fn default_expiry(now: SystemTime) -> SystemTime {
    now.checked_add(DEFAULT_VALIDITY).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    /// 2026-11-25T18:07:20Z.
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_630_040)
    }

    #[test]
    fn times_are_utc_to_the_second_and_read_back() {
        let text = format_time(now() + Duration::from_millis(999));
        assert_eq!(text, "2026-11-25T18:07:20Z");
        assert_eq!(parse_time(&text).unwrap(), now());
        for other in [
            "2026-11-25T18:07:20.5Z",
            "2026-11-25T19:07:20+01:00",
            "2026-11-25t18:07:20z",
            "2026-11-25 18:07:20Z",
            "2026-11-25",
            "",
        ] {
            assert!(parse_time(other).is_err(), "{other}");
        }
    }

    #[test]
    fn an_expiry_is_a_date_or_an_rfc3339_time() {
        let day = parse_expiry("2027-01-31", now()).unwrap();
        assert_eq!(format_time(day), "2027-01-31T00:00:00Z");
        let time = parse_expiry("2027-01-31T12:30:00+02:00", now()).unwrap();
        assert_eq!(format_time(time), "2027-01-31T10:30:00Z");
        let soon = parse_expiry(" 2026-11-25T18:07:21Z ", now()).unwrap();
        assert_eq!(soon, now() + Duration::from_secs(1));
    }

    #[test]
    fn a_past_or_unreadable_expiry_is_refused() {
        for past in ["2026-11-25", "2026-11-25T18:07:20Z", "1999-01-01"] {
            let err = parse_expiry(past, now()).unwrap_err();
            assert!(matches!(err, CatalogError::ExpiryInPast { .. }), "{past}");
            let message = err.to_string();
            assert!(
                message.contains("is in the past") && message.contains("2026-11-25T18:07:20Z"),
                "{message}"
            );
        }
        for bad in [
            "",
            "tomorrow",
            "2027-02-30",
            "2027-13-01",
            "27-01-01",
            "2027-01-01T25:00:00Z",
            "2027-01-01T00:00:00",
            "90d",
        ] {
            let err = parse_expiry(bad, now()).unwrap_err();
            assert!(matches!(err, CatalogError::InvalidExpiry { .. }), "{bad}");
            let message = err.to_string();
            assert!(message.contains("YYYY-MM-DD"), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn the_default_expiry_is_ninety_days_on() {
        assert_eq!(format_time(default_expiry(now())), "2027-02-23T18:07:20Z");
    }
}
