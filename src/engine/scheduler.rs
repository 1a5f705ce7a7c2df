//! The scheduler behind `pitr serve`: each tick looks at the store and the
//! injectable clock, starts accepted requests whose window (or pre-staging
//! time) has come, marks windows that can no longer hold a run `missed`,
//! continues pre-staged runs when their window opens, and resumes runs in
//! progress that no live runner holds (after a restart, or after another
//! runner died). One active run per environment, at most
//! `max_concurrent_runs` in all: a start is claimed in the store, which
//! counts the runs every runner sharing it drives and refuses the claim at
//! the limit (a run taken over from a dead runner was counted when it
//! started, so its resumption is held back only by this runner's own count).
//! Runners sharing ARM's budget (`[azure.rate_limits] runners`) also split
//! each subscription's runs between them (see [`Shares`]), and a pre-staged
//! run is claimed ahead of its window only with a free restore slot.
use super::{Engine, EngineError};
use crate::domain::lifecycle::LifecycleEvent;
use crate::domain::schedule::{self, Due, Estimates};
use crate::domain::step::Checkpoints;
use crate::domain::{Job, JobId, JobStatus, RequestId, RequestStatus, StepName};
use crate::store::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// How long after a run that changed nothing the scheduler starts the
/// request again.
const RETRY_AFTER_RELEASE: chrono::Duration = chrono::Duration::minutes(5);

/// How often an accepted request's restore point is checked again against
/// the database's retention (two ARM reads each time).
const RETENTION_RECHECK: chrono::Duration = chrono::Duration::minutes(15);

/// How long the scheduler trusts that another runner drives a run before it
/// reads the run's lease again (a run released on a graceful stop is
/// continued by another runner within this).
const HELD_REREAD: chrono::Duration = chrono::Duration::seconds(10);

#[derive(Debug, Clone)]
struct Held {
    owner: String,
    until: chrono::DateTime<chrono::Utc>,
    seen: chrono::DateTime<chrono::Utc>,
}

/// How long the scheduler uses an environment's estimates before it reads
/// its history again.
const ESTIMATES_REREAD: chrono::Duration = chrono::Duration::minutes(1);

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

/// Per subscription, the runs in play and those this runner drives, for
/// [`schedule::fair_share`].
struct Shares {
    runners: usize,
    in_play: HashMap<String, usize>,
    own: HashMap<String, usize>,
}

impl Shares {
    fn new(runners: usize) -> Self {
        Self {
            runners,
            in_play: HashMap::new(),
            own: HashMap::new(),
        }
    }

    fn in_play(&mut self, sub: String) {
        *self.in_play.entry(sub).or_default() += 1;
    }

    fn take(&mut self, sub: String) {
        *self.own.entry(sub).or_default() += 1;
    }

    /// Whether one more run of `sub` is within this runner's share.
    fn allows(&self, sub: &str) -> bool {
        self.runners <= 1
            || self.own.get(sub).copied().unwrap_or(0)
                < schedule::fair_share(self.in_play.get(sub).copied().unwrap_or(0), self.runners)
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
    /// Staged runs seen parked, with their window's start: not looked up in
    /// the store again before then (a thousand staged runs would otherwise
    /// cost three queries each on every tick).
    parked: Mutex<HashMap<RequestId, chrono::DateTime<chrono::Utc>>>,
    /// Runs another runner drives: its id, until when they are not looked
    /// at again (the lease's end as last read, at most [`HELD_REREAD`]
    /// ahead) and when that was read. Looked at again sooner when the
    /// holder's process is seen gone, or the run's window has opened since
    /// (a staged run released by its runner is anyone's then).
    held: Mutex<HashMap<RequestId, Held>>,
    /// Each environment's estimates, read from its history at most every
    /// [`ESTIMATES_REREAD`] (a query per accepted request on every tick
    /// otherwise).
    estimates: Mutex<HashMap<String, (Estimates, chrono::DateTime<chrono::Utc>)>>,
}

impl Scheduler {
    pub fn new(engine: Arc<Engine>, max_concurrent: usize) -> Self {
        Self {
            engine,
            max_concurrent: max_concurrent.max(1),
            running: Mutex::new(HashMap::new()),
            retention_checked: Mutex::new(HashMap::new()),
            parked: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
            estimates: Mutex::new(HashMap::new()),
        }
    }

    fn active(&self) -> usize {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.retain(|_, h| !h.is_finished());
        running.keys().filter(|k| matches!(k, Task::Run(_))).count()
    }

