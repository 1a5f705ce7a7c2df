//! When a request's run starts, decided from its window, the clock and the
//! estimates: pure, so every case is tested without waiting.
use super::job::StepName;
use super::request::RestoreRequest;
use chrono::{DateTime, Duration, Utc};

/// Expected durations of the steps of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimates {
    pub preflight: Duration,
    pub offline: Duration,
    pub restore: Duration,
    pub swap: Duration,
    pub sync: Duration,
    pub mr_reset: Duration,
    pub online: Duration,
    pub verify: Duration,
}

impl Estimates {
    pub fn of(&self, step: StepName) -> Duration {
        match step {
            StepName::Preflight => self.preflight,
            StepName::Offline => self.offline,
            StepName::Restore => self.restore,
            StepName::Swap => self.swap,
            StepName::Sync => self.sync,
            StepName::MrReset => self.mr_reset,
            StepName::Online => self.online,
            StepName::Verify | StepName::Cleanup => self.verify,
        }
    }

    /// The environment is down from `offline` to the end of `online`.
    pub fn downtime(&self, prestage: bool) -> Duration {
        let base = self.offline + self.swap + self.sync + self.mr_reset + self.online;
        if prestage {
            base
        } else {
            base + self.restore
        }
    }

    /// From start to finish, inside the window.
    pub fn in_window(&self, prestage: bool) -> Duration {
        let before = if prestage {
            Duration::zero()
        } else {
            self.preflight
        };
        before + self.downtime(prestage) + self.verify
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

/// Steps during which the environment must be down: they wait for the window.
pub fn needs_window(step: StepName) -> bool {
    !matches!(step, StepName::Preflight | StepName::Restore)
}

/// When a pre-staged run starts: early enough that preflight and the
/// restore end at the window's start.
pub fn prestage_start(req: &RestoreRequest, est: &Estimates) -> DateTime<Utc> {
    req.window.start - est.preflight - est.restore
}

/// Why a run in progress is not moving on, for the operator.
pub fn waiting_reason(
    req: &RestoreRequest,
    job: &super::job::Job,
    steps: &[super::job::StepRecord],
    now: DateTime<Utc>,
) -> Option<String> {
    use super::job::{JobStatus, StepStatus};
    if job.status != JobStatus::Running || !job.is_prestaged() {
        return None;
    }
    let status = |s: StepName| steps.iter().find(|r| r.step == s).map(|r| r.status);
    let restored = status(StepName::Restore) == Some(StepStatus::Succeeded);
    let offline_started = status(StepName::Offline).is_some();
    match (restored, offline_started, now >= req.window.start) {
        (false, false, true) => Some(format!(
            "the window opened at {}, but the pre-staged restore is still running; the environment stays online until it is done (the window waits for it, and no step starts that would end after {})",
            req.window.start, req.window.end
        )),
        (true, false, false) => Some(format!(
            "the restore is staged; the environment goes offline when the window opens at {}",
            req.window.start
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
    let w = req.window;
    if now >= w.end {
        return Due::Miss(format!("the window ended at {} without a run", w.end));
    }
    let start_at = if prestage {
        prestage_start(req, est)
    } else {
        w.start
    };
    if now < start_at {
        return Due::Wait;
    }
    // Pre-staged: the downtime begins when both the window and the restore are there.
    let downtime_from = if prestage {
        w.start.max(now + est.preflight + est.restore)
    } else {
        now
    };
    let needed = if prestage {
        est.downtime(true) + est.verify
    } else {
        est.in_window(false)
    };
    if downtime_from + needed > w.end {
        return Due::Miss(format!(
            "only {} min of the window were left at {now}; the run needs about {} min",
            (w.end - downtime_from).num_minutes().max(0),
            needed.num_minutes()
        ));
    }
    Due::Start
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::RequestStatus;
    use crate::domain::request::{Acknowledgements, Window};
    use chrono::TimeZone;

    fn t(h: i64, m: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
            + Duration::hours(h)
            + Duration::minutes(m)
    }

    fn est() -> Estimates {
        let m = Duration::minutes;
        Estimates {
            preflight: m(1),
            offline: m(5),
            restore: m(60),
            swap: m(2),
            sync: m(30),
            mr_reset: m(10),
            online: m(5),
            verify: m(1),
        }
    }

    fn req() -> RestoreRequest {
        RestoreRequest {
            id: "r".into(),
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
            status: RequestStatus::Accepted,
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
    fn only_preflight_and_restore_run_outside_the_window() {
        assert!(!needs_window(StepName::Preflight));
        assert!(!needs_window(StepName::Restore));
        for s in [
            StepName::Offline,
            StepName::Swap,
            StepName::Sync,
            StepName::MrReset,
            StepName::Online,
            StepName::Verify,
        ] {
            assert!(needs_window(s));
        }
    }
}
