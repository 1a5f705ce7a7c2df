//! A job is one run of a request through its steps; each step's checkpoint
//! is a [`StepRecord`](super::step::StepRecord) (see [`super::step`]).
use super::ids::{JobId, RequestId};
use super::step::StepName;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
    pub id: JobId,
    pub request_id: RequestId,
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
    pub fn restored_name(&self, db: &str) -> String {
        format!("{db}_pitr_{}", self.id.tag())
    }
    pub fn before_name(&self, db: &str) -> String {
        format!("{db}_before_{}", self.id.tag())
    }
    /// Its restore runs before the environment goes offline.
    pub fn is_prestaged(&self) -> bool {
        let at = |s: StepName| self.plan.iter().position(|p| *p == s);
        at(StepName::Restore) < at(StepName::Offline)
    }
}
