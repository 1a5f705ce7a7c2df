//! What one scheduler tick does, decided from a snapshot of the work in play
//! (read in one store query, without finished history) and what this runner
//! drives: pure, so that every case is tested without a store, a clock or
//! Azure. The scheduler (`engine::scheduler`) gathers the [`Snapshot`],
//! calls [`plan`] and performs the [`SchedulerAction`]s in their order.
//!
//! - Accepted requests, by window start: a run starts when its window (or
//!   its pre-staging time) has come, a window that can no longer hold it is
//!   missed, and one still ahead has its restore point checked against the
//!   database's retention at most every [`RETENTION_RECHECK`].
//! - Runs in progress (running requests, and rollbacks: their request keeps
//!   its status while they run) that no live runner holds are resumed,
//!   unless they wait: a pre-staged run staged for its window, a step
//!   waiting for a person.
//! - One active run per environment; at most `max_concurrent_runs` driven
//!   by this runner, and its share of them when runners share ARM's budget
//!   ([`schedule::fair_share`]); a pre-staged run starts ahead of its window
//!   only with a free restore slot of this runner in its subscription.
//! - Originals kept past their retention are dropped (`cleanup`), unless a
//!   rollback that needs them is running.
use super::job::{current_run, Job, JobStatus};
use super::request::RestoreRequest;
use super::schedule::{self, Due, Estimates};
use super::step::{Checkpoints, StepName, StepRecord, StepStatus};
use super::{JobId, RequestId, RequestStatus};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;

/// How long after a run that changed nothing the request is started again.
pub const RETRY_AFTER_RELEASE: Duration = Duration::minutes(5);

/// How often an accepted request's restore point is checked again against
/// the database's retention (two ARM reads each time).
pub const RETENTION_RECHECK: Duration = Duration::minutes(15);

/// Everything a tick decides from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The requests in play (accepted, running, or with a running job), in
    /// the order the store lists requests (newest first).
    pub runs: Vec<Run>,
    /// Successful restores whose original database is still kept.
    pub kept: Vec<Kept>,
    pub runner: Runner,
}

/// This runner and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    /// `[scheduler] max_concurrent_runs` (counted over every runner by the
    /// store's claim; this runner starts at most its share of it).
    pub max_concurrent: usize,
    /// Runners sharing ARM's budget (`[azure.rate_limits] runners`).
    pub runners: usize,
    /// This runner's restore slots in each subscription.
    pub restore_slots: usize,
    /// Runs this runner drives now.
    pub active: usize,
    /// How long an original is kept after its run (`keep_original_hours`).
    pub keep_original: Duration,
}

impl Default for Runner {
    fn default() -> Self {
        Self {
            max_concurrent: 1,
            runners: 1,
            restore_slots: 0,
            active: 0,
            keep_original: Duration::hours(24),
        }
    }
}

impl Runner {
    /// The runs this runner starts itself: its fair share of
    /// `max_concurrent_runs` when runners share the ARM budget (each paces
    /// itself to 1/runners of it, so each takes 1/runners of the runs;
    /// otherwise the first runner to look when many windows open would
    /// claim them all with a fraction of the budget).
    pub fn own_share(&self) -> usize {
        self.max_concurrent.div_ceil(self.runners.max(1)).max(1)
    }
}

/// A request in play, with what the store and this runner know of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub request: RestoreRequest,
    /// Its environment as configured (`None`: no longer configured).
    pub env: Option<EnvFacts>,
    /// The environment's estimates (needed for an accepted request).
    pub estimates: Option<Estimates>,
    /// Its jobs, oldest first.
    pub jobs: Vec<Job>,
    /// The lease on its unfinished job, if any.
    pub lease: Option<Holder>,
    /// The checkpoints of its unfinished job.
    pub steps: Vec<StepRecord>,
    /// This runner drives it now.
    pub driving: bool,
    /// When this runner last checked its restore point's retention.
    pub retention_checked: Option<DateTime<Utc>>,
}

impl Run {
    /// Its unfinished run: the current (real) job, still running.
    pub fn unfinished(&self) -> Option<&Job> {
        current_run(&self.jobs).filter(|j| j.status == JobStatus::Running)
    }

    fn prestage(&self) -> bool {
        self.request.spec.prestage || self.env.as_ref().is_some_and(|e| e.prestage)
    }

    /// Its subscription, lowercase (empty when the environment is unknown).
    fn subscription(&self) -> &str {
        self.env.as_ref().map_or("", |e| e.subscription.as_str())
    }

    /// A run in progress: its request is running, or its rollback is.
    fn in_progress(&self) -> bool {
        match self.request.status {
            RequestStatus::Running => true,
            RequestStatus::Succeeded | RequestStatus::Failed => {
                self.unfinished().is_some_and(|j| j.is_rollback())
            }
            _ => false,
        }
    }
}

