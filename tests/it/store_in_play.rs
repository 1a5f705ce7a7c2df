//! `Store::work_in_play`, part of the shared store suite
//! ([`crate::store_suite::store_suite`] calls [`in_play_story`] for every
//! backend): the requests in play, their jobs, the leases and checkpoints
//! of the running ones, and the jobs awaiting a cleanup, without finished
//! history. Looks only at its own rows (the store may be shared).
use crate::store_suite::{event, fresh, job, request, submitted, t};
use chrono::Duration;
use pitr::domain::job::RollbackOf;
use pitr::domain::{
    Job, JobId, JobStatus, RequestId, RequestStatus as S, RestoreRequest, StepName, StepRecord,
    StepStatus,
};
use pitr::store::{Lease, SharedStore, WorkInPlay};

const TTL: Duration = Duration::hours(1);

async fn accepted(store: &SharedStore, at: i64) -> RestoreRequest {
    let req = request(&fresh("play"), &fresh("env-play"), t(at));
    store.insert_request(&req, &submitted(&req)).await.unwrap();
    store
        .transition_request(&event(&req.id, Some(S::Submitted), S::Accepted, t(at)))
        .await
        .unwrap();
    req
}

/// A request whose run is claimed (running, leased) at `t(at)`.
async fn running(store: &SharedStore, at: i64) -> (RestoreRequest, Job, Lease) {
    let req = accepted(store, at).await;
    let job = job(&fresh("playjob"), &req.id, t(at));
    let start = event(&req.id, Some(S::Accepted), S::Running, t(at));
    let lease = store
        .claim_run(&job, Some(&start), "host-p:1.1:pp", t(at), TTL, None)
        .await
        .unwrap();
    (req, job, lease)
}

fn step(name: StepName, status: StepStatus, attempts: u32) -> StepRecord {
    StepRecord {
        status,
        attempts,
        ..StepRecord::pending(name)
    }
}

/// A request whose run succeeded at `t(at + 10)`, its lease released.
async fn succeeded(store: &SharedStore, at: i64, dry_run: bool) -> (RestoreRequest, Job) {
    let (req, mut job, lease) = running(store, at).await;
    job.dry_run = dry_run;
    job.status = JobStatus::Succeeded;
    job.finished_at = Some(t(at + 10));
    store.update_job(&job, Some(&lease)).await.unwrap();
    let done = event(&req.id, Some(S::Running), S::Succeeded, t(at + 10));
    store.transition_request(&done).await.unwrap();
    store.release_lease(&lease).await.unwrap();
    (req, job)
}

/// `work`, with only the rows of `ours`.
fn only(mut work: WorkInPlay, ours: &[&RequestId]) -> WorkInPlay {
    work.requests.retain(|r| ours.contains(&&r.id));
    work.jobs.retain(|j| ours.contains(&&j.request_id));
    work.awaiting_cleanup
        .retain(|j| ours.contains(&&j.request_id));
    let jobs: Vec<JobId> = work
        .jobs
        .iter()
        .chain(&work.awaiting_cleanup)
        .map(|j| j.id.clone())
        .collect();
    work.leases.retain(|l| jobs.contains(&l.job_id));
    work.steps.retain(|s| jobs.contains(&s.job_id));
    work
}

