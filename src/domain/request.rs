//! A restore request as the requester states it, and what happened to an
//! environment (restores, deployments) that the rules look back on.
use super::ids::{JobId, RequestId};
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

/// What a requester asks for: everything the rules check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSpec {
    pub environment: String,
    pub database: String,
    pub restore_point: DateTime<Utc>,
    pub window: Window,
    pub acks: Acknowledgements,
    pub requester: String,
    pub reason: Option<String>,
    pub prestage: bool,
    /// An operator's reason for a window sooner than 24 hours ahead.
    #[serde(default)]
    pub emergency: Option<String>,
}

/// A stored request: what was asked for, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRequest {
    pub id: RequestId,
    #[serde(flatten)]
    pub spec: RequestSpec,
    pub status: RequestStatus,
    /// Why a waiting request will not be able to run as it stands (its
    /// restore point falls out of retention before its window), found
    /// ahead of the window by the scheduler.
    #[serde(default)]
    pub warning: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RestoreRequest {
    pub fn new(id: RequestId, spec: RequestSpec, now: DateTime<Utc>) -> Self {
        Self {
            id,
            spec,
            status: RequestStatus::Submitted,
            warning: None,
            submitted_at: now,
            updated_at: now,
        }
    }
}

/// What happened to an environment at an instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentEvent {
    pub environment: String,
    /// A restore: when its job started; a deployment: when it was deployed.
    pub at: DateTime<Utc>,
    pub entry: HistoryEntry,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HistoryEntry {
    Restore(RestoreRecord),
    /// A restore undone on request: the original database is live again.
    Rollback(RollbackRecord),
    /// A deployment of a code version (for the code-version rule).
    Deployment {
        version: String,
        note: Option<String>,
    },
}

/// A finished restore: it bounds later restore points (backup history
/// restarts) and gives the durations that estimates are made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreRecord {
    pub job: JobId,
    pub request: RequestId,
    pub restore_point: DateTime<Utc>,
    /// When the environment was back online with the restored database.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    pub restore_secs: Option<f64>,
    pub downtime_secs: Option<f64>,
    #[serde(default)]
    pub prestaged: bool,
}

/// A rollback: the job that undid a restore, and which restore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackRecord {
    pub job: JobId,
    /// The restore's job, now undone.
    pub rolled_back: JobId,
    pub request: RequestId,
    /// When the environment was back online with its original database.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    pub downtime_secs: Option<f64>,
    #[serde(default)]
    pub reason: Option<String>,
}

impl EnvironmentEvent {
    pub fn kind(&self) -> EnvironmentEventKind {
        match self.entry {
            HistoryEntry::Restore(_) => EnvironmentEventKind::Restore,
            HistoryEntry::Rollback(_) => EnvironmentEventKind::Rollback,
            HistoryEntry::Deployment { .. } => EnvironmentEventKind::Deployment,
        }
    }

    pub fn restore(&self) -> Option<&RestoreRecord> {
        match &self.entry {
            HistoryEntry::Restore(r) => Some(r),
            _ => None,
        }
    }

    pub fn rollback(&self) -> Option<&RollbackRecord> {
        match &self.entry {
            HistoryEntry::Rollback(r) => Some(r),
            _ => None,
        }
    }

    /// A deployment's version.
    pub fn version(&self) -> Option<&str> {
        match &self.entry {
            HistoryEntry::Deployment { version, .. } => Some(version),
            _ => None,
        }
    }
}

/// The restores of an environment that still stand (not rolled back since),
/// oldest first: the history of the database that is live now.
pub fn standing_restores(history: &[EnvironmentEvent]) -> Vec<&RestoreRecord> {
    let undone: Vec<&JobId> = history
        .iter()
        .filter_map(|e| e.rollback())
        .map(|r| &r.rolled_back)
        .collect();
    history
        .iter()
        .filter_map(|e| e.restore())
        .filter(|r| !undone.contains(&&r.job))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentEventKind {
    Restore,
    Deployment,
    Rollback,
}

impl EnvironmentEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restore => "restore",
            Self::Deployment => "deployment",
            Self::Rollback => "rollback",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "restore" => Some(Self::Restore),
            "deployment" => Some(Self::Deployment),
            "rollback" => Some(Self::Rollback),
            _ => None,
        }
    }
}

/// How the notes of audit entries that leave the status as it was begin:
/// they say what happened (and which notification it makes).
pub mod note {
    /// A reschedule of a request not yet started.
    pub const RESCHEDULED: &str = "rescheduled";
    /// An accepted request found to fail at its window (retention).
    pub const FLAGGED: &str = "flagged";
    /// Its warning no longer holds.
    pub const WARNING_CLEARED: &str = "warning cleared";
    /// A rollback job started on a finished request.
    pub const ROLLBACK_STARTED: &str = "rollback started";
    /// A rollback job ended without putting the original back.
    pub const ROLLBACK_FAILED: &str = "rollback failed";
    /// A runner took the run over from another: `taken over (REASON): ...`
    /// with REASON one of [`super::Takeover`]'s labels.
    pub const TAKEN_OVER: &str = "taken over";
}

/// Why a runner took a run over from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// The holder ran on this host and its process is gone: taken at once,
    /// before its lease expired.
    OwnerGone,
    /// The holder's lease expired without being renewed (a runner on
    /// another host, or one that stalled).
    LeaseExpired,
}

impl Takeover {
    /// The label of the `lease_takeovers` metric and of the audit note.
    pub fn label(self) -> &'static str {
        match self {
            Takeover::OwnerGone => "owner_gone",
            Takeover::LeaseExpired => "lease_expired",
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Takeover::OwnerGone => "its process is gone on this host",
            Takeover::LeaseExpired => "its lease expired unrenewed",
        }
    }
}

/// One entry of a request's audit trail: who moved it from what to what, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEvent {
    pub request_id: RequestId,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub from: Option<RequestStatus>,
    pub to: RequestStatus,
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A restore record as an earlier pitr stored it must still load.
    #[test]
    fn a_stored_restore_record_loads() {
        let stored = r#"{"job":"0123456789abcdef0123456789abcdef","request":"abcdef012345","restore_point":"2026-11-20T08:30:00Z","restore_secs":12.5,"downtime_secs":30.25,"prestaged":true}"#;
        let r: RestoreRecord = serde_json::from_str(stored).unwrap();
        assert_eq!(r.job.tag(), "01234567");
        assert_eq!(r.restore_secs, Some(12.5));
        assert_eq!(r.downtime_secs, Some(30.25));
        assert!(r.prestaged);
        assert_eq!(r.finished_at, None);
    }
}