    /// The runs this runner starts itself: its fair share of
    /// `max_concurrent_runs` when `[azure.rate_limits] runners` share the
    /// ARM budget (each paces itself to 1/runners of it, so each takes
    /// 1/runners of the runs; otherwise the first runner to look when many
    /// windows open would claim them all with a fraction of the budget).
    fn own_share(&self) -> usize {
        self.max_concurrent
            .div_ceil(self.engine.azure.runners_sharing())
            .max(1)
    }

    fn is_driving(&self, task: &Task) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(task)
            .is_some_and(|h| !h.is_finished())
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

    /// One pass over the requests.
    pub async fn tick(&self) -> Result<TickReport, EngineError> {
        let mut report = TickReport::default();
        let now = self.engine.clock.now();
        let requests = self.engine.store.list_requests().await?;
        // Runs in progress: running requests, and rollbacks (their request
        // keeps its status while the rollback runs).
        let mut in_progress: Vec<&crate::domain::RestoreRequest> = Vec::new();
        for req in &requests {
            match req.status {
                RequestStatus::Running => in_progress.push(req),
                RequestStatus::Succeeded | RequestStatus::Failed
                    if self
                        .unfinished_job(&req.id)
                        .await?
                        .is_some_and(|j| j.is_rollback()) =>
                {
                    in_progress.push(req)
                }
                _ => {}
            }
        }
        let busy_envs: Vec<String> = in_progress
            .iter()
            .map(|r| r.spec.environment.clone())
            .collect();

        // Accepted requests whose time has come, decided first: with the
        // runs in progress they are the work in play that runners sharing
        // ARM's budget divide between them.
        let mut accepted: Vec<_> = requests
            .iter()
            .filter(|r| r.status == RequestStatus::Accepted)
            .collect();
        accepted.sort_by_key(|r| r.spec.window.start);
        // Pre-staged restores queue per subscription behind Azure SQL's cap
        // (`[azure] max_concurrent_restores_per_subscription`): the n-th in
        // its subscription starts n/cap restore-lengths earlier (the cap of
        // the fleet: every runner's slots together, as the queue positions
        // count every runner's requests).
        let cap = self.engine.azure.restore_cap() * self.engine.azure.runners_sharing();
        let queue = self.restore_queue(&requests);
        let mut due_now = Vec::new();
        for req in accepted {
            let env = match self.engine.environment(&req.spec.environment) {
                Ok(e) => e.clone(),
                Err(e) => {
                    tracing::warn!(request = %req.id, error = %e, "request names an environment no longer configured");
                    continue;
                }
            };
            let prestage = req.spec.prestage || env.prestage;
            let est = self.estimates_of(&env, now).await?;
            let lead = match queue.get(&req.id) {
                Some(ahead) if prestage => {
                    schedule::queue_lead(*ahead, cap, est.of(StepName::Restore))
                }
                _ => chrono::Duration::zero(),
            };
            match schedule::due_queued(req, prestage, now, &est, lead) {
                Due::Wait => {
                    report.due_at(if prestage {
                        schedule::prestage_start(req, &est) - lead
                    } else {
                        req.spec.window.start
                    });
                    // A request about to start is checked by its preflight;
                    // only those still waiting are looked at again here (two
                    // ARM reads each, which a thousand windows opening at
                    // once would otherwise spend in the tick that starts them).
                    self.recheck_retention(req, now, &mut report).await;
                }
                Due::Miss(why) => {
                    self.engine
                        .transition(&req.id, LifecycleEvent::Miss, Some(why.clone()))
                        .await?;
                    report.missed.push((req.id.clone(), why));
                }
                Due::Start => due_now.push((req, prestage)),
            }
        }

        // Each subscription's runs in play, and those this runner drives.
        let mut shares = Shares::new(self.engine.azure.runners_sharing());
        let subscription = |req: &crate::domain::RestoreRequest| {
            self.engine
                .environment(&req.spec.environment)
                .map(|e| e.subscription_id.to_ascii_lowercase())
                .unwrap_or_default()
        };
        for req in in_progress.iter().chain(due_now.iter().map(|(r, _)| r)) {
            shares.in_play(subscription(req));
        }
        // Pre-staged runs this runner drives before their window: each holds
        // (or waits for) one of its restore slots in the subscription.
        let mut staging: HashMap<String, usize> = HashMap::new();
        for req in &requests {
            if self.is_driving(&Task::Run(req.id.clone())) {
                shares.take(subscription(req));
                if now < req.spec.window.start {
                    *staging.entry(subscription(req)).or_default() += 1;
                }
            }
        }
        let slots = self.engine.azure.restore_cap();

        // Runs are started once the whole pass has decided (a thousand
        // windows opening at once: the pass is not slowed down by the runs
        // it has just started, which all want the store).
        let mut spawns: Vec<(Engine, RequestId, Option<Job>)> = Vec::new();
        // Runs in progress that nobody drives: after a restart, or a
        // pre-staged run whose window has opened.
        let mut parked_until = self
            .parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let windows: HashMap<&RequestId, chrono::DateTime<chrono::Utc>> = in_progress
            .iter()
            .map(|r| (&r.id, r.spec.window.start))
            .collect();
        // Forgotten when the window opens, or moves, or the run ended.
        parked_until.retain(|id, until| now < *until && windows.get(id) == Some(until));
        held.retain(|id, _| windows.contains_key(id));
        for req in in_progress.iter().copied() {
            if self.is_driving(&Task::Run(req.id.clone())) {
                continue;
            }
            if let Some(until) = parked_until.get(&req.id) {
                report.due_at(*until);
                continue;
            }
            if held.get(&req.id).is_some_and(|h| {
                now < h.until
                    && !(h.seen < req.spec.window.start && req.spec.window.start <= now)
                    && !Engine::holder_is_gone(&h.owner)
            }) {
                continue;
            }
            let Some(job) = self.unfinished_job(&req.id).await? else {
                continue;
            };
            if let Some(lease) = self.engine.live_lease(&job).await? {
                held.insert(
                    req.id.clone(),
                    Held {
                        owner: lease.owner,
                        until: lease.expires_at.min(now + HELD_REREAD),
                        seen: now,
                    },
                );
                continue;
            }
            held.remove(&req.id);
            // Staged for its window, or waiting for a person: not resumed.
            let steps = self.engine.store.steps(&job.id).await?;
            let staged = job.is_prestaged()
                && job.facts.recovering.is_none()
                && steps.succeeded(StepName::Restore)
                && steps.record(StepName::Offline).is_none();
            let parked = (staged && now < req.spec.window.start)
                || steps
                    .iter()
                    .any(|s| s.status == crate::domain::StepStatus::Waiting);
            if parked {
                if now < req.spec.window.start {
                    report.due_at(req.spec.window.start);
                    if staged {
                        parked_until.insert(req.id.clone(), req.spec.window.start);
                    }
                }
                continue;
            }
            // A staged run whose window opened is this runner's only within
            // its share; a run another runner left midway (it died) is taken
            // over at once, whatever the shares: its environment may be down.
            let sub = subscription(req);
            if self.active() + spawns.len() >= self.max_concurrent
                || (staged && !shares.allows(&sub))
            {
                report.deferred.push(req.id.clone());
                continue;
            }
            shares.take(sub);
            spawns.push((self.engine.scoped(&req.id), req.id.clone(), None));
            report.resumed.push(req.id.clone());
        }

        *self.parked.lock().unwrap_or_else(|e| e.into_inner()) = parked_until;
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = held;

        for (req, prestage) in due_now {
            let sub = subscription(req);
            // A pre-staged run starts ahead of its window only when one of
            // this runner's restore slots in its subscription is free: the
            // queue stays in the store, where a runner with a free slot
            // takes the next one, rather than behind one runner's slots
            // while another's stand idle. (Letting half as many again run
            // their preflight meanwhile was measured: with three runners the
            // last restores ended after their windows opened.)
            let early = prestage && now < req.spec.window.start;
            if early && slots > 0 && staging.get(&sub).copied().unwrap_or(0) >= slots {
                report.deferred.push(req.id.clone());
                continue;
            }
            // One active run per environment, the runner's share, and the
            // global limit.
            if busy_envs.contains(&req.spec.environment)
                || self.active() + spawns.len() >= self.own_share()
                || !shares.allows(&sub)
            {
                report.deferred.push(req.id.clone());
                continue;
            }
            // A run that stopped before changing anything (Azure
            // unreachable, say) is tried again, but not every tick.
            let jobs = self.engine.store.jobs_for_request(&req.id).await?;
            let retry_at = crate::domain::job::current_run(&jobs)
                .filter(|j| j.status == JobStatus::Failed)
                .and_then(|j| j.finished_at)
                .map(|t| t + RETRY_AFTER_RELEASE);
            if retry_at.is_some_and(|t| now < t) {
                continue;
            }
            // The claim is the start: atomic in the store, under the limit
            // counted over every runner.
            let engine = self.engine.scoped(&req.id);
            match engine.start_within(&req.id, self.max_concurrent).await {
                Ok(job) => {
                    if early {
                        *staging.entry(sub.clone()).or_default() += 1;
                    }
                    shares.take(sub);
                    spawns.push((engine, req.id.clone(), Some(job)));
                    report.started.push(req.id.clone());
                }
                Err(EngineError::Store(StoreError::LimitReached { .. })) => {
                    report.deferred.push(req.id.clone())
                }
                // Another runner started it since this tick read the
                // requests: not this runner's run.
                Err(EngineError::Store(
                    StoreError::StatusConflict { .. } | StoreError::RunInProgress { .. },
                )) => {
                    tracing::debug!(request = %req.id, "started by another runner meanwhile")
                }
                Err(EngineError::Lifecycle(e)) => {
                    tracing::debug!(request = %req.id, error = %e, "no longer startable")
                }
                Err(e) => {
                    tracing::warn!(request = %req.id, error = %e, "run could not start")
                }
            }
        }
        for (engine, id, claimed) in spawns {
            self.spawn(engine, &id, claimed);
        }
        // Originals kept past their retention, dropped in the background.
        for req in requests
            .iter()
            .filter(|r| r.status == RequestStatus::Succeeded)
        {
            for job in self.engine.store.jobs_for_request(&req.id).await? {
                let key = Task::Cleanup(job.id.clone());
                if self.is_driving(&key) || !self.engine.cleanup_due(&job).await? {
                    continue;
                }
                let engine = self.engine.clone();
                let id = job.id.clone();
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
                report.cleaned.push(id);
            }
        }
        Ok(report)
    }