/// What the tick needs of an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFacts {
    /// Its runs are pre-staged (the environment's setting).
    pub prestage: bool,
    /// Its subscription id, lowercase.
    pub subscription: String,
}

/// A lease on a job, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub owner: String,
    pub expires_at: DateTime<Utc>,
    /// Its owner's process is seen gone (same host).
    pub gone: bool,
}

impl Holder {
    /// A live runner holds the job.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now && !self.gone
    }
}

/// A successful restore whose original (`<db>_before_<job8>`) is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    pub job: Job,
    pub steps: Vec<StepRecord>,
    /// This runner is dropping it now.
    pub driving: bool,
}

/// What the scheduler does, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchedulerAction {
    /// The window cannot hold the run any more: the request is missed.
    Miss { request: RequestId, why: String },
    /// Check the restore point against the retention at the window.
    CheckRetention(RequestId),
    /// Claim the request's start (the store may still refuse it).
    Start(RequestId),
    /// Continue the request's unfinished run.
    Resume(RequestId),
    /// Due, but held back (a limit, a share, a slot, a busy environment).
    Defer(RequestId),
    /// Drop the job's original, in the background.
    CleanUp(JobId),
    /// Something is due then (a window opens, a pre-staged run starts):
    /// wake up rather than wait for the next tick.
    WakeAt(DateTime<Utc>),
}

/// Per subscription, the runs in play and those this runner drives.
struct Shares {
    runners: usize,
    in_play: HashMap<String, usize>,
    own: HashMap<String, usize>,
}

impl Shares {
    fn take(&mut self, sub: &str) {
        *self.own.entry(sub.to_string()).or_default() += 1;
    }

    /// Whether one more run of `sub` is within this runner's share.
    fn allows(&self, sub: &str) -> bool {
        self.runners <= 1
            || self.own.get(sub).copied().unwrap_or(0)
                < schedule::fair_share(self.in_play.get(sub).copied().unwrap_or(0), self.runners)
    }
}

