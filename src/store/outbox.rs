//! The notification outbox as the store keeps it: an event row written in
//! the same transaction as the request transition (or the failed step
//! checkpoint) it tells of, and a delivery row per receiver and event, with
//! its delivery id chosen once, its attempts, its next attempt and its end.
use crate::domain::RequestId;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// An event of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Order of writing (the order of delivery for one request).
    pub seq: i64,
    pub request_id: RequestId,
    /// `submitted`, `accepted`, ..., `step_failed` (see
    /// [`super::rules::notification_event`]).
    pub event: String,
    /// The exact body POSTed to receivers (JSON).
    pub payload: String,
    pub at: DateTime<Utc>,
}

/// A configured receiver, as the store needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverSpec {
    pub url: String,
    /// The events it takes.
    pub events: Vec<String>,
}

/// A delivery claimed for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub receiver: String,
    pub seq: i64,
    /// Stable across retries (`X-Pitr-Delivery`).
    pub delivery_id: String,
    pub request_id: RequestId,
    pub event: String,
    pub payload: String,
    /// Attempts including this one.
    pub attempts: u32,
    /// When the delivery was first due (retries stop 24 h later).
    pub created_at: DateTime<Utc>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered {
        at: DateTime<Utc>,
    },
    Retry {
        at: DateTime<Utc>,
        next: DateTime<Utc>,
        error: String,
    },
    /// Given up (24 hours of retries).
    Failed {
        at: DateTime<Utc>,
        error: String,
    },
}

/// A delivery as `pitr notifications list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    pub receiver: String,
    pub seq: i64,
    pub delivery_id: String,
    pub request_id: String,
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// The body of a notification: what happened to which request, by whom.
pub fn payload(
    event: &str,
    request_id: &RequestId,
    environment: &str,
    status: &str,
    at: DateTime<Utc>,
    actor: &str,
    detail: Option<&str>,
) -> String {
    serde_json::json!({
        "event": event,
        "request_id": request_id,
        "environment": environment,
        "status": status,
        "at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "actor": actor,
        "detail": detail,
    })
    .to_string()
}
