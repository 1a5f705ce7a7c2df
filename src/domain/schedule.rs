//! When a request's run starts, decided from its window, the clock and the
//! estimates: pure, so every case is tested without waiting.
use super::request::RestoreRequest;
use super::step::{Phase, StepName, StepTiming};
use super::time::show;
use chrono::{DateTime, Duration, Utc};

/// Expected durations of the steps of a run, with when each may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimates {
    steps: Vec<StepTiming>,
}

impl Estimates {
    /// Every step, in its default order.
    pub fn new(steps: Vec<StepTiming>) -> Self {
        Self { steps }
    }

    pub fn steps(&self) -> &[StepTiming] {
        &self.steps
    }

    fn timing(&self, step: StepName) -> Option<&StepTiming> {
        self.steps.iter().find(|t| t.name == step)
    }

    /// A step's own estimate (zero only for a step nobody declared).
    pub fn of(&self, step: StepName) -> Duration {
        self.timing(step).map_or(Duration::zero(), |t| t.estimate)
    }

    pub fn phase(&self, step: StepName) -> Option<Phase> {
        self.timing(step).map(|t| t.phase)
    }

    fn sum(&self, keep: impl Fn(Phase) -> bool) -> Duration {
        self.steps
            .iter()
            .filter(|t| keep(t.phase))
            .fold(Duration::zero(), |a, t| a + t.estimate)
    }

    /// The environment is down from `offline` to the end of `online`; the
    /// restore is part of it unless it is pre-staged.
    pub fn downtime(&self, prestage: bool) -> Duration {
        self.sum(|p| p == Phase::Downtime || (!prestage && p == Phase::Staging))
    }

    /// What must happen before the window when pre-staged (preflight and
    /// the restore).
    pub fn ahead_of_window(&self) -> Duration {
        self.sum(|p| matches!(p, Phase::Setup | Phase::Staging))
    }

    /// From start to finish, inside the window.
    pub fn in_window(&self, prestage: bool) -> Duration {
        let before = if prestage {
            Duration::zero()
        } else {
            self.sum(|p| p == Phase::Setup)
        };
        before + self.downtime(prestage) + self.sum(|p| p == Phase::AfterDowntime)
    }
}

/// The restore estimate for an environment: the longest of its last five
/// restores plus a quarter, or the configured default without history.
pub fn restore_estimate(recent_secs: &[f64], default: Duration) -> Duration {
    let last: Vec<f64> = recent_secs.iter().rev().take(5).copied().collect();
    match last
        .iter()
        .copied()
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
    {
        Some(longest) => Duration::milliseconds((longest * 1250.0).ceil() as i64),
        None => default,
    }
}

/// When a pre-staged run starts: early enough that preflight and the
/// restore end at the window's start.
pub fn prestage_start(req: &RestoreRequest, est: &Estimates) -> DateTime<Utc> {
    req.spec.window.start - est.ahead_of_window()
}

