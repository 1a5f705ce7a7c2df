//! The work in play, as one query returns it to the scheduler
//! ([`super::Store::work_in_play`]): what a tick plans from, without
//! finished history, so that a tick costs the same with 10,000 finished
//! requests in the store as with none.
//!
//! Which rows are in play is decided here, once for every backend:
//! - requests in [`IN_PLAY`] (accepted or running), and every request with
//!   a running job (a rollback in progress keeps its request's status);
//! - all the jobs of those requests; the leases and checkpoints of the
//!   running ones;
//! - the jobs awaiting a cleanup ([`awaits_cleanup`]: successful restores
//!   whose original is still kept), with their checkpoints. Each backend
//!   keeps that set in an indexed column of `jobs` (`awaiting_cleanup`),
//!   written with every job and `cleanup` checkpoint by this rule.
use super::{Lease, StepRow};
use crate::domain::schedule;
use crate::domain::{Job, JobId, JobStatus, RequestStatus, RestoreRequest, StepName, StepRecord};
use std::collections::HashMap;

/// The request statuses in play (a request in another status is in play
/// only while it has a running job).
pub const IN_PLAY: [RequestStatus; 2] = [RequestStatus::Accepted, RequestStatus::Running];

/// The job status whose jobs, leases and checkpoints are in play.
pub const RUNNING: JobStatus = JobStatus::Running;

/// What [`super::Store::work_in_play`] returns, read in one consistent
/// snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkInPlay {
    /// Newest first (the order of [`super::Store::list_requests`]).
    pub requests: Vec<RestoreRequest>,
    /// Every job of those requests, oldest first.
    pub jobs: Vec<Job>,
    /// The leases of their running jobs.
    pub leases: Vec<Lease>,
    /// The checkpoints of the running jobs and of those awaiting a cleanup,
    /// each job's in first-saved order.
    pub steps: Vec<StepRow>,
    /// The jobs awaiting a cleanup, oldest first.
    pub awaiting_cleanup: Vec<Job>,
}

impl WorkInPlay {
    /// Each job's checkpoints, by job.
    pub fn steps_by_job(&self) -> HashMap<JobId, Vec<StepRecord>> {
        let mut out: HashMap<JobId, Vec<StepRecord>> = HashMap::new();
        for row in &self.steps {
            out.entry(row.job_id.clone())
                .or_default()
                .push(row.record.clone());
        }
        out
    }
}

/// Whether the store keeps `job` among the jobs awaiting a cleanup, given
/// its `cleanup` checkpoint (see [`schedule::awaits_cleanup`]).
pub fn awaits_cleanup(job: &Job, cleanup: Option<&StepRecord>) -> bool {
    schedule::awaits_cleanup(job, cleanup)
}

/// Whether writing `job` may change its place among those awaiting a
/// cleanup, so that the backend must read its `cleanup` checkpoint: only a
/// restore that succeeded can await one.
pub fn may_await_cleanup(job: &Job) -> bool {
    awaits_cleanup(job, None)
}

/// The jobs of `rows` (a copy being imported) awaiting a cleanup.
pub fn awaiting_in(jobs: &[Job], steps: &[StepRow]) -> Vec<JobId> {
    let cleanups: HashMap<&JobId, &StepRecord> = steps
        .iter()
        .filter(|s| s.record.step == StepName::Cleanup)
        .map(|s| (&s.job_id, &s.record))
        .collect();
    jobs.iter()
        .filter(|j| awaits_cleanup(j, cleanups.get(&j.id).copied()))
        .map(|j| j.id.clone())
        .collect()
}