pub async fn in_play_story(store: &SharedStore) {
    let base = 6_000_000;
    let waiting = accepted(store, base).await;
    let submitted_only = request(&fresh("play"), &fresh("env-play"), t(base + 1));
    store
        .insert_request(&submitted_only, &submitted(&submitted_only))
        .await
        .unwrap();
    let (run, run_job, run_lease) = running(store, base + 2).await;
    let preflight = step(StepName::Preflight, StepStatus::Succeeded, 1);
    store
        .save_step(&run_job.id, &preflight, Some(&run_lease))
        .await
        .unwrap();
    // Finished: cleaned up, given up, a rehearsal, still kept.
    let (cleaned, cleaned_job) = succeeded(store, base + 3, false).await;
    let cleanup = step(StepName::Cleanup, StepStatus::Succeeded, 1);
    store
        .save_step(&cleaned_job.id, &cleanup, None)
        .await
        .unwrap();
    let (gave_up, gave_up_job) = succeeded(store, base + 4, false).await;
    let mut failing = step(StepName::Cleanup, StepStatus::Failed, 2);
    store
        .save_step(&gave_up_job.id, &failing, None)
        .await
        .unwrap();
    let (rehearsed, _) = succeeded(store, base + 5, true).await;
    let (kept, kept_job) = succeeded(store, base + 6, false).await;
    let swap = step(StepName::Swap, StepStatus::Succeeded, 1);
    store.save_step(&kept_job.id, &swap, None).await.unwrap();
    // A rollback of `kept` runs: its request (succeeded) is in play.
    let rollback = Job {
        facts: pitr::domain::JobFacts {
            rollback: Some(RollbackOf {
                job: kept_job.id.clone(),
                by: "ops@contoso.com".into(),
                reason: None,
            }),
            ..Default::default()
        },
        ..job(&fresh("playrb"), &kept.id, t(base + 20))
    };
    let rb_lease = store
        .claim_run(&rollback, None, "host-p:1.1:pp", t(base + 20), TTL, None)
        .await
        .unwrap();
    let ours = [
        &waiting.id,
        &submitted_only.id,
        &run.id,
        &cleaned.id,
        &gave_up.id,
        &rehearsed.id,
        &kept.id,
    ];

    let work = only(store.work_in_play().await.unwrap(), &ours);
    let ids = |reqs: &[RestoreRequest]| reqs.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    // Newest first; finished requests only while a job of theirs runs.
    assert_eq!(
        ids(&work.requests),
        vec![kept.id.clone(), run.id.clone(), waiting.id.clone()]
    );
    let job_ids = |jobs: &[Job]| jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        job_ids(&work.jobs),
        vec![run_job.id.clone(), kept_job.id.clone(), rollback.id.clone()]
    );
    let mut leased: Vec<JobId> = work.leases.iter().map(|l| l.job_id.clone()).collect();
    leased.sort();
    let mut running_jobs = vec![run_job.id.clone(), rollback.id.clone()];
    running_jobs.sort();
    assert_eq!(leased, running_jobs, "only the running jobs' leases");
    assert_eq!(
        work.leases.iter().find(|l| l.job_id == run_job.id),
        Some(&run_lease)
    );
    // Awaiting a cleanup: kept, and the one that failed twice.
    let mut awaiting = job_ids(&work.awaiting_cleanup);
    awaiting.sort();
    let mut expected = vec![gave_up_job.id.clone(), kept_job.id.clone()];
    expected.sort();
    assert_eq!(awaiting, expected);
    let steps = work.steps_by_job();
    assert_eq!(steps[&run_job.id], vec![preflight.clone()]);
    assert_eq!(steps[&kept_job.id], vec![swap.clone()]);
    assert_eq!(steps[&gave_up_job.id], vec![failing.clone()]);
    assert!(!steps.contains_key(&cleaned_job.id));

    // The third failure gives up; a cleanup that succeeds is done; a
    // restore rolled back drops nothing; a new attempt awaits again.
    failing.attempts = 3;
    store
        .save_step(&gave_up_job.id, &failing, None)
        .await
        .unwrap();
    let awaiting = |work: WorkInPlay| job_ids(&work.awaiting_cleanup);
    let now = || async { only(store.work_in_play().await.unwrap(), &ours) };
    assert_eq!(awaiting(now().await), vec![kept_job.id.clone()]);
    failing.status = StepStatus::Running;
    store
        .save_step(&gave_up_job.id, &failing, None)
        .await
        .unwrap();
    assert_eq!(awaiting(now().await).len(), 2);
    store
        .save_step(&gave_up_job.id, &cleanup, None)
        .await
        .unwrap();
    let rolled_back = Job {
        status: JobStatus::RolledBack,
        ..kept_job.clone()
    };
    store.update_job(&rolled_back, None).await.unwrap();
    assert!(awaiting(now().await).is_empty());
    // Written again as succeeded (its cleanup not done): awaiting again.
    store.update_job(&kept_job, None).await.unwrap();
    assert_eq!(awaiting(now().await), vec![kept_job.id.clone()]);

    // The rollback ends: its request is no longer in play.
    let mut rollback = rollback;
    rollback.status = JobStatus::Succeeded;
    rollback.finished_at = Some(t(base + 30));
    store.update_job(&rollback, Some(&rb_lease)).await.unwrap();
    store.release_lease(&rb_lease).await.unwrap();
    let work = now().await;
    assert_eq!(
        ids(&work.requests),
        vec![run.id.clone(), waiting.id.clone()]
    );
    assert_eq!(
        awaiting(work),
        vec![kept_job.id.clone()],
        "a rollback job awaits no cleanup"
    );
    store.release_lease(&run_lease).await.unwrap();
}
