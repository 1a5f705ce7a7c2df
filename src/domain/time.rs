//! Instants as people type them: RFC 3339 with an offset, stored in UTC.
use chrono::{DateTime, Duration, SecondsFormat, Timelike, Utc};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstantError {
    #[error("'{0}' is not an RFC 3339 instant ({1}); write it like 2026-11-20T08:30:00Z or 2026-11-20T09:30:00+01:00")]
    Malformed(String, String),
    /// `:60` is only a leap second; Azure refuses it, so it never gets that far.
    #[error("'{0}' names second 60 (a leap second), which Azure does not accept; use :59 or the next minute")]
    LeapSecond(String),
}

/// Parses an RFC 3339 instant with an offset into UTC, refusing a leap second.
pub fn parse_instant(s: &str) -> Result<DateTime<Utc>, InstantError> {
    let t = DateTime::parse_from_rfc3339(s.trim())
        .map_err(|e| InstantError::Malformed(s.to_string(), e.to_string()))?;
    // chrono represents second 60 as a nanosecond count of a second or more.
    if t.nanosecond() >= 1_000_000_000 {
        return Err(InstantError::LeapSecond(s.to_string()));
    }
    Ok(t.with_timezone(&Utc))
}

/// An instant as a person can paste it back: RFC 3339 in UTC, with a
/// fraction only when it has one.
pub fn show(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A lower bound ("choose it or later"), rounded up to the second, so the
/// shown instant itself is allowed.
pub fn at_or_after(t: DateTime<Utc>) -> String {
    let whole = t.with_nanosecond(0).unwrap_or(t);
    let up = if whole < t {
        whole + Duration::seconds(1)
    } else {
        whole
    };
    up.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A lower bound that moves forward with the clock (24 hours from now, the
/// oldest instant retention still holds): shown on a whole five minutes at
/// least a minute later, so that it is still allowed when a person pastes
/// it back a little later.
pub fn ahead(t: DateTime<Utc>) -> String {
    let step = 300;
    let secs = t.timestamp() + i64::from(t.nanosecond() > 0);
    let mut up = secs.div_euclid(step) * step;
    if up < secs {
        up += step;
    }
    if up - t.timestamp() < 60 {
        up += step;
    }
    DateTime::from_timestamp(up, 0)
        .unwrap_or(t)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An upper bound ("no later than it"), rounded down to the second.
pub fn at_or_before(t: DateTime<Utc>) -> String {
    t.with_nanosecond(0)
        .unwrap_or(t)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_shown_in_the_users_favour() {
        let t = parse_instant("2026-11-26T03:32:50.196985067Z").unwrap();
        assert_eq!(at_or_after(t), "2026-11-26T03:32:51Z");
        assert_eq!(at_or_before(t), "2026-11-26T03:32:50Z");
        // A moving bound: the next whole five minutes, a minute ahead at least.
        assert_eq!(ahead(t), "2026-11-26T03:35:00Z");
        let close = parse_instant("2026-11-26T03:34:30Z").unwrap();
        assert_eq!(ahead(close), "2026-11-26T03:40:00Z");
        let on = parse_instant("2026-11-26T03:30:00Z").unwrap();
        assert_eq!(ahead(on), "2026-11-26T03:35:00Z");
        for s in [at_or_after(t), at_or_before(t), ahead(t)] {
            assert!(parse_instant(&s).is_ok(), "{s}");
        }
    }

    #[test]
    fn offsets_become_utc_and_leap_seconds_are_refused() {
        assert_eq!(
            parse_instant("2026-11-20T09:30:00+01:00").unwrap(),
            parse_instant("2026-11-20T08:30:00Z").unwrap()
        );
        assert!(matches!(
            parse_instant("2026-11-25T12:34:60Z"),
            Err(InstantError::LeapSecond(_))
        ));
        assert!(matches!(
            parse_instant("yesterday"),
            Err(InstantError::Malformed(..))
        ));
        assert!(
            parse_instant("2026-11-20T08:30:00").is_err(),
            "an offset is required"
        );
    }
}
