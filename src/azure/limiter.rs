//! Pacing within ARM's limits, shared by every job and step of the process.
//!
//! ARM throttles each service principal per subscription with token
//! buckets (reads, writes, deletes). One [`Limiter`] per process mirrors
//! those buckets, one per (subscription, class): a request reserves a token
//! before it is sent and, when the bucket is empty, waits its turn. Tokens
//! are handed out in order of reservation (the bucket may go below zero; the
//! n-th waiter sleeps until its token has been refilled), so a thousand jobs
//! waiting on one subscription wake one at a time instead of all at once.
//!
//! The mirror is corrected by what ARM says: the
//! `x-ms-ratelimit-remaining-subscription-*` header lowers the local count
//! when ARM has fewer tokens left (other processes use the same principal),
//! and a `429` with `Retry-After` empties it for that long.
//!
//! Azure SQL also caps the restores a subscription runs at once:
//! [`RestoreSlots`] queues restores per subscription against that cap.
use crate::config::{AzureConfig, Bucket};
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Which ARM bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Reads,
    Writes,
    Deletes,
}

impl Class {
    pub fn of(method: &str) -> Class {
        match method.to_ascii_uppercase().as_str() {
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

    pub const ALL: [Class; 3] = [Class::Reads, Class::Writes, Class::Deletes];
}

#[derive(Debug)]
struct State {
    /// May be negative: tokens reserved by waiters ahead.
    tokens: f64,
    at: Instant,
}

/// Tokens of each bucket left unspent: half a second of refill (at most a
/// quarter of the bucket). ARM's bucket starts when the first request
/// arrives, after the token fetch and the TLS handshake, later than the
/// mirror's; without this margin the mirror would run that much ahead.
fn reserve(capacity: f64, per_second: f64) -> f64 {
    (per_second * 0.5).ceil().min((capacity / 4.0).floor())
}

#[derive(Debug)]
pub struct Limiter {
    /// (capacity less the reserve, refill per second) of each class.
    rates: [(f64, f64); 3],
    reserves: [f64; 3],
    buckets: Mutex<HashMap<(String, Class), State>>,
    metrics: Arc<Metrics>,
}

impl Limiter {
    /// This runner's share of each bucket: `1/runners` of its size and rate.
    pub fn new(cfg: &AzureConfig, metrics: Arc<Metrics>) -> Self {
        let share = 1.0 / f64::from(cfg.rate_limits.runners.max(1));
        let shared = |b: Bucket| {
            (
                (f64::from(b.capacity) * share).max(1.0),
                b.per_second * share,
            )
        };
        let r = |b: Bucket| {
            let (capacity, rate) = shared(b);
            ((capacity - reserve(capacity, rate)).max(1.0), rate)
        };
        let k = |b: Bucket| {
            let (capacity, rate) = shared(b);
            reserve(capacity, rate)
        };
        let l = &cfg.rate_limits;
        Self {
            rates: [r(l.reads), r(l.writes), r(l.deletes)],
            reserves: [k(l.reads), k(l.writes), k(l.deletes)],
            buckets: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    fn rate(&self, class: Class) -> (f64, f64) {
        self.rates[class as usize]
    }

    fn with<T>(&self, sub: &str, class: Class, f: impl FnOnce(&mut State, f64, f64) -> T) -> T {
        let (capacity, per_second) = self.rate(class);
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let st = map
            .entry((sub.to_ascii_lowercase(), class))
            .or_insert(State {
                tokens: capacity,
                at: now,
            });
        let elapsed = now.saturating_duration_since(st.at).as_secs_f64();
        st.tokens = (st.tokens + elapsed * per_second).min(capacity);
        st.at = now;
        f(st, capacity, per_second)
    }

    /// Reserves one token and waits until it is there; returns how long.
    pub async fn acquire(&self, sub: &str, class: Class) -> Duration {
        let wait = self.with(sub, class, |st, _, per_second| {
            st.tokens -= 1.0;
            if st.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-st.tokens / per_second)
            }
        });
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
            self.metrics.limiter_waited(class.as_str(), wait);
        }
        wait
    }

    /// ARM said how many tokens are left: never believe more than that.
    pub fn observe_remaining(&self, sub: &str, class: Class, remaining: u64) {
        let keep = self.reserves[class as usize];
        self.with(sub, class, |st, _, _| {
            st.tokens = st.tokens.min(remaining as f64 - keep);
        });
    }

    /// ARM answered 429: nothing is sent for `retry_after`.
    pub fn throttled(&self, sub: &str, class: Class, retry_after: Duration) {
        self.with(sub, class, |st, _, per_second| {
            st.tokens = st.tokens.min(-retry_after.as_secs_f64() * per_second);
        });
    }
}

/// The subscription in an ARM URL path (`/subscriptions/{id}/...`).
pub fn subscription_of(path: &str) -> Option<&str> {
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    while let Some(s) = segs.next() {
        if s.eq_ignore_ascii_case("subscriptions") {
            return segs.next();
        }
    }
    None
}

/// A bounded name for what an ARM URL is about, for metrics labels:
/// `Microsoft.Sql/servers/databases`, `Microsoft.Compute/locations/operations`.
pub fn resource_type(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some(i) = segs
        .iter()
        .rposition(|s| s.eq_ignore_ascii_case("providers"))
    else {
        return "other".into();
    };
    let mut out = segs.get(i + 1).copied().unwrap_or("other").to_string();
    for t in segs.iter().skip(i + 2).step_by(2) {
        out.push('/');
        out.push_str(t);
    }
    out
}

/// Restores queued per subscription against Azure SQL's cap.
#[derive(Debug)]
pub struct RestoreSlots {
    cap: usize,
    runners: usize,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl RestoreSlots {
    /// `cap` 0: no queue. With several runners each takes its share.
    pub fn new(cfg: &AzureConfig) -> Self {
        let cap = cfg.max_concurrent_restores_per_subscription as usize;
        let runners = cfg.rate_limits.runners.max(1) as usize;
        Self {
            cap: if cap == 0 { 0 } else { (cap / runners).max(1) },
            runners,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a restore slot in `sub`; the slot is held until dropped.
    /// `on_wait` is called once, only when no slot is free at once (the
    /// semaphore is fair: a free permit is never taken past a waiter).
    pub async fn acquire(&self, sub: &str, on_wait: impl FnOnce()) -> Option<OwnedSemaphorePermit> {
        if self.cap == 0 {
            return None;
        }
        let sem = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(sub.to_ascii_lowercase())
            .or_insert_with(|| Arc::new(Semaphore::new(self.cap)))
            .clone();
        match sem.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(tokio::sync::TryAcquireError::Closed) => None,
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                on_wait();
                sem.acquire_owned().await.ok()
            }
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn runners(&self) -> usize {
        self.runners
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(reads: Bucket) -> AzureConfig {
        let mut c = AzureConfig::default();
        c.rate_limits.reads = reads;
        c
    }

    /// Tokio's paused time: the clock moves only by the limiter's own
    /// sleeps, so a wait is exactly what was computed (to the microsecond
    /// of a float's rounding).
    fn about(d: Duration, expected_ms: u64) -> bool {
        d.as_micros().abs_diff(u128::from(expected_ms) * 1000) <= 1
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_in_order_at_the_refill_rate() {
        let l = Limiter::new(
            &cfg(Bucket {
                capacity: 2,
                per_second: 4.0,
            }),
            Arc::new(Metrics::default()),
        );
        assert_eq!(l.acquire("s", Class::Reads).await, Duration::ZERO);
        assert_eq!(l.acquire("S", Class::Reads).await, Duration::ZERO);
        // Empty: the next one waits for a quarter second, and the clock
        // moved by exactly that.
        let before = Instant::now();
        let w = l.acquire("s", Class::Reads).await;
        assert!(about(w, 250), "{w:?}");
        assert!(about(before.elapsed(), 250), "{:?}", before.elapsed());
        // Another subscription and another class have their own buckets.
        assert_eq!(l.acquire("t", Class::Reads).await, Duration::ZERO);
        assert_eq!(l.acquire("s", Class::Writes).await, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn arm_headers_and_429_correct_the_mirror() {
        let metrics = Arc::new(Metrics::default());
        let l = Limiter::new(&AzureConfig::default(), metrics.clone());
        // ARM has 13 tokens left: the 13 kept in reserve (half a second
        // at 25/s), so the next request waits for one refill.
        l.observe_remaining("s", Class::Reads, 13);
        let waited = l.acquire("s", Class::Reads).await;
        assert!(about(waited, 40), "1/25 s: {waited:?}");
        // 300 ms of Retry-After, then one token at 10/s: 400 ms.
        l.throttled("s", Class::Writes, Duration::from_millis(300));
        let waited = l.acquire("s", Class::Writes).await;
        assert!(about(waited, 400), "{waited:?}");
        assert!(metrics
            .encode()
            .contains("pitr_arm_limiter_wait_seconds_total{class=\"writes\"} 0."));
    }

    #[tokio::test(start_paused = true)]
    async fn restore_slots_queue_per_subscription() {
        let mut c = AzureConfig {
            max_concurrent_restores_per_subscription: 1,
            ..Default::default()
        };
        let slots = RestoreSlots::new(&c);
        let waited = std::cell::Cell::new(0);
        let first = slots.acquire("s", || waited.set(waited.get() + 1)).await;
        assert!(first.is_some());
        assert_eq!(waited.get(), 0, "a free slot is taken without waiting");
        let second = tokio::time::timeout(
            Duration::from_millis(20),
            slots.acquire("s", || waited.set(waited.get() + 1)),
        )
        .await;
        assert!(second.is_err(), "the second restore in s must wait");
        assert_eq!(waited.get(), 1, "and it is told that it waits");
        assert!(slots.acquire("other", || {}).await.is_some());
        drop(first);
        assert!(slots.acquire("s", || {}).await.is_some());
        c.max_concurrent_restores_per_subscription = 0;
        assert!(RestoreSlots::new(&c).acquire("s", || {}).await.is_none());
    }

    #[test]
    fn the_reserve_is_half_a_second_of_refill_at_most_a_quarter_of_the_bucket() {
        assert_eq!(reserve(250.0, 25.0), 13.0);
        assert_eq!(reserve(200.0, 10.0), 5.0);
        assert_eq!(reserve(2.0, 4.0), 0.0);
        assert_eq!(reserve(8.0, 100.0), 2.0);
    }

    #[test]
    fn url_parts() {
        let p =
            "/subscriptions/ab-1/resourceGroups/rg/providers/Microsoft.Sql/servers/x/databases/y";
        assert_eq!(subscription_of(p), Some("ab-1"));
        assert_eq!(resource_type(p), "Microsoft.Sql/servers/databases");
        assert_eq!(
            resource_type("/subscriptions/s/providers/Microsoft.Sql/locations/we/databaseAzureAsyncOperation/1"),
            "Microsoft.Sql/locations/databaseAzureAsyncOperation"
        );
        assert_eq!(subscription_of("/x"), None);
        assert_eq!(resource_type("/x"), "other");
    }
}
