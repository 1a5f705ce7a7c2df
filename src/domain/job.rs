//! A job is one run of a request through its steps; each step's checkpoint
//! is a [`StepRecord`](super::step::StepRecord) (see [`super::step`]).
use super::ids::{JobId, RequestId};
use super::lifecycle::RequestStatus;
use super::request::RestoreRequest;
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
    /// What Azure does not copy to a restored database, copied by pitr and
    /// checked by `verify`.
    #[serde(default)]
    pub source_tags: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub source_zone_redundant: Option<bool>,
    #[serde(default)]
    pub source_backup_redundancy: Option<String>,
    /// The original's backup retention (Azure gives a restored database its
    /// defaults): set again on the restored database before the swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_short_term: Option<super::retention::ShortTerm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_long_term: Option<super::retention::LongTerm>,
    /// What the original had that pitr does not carry over, each said as
    /// what to do ("database-level auditing was on ...; set it again"):
    /// shown by `request show` and told by the run's notification.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_carried: Vec<String>,
    /// The original's values of [`super::retention::CARRIED_PROPERTIES`]
    /// (ARM property -> value), sent in the restore PUT.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub source_properties: std::collections::BTreeMap<String, serde_json::Value>,
    /// Defender's state on the original when set on it (`Enabled` or
    /// `Disabled`; `New` is not carried), and its read scale-out: set on
    /// the restored database after its restore, before the swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_threat_protection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_read_scale: Option<String>,
    pub offline_at: Option<DateTime<Utc>>,
    pub online_at: Option<DateTime<Utc>>,
    /// Set when a step failed for good: the cause, while the run recovers
    /// (rolls back or brings the environment online).
    #[serde(default)]
    pub recovering: Option<String>,
    /// Set on a rollback job: the restore it undoes, who asked and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackOf>,
}

/// What a rollback job undoes: its own job with its own steps and
/// downtime, working on the names of the restore it rolls back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackOf {
    /// The restore's job.
    pub job: JobId,
    pub by: String,
    #[serde(default)]
    pub reason: Option<String>,
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
    /// The job whose names the databases carry: a rollback job works on
    /// the names of the restore it undoes.
    fn name_tag(&self) -> &str {
        match &self.facts.rollback {
            Some(of) => of.job.tag(),
            None => self.id.tag(),
        }
    }
    pub fn restored_name(&self, db: &str) -> String {
        format!("{db}_pitr_{}", self.name_tag())
    }
    pub fn before_name(&self, db: &str) -> String {
        format!("{db}_before_{}", self.name_tag())
    }
    /// How long the environment was down in this job, once it is back.
    pub fn downtime_secs(&self) -> Option<f64> {
        match (self.facts.offline_at, self.facts.online_at) {
            (Some(off), Some(on)) => Some((on - off).num_milliseconds() as f64 / 1000.0),
            _ => None,
        }
    }

    /// A rollback job (see [`RollbackOf`]).
    pub fn is_rollback(&self) -> bool {
        self.facts.rollback.is_some()
    }
    /// Its restore runs before the environment goes offline.
    pub fn is_prestaged(&self) -> bool {
        let at = |s: StepName| self.plan.iter().position(|p| *p == s);
        matches!((at(StepName::Restore), at(StepName::Offline)), (Some(r), Some(o)) if r < o)
    }
}

/// The run of a request: its latest real job (a rehearsal never is).
pub fn current_run(jobs: &[Job]) -> Option<&Job> {
    jobs.iter().rev().find(|j| !j.dry_run)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request {request} has no unfinished run to resume (status {status}): {}", self.instead().words())]
pub struct NothingToResume {
    pub request: RequestId,
    pub status: RequestStatus,
}

impl NothingToResume {
    /// What to do instead: accept it, start its run, roll back the run
    /// that finished, or submit a new request.
    pub fn instead(&self) -> super::fix::Fix {
        use super::fix::Fix;
        match self.status {
            RequestStatus::Submitted => Fix::AcceptFirst,
            RequestStatus::Accepted => Fix::StartRun,
            RequestStatus::Succeeded | RequestStatus::Failed => Fix::RollBackOrSubmitNew,
            RequestStatus::Running => Fix::LookAtStatus,
            _ => Fix::SubmitNew,
        }
    }
}

/// The job `resume` may continue: the request's current run, still
/// running, while the request itself is running, or a rollback still
/// running (its request keeps the status it had until the rollback ends).
/// Anything else (an older job, a job whose start was never recorded, a
/// rehearsal) is not the request's run and is never driven.
pub fn resumable<'a>(req: &RestoreRequest, jobs: &'a [Job]) -> Result<&'a Job, NothingToResume> {
    current_run(jobs)
        .filter(|j| {
            j.status == JobStatus::Running
                && (req.status == RequestStatus::Running
                    || (j.is_rollback()
                        && matches!(req.status, RequestStatus::Succeeded | RequestStatus::Failed)))
        })
        .ok_or_else(|| NothingToResume {
            request: req.id.clone(),
            status: req.status,
        })
}

