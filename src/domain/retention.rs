//! A database's backup retention, as pitr carries it from the original to
//! the restored database: Azure gives a restored database its defaults (7
//! days of point-in-time backups, no long-term copies), not its source's.
use serde::{Deserialize, Serialize};
use std::fmt;

/// Short-term retention: how far back a point-in-time restore can go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortTerm {
    pub days: u32,
    /// Differential backups every 12 or 24 hours (unknown: Azure did not say).
    #[serde(default)]
    pub diff_hours: Option<u32>,
}

impl ShortTerm {
    /// The restored database keeps what the original kept. A differential
    /// interval the original did not report is not compared.
    pub fn is_kept_by(&self, restored: &ShortTerm) -> bool {
        self.days == restored.days
            && (self.diff_hours.is_none() || self.diff_hours == restored.diff_hours)
    }
}

impl fmt::Display for ShortTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} days", self.days)?;
        if let Some(h) = self.diff_hours {
            write!(f, " with differential backups every {h} hours")?;
        }
        Ok(())
    }
}

/// `PT0S`: no copies of that kind are kept.
pub const NONE: &str = "PT0S";

/// Long-term retention: ISO 8601 durations (`PT0S`: none) and the week of
/// the year whose backup is kept as the yearly copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongTerm {
    pub weekly: String,
    pub monthly: String,
    pub yearly: String,
    #[serde(default)]
    pub week_of_year: u32,
}

impl LongTerm {
    /// From what Azure reports, an absent duration meaning none.
    pub fn new(
        weekly: Option<&str>,
        monthly: Option<&str>,
        yearly: Option<&str>,
        week_of_year: Option<u32>,
    ) -> Self {
        let d = |v: Option<&str>| match v {
            Some(v) if !v.is_empty() => v.to_string(),
            _ => NONE.to_string(),
        };
        Self {
            weekly: d(weekly),
            monthly: d(monthly),
            yearly: d(yearly),
            week_of_year: week_of_year.unwrap_or(0),
        }
    }

    /// No long-term copies of any kind.
    pub fn is_none(&self) -> bool {
        [&self.weekly, &self.monthly, &self.yearly]
            .iter()
            .all(|d| d.eq_ignore_ascii_case(NONE))
    }

    /// The restored database keeps the same copies. The week of the year
    /// matters only with a yearly copy (Azure reports 0 otherwise).
    pub fn is_kept_by(&self, restored: &LongTerm) -> bool {
        let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        same(&self.weekly, &restored.weekly)
            && same(&self.monthly, &restored.monthly)
            && same(&self.yearly, &restored.yearly)
            && (self.yearly.eq_ignore_ascii_case(NONE)
                || self.week_of_year == restored.week_of_year)
    }
}

impl fmt::Display for LongTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("no long-term copies");
        }
        let mut parts = Vec::new();
        for (what, d) in [
            ("weekly", &self.weekly),
            ("monthly", &self.monthly),
            ("yearly", &self.yearly),
        ] {
            if !d.eq_ignore_ascii_case(NONE) {
                parts.push(format!("{what} {d}"));
            }
        }
        f.write_str(&parts.join(", "))?;
        if !self.yearly.eq_ignore_ascii_case(NONE) {
            write!(f, " (yearly from week {})", self.week_of_year)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_term_compares_days_and_a_known_interval() {
        let orig = ShortTerm {
            days: 21,
            diff_hours: Some(24),
        };
        assert!(orig.is_kept_by(&orig.clone()));
        assert!(!orig.is_kept_by(&ShortTerm {
            days: 7,
            diff_hours: Some(24)
        }));
        assert!(!orig.is_kept_by(&ShortTerm {
            days: 21,
            diff_hours: Some(12)
        }));
        let unknown = ShortTerm {
            days: 21,
            diff_hours: None,
        };
        assert!(unknown.is_kept_by(&orig));
        assert_eq!(
            orig.to_string(),
            "21 days with differential backups every 24 hours"
        );
        assert_eq!(unknown.to_string(), "21 days");
    }

    #[test]
    fn long_term_compares_every_copy_and_the_week_only_with_a_yearly_one() {
        let orig = LongTerm::new(Some("P12W"), Some("P6M"), Some("P5Y"), Some(16));
        assert!(orig.is_kept_by(&orig.clone()));
        let none = LongTerm::new(None, Some(""), Some("PT0S"), None);
        assert!(none.is_none());
        assert!(!orig.is_none());
        assert!(!orig.is_kept_by(&none));
        assert!(none.is_kept_by(&LongTerm::new(None, None, None, Some(3))));
        for other in [
            LongTerm::new(Some("P11W"), Some("P6M"), Some("P5Y"), Some(16)),
            LongTerm::new(Some("P12W"), Some("P7M"), Some("P5Y"), Some(16)),
            LongTerm::new(Some("P12W"), Some("P6M"), Some("P4Y"), Some(16)),
            LongTerm::new(Some("P12W"), Some("P6M"), Some("P5Y"), Some(17)),
        ] {
            assert!(!orig.is_kept_by(&other), "{other}");
        }
        assert!(orig.is_kept_by(&LongTerm::new(
            Some("p12w"),
            Some("P6M"),
            Some("P5Y"),
            Some(16)
        )));
        let weekly = LongTerm::new(Some("P4W"), None, None, None);
        assert!(!weekly.is_none());
        assert_eq!(weekly.to_string(), "weekly P4W");
        assert_eq!(
            orig.to_string(),
            "weekly P12W, monthly P6M, yearly P5Y (yearly from week 16)"
        );
        assert_eq!(none.to_string(), "no long-term copies");
    }
}

