//! The scheduler behind `pitr serve`. Each tick reads the work in play in
//! one store query ([`crate::store::Store::work_in_play`]: no finished
//! history, so a tick costs the same with 10,000 finished requests stored as
//! with none), adds what this process knows ([`snapshot`]), asks the pure
//! [`crate::domain::tick::plan`] what to do, and does it: starts accepted
//! requests whose window (or pre-staging time) has come, marks windows that
//! can no longer hold a run `missed`, checks waiting requests' restore
//! points against the retention, continues pre-staged runs when their window
//! opens, resumes runs in progress that no live runner holds (after a
//! restart, or after another runner died or released them), and drops
//! originals kept past their retention. The policy (one active run per
//! environment, the share of `max_concurrent_runs` and of each
//! subscription when runners share ARM's budget, restore slots for runs
//! pre-staged ahead of their window) is the plan's module doc.
//!
//! A start is claimed in the store, which counts the runs every runner
//! sharing it drives and refuses the claim at the limit (a run taken over
//! from a dead runner was counted when it started, so its resumption is
//! held back only by this runner's own count).
mod snapshot;

use super::{Engine, EngineError};
use crate::domain::lifecycle::LifecycleEvent;
use crate::domain::schedule::Estimates;
use crate::domain::tick::{self, SchedulerAction, Snapshot, RETENTION_RECHECK};
use crate::domain::{Job, JobId, RequestId, RestoreRequest};
use crate::store::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// What one tick did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub started: Vec<RequestId>,
    pub resumed: Vec<RequestId>,
    pub missed: Vec<(RequestId, String)>,
    /// Due, but held back by the limit on concurrent runs.
    pub deferred: Vec<RequestId>,
    /// Jobs whose original database is being dropped after its retention.
    pub cleaned: Vec<JobId>,
    /// Accepted requests whose restore point will be gone at their window.
    pub flagged: Vec<(RequestId, String)>,
    /// The next instant something is due (a window opens, a pre-staged run
    /// starts): the scheduler wakes then rather than at its next tick, so
    /// that a window is not kept waiting for up to a tick.
    pub next_due: Option<chrono::DateTime<chrono::Utc>>,
}

impl TickReport {
    fn due_at(&mut self, at: chrono::DateTime<chrono::Utc>) {
        self.next_due = Some(self.next_due.map_or(at, |d| d.min(at)));
    }
}

/// What a scheduler drives in the background.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Task {
    Run(RequestId),
    Cleanup(JobId),
}

pub struct Scheduler {
    engine: Arc<Engine>,
    max_concurrent: usize,
    /// Runs and cleanups this scheduler drives.
    running: Mutex<HashMap<Task, JoinHandle<()>>>,
    /// When each accepted request's retention was last checked.
    retention_checked: Mutex<HashMap<RequestId, chrono::DateTime<chrono::Utc>>>,
    /// Each environment's estimates, read from its history at most every
    /// minute (a query per accepted request on every tick otherwise).
    estimates: Mutex<HashMap<String, (Estimates, chrono::DateTime<chrono::Utc>)>>,
}

impl Scheduler {
    pub fn new(engine: Arc<Engine>, max_concurrent: usize) -> Self {
        Self {
            engine,
            max_concurrent: max_concurrent.max(1),
            running: Mutex::new(HashMap::new()),
            retention_checked: Mutex::new(HashMap::new()),
            estimates: Mutex::new(HashMap::new()),
        }
    }

    fn active(&self) -> usize {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.retain(|_, h| !h.is_finished());
        running.keys().filter(|k| matches!(k, Task::Run(_))).count()
    }