/// A real job left running although its request never started: a crash
/// between creating a job and recording the start, before runs were
/// claimed atomically. It never acted (nothing is checkpointed), so it can
/// be closed.
pub fn is_orphan(req: &RestoreRequest, job: &Job, checkpoints: usize) -> bool {
    !job.dry_run
        && !job.is_rollback()
        && job.status == JobStatus::Running
        && req.status != RequestStatus::Running
        && checkpoints == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::request::{Acknowledgements, RequestSpec, Window};
    use chrono::TimeZone;

    fn at(m: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + m * 60, 0).unwrap()
    }

    fn job(id: &str, dry_run: bool, status: JobStatus, m: i64) -> Job {
        Job {
            id: id.into(),
            request_id: "r".into(),
            dry_run,
            status,
            plan: vec![],
            created_at: at(m),
            updated_at: at(m),
            finished_at: None,
            facts: JobFacts::default(),
            error: None,
        }
    }

    fn req(status: RequestStatus) -> RestoreRequest {
        RestoreRequest {
            id: "r".into(),
            spec: RequestSpec {
                environment: "e".into(),
                database: "AxDB".into(),
                restore_point: at(0),
                window: Window {
                    start: at(10),
                    end: at(100),
                },
                acks: Acknowledgements::default(),
                requester: "a".into(),
                reason: None,
                prestage: false,
                emergency: None,
            },
            status,
            warning: None,
            submitted_at: at(0),
            updated_at: at(0),
        }
    }

    #[test]
    fn only_the_current_running_run_of_a_running_request_is_resumed() {
        use JobStatus as J;
        use RequestStatus as R;
        let older = job("old", false, J::Running, 1);
        let current = job("cur", false, J::Running, 2);
        let rehearsal = job("dry", true, J::Running, 3);
        let jobs = [older.clone(), current.clone(), rehearsal.clone()];
        assert_eq!(current_run(&jobs).map(|j| j.id.as_str()), Some("cur"));
        assert_eq!(resumable(&req(R::Running), &jobs).unwrap().id, "cur");
        for status in [R::Accepted, R::Succeeded, R::Failed, R::RolledBack] {
            assert!(resumable(&req(status), &jobs).is_err(), "{status}");
        }
        let finished = [older, job("cur", false, J::Succeeded, 2), rehearsal.clone()];
        assert!(resumable(&req(R::Running), &finished).is_err());
        assert!(resumable(&req(R::Running), &[rehearsal]).is_err());
        assert!(resumable(&req(R::Running), &[]).is_err());
        // A requested rollback that was interrupted: its request is still
        // succeeded (or failed) until it ends.
        let mut rolling_back = job("cur", false, J::Running, 2);
        rolling_back.facts.rollback = Some(RollbackOf {
            job: "old".into(),
            by: "ops".into(),
            reason: None,
        });
        let jobs = [rolling_back];
        for status in [R::Succeeded, R::Failed] {
            assert_eq!(
                resumable(&req(status), &jobs).unwrap().id,
                "cur",
                "{status}"
            );
        }
        for status in [R::Accepted, R::RolledBack, R::Cancelled] {
            assert!(resumable(&req(status), &jobs).is_err(), "{status}");
        }
    }

    /// Job facts as stored by the first pitr (before tags, redundancy,
    /// recovery and requested rollbacks were recorded): they still load.
    #[test]
    fn job_facts_written_by_an_older_pitr_still_load() {
        let stored = r#"{"original_database_id":"O","restored_database_id":"R","source_resource_id":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/sql/databases/AxDB","source_sku":{"name":"GP_Gen5","capacity":4},"source_elastic_pool_id":null,"offline_at":"2026-11-27T20:00:05Z","online_at":null}"#;
        let facts: JobFacts = serde_json::from_str(stored).unwrap();
        assert_eq!(
            facts,
            JobFacts {
                original_database_id: Some("O".into()),
                restored_database_id: Some("R".into()),
                source_resource_id: Some(
                    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/sql/databases/AxDB".into()
                ),
                source_sku: Some(serde_json::json!({"name": "GP_Gen5", "capacity": 4})),
                offline_at: Some("2026-11-27T20:00:05Z".parse().unwrap()),
                ..JobFacts::default()
            }
        );
    }

    #[test]
    fn a_job_whose_start_was_never_recorded_is_an_orphan_only_if_it_never_acted() {
        let j = job("j", false, JobStatus::Running, 1);
        assert!(is_orphan(&req(RequestStatus::Accepted), &j, 0));
        assert!(!is_orphan(&req(RequestStatus::Accepted), &j, 1));
        assert!(!is_orphan(&req(RequestStatus::Running), &j, 0));
        let dry = job("d", true, JobStatus::Running, 1);
        assert!(!is_orphan(&req(RequestStatus::Accepted), &dry, 0));
    }
}
