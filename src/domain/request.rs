//! A restore request as the requester states it.
use super::lifecycle::RequestStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The statements a requester must acknowledge (from the original process).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgements {
    /// The current database is erased and replaced.
    pub erase: bool,
    /// The environment is unavailable during the window.
    pub downtime: bool,
    /// Only the F&O database is restored (blobs and MR keep their state).
    pub scope: bool,
}

/// What a requester submits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    pub environment: String,
    pub database: String,
    pub restore_point: DateTime<Utc>,
    pub window: Window,
    pub acks: Acknowledgements,
    pub requester: String,
    pub reason: Option<String>,
    pub prestage: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRequest {
    pub id: String,
    pub environment: String,
    pub database: String,
    pub restore_point: DateTime<Utc>,
    pub window: Window,
    pub acks: Acknowledgements,
    pub requester: String,
    pub reason: Option<String>,
    pub prestage: bool,
    pub status: RequestStatus,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RestoreRequest {
    pub fn from_new(id: String, new: NewRequest, now: DateTime<Utc>) -> Self {
        Self {
            id,
            environment: new.environment,
            database: new.database,
            restore_point: new.restore_point,
            window: new.window,
            acks: new.acks,
            requester: new.requester,
            reason: new.reason,
            prestage: new.prestage,
            status: RequestStatus::Submitted,
            submitted_at: now,
            updated_at: now,
        }
    }
}

/// One entry of a request's audit trail: who moved it from what to what, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEvent {
    pub request_id: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub from: Option<RequestStatus>,
    pub to: RequestStatus,
    pub note: Option<String>,
}
