//! Instants in a scenario: RFC 3339, or relative to the mock's start.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// An instant in a scenario. In TOML: RFC 3339 (`"2026-11-18T10:00:00Z"`), or
/// relative to the mock's start: `"now"`, `"-10d"`, `"-2h"`, `"-90m"`,
/// `"-30s"`, `"-1d12h"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimeSpec {
    /// The instant the mock starts.
    #[default]
    Now,
    /// Offset from the mock's start (negative = in the past).
    Relative(TimeDelta),
    /// A fixed instant.
    At(DateTime<Utc>),
}

impl TimeSpec {
    /// `delta` before the mock's start, for code callers.
    pub fn ago(delta: TimeDelta) -> TimeSpec {
        TimeSpec::Relative(-delta)
    }

    pub fn resolve(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            TimeSpec::Now => start,
            TimeSpec::Relative(d) => start.checked_add_signed(*d).unwrap_or(start),
            TimeSpec::At(t) => *t,
        }
    }

    /// Parses the TOML string form.
    pub fn parse(s: &str) -> Result<TimeSpec, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("now") {
            return Ok(TimeSpec::Now);
        }
        if let Some(rest) = t.strip_prefix('-').or_else(|| t.strip_prefix('+')) {
            let negative = t.starts_with('-');
            let d = parse_duration(rest).map_err(|e| format!("time '{s}': {e}"))?;
            return Ok(TimeSpec::Relative(if negative { -d } else { d }));
        }
        match DateTime::parse_from_rfc3339(t) {
            Ok(dt) => Ok(TimeSpec::At(dt.with_timezone(&Utc))),
            Err(_) => Err(format!(
                "time '{s}' is neither RFC 3339 (\"2026-11-18T10:00:00Z\") nor relative to start \
                 (\"now\", \"-10d\", \"-2h\", \"-90m\", \"-30s\", \"-1d12h\")"
            )),
        }
    }
}

impl fmt::Display for TimeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeSpec::Now => f.write_str("now"),
            TimeSpec::Relative(d) => {
                let secs = d.num_seconds();
                write!(
                    f,
                    "{}{}s",
                    if secs < 0 { "-" } else { "+" },
                    secs.unsigned_abs()
                )
            }
            TimeSpec::At(t) => f.write_str(&t.to_rfc3339()),
        }
    }
}

/// `1d12h`, `90m`, `30s`: one or more number+unit pairs.
fn parse_duration(s: &str) -> Result<TimeDelta, String> {
    let mut total: i64 = 0;
    let mut digits = String::new();
    let mut any = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if c.is_whitespace() && digits.is_empty() {
            continue;
        }
        let unit: i64 = match c.to_ascii_lowercase() {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            other => return Err(format!("unknown unit '{other}' (use d, h, m or s)")),
        };
        if digits.is_empty() {
            return Err(format!("unit '{c}' without a number before it"));
        }
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("number '{digits}' is too large"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "duration is too large".to_string())?;
        digits.clear();
        any = true;
    }
    if !digits.is_empty() {
        return Err(format!("number '{digits}' has no unit (use d, h, m or s)"));
    }
    if !any {
        return Err("empty duration".to_string());
    }
    // Keep resolved instants far inside chrono's range.
    if total > 100 * 365 * 86_400 {
        return Err("duration longer than 100 years".to_string());
    }
    TimeDelta::try_seconds(total).ok_or_else(|| "duration is too large".to_string())
}

impl<'de> Deserialize<'de> for TimeSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TimeSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a time: RFC 3339 or relative to start like \"now\", \"-10d\", \"-1d12h\"",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TimeSpec, E> {
                TimeSpec::parse(v).map_err(E::custom)
            }
            // An unquoted TOML datetime arrives as a one-entry map holding its
            // text form; accept it so that `at = 2026-11-18T10:00:00Z` works.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TimeSpec, A::Error> {
                let mut found = None;
                while let Some((_, v)) = map.next_entry::<String, String>()? {
                    found = Some(v);
                }
                match found {
                    Some(v) => TimeSpec::parse(&v).map_err(de::Error::custom),
                    None => Err(de::Error::custom("empty time value")),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_spec_forms() {
        let start: DateTime<Utc> = "2026-11-20T12:00:00Z".parse().unwrap();
        assert_eq!(TimeSpec::parse("now").unwrap().resolve(start), start);
        assert_eq!(
            TimeSpec::parse("-10d").unwrap().resolve(start),
            "2026-11-10T12:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            TimeSpec::parse("-1d12h").unwrap().resolve(start),
            "2026-11-19T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            TimeSpec::parse("-90m").unwrap().resolve(start),
            "2026-11-20T10:30:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            TimeSpec::parse("-30s").unwrap().resolve(start),
            "2026-11-20T11:59:30Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            TimeSpec::parse("+2h").unwrap().resolve(start),
            "2026-11-20T14:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            TimeSpec::parse("2026-11-18T10:00:00Z").unwrap(),
            TimeSpec::At("2026-11-18T10:00:00Z".parse().unwrap())
        );
        assert_eq!(
            TimeSpec::parse("2026-11-18T11:00:00+01:00").unwrap(),
            TimeSpec::At("2026-11-18T10:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn time_spec_errors() {
        for bad in [
            "",
            "-",
            "-10",
            "-10x",
            "10d",
            "-d",
            "yesterday",
            "-99999999999999999999d",
        ] {
            assert!(TimeSpec::parse(bad).is_err(), "{bad} should fail");
        }
    }
}
