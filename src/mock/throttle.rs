//! ARM's request throttling, as documented for Azure Resource Manager: per
//! subscription and per client (the service principal or user a token was
//! issued to), one token bucket for reads (GET/HEAD), one for writes
//! (PUT/POST/PATCH) and one for deletes. Every request takes a token; an
//! empty bucket answers `429 TooManyRequests` with `Retry-After` (seconds
//! until a token is back). Every answer carries
//! `x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}` for the
//! bucket the request drew from.
//!
//! Azure SQL also caps the point-in-time restores a subscription runs at
//! once; the cap is checked when a restore PUT arrives ([`restore_cap_reply`]).
//!
//! Everything here runs under the state's lock, on the scenario's clock (the
//! `now` of the request), with no allocation per request beyond the map
//! entry of a new (subscription, client, class).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::Reply;

/// One bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BucketSpec {
    /// Tokens when full (ARM: reads 250, writes 200, deletes 200).
    pub capacity: u32,
    /// Tokens added per second (ARM: reads 25, writes 10, deletes 10).
    pub per_second: f64,
}

impl Default for BucketSpec {
    fn default() -> Self {
        BucketSpec {
            capacity: 250,
            per_second: 25.0,
        }
    }
}

/// `[settings.throttle]`: off unless `enabled`, so scenarios written before
/// it keep their behaviour; the sizes default to ARM's documented ones.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleSpec {
    pub enabled: bool,
    pub reads: BucketSpec,
    pub writes: BucketSpec,
    pub deletes: BucketSpec,
    /// Point-in-time restores a subscription may run at once (0: no cap).
    /// A restore PUT over the cap is refused with [`RESTORE_LIMIT_CODE`].
    pub max_concurrent_restores_per_subscription: u32,
}

impl Default for ThrottleSpec {
    fn default() -> Self {
        ThrottleSpec {
            enabled: false,
            reads: BucketSpec::default(),
            writes: BucketSpec {
                capacity: 200,
                per_second: 10.0,
            },
            deletes: BucketSpec {
                capacity: 200,
                per_second: 10.0,
            },
            max_concurrent_restores_per_subscription: 0,
        }
    }
}

impl ThrottleSpec {
    /// Names the first bad value, for the scenario's error.
    pub(crate) fn check(&self) -> Result<(), String> {
        for (name, b) in [
            ("reads", &self.reads),
            ("writes", &self.writes),
            ("deletes", &self.deletes),
        ] {
            if b.capacity == 0 {
                return Err(format!(
                    "settings.throttle.{name}.capacity = 0: a bucket holds at least one token"
                ));
            }
            if !(b.per_second.is_finite() && b.per_second > 0.0) {
                return Err(format!(
                    "settings.throttle.{name}.per_second = {}: give a positive refill rate",
                    b.per_second
                ));
            }
        }
        Ok(())
    }

    fn bucket(&self, class: Class) -> BucketSpec {
        match class {
            Class::Reads => self.reads,
            Class::Writes => self.writes,
            Class::Deletes => self.deletes,
        }
    }
}

/// Which bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Reads,
    Writes,
    Deletes,
}

impl Class {
    pub fn of(method: &str) -> Class {
        match method {
            "GET" | "HEAD" => Class::Reads,
            "DELETE" => Class::Deletes,
            _ => Class::Writes,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Reads => "reads",
            Class::Writes => "writes",
            Class::Deletes => "deletes",
        }
    }

    fn header(self) -> &'static str {
        match self {
            Class::Reads => "x-ms-ratelimit-remaining-subscription-reads",
            Class::Writes => "x-ms-ratelimit-remaining-subscription-writes",
            Class::Deletes => "x-ms-ratelimit-remaining-subscription-deletes",
        }
    }
}

/// The error Azure SQL answers a restore over the subscription's cap with.
pub(crate) const RESTORE_LIMIT_CODE: &str = "TooManyConcurrentRestoreRequests";

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

/// What one (subscription, client, class) was answered, for the journal
/// summary and the benchmark.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub requests: u64,
    pub throttled: u64,
}

#[derive(Debug, Default)]
pub struct Throttle {
    buckets: HashMap<(String, String, Class), Bucket>,
    counts: HashMap<(String, String, Class), Counts>,
    /// When each 429 was sent (bounded like the journal).
    throttled_at: Vec<DateTime<Utc>>,
    /// The most restores one subscription ran at once.
    pub peak_restores: HashMap<String, u32>,
    pub restore_cap_refusals: u64,
    /// ARM requests handled, and the time the state's lock was held for
    /// them (is the mock itself a bottleneck?).
    pub served: u64,
    pub busy_micros: u64,
    pub max_busy_micros: u64,
}