/// Decides one tick. Starts are planned as if each claim succeeds: a claim
/// the store refuses frees its place at the next tick.
pub fn plan(s: &Snapshot, now: DateTime<Utc>) -> Vec<SchedulerAction> {
    use SchedulerAction::*;
    let mut out = Vec::new();
    let runner = &s.runner;
    let in_progress: Vec<&Run> = s.runs.iter().filter(|r| r.in_progress()).collect();

    // Accepted requests whose time has come, decided first: with the runs
    // in progress they are the work in play that runners sharing ARM's
    // budget divide between them. Pre-staged restores queue per
    // subscription behind Azure SQL's cap: the n-th in its subscription
    // starts n/cap restore-lengths earlier (the cap of the fleet: every
    // runner's slots together, as the queue counts every runner's requests).
    let mut accepted: Vec<&Run> = s
        .runs
        .iter()
        .filter(|r| r.request.status == RequestStatus::Accepted)
        .collect();
    accepted.sort_by_key(|r| r.request.spec.window.start);
    let cap = runner.restore_slots * runner.runners.max(1);
    let queue = restore_queue(&s.runs);
    let mut due_now: Vec<(&Run, bool)> = Vec::new();
    for run in accepted {
        let (Some(_), Some(est)) = (&run.env, &run.estimates) else {
            continue;
        };
        let req = &run.request;
        let prestage = run.prestage();
        let lead = match queue.get(&req.id) {
            Some(ahead) if prestage => schedule::queue_lead(*ahead, cap, est.of(StepName::Restore)),
            _ => Duration::zero(),
        };
        match schedule::due_queued(req, prestage, now, est, lead) {
            Due::Wait => {
                out.push(WakeAt(if prestage {
                    schedule::prestage_start(req, est) - lead
                } else {
                    req.spec.window.start
                }));
                // A request about to start is checked by its preflight; only
                // those still waiting are looked at again here (two ARM
                // reads each, which a thousand windows opening at once
                // would otherwise spend in the tick that starts them).
                if run
                    .retention_checked
                    .is_none_or(|at| now >= at + RETENTION_RECHECK)
                {
                    out.push(CheckRetention(req.id.clone()));
                }
            }
            Due::Miss(why) => out.push(Miss {
                request: req.id.clone(),
                why,
            }),
            Due::Start => due_now.push((run, prestage)),
        }
    }

    // Each subscription's runs in play, and those this runner drives;
    // pre-staged runs it drives before their window each hold (or wait
    // for) one of its restore slots in their subscription.
    let mut shares = Shares {
        runners: runner.runners,
        in_play: HashMap::new(),
        own: HashMap::new(),
    };
    for run in in_progress
        .iter()
        .copied()
        .chain(due_now.iter().map(|(r, _)| *r))
    {
        *shares
            .in_play
            .entry(run.subscription().to_string())
            .or_default() += 1;
    }
    let mut staging: HashMap<&str, usize> = HashMap::new();
    for run in s.runs.iter().filter(|r| r.driving) {
        shares.take(run.subscription());
        if now < run.request.spec.window.start {
            *staging.entry(run.subscription()).or_default() += 1;
        }
    }
    let mut spawns = 0;

    // Runs in progress that nobody drives: after a restart, a run another
    // runner left, or a pre-staged run whose window has opened.
    for run in in_progress.iter().copied() {
        if run.driving {
            continue;
        }
        let Some(job) = run.unfinished() else {
            continue;
        };
        if run.lease.as_ref().is_some_and(|l| l.is_live(now)) {
            continue;
        }
        let (req, steps) = (&run.request, &run.steps[..]);
        // Staged for its window, or waiting for a person: not resumed.
        let staged = job.is_prestaged()
            && job.facts.recovering.is_none()
            && steps.succeeded(StepName::Restore)
            && steps.record(StepName::Offline).is_none();
        let parked = (staged && now < req.spec.window.start)
            || steps.iter().any(|s| s.status == StepStatus::Waiting);
        if parked {
            if now < req.spec.window.start {
                out.push(WakeAt(req.spec.window.start));
            }
            continue;
        }
        // A staged run whose window opened is this runner's only within its
        // share; a run another runner left midway (it died) is taken over
        // at once, whatever the shares: its environment may be down.
        let sub = run.subscription();
        if runner.active + spawns >= runner.max_concurrent || (staged && !shares.allows(sub)) {
            out.push(Defer(req.id.clone()));
            continue;
        }
        shares.take(sub);
        spawns += 1;
        out.push(Resume(req.id.clone()));
    }

    let busy: Vec<&str> = in_progress
        .iter()
        .map(|r| r.request.spec.environment.as_str())
        .collect();
    for (run, prestage) in due_now {
        let req = &run.request;
        let sub = run.subscription();
        // A pre-staged run starts ahead of its window only when one of this
        // runner's restore slots in its subscription is free: the queue
        // stays in the store, where a runner with a free slot takes the
        // next one, rather than behind one runner's slots while another's
        // stand idle.
        let early = prestage && now < req.spec.window.start;
        if early
            && runner.restore_slots > 0
            && staging.get(sub).copied().unwrap_or(0) >= runner.restore_slots
        {
            out.push(Defer(req.id.clone()));
            continue;
        }
        // One active run per environment, the runner's share, the limit.
        if busy.contains(&req.spec.environment.as_str())
            || runner.active + spawns >= runner.own_share()
            || !shares.allows(sub)
        {
            out.push(Defer(req.id.clone()));
            continue;
        }
        // A run that stopped before changing anything (Azure unreachable,
        // say) is tried again, but not every tick.
        let retry_at = current_run(&run.jobs)
            .filter(|j| j.status == JobStatus::Failed)
            .and_then(|j| j.finished_at)
            .map(|t| t + RETRY_AFTER_RELEASE);
        if retry_at.is_some_and(|t| now < t) {
            continue;
        }
        if early {
            *staging.entry(sub).or_default() += 1;
        }
        shares.take(sub);
        spawns += 1;
        out.push(Start(req.id.clone()));
    }

    // Originals kept past their retention; never while a rollback that
    // puts them back runs (a rollback job itself drops nothing).
    for kept in &s.kept {
        let job = &kept.job;
        let rolling_back = s.runs.iter().flat_map(|r| &r.jobs).any(|j| {
            j.status == JobStatus::Running
                && j.facts.rollback.as_ref().is_some_and(|of| of.job == job.id)
        });
        if !kept.driving
            && !job.is_rollback()
            && !rolling_back
            && schedule::cleanup_due(job, &kept.steps, runner.keep_original, now)
        {
            out.push(CleanUp(job.id.clone()));
        }
    }
    out
}

/// For each accepted or running pre-staged request, how many pre-staged
/// requests of its subscription come before it (by window start): the
/// queue its restore joins. Requests already running keep their place, so
/// those behind them do not move forward and lose their lead.
fn restore_queue(runs: &[Run]) -> HashMap<RequestId, usize> {
    let mut queued: Vec<(&str, DateTime<Utc>, &RequestId)> = runs
        .iter()
        .filter(|r| {
            matches!(
                r.request.status,
                RequestStatus::Accepted | RequestStatus::Running
            )
        })
        .filter(|r| r.env.is_some() && r.prestage())
        .map(|r| (r.subscription(), r.request.spec.window.start, &r.request.id))
        .collect();
    queued.sort_by(|a, b| (a.0, a.1, a.2.as_str()).cmp(&(b.0, b.1, b.2.as_str())));
    let mut out = HashMap::new();
    let mut sub = None;
    let mut n = 0;
    for (s, _, id) in queued {
        if sub != Some(s) {
            sub = Some(s);
            n = 0;
        }
        out.insert(id.clone(), n);
        n += 1;
    }
    out
}

#[cfg(test)]
#[path = "tick_tests.rs"]
mod tests;
