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
    /// The code version at the restore point differs from today's (needed
    /// only when the deployment history shows a different major version).
    #[serde(default)]
    pub version_mismatch: bool,
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
    /// An operator's reason for a window sooner than 24 hours ahead.
    pub emergency: Option<String>,
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
    #[serde(default)]
    pub emergency: Option<String>,
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
            emergency: new.emergency,
            status: RequestStatus::Submitted,
            submitted_at: now,
            updated_at: now,
        }
    }
}

/// What happened to an environment: a restore (with its times) or a
/// deployment of a code version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentEvent {
    pub environment: String,
    pub kind: EnvironmentEventKind,
    /// A restore: when the job started; a deployment: when it was deployed.
    pub at: DateTime<Utc>,
    /// A restore: when the environment was back online with the restored database.
    pub finished_at: Option<DateTime<Utc>>,
    /// A deployment: the code version.
    pub version: Option<String>,
    /// A restore: JSON with the job, request, restore point and durations.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentEventKind {
    Restore,
    Deployment,
}

impl EnvironmentEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restore => "restore",
            Self::Deployment => "deployment",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "restore" => Some(Self::Restore),
            "deployment" => Some(Self::Deployment),
            _ => None,
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