/// The answer to a request the bucket had no token for.
pub(crate) enum Verdict {
    /// Go on; add this header to the answer.
    Pass(&'static str, String),
    Throttled(Reply),
}

const MAX_THROTTLED_AT: usize = 100_000;

impl Throttle {
    /// Takes a token for `method` by `client` in `subscription`.
    pub(crate) fn take(
        &mut self,
        spec: &ThrottleSpec,
        subscription: &str,
        client: &str,
        method: &str,
        now: DateTime<Utc>,
    ) -> Verdict {
        let class = Class::of(method);
        let b = spec.bucket(class);
        let sub = subscription.to_ascii_lowercase();
        let counts = self
            .counts
            .entry((sub.clone(), client.to_string(), class))
            .or_default();
        counts.requests += 1;
        let bucket = self
            .buckets
            .entry((sub, client.to_string(), class))
            .or_insert(Bucket {
                tokens: f64::from(b.capacity),
                at: now,
            });
        let elapsed = (now - bucket.at).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6;
        bucket.tokens = (bucket.tokens + elapsed * b.per_second).min(f64::from(b.capacity));
        bucket.at = bucket.at.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Pass(class.header(), (bucket.tokens.floor() as u64).to_string());
        }
        counts.throttled += 1;
        if self.throttled_at.len() >= MAX_THROTTLED_AT {
            self.throttled_at.drain(..MAX_THROTTLED_AT / 10);
        }
        self.throttled_at.push(now);
        let wait = ((1.0 - bucket.tokens) / b.per_second).ceil().max(1.0) as u64;
        Verdict::Throttled(
            Reply::arm_error(
                429,
                "TooManyRequests",
                format!(
                    "Number of '{}' requests for subscription '{subscription}' actor '{client}' exceeded. Please try again after '{wait}' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling for additional information.",
                    match class {
                        Class::Reads => "read",
                        Class::Writes => "write",
                        Class::Deletes => "delete",
                    }
                ),
            )
            .header("Retry-After", wait.to_string())
            .header(class.header(), "0"),
        )
    }

    /// Time one request held the state (handler, tick and journal).
    pub fn served_in(&mut self, d: std::time::Duration) {
        let us = d.as_micros() as u64;
        self.served += 1;
        self.busy_micros += us;
        self.max_busy_micros = self.max_busy_micros.max(us);
    }

    /// Requests and 429s per subscription, client and class, the 429 instants and
    /// the restore peaks (`GET /_mock/throttle`).
    pub fn to_json(&self) -> Value {
        let mut per: Vec<Value> = self
            .counts
            .iter()
            .map(|((sub, client, class), c)| {
                json!({"subscription": sub, "client": client, "class": class.as_str(),
                       "requests": c.requests, "throttled": c.throttled})
            })
            .collect();
        per.sort_by_key(|v| {
            (
                v["subscription"].to_string(),
                v["client"].to_string(),
                v["class"].to_string(),
            )
        });
        let throttled: u64 = self.counts.values().map(|c| c.throttled).sum();
        let mut peaks: Vec<(&String, &u32)> = self.peak_restores.iter().collect();
        peaks.sort();
        json!({
            "requests": self.counts.values().map(|c| c.requests).sum::<u64>(),
            "throttled": throttled,
            "by_subscription": per,
            "throttled_at": self.throttled_at.iter().map(|t| super::state::ts(*t)).collect::<Vec<_>>(),
            "peak_concurrent_restores": peaks.into_iter().map(|(s, n)| json!({"subscription": s, "peak": n})).collect::<Vec<_>>(),
            "restore_cap_refusals": self.restore_cap_refusals,
            "served": self.served,
            "busy_secs": self.busy_micros as f64 / 1e6,
            "max_busy_micros": self.max_busy_micros,
        })
    }
}

/// Azure SQL's answer to a restore PUT when `running` restores already fill
/// the subscription's cap; `None` when it may start.
pub(crate) fn restore_cap_reply(cap: u32, running: u32, subscription: &str) -> Option<Reply> {
    (cap > 0 && running >= cap).then(|| {
        Reply::arm_error(
            409,
            RESTORE_LIMIT_CODE,
            format!(
                "There are too many concurrent database restore requests in subscription '{subscription}': {running} are in progress and the limit is {cap}. Try again when one of them has completed."
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::milliseconds(s)
    }

    #[test]
    fn buckets_empty_refill_and_are_per_subscription_client_and_class() {
        let spec = ThrottleSpec {
            enabled: true,
            reads: BucketSpec {
                capacity: 3,
                per_second: 2.0,
            },
            ..Default::default()
        };
        let mut th = Throttle::default();
        let pass = |v: Verdict| match v {
            Verdict::Pass(h, left) => (h, left),
            Verdict::Throttled(r) => panic!("throttled: {}", r.status),
        };
        for left in ["2", "1", "0"] {
            let (h, l) = pass(th.take(&spec, "S1", "app", "GET", t(0)));
            assert_eq!(h, "x-ms-ratelimit-remaining-subscription-reads");
            assert_eq!(l, left);
        }
        let Verdict::Throttled(r) = th.take(&spec, "s1", "app", "GET", t(100)) else {
            panic!("expected a 429");
        };
        assert_eq!(r.status, 429);
        let retry = r.headers.iter().find(|(n, _)| *n == "Retry-After").unwrap();
        assert_eq!(retry.1, "1");
        // Another client, another class, another subscription: own buckets.
        pass(th.take(&spec, "s1", "other", "GET", t(100)));
        pass(th.take(&spec, "s1", "app", "PUT", t(100)));
        pass(th.take(&spec, "s2", "app", "GET", t(100)));
        // Half a second later one token is back (2 per second).
        pass(th.take(&spec, "s1", "app", "GET", t(600)));
        let v = th.to_json();
        assert_eq!(v["throttled"], 1);
        assert_eq!(v["requests"], 8);
    }

    #[test]
    fn restore_cap() {
        assert!(restore_cap_reply(0, 100, "s").is_none());
        assert!(restore_cap_reply(2, 1, "s").is_none());
        let r = restore_cap_reply(2, 2, "s").unwrap();
        assert_eq!(r.status, 409);
    }

    #[test]
    fn bad_specs_are_named() {
        let mut s = ThrottleSpec::default();
        s.writes.per_second = 0.0;
        assert!(s.check().unwrap_err().contains("writes.per_second"));
        s = ThrottleSpec::default();
        s.deletes.capacity = 0;
        assert!(s.check().unwrap_err().contains("deletes.capacity"));
    }
}
