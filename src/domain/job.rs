//! A job is one run of a request through its steps; each step's checkpoint is
//! a [`StepRecord`]. Which step comes next is decided here, from checkpoints alone.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    Preflight,
    Offline,
    Restore,
    Swap,
    Sync,
    MrReset,
    Online,
    Verify,
    Cleanup,
}

impl StepName {
    pub const ALL: [StepName; 9] = [
        Self::Preflight,
        Self::Offline,
        Self::Restore,
        Self::Swap,
        Self::Sync,
        Self::MrReset,
        Self::Online,
        Self::Verify,
        Self::Cleanup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Preflight => "preflight",
            Self::Offline => "offline",
            Self::Restore => "restore",
            Self::Swap => "swap",
            Self::Sync => "sync",
            Self::MrReset => "mr_reset",
            Self::Online => "online",
            Self::Verify => "verify",
            Self::Cleanup => "cleanup",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The steps of a run in order. `cleanup` runs later, after the retention of
/// the original database, and is not part of the run itself.
pub fn plan(prestage: bool) -> Vec<StepName> {
    use StepName::*;
    if prestage {
        vec![
            Preflight, Restore, Offline, Swap, Sync, MrReset, Online, Verify,
        ]
    } else {
        vec![
            Preflight, Offline, Restore, Swap, Sync, MrReset, Online, Verify,
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Skipped,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
    pub fn is_done(self) -> bool {
        matches!(self, Self::Succeeded | Self::Skipped)
    }
}

/// The checkpoint of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: StepName,
    pub status: StepStatus,
    pub attempts: u32,
    /// An external reference to re-attach to on resume (an operation URL).
    pub external_ref: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Progress notes of the step (e.g. which rename is done).
    pub detail: Option<String>,
    pub error: Option<String>,
}

impl StepRecord {
    pub fn pending(step: StepName) -> Self {
        Self {
            step,
            status: StepStatus::Pending,
            attempts: 0,
            external_ref: None,
            started_at: None,
            finished_at: None,
            detail: None,
            error: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
    RolledBack,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::RolledBack,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// What the run learned and must not forget across a crash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFacts {
    /// `databaseId` of the database the environment had before the run.
    pub original_database_id: Option<String>,
    /// `databaseId` of the restored database, once Azure reports it.
    pub restored_database_id: Option<String>,
    /// ARM resource id of the source database (for `sourceDatabaseId`).
    pub source_resource_id: Option<String>,
    /// The source's sku as Azure reported it (JSON), reused for the restore.
    pub source_sku: Option<serde_json::Value>,
    pub source_elastic_pool_id: Option<String>,
    pub offline_at: Option<DateTime<Utc>>,
    pub online_at: Option<DateTime<Utc>>,
    /// Set when a step failed for good: the cause, while the run recovers
    /// (rolls back or brings the environment online).
    #[serde(default)]
    pub recovering: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub request_id: String,
    pub dry_run: bool,
    pub status: JobStatus,
    pub plan: Vec<StepName>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub facts: JobFacts,
    pub error: Option<String>,
}

impl Job {
    /// The 8-character tag in the names of the job's databases.
    pub fn tag(&self) -> &str {
        self.id.get(..8).unwrap_or(&self.id)
    }
    pub fn restored_name(&self, db: &str) -> String {
        format!("{db}_pitr_{}", self.tag())
    }
    pub fn before_name(&self, db: &str) -> String {
        format!("{db}_before_{}", self.tag())
    }
    /// Its restore runs before the environment goes offline.
    pub fn is_prestaged(&self) -> bool {
        let at = |s: StepName| self.plan.iter().position(|p| *p == s);
        at(StepName::Restore) < at(StepName::Offline)
    }
}

/// The first step of the plan that is not done yet.
pub fn next_step(plan: &[StepName], records: &[StepRecord]) -> Option<StepName> {
    plan.iter()
        .copied()
        .find(|s| !records.iter().any(|r| r.step == *s && r.status.is_done()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        let p = plan(false);
        assert_eq!(p[1], StepName::Offline);
        assert_eq!(p[2], StepName::Restore);
        let p = plan(true);
        assert_eq!(p[1], StepName::Restore);
        assert_eq!(p[2], StepName::Offline);
        for s in StepName::ALL {
            assert_eq!(StepName::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn next_step_skips_done_steps_only() {
        let p = plan(false);
        assert_eq!(next_step(&p, &[]), Some(StepName::Preflight));
        let mut r = StepRecord::pending(StepName::Preflight);
        r.status = StepStatus::Succeeded;
        let mut o = StepRecord::pending(StepName::Offline);
        o.status = StepStatus::Running;
        assert_eq!(
            next_step(&p, &[r.clone(), o.clone()]),
            Some(StepName::Offline)
        );
        o.status = StepStatus::Succeeded;
        assert_eq!(next_step(&p, &[r, o]), Some(StepName::Restore));
    }
}
