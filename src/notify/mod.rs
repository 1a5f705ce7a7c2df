//! Notifications: the worker that delivers the outbox to the
//! `[[notifications]]` receivers (in `pitr serve`).
//!
//! Each request event is written to the outbox in the same store
//! transaction as the transition ([`crate::store::rules::notification_event`]),
//! so none is lost when a process dies. The worker claims due deliveries
//! (a claim is a short lease: several runners sharing a store never attempt
//! the same one at once), POSTs the event's JSON with `X-Pitr-Event`,
//! `X-Pitr-Delivery` (chosen once per receiver and event, the same on every
//! retry) and `X-Pitr-Signature: sha256=<hex HMAC-SHA256 of the body>`, and
//! records the outcome: delivered on a 2xx, else retried with backoff (1 s,
//! 2 s, 4 s ... 5 min) for 24 hours, then given up. At least once, and in
//! order per request: a later event of a request waits until the earlier
//! one is delivered or given up.
use crate::clock::SharedClock;
use crate::config::NotificationConfig;
use crate::store::{rules, Delivery, DeliveryOutcome, ReceiverSpec, SharedStore};
use std::sync::Arc;
use std::time::Duration;

/// How long a claim holds a delivery for one attempt.
const CLAIM_TTL_SECS: i64 = 60;
/// How long a receiver may take to answer.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the outbox is looked at when nothing wakes the worker (events
/// written by other processes).
const IDLE: Duration = Duration::from_secs(1);
const BATCH: usize = 32;

/// The configured receivers with their signing keys.
#[derive(Clone, Default)]
pub struct Receivers {
    list: Vec<(ReceiverSpec, Vec<u8>)>,
}

impl std::fmt::Debug for Receivers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        let urls: Vec<&str> = self.list.iter().map(|(r, _)| r.url.as_str()).collect();
        f.debug_struct("Receivers").field("urls", &urls).finish()
    }
}

impl Receivers {
    /// Reads each receiver's key from the variable `secret_env` names; a
    /// missing one is refused (nothing would be signed).
    pub fn from_config(config: &[NotificationConfig]) -> Result<Receivers, String> {
        Self::with_keys(config, |var| std::env::var(var).ok())
    }

    pub fn with_keys(
        config: &[NotificationConfig],
        key: impl Fn(&str) -> Option<String>,
    ) -> Result<Receivers, String> {
        let mut list = Vec::new();
        for n in config {
            let k = key(&n.secret_env).filter(|k| !k.is_empty()).ok_or_else(|| {
                format!(
                    "[[notifications]] {}: the variable {} is not set; it holds the key the notifications are signed with",
                    n.url, n.secret_env
                )
            })?;
            list.push((
                ReceiverSpec {
                    url: n.url.clone(),
                    events: n.events.clone(),
                },
                k.into_bytes(),
            ));
        }
        Ok(Receivers { list })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn specs(&self) -> Vec<ReceiverSpec> {
        self.list.iter().map(|(r, _)| r.clone()).collect()
    }

    fn key(&self, url: &str) -> Option<&[u8]> {
        self.list
            .iter()
            .find(|(r, _)| r.url == url)
            .map(|(_, k)| k.as_slice())
    }
}

pub struct Worker {
    store: SharedStore,
    clock: SharedClock,
    receivers: Receivers,
    wake: Arc<tokio::sync::Notify>,
    owner: String,
    http: reqwest::Client,
}

impl Worker {
    pub fn new(
        store: SharedStore,
        clock: SharedClock,
        receivers: Receivers,
        wake: Arc<tokio::sync::Notify>,
    ) -> Worker {
        Worker {
            store,
            clock,
            receivers,
            wake,
            owner: format!("notify:{}", uuid::Uuid::new_v4().simple()),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(POST_TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Delivers until `stop` becomes true (an attempt under way finishes).
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        if self.receivers.is_empty() {
            return;
        }
        loop {
            let busy = match self.pass().await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "notifications: the outbox could not be read; retrying");
                    false
                }
            };
            if *stop.borrow() {
                return;
            }
            if busy {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(IDLE) => {}
                _ = crate::service::stopped(&mut stop) => return,
            }
        }
    }

    /// One claim and its attempts; how many were attempted.
    pub async fn pass(&self) -> Result<usize, crate::store::StoreError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_deliveries(
                &self.receivers.specs(),
                &self.owner,
                now,
                chrono::Duration::seconds(CLAIM_TTL_SECS),
                now - rules::DELIVERY_HORIZON,
                BATCH,
            )
            .await?;
        for d in &claimed {
            let outcome = self.attempt(d).await;
            match &outcome {
                DeliveryOutcome::Delivered { .. } => {
                    tracing::info!(receiver = %d.receiver, event = %d.event, request = %d.request_id, delivery = %d.delivery_id, "notification delivered")
                }
                DeliveryOutcome::Retry { error, next, .. } => {
                    tracing::warn!(receiver = %d.receiver, event = %d.event, request = %d.request_id, delivery = %d.delivery_id, attempts = d.attempts, %error, next = %next, "notification not delivered; will retry")
                }
                DeliveryOutcome::Failed { error, .. } => {
                    tracing::error!(receiver = %d.receiver, event = %d.event, request = %d.request_id, delivery = %d.delivery_id, %error, "notification given up after 24 hours")
                }
            }
            self.store.finish_delivery(d, &self.owner, &outcome).await?;
        }
        Ok(claimed.len())
    }

    async fn attempt(&self, d: &Delivery) -> DeliveryOutcome {
        let Some(key) = self.receivers.key(&d.receiver) else {
            return rules::after_failure(
                d.attempts,
                d.created_at,
                self.clock.now(),
                "no key".into(),
            );
        };
        let signature = crate::engine::steps::signature(key, d.payload.as_bytes());
        let sent = self
            .http
            .post(&d.receiver)
            .header("Content-Type", "application/json")
            .header("User-Agent", concat!("pitr/", env!("CARGO_PKG_VERSION")))
            .header("X-Pitr-Event", &d.event)
            .header("X-Pitr-Delivery", &d.delivery_id)
            .header("X-Pitr-Signature", signature)
            .body(d.payload.clone())
            .send()
            .await;
        let now = self.clock.now();
        match sent {
            Ok(r) if r.status().is_success() => DeliveryOutcome::Delivered { at: now },
            Ok(r) => rules::after_failure(
                d.attempts,
                d.created_at,
                now,
                format!("HTTP {}", r.status()),
            ),
            Err(e) => rules::after_failure(d.attempts, d.created_at, now, describe(&e)),
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
