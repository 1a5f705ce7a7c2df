//! Steps as the pure core sees them: their names, their checkpoints, when
//! they may run, and the plan of a run. What a step does, how long it is
//! expected to take and its timeout are declared once, beside its body, in
//! `engine/steps/<name>.rs`; this module only decides from those facts.
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

/// When a step may run, relative to the window and the downtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Before anything changes (preflight): any time.
    Setup,
    /// May run ahead of the window with the environment up (the restore,
    /// when pre-staged); otherwise it is part of the downtime.
    Staging,
    /// The environment is down (offline .. online).
    Downtime,
    /// Inside the window, after the environment is back (verify).
    AfterDowntime,
    /// Not part of a run (cleanup, after the original's retention).
    Later,
}

impl Phase {
    /// Steps that wait for the window to open.
    pub fn needs_window(self) -> bool {
        matches!(self, Self::Downtime | Self::AfterDowntime)
    }
}

/// What the schedule needs to know of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepTiming {
    pub name: StepName,
    pub phase: Phase,
    /// Expected duration (the environment's own history may replace it).
    pub estimate: Duration,
    /// Not started when the rest of the run would end after the window:
    /// true for the steps up to the swap, after which a run is finished
    /// rather than undone.
    pub window_guard: bool,
}

/// The steps of a run in order: the default order, or with `prestage` the
/// staging steps (the restore) moved ahead of the downtime. `steps` is every
/// step in its default order; `Later` steps are never part of a run.
pub fn order(steps: &[StepTiming], prestage: bool) -> Vec<StepName> {
    let mut run: Vec<&StepTiming> = steps.iter().filter(|s| s.phase != Phase::Later).collect();
    if prestage {
        // Stable: steps of the same phase keep their order.
        run.sort_by_key(|s| s.phase);
    }
    run.into_iter().map(|s| s.name).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
    /// Waits for a person (`pitr job confirm`).
    Waiting,
}

impl StepStatus {
    const ALL: [StepStatus; 6] = [
        Self::Pending,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Skipped,
        Self::Waiting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Waiting => "waiting",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
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

/// The first step of the plan that is not done yet.
pub fn next_step(plan: &[StepName], records: &[StepRecord]) -> Option<StepName> {
    plan.iter()
        .copied()
        .find(|s| !records.iter().any(|r| r.step == *s && r.status.is_done()))
}

/// Facts about the checkpoints of a job, as the decisions ask for them.
pub trait Checkpoints {
    fn record(&self, step: StepName) -> Option<&StepRecord>;
    /// The step was attempted at least once.
    fn started(&self, step: StepName) -> bool {
        self.record(step).is_some_and(|r| r.attempts > 0)
    }
    fn succeeded(&self, step: StepName) -> bool {
        self.record(step)
            .is_some_and(|r| r.status == StepStatus::Succeeded)
    }
}

impl Checkpoints for [StepRecord] {
    fn record(&self, step: StepName) -> Option<&StepRecord> {
        self.iter().find(|r| r.step == step)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The run steps in their default order, as the engine declares them.
    pub(crate) fn timings() -> Vec<StepTiming> {
        let m = Duration::minutes;
        let t = |name, phase, min, window_guard| StepTiming {
            name,
            phase,
            estimate: m(min),
            window_guard,
        };
        use Phase::*;
        use StepName::*;
        vec![
            t(Preflight, Setup, 1, true),
            t(Offline, Downtime, 5, true),
            t(Restore, Staging, 60, true),
            t(Swap, Downtime, 2, true),
            t(Sync, Downtime, 30, false),
            t(MrReset, Downtime, 10, false),
            t(Online, Downtime, 5, false),
            t(Verify, AfterDowntime, 1, false),
            t(Cleanup, Later, 10, false),
        ]
    }

    #[test]
    fn a_prestaged_plan_moves_the_restore_ahead_of_the_downtime() {
        use StepName::*;
        assert_eq!(
            order(&timings(), false),
            [Preflight, Offline, Restore, Swap, Sync, MrReset, Online, Verify]
        );
        assert_eq!(
            order(&timings(), true),
            [Preflight, Restore, Offline, Swap, Sync, MrReset, Online, Verify]
        );
        for s in StepName::ALL {
            assert_eq!(StepName::parse(s.as_str()), Some(s));
        }
        for s in StepStatus::ALL {
            assert_eq!(StepStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn next_step_skips_done_steps_only() {
        let p = order(&timings(), false);
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

    #[test]
    fn only_downtime_and_after_downtime_steps_wait_for_the_window() {
        for t in timings() {
            let expected = matches!(
                t.name,
                StepName::Offline
                    | StepName::Swap
                    | StepName::Sync
                    | StepName::MrReset
                    | StepName::Online
                    | StepName::Verify
            );
            assert_eq!(t.phase.needs_window(), expected, "{}", t.name);
        }
    }
}