/// Database properties a point-in-time restore does not take from its
/// source unless its PUT names them: pitr sends the original's and
/// `verify` checks them. (ARM property, what people call it.)
pub const CARRIED_PROPERTIES: &[(&str, &str)] = &[
    ("maxSizeBytes", "max size"),
    ("licenseType", "license type"),
    ("maintenanceConfigurationId", "maintenance window"),
    ("highAvailabilityReplicaCount", "high-availability replicas"),
    ("autoPauseDelay", "auto-pause delay"),
    ("minCapacity", "minimum capacity"),
];

/// A property's value as a message shows it (`none` when absent).
fn shown(v: Option<&serde_json::Value>) -> String {
    use serde_json::Value;
    match v {
        None | Some(Value::Null) => "none".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The first carried property the live database does not keep: (what
/// people call it, the original's value, the live one; `none` when absent).
/// Strings compare without case, as ARM does.
pub fn first_difference(
    original: &std::collections::BTreeMap<String, serde_json::Value>,
    live: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Option<(&'static str, String, String)> {
    use serde_json::Value;
    let same = |a: &Value, b: Option<&Value>| match (a, b) {
        (Value::String(x), Some(Value::String(y))) => x.eq_ignore_ascii_case(y),
        (Value::Number(x), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (x, Some(y)) => x == y,
        (_, None) => false,
    };
    CARRIED_PROPERTIES.iter().find_map(|(key, name)| {
        let orig = original.get(*key).filter(|v| !v.is_null())?;
        let now = live.get(*key).filter(|v| !v.is_null());
        (!same(orig, now)).then(|| (*name, shown(Some(orig)), shown(now)))
    })
}

#[cfg(test)]
mod carried_tests {
    use super::*;
    use serde_json::{json, Value};
    use std::collections::BTreeMap;

    fn map(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn every_carried_property_is_compared_and_named() {
        let orig = map(json!({
            "maxSizeBytes": 107374182400u64,
            "licenseType": "BasePrice",
            "maintenanceConfigurationId": "/subscriptions/s/providers/Microsoft.Maintenance/publicMaintenanceConfigurations/SQL_WestEurope_DB_1",
            "highAvailabilityReplicaCount": 1,
            "autoPauseDelay": -1,
            "minCapacity": 1.5,
        }));
        assert_eq!(first_difference(&orig, &orig), None);
        // Case of strings and the form of numbers do not matter.
        let mut same = orig.clone();
        same.insert("licenseType".into(), json!("baseprice"));
        same.insert("minCapacity".into(), json!(1.50));
        assert_eq!(first_difference(&orig, &same), None);
        for (key, name) in CARRIED_PROPERTIES {
            let mut live = orig.clone();
            live.insert((*key).into(), json!("other"));
            let (n, o, l) = first_difference(&orig, &live).unwrap_or_else(|| panic!("{key}"));
            assert_eq!(n, *name);
            assert_eq!(l, "other");
            assert_eq!(o, shown(Some(&orig[*key])));
            live.remove(*key);
            assert_eq!(
                first_difference(&orig, &live).map(|d| d.2),
                Some("none".into()),
                "{key}"
            );
        }
        // What the original did not report is not compared.
        let only = map(json!({"licenseType": "LicenseIncluded"}));
        assert_eq!(
            first_difference(
                &only,
                &map(json!({"licenseType": "LicenseIncluded", "maxSizeBytes": 1}))
            ),
            None
        );
        assert_eq!(
            first_difference(&map(json!({"maxSizeBytes": null})), &map(json!({}))),
            None
        );
    }
}