    /// For each accepted or running pre-staged request, how many pre-staged
    /// requests of its subscription come before it (by window start): the
    /// queue its restore joins. Requests already running keep their place,
    /// so those behind them do not move forward and lose their lead.
    fn restore_queue(
        &self,
        requests: &[crate::domain::RestoreRequest],
    ) -> HashMap<RequestId, usize> {
        let mut queued: Vec<(&str, chrono::DateTime<chrono::Utc>, &RequestId)> = requests
            .iter()
            .filter(|r| matches!(r.status, RequestStatus::Accepted | RequestStatus::Running))
            .filter_map(|r| {
                let env = self.engine.environment(&r.spec.environment).ok()?;
                (r.spec.prestage || env.prestage).then_some((
                    env.subscription_id.as_str(),
                    r.spec.window.start,
                    &r.id,
                ))
            })
            .collect();
        queued.sort_by(|a, b| {
            (a.0.to_ascii_lowercase(), a.1, a.2.to_string()).cmp(&(
                b.0.to_ascii_lowercase(),
                b.1,
                b.2.to_string(),
            ))
        });
        let mut out = HashMap::new();
        let mut sub = String::new();
        let mut n = 0;
        for (s, _, id) in queued {
            if !s.eq_ignore_ascii_case(&sub) {
                sub = s.to_string();
                n = 0;
            }
            out.insert(id.clone(), n);
            n += 1;
        }
        out
    }