    fn is_driving(&self, task: &Task) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(task)
            .is_some_and(|h| !h.is_finished())
    }

    fn retention_checked(&self) -> HashMap<RequestId, chrono::DateTime<chrono::Utc>> {
        self.retention_checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn forget_retention_checks(&self, runs: &[tick::Run]) {
        self.retention_checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, _| runs.iter().any(|r| &r.request.id == id));
    }

    /// Drives a run in the background: the job claimed by `claimed`, or
    /// (none) the request's unfinished run, resumed.
    fn spawn(&self, engine: super::Engine, request_id: &RequestId, claimed: Option<Job>) {
        let id = request_id.clone();
        let task = async move {
            let outcome = match claimed {
                Some(job) => engine.drive_job(job).await,
                None => engine.resume(&id).await,
            };
            match outcome {
                Ok(crate::engine::Outcome::Staged(_)) => {
                    tracing::info!(request = %id, "restore staged; waiting for the window")
                }
                Ok(o) if o.is_success() => tracing::info!(request = %id, "run succeeded"),
                Ok(o) => tracing::warn!(request = %id, outcome = %o.describe(), "run ended"),
                Err(e) => tracing::warn!(request = %id, error = %e, "run ended"),
            }
        };
        let handle = tokio::spawn(task.in_current_span());
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(Task::Run(request_id.clone()), handle);
    }

    /// Drops a job's original in the background.
    fn spawn_cleanup(&self, job: Job) {
        let engine = self.engine.clone();
        let key = Task::Cleanup(job.id.clone());
        let handle = tokio::spawn(
            async move {
                match engine.cleanup(&job).await {
                    Ok(_) => {}
                    // Another runner found it due too and holds it.
                    Err(EngineError::Store(StoreError::LeaseHeld { owner, .. })) => {
                        tracing::debug!(job = %job.id, %owner, "cleanup done by another runner")
                    }
                    Err(e) => tracing::warn!(job = %job.id, error = %e, "cleanup failed"),
                }
            }
            .in_current_span(),
        );
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, handle);
    }

    /// One pass: the work in play read, planned, and done.
    pub async fn tick(&self) -> Result<TickReport, EngineError> {
        let now = self.engine.clock.now();
        let work = self.engine.store.work_in_play().await?;
        let snapshot = self.snapshot(work, now).await?;
        let actions = tick::plan(&snapshot, now);
        self.perform(actions, &snapshot, now).await
    }

    /// Does what the plan decided, in its order. Runs are started once the
    /// whole plan is claimed (a thousand windows opening at once: the pass
    /// is not slowed down by the runs it has just started, which all want
    /// the store), then the cleanups.
    async fn perform(
        &self,
        actions: Vec<SchedulerAction>,
        snapshot: &Snapshot,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<TickReport, EngineError> {
        let mut report = TickReport::default();
        let mut spawns: Vec<(Engine, RequestId, Option<Job>)> = Vec::new();
        let mut cleanups = Vec::new();
        let request = |id: &RequestId| snapshot.runs.iter().find(|r| &r.request.id == id);
        for action in actions {
            match action {
                SchedulerAction::WakeAt(at) => report.due_at(at),
                SchedulerAction::Miss { request, why } => {
                    self.engine
                        .transition(&request, LifecycleEvent::Miss, Some(why.clone()))
                        .await?;
                    report.missed.push((request, why));
                }
                SchedulerAction::CheckRetention(id) => {
                    if let Some(run) = request(&id) {
                        self.recheck_retention(&run.request, now, &mut report).await;
                    }
                }
                SchedulerAction::Defer(id) => report.deferred.push(id),
                SchedulerAction::Resume(id) => {
                    spawns.push((self.engine.scoped(&id), id.clone(), None));
                    report.resumed.push(id);
                }
                SchedulerAction::Start(id) => {
                    if let Some(spawn) = self.start(&id, &mut report).await {
                        spawns.push(spawn);
                    }
                }
                SchedulerAction::CleanUp(job) => {
                    if let Some(kept) = snapshot.kept.iter().find(|k| k.job.id == job) {
                        cleanups.push(kept.job.clone());
                        report.cleaned.push(job);
                    }
                }
            }
        }
        for (engine, id, claimed) in spawns {
            self.spawn(engine, &id, claimed);
        }
        for job in cleanups {
            self.spawn_cleanup(job);
        }
        Ok(report)
    }

    /// The claim is the start: atomic in the store, under the limit counted
    /// over every runner. The run to drive, if claimed.
    async fn start(
        &self,
        id: &RequestId,
        report: &mut TickReport,
    ) -> Option<(Engine, RequestId, Option<Job>)> {
        let engine = self.engine.scoped(id);
        match engine.start_within(id, self.max_concurrent).await {
            Ok(job) => {
                report.started.push(id.clone());
                return Some((engine, id.clone(), Some(job)));
            }
            Err(EngineError::Store(StoreError::LimitReached { .. })) => {
                report.deferred.push(id.clone())
            }
            // Another runner started it since this tick read the requests:
            // not this runner's run.
            Err(EngineError::Store(
                StoreError::StatusConflict { .. } | StoreError::RunInProgress { .. },
            )) => tracing::debug!(request = %id, "started by another runner meanwhile"),
            Err(EngineError::Lifecycle(e)) => {
                tracing::debug!(request = %id, error = %e, "no longer startable")
            }
            Err(e) => tracing::warn!(request = %id, error = %e, "run could not start"),
        }
        None
    }

    /// The retention check of an accepted request (the plan asks for one
    /// at most every [`RETENTION_RECHECK`]); Azure not answering is logged,
    /// not fatal, and the check is tried again at the next tick.
    async fn recheck_retention(
        &self,
        req: &RestoreRequest,
        now: chrono::DateTime<chrono::Utc>,
        report: &mut TickReport,
    ) {
        self.retention_checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(req.id.clone(), now);
        match self.engine.recheck_retention(req).await {
            Ok(Some(w)) => report.flagged.push((req.id.clone(), w)),
            Ok(None) => {}
            Err(e) => {
                self.retention_checked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&req.id);
                tracing::warn!(request = %req.id, error = %e, recheck_every = %RETENTION_RECHECK, "retention check failed; tried again next pass")
            }
        }
    }

    /// Waits for every run this scheduler started (tests, shutdown).
    pub async fn wait_idle(&self) {
        loop {
            let handles: Vec<JoinHandle<()>> = {
                let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
                running.drain().map(|(_, h)| h).collect()
            };
            if handles.is_empty() {
                return;
            }
            for h in handles {
                let _ = h.await;
            }
        }
    }

    /// Ticks every `every` until `stop` becomes true, then lets the runs
    /// stop at a safe point (they share the engine's shutdown signal).
    pub async fn serve(
        &self,
        every: std::time::Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), EngineError> {
        loop {
            let mut wait = every;
            match self.tick().await {
                Ok(r) => {
                    if let Some(at) = r.next_due {
                        let until = (at - self.engine.clock.now()).to_std().unwrap_or_default();
                        wait = wait.min(until);
                    }
                    for id in &r.started {
                        tracing::info!(request = %id, "window open: run started");
                    }
                    for id in &r.resumed {
                        tracing::info!(request = %id, "run resumed");
                    }
                    for (id, why) in &r.missed {
                        tracing::warn!(request = %id, why, "window missed");
                    }
                }
                Err(e) => tracing::error!(error = %e, "scheduler tick failed; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                r = stop.wait_for(|s| *s) => {
                    let _ = r;
                    break;
                }
            }
        }
        self.wait_idle().await;
        Ok(())
    }
}