/// Why a run in progress is not moving on, for the operator.
pub fn waiting_reason(
    req: &RestoreRequest,
    job: &super::job::Job,
    steps: &[super::step::StepRecord],
    now: DateTime<Utc>,
) -> Option<String> {
    use super::job::JobStatus;
    use super::step::StepStatus;
    if job.status != JobStatus::Running || !job.is_prestaged() {
        return None;
    }
    let status = |s: StepName| steps.iter().find(|r| r.step == s).map(|r| r.status);
    let restored = status(StepName::Restore) == Some(StepStatus::Succeeded);
    let offline_started = status(StepName::Offline).is_some();
    let w = req.spec.window;
    match (restored, offline_started, now >= w.start) {
        (false, false, true) => Some(format!(
            "the window opened at {}, but the pre-staged restore is still running; the environment stays online until it is done (the window waits for it, and no step starts that would end after {})",
            show(w.start), show(w.end)
        )),
        (true, false, false) => Some(format!(
            "the restore is staged; the environment goes offline when the window opens at {}",
            show(w.start)
        )),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Not yet.
    Wait,
    Start,
    /// The window cannot hold the run any more.
    Miss(String),
}

/// What to do now with an accepted request.
pub fn due(req: &RestoreRequest, prestage: bool, now: DateTime<Utc>, est: &Estimates) -> Due {
    due_queued(req, prestage, now, est, Duration::zero())
}

/// How much earlier a pre-staged run starts because restores wait in a
/// queue: restores ahead of it in its subscription (`ahead`), `cap` at a
/// time, each taking about `restore`.
pub fn queue_lead(ahead: usize, cap: usize, restore: Duration) -> Duration {
    if cap == 0 {
        return Duration::zero();
    }
    restore * i32::try_from(ahead / cap).unwrap_or(i32::MAX)
}

/// How many of one subscription's runs in play (running, or due to start)
/// one of `runners` runners sharing ARM's budget drives at once: each paces
/// itself to 1/`runners` of the subscription's buckets and restore slots, so
/// each takes that part of the work (at least one run), and a subscription's
/// runs are spread evenly rather than claimed by whichever runner looks first.
pub fn fair_share(in_play: usize, runners: usize) -> usize {
    in_play.div_ceil(runners.max(1)).max(1)
}

/// [`due`] for a pre-staged run that starts `lead` earlier than its own
/// estimates say (see [`queue_lead`]).
pub fn due_queued(
    req: &RestoreRequest,
    prestage: bool,
    now: DateTime<Utc>,
    est: &Estimates,
    lead: Duration,
) -> Due {
    let w = req.spec.window;
    if now >= w.end {
        return Due::Miss(format!("the window ended at {} without a run", show(w.end)));
    }
    let start_at = if prestage {
        prestage_start(req, est) - lead
    } else {
        w.start
    };
    if now < start_at {
        return Due::Wait;
    }
    // Pre-staged: the downtime begins when both the window and the restore are there.
    let downtime_from = if prestage {
        w.start.max(now + est.ahead_of_window())
    } else {
        now
    };
    let needed = if prestage {
        est.in_window(true)
    } else {
        est.in_window(false)
    };
    if downtime_from + needed > w.end {
        return Due::Miss(format!(
            "only {} min of the window were left at {}; the run needs about {} min",
            (w.end - downtime_from).num_minutes().max(0),
            show(now),
            needed.num_minutes()
        ));
    }
    Due::Start
}

#[cfg(test)]
mod queue_tests {
    use super::*;

    #[test]
    fn fair_share_spreads_a_subscription_over_the_runners() {
        assert_eq!(fair_share(100, 1), 100);
        assert_eq!(fair_share(100, 3), 34);
        assert_eq!(fair_share(99, 3), 33);
        assert_eq!(fair_share(1, 3), 1);
        assert_eq!(fair_share(0, 3), 1);
        assert_eq!(fair_share(5, 0), 5);
    }

    #[test]
    fn queue_lead_counts_waves_of_the_cap() {
        let r = Duration::minutes(30);
        assert_eq!(queue_lead(0, 30, r), Duration::zero());
        assert_eq!(queue_lead(29, 30, r), Duration::zero());
        assert_eq!(queue_lead(30, 30, r), r);
        assert_eq!(queue_lead(95, 30, r), r * 3);
        assert_eq!(queue_lead(95, 0, r), Duration::zero());
    }
}

/// Whether a job's original database (`<db>_before_<job8>`) is due to be
/// dropped: a real run that succeeded, finished at least `keep` ago, whose
/// cleanup has neither succeeded nor failed three times (that needs a person).
pub fn cleanup_due(
    job: &super::job::Job,
    steps: &[super::step::StepRecord],
    keep: Duration,
    now: DateTime<Utc>,
) -> bool {
    use super::job::JobStatus;
    use super::step::Checkpoints;
    if job.dry_run || job.status != JobStatus::Succeeded {
        return false;
    }
    let Some(finished) = job.finished_at else {
        return false;
    };
    if now < finished + keep {
        return false;
    }
    !cleanup_settled(steps.record(StepName::Cleanup))
}

/// Whether a job's original is past needing the scheduler: its `cleanup`
/// succeeded, or failed three times (that needs a person). The store keeps
/// the jobs awaiting a cleanup by this rule, so that a tick finds them
/// without reading every finished run.
pub fn cleanup_settled(cleanup: Option<&super::step::StepRecord>) -> bool {
    use super::step::StepStatus;
    cleanup.is_some_and(|s| {
        s.status == StepStatus::Succeeded || (s.status == StepStatus::Failed && s.attempts >= 3)
    })
}

/// Whether the store keeps `job` among those awaiting a cleanup: a real
/// restore that succeeded (a rollback drops nothing) whose cleanup is not
/// settled. [`cleanup_due`] then decides when.
pub fn awaits_cleanup(job: &super::job::Job, cleanup: Option<&super::step::StepRecord>) -> bool {
    !job.dry_run
        && job.status == super::job::JobStatus::Succeeded
        && !job.is_rollback()
        && !cleanup_settled(cleanup)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::lifecycle::RequestStatus;
    use crate::domain::request::{Acknowledgements, RequestSpec, Window};
    use chrono::TimeZone;

    /// An instant `h` hours and `m` minutes after a fixed origin.
    pub(crate) fn t(h: i64, m: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
            + Duration::hours(h)
            + Duration::minutes(m)
    }

    fn est() -> Estimates {
        Estimates::new(crate::domain::step::tests::timings())
    }

    fn req() -> RestoreRequest {
        RestoreRequest {
            id: "r".into(),
            spec: RequestSpec {
                environment: "e".into(),
                database: "AxDB".into(),
                restore_point: t(-48, 0),
                window: Window {
                    start: t(20, 0),
                    end: t(23, 0),
                },
                acks: Acknowledgements::default(),
                requester: "a".into(),
                reason: None,
                prestage: false,
                emergency: None,
            },
            status: RequestStatus::Accepted,
            warning: None,
            submitted_at: t(-24, 0),
            updated_at: t(-24, 0),
        }
    }

    #[test]
    fn a_run_starts_when_its_window_opens_and_only_if_it_fits() {
        assert_eq!(due(&req(), false, t(19, 59), &est()), Due::Wait);
        assert_eq!(due(&req(), false, t(20, 0), &est()), Due::Start);
        // 1 + 5 + 60 + 2 + 30 + 10 + 5 + 1 = 114 min must fit before 23:00.
        assert_eq!(due(&req(), false, t(21, 6), &est()), Due::Start);
        assert!(
            matches!(due(&req(), false, t(21, 7), &est()), Due::Miss(m) if m.contains("needs about 114 min"))
        );
        assert!(
            matches!(due(&req(), false, t(23, 0), &est()), Due::Miss(m) if m.contains("without a run"))
        );
    }

    /// The same limits to the second: the window's start, the last instant
    /// at which the run still fits, and the window's end.
    #[test]
    fn a_run_is_due_to_the_second() {
        let s = Duration::seconds(1);
        assert_eq!(due(&req(), false, t(20, 0) - s, &est()), Due::Wait);
        assert_eq!(due(&req(), false, t(20, 0), &est()), Due::Start);
        assert_eq!(due(&req(), false, t(21, 6), &est()), Due::Start);
        assert!(
            matches!(due(&req(), false, t(21, 6) + s, &est()), Due::Miss(m) if m.contains("needs about"))
        );
        assert!(
            matches!(due(&req(), false, t(23, 0) - s, &est()), Due::Miss(m) if m.contains("needs about"))
        );
        assert!(
            matches!(due(&req(), false, t(23, 0), &est()), Due::Miss(m) if m.contains("without a run"))
        );
        let start = prestage_start(&req(), &est());
        assert_eq!(due(&req(), true, start - s, &est()), Due::Wait);
        assert_eq!(due(&req(), true, start, &est()), Due::Start);
        assert_eq!(due(&req(), true, t(21, 6), &est()), Due::Start);
        assert!(matches!(
            due(&req(), true, t(21, 6) + s, &est()),
            Due::Miss(_)
        ));
    }

    #[test]
    fn a_prestaged_run_starts_a_restore_ahead_so_the_window_holds_only_the_downtime() {
        let start = prestage_start(&req(), &est());
        assert_eq!(start, t(18, 59));
        assert_eq!(due(&req(), true, t(18, 58), &est()), Due::Wait);
        assert_eq!(due(&req(), true, start, &est()), Due::Start);
        // Started late, the restore ends at now + 61 min; the downtime (52
        // min) and verify (1 min) must still fit before 23:00.
        assert_eq!(due(&req(), true, t(21, 6), &est()), Due::Start);
        assert!(
            matches!(due(&req(), true, t(21, 7), &est()), Due::Miss(m) if m.contains("needs about 53 min"))
        );
        assert_eq!(est().downtime(true), Duration::minutes(52));
        assert_eq!(est().downtime(false), Duration::minutes(112));
    }

    #[test]
    fn restore_estimates_come_from_history_with_a_margin() {
        assert_eq!(
            restore_estimate(&[], Duration::minutes(60)),
            Duration::minutes(60)
        );
        assert_eq!(
            restore_estimate(&[100.0, 400.0, 200.0], Duration::minutes(60)),
            Duration::seconds(500)
        );
        // Only the last five count.
        assert_eq!(
            restore_estimate(&[10_000.0, 1.0, 1.0, 1.0, 1.0, 4.0], Duration::minutes(60)),
            Duration::seconds(5)
        );
    }

    #[test]
    fn cleanup_is_due_after_the_retention_of_a_successful_run_until_done_or_given_up() {
        use crate::domain::job::{Job, JobStatus};
        use crate::domain::step::{StepRecord, StepStatus};
        let keep = Duration::hours(24);
        let mut job = Job {
            id: "j".into(),
            request_id: "r".into(),
            dry_run: false,
            status: JobStatus::Succeeded,
            plan: vec![],
            created_at: t(0, 0),
            updated_at: t(1, 0),
            finished_at: Some(t(1, 0)),
            facts: Default::default(),
            error: None,
        };
        assert!(!cleanup_due(&job, &[], keep, t(24, 59)));
        assert!(cleanup_due(&job, &[], keep, t(25, 0)));
        let mut rec = StepRecord::pending(StepName::Cleanup);
        rec.status = StepStatus::Failed;
        rec.attempts = 2;
        assert!(cleanup_due(
            &job,
            std::slice::from_ref(&rec),
            keep,
            t(25, 0)
        ));
        rec.attempts = 3;
        assert!(!cleanup_due(
            &job,
            std::slice::from_ref(&rec),
            keep,
            t(25, 0)
        ));
        rec.status = StepStatus::Succeeded;
        rec.attempts = 1;
        assert!(!cleanup_due(&job, &[rec], keep, t(25, 0)));
        for status in [JobStatus::Running, JobStatus::Failed, JobStatus::RolledBack] {
            job.status = status;
            assert!(!cleanup_due(&job, &[], keep, t(99, 0)), "{status:?}");
        }
        job.status = JobStatus::Succeeded;
        job.dry_run = true;
        assert!(!cleanup_due(&job, &[], keep, t(99, 0)));
    }

    #[test]
    fn a_successful_restore_awaits_its_cleanup_until_it_is_settled() {
        use crate::domain::job::{Job, JobStatus, RollbackOf};
        use crate::domain::step::{StepRecord, StepStatus};
        let mut job = Job {
            id: "j".into(),
            request_id: "r".into(),
            dry_run: false,
            status: JobStatus::Succeeded,
            plan: vec![],
            created_at: t(0, 0),
            updated_at: t(1, 0),
            finished_at: Some(t(1, 0)),
            facts: Default::default(),
            error: None,
        };
        assert!(awaits_cleanup(&job, None));
        let mut rec = StepRecord::pending(StepName::Cleanup);
        rec.status = StepStatus::Running;
        assert!(awaits_cleanup(&job, Some(&rec)));
        rec.status = StepStatus::Failed;
        rec.attempts = 2;
        assert!(awaits_cleanup(&job, Some(&rec)));
        rec.attempts = 3;
        assert!(!awaits_cleanup(&job, Some(&rec)));
        rec.status = StepStatus::Succeeded;
        assert!(!awaits_cleanup(&job, Some(&rec)));
        for status in [JobStatus::Running, JobStatus::Failed, JobStatus::RolledBack] {
            job.status = status;
            assert!(!awaits_cleanup(&job, None), "{status:?}");
        }
        job.status = JobStatus::Succeeded;
        job.facts.rollback = Some(RollbackOf {
            job: "k".into(),
            by: "ops".into(),
            reason: None,
        });
        assert!(!awaits_cleanup(&job, None), "a rollback drops nothing");
        job.facts.rollback = None;
        job.dry_run = true;
        assert!(!awaits_cleanup(&job, None));
    }
}