    /// The environment's estimates, from its history at most
    /// [`ESTIMATES_REREAD`] ago.
    async fn estimates_of(
        &self,
        env: &crate::domain::Environment,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Estimates, EngineError> {
        if let Some((est, _)) = self
            .estimates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&env.name)
            .filter(|(_, at)| now < *at + ESTIMATES_REREAD && *at <= now)
        {
            return Ok(est.clone());
        }
        let est = self.engine.estimates(env).await?;
        self.estimates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(env.name.clone(), (est.clone(), now));
        Ok(est)
    }

    /// The request's run, if it is unfinished.
    /// The retention check of an accepted request, at most every
    /// [`RETENTION_RECHECK`]; Azure not answering is logged, not fatal.
    async fn recheck_retention(
        &self,
        req: &crate::domain::RestoreRequest,
        now: chrono::DateTime<chrono::Utc>,
        report: &mut TickReport,
    ) {
        {
            let mut checked = self
                .retention_checked
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if checked
                .get(&req.id)
                .is_some_and(|at| now < *at + RETENTION_RECHECK)
            {
                return;
            }
            checked.insert(req.id.clone(), now);
        }
        match self.engine.recheck_retention(req).await {
            Ok(Some(w)) => report.flagged.push((req.id.clone(), w)),
            Ok(None) => {}
            Err(e) => {
                self.retention_checked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&req.id);
                tracing::warn!(request = %req.id, error = %e, "retention check failed; tried again next pass")
            }
        }
    }

    async fn unfinished_job(&self, request_id: &RequestId) -> Result<Option<Job>, EngineError> {
        let jobs = self.engine.store.jobs_for_request(request_id).await?;
        Ok(crate::domain::job::current_run(&jobs)
            .filter(|j| j.status == JobStatus::Running)
            .cloned())
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
