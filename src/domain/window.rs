//! Whether the window lets the next step of a run start.
//!
//! - A pre-staged run stops before its first step that needs the window
//!   until the window opens (the job stays running, its lease released).
//! - Until the swap, a step is not started if the rest of the run (this step
//!   and every later one, by their estimates) would end after the window:
//!   the run stops while the original is still in place. From the swap on a
//!   run is finished rather than undone.
//! - A run started by hand before its window opens is the operator's choice
//!   and is not held to it; a rehearsal (dry run) is never held to it.
use super::request::Window;
use super::schedule::Estimates;
use super::step::StepName;
use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowDecision {
    Go,
    /// Stop here with the job running; the scheduler continues it when the
    /// window opens.
    Park,
    /// Do not start the step; recover with this reason.
    Stop(String),
}

/// The run whose next step is being decided.
#[derive(Debug, Clone, Copy)]
pub struct RunFacts<'a> {
    pub window: Window,
    pub plan: &'a [StepName],
    pub dry_run: bool,
    pub prestaged: bool,
}

pub fn window_decision(
    run: RunFacts<'_>,
    step: StepName,
    est: &Estimates,
    now: DateTime<Utc>,
) -> WindowDecision {
    if run.dry_run {
        return WindowDecision::Go;
    }
    let w = run.window;
    let needs_window = est.phase(step).is_some_and(|p| p.needs_window());
    if run.prestaged && needs_window && now < w.start {
        return WindowDecision::Park;
    }
    let guarded = est.steps().iter().any(|t| t.name == step && t.window_guard);
    if !guarded || now < w.start {
        return WindowDecision::Go;
    }
    let rest = run
        .plan
        .iter()
        .skip_while(|s| **s != step)
        .fold(Duration::zero(), |a, s| a + est.of(*s));
    if now + rest > w.end {
        WindowDecision::Stop(format!(
            "not started: the rest of the run ({} min by the estimates) would end after the window closes at {}; reschedule the request",
            rest.num_minutes(),
            super::time::show(w.end)
        ))
    } else {
        WindowDecision::Go
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schedule::tests::t;
    use crate::domain::step::{order, tests::timings};

    fn decide(
        prestaged: bool,
        dry_run: bool,
        step: StepName,
        now: DateTime<Utc>,
    ) -> WindowDecision {
        decide_in(t(22, 0), prestaged, dry_run, step, now)
    }

    /// [`decide`] in a window from 20:00 to `end`.
    fn decide_in(
        end: DateTime<Utc>,
        prestaged: bool,
        dry_run: bool,
        step: StepName,
        now: DateTime<Utc>,
    ) -> WindowDecision {
        let est = Estimates::new(timings());
        let plan = order(est.steps(), prestaged);
        let run = RunFacts {
            window: Window {
                start: t(20, 0),
                end,
            },
            plan: &plan,
            dry_run,
            prestaged,
        };
        window_decision(run, step, &est, now)
    }

    #[test]
    fn guarded_steps_do_not_start_when_the_rest_would_overrun() {
        use StepName::*;
        // Default order from offline: 5 + 60 + 2 + 30 + 10 + 5 + 1 = 113 min.
        assert_eq!(decide(false, false, Offline, t(20, 7)), WindowDecision::Go);
        assert!(matches!(
            decide(false, false, Offline, t(20, 8)),
            WindowDecision::Stop(m) if m.contains("113 min")
        ));
        // From the swap: 2 + 30 + 10 + 5 + 1 = 48 min.
        assert_eq!(decide(false, false, Swap, t(21, 12)), WindowDecision::Go);
        assert!(matches!(
            decide(false, false, Swap, t(21, 13)),
            WindowDecision::Stop(_)
        ));
        // After the swap nothing is held back, even past the window's end.
        for s in [Sync, MrReset, Online, Verify] {
            assert_eq!(decide(false, false, s, t(23, 0)), WindowDecision::Go, "{s}");
        }
        // Before the window opens a manual run is not held to it.
        assert_eq!(decide(false, false, Offline, t(19, 0)), WindowDecision::Go);
    }

    /// At the limit by one second: the rest of the run may end exactly at
    /// the window's end, not a second later; a pre-staged run starts its
    /// downtime at the window's start, not a second sooner.
    #[test]
    fn the_window_holds_the_rest_of_the_run_to_the_second() {
        use StepName::*;
        let s = Duration::seconds(1);
        // 20:07 + 113 min = 22:00, the window's end.
        assert_eq!(
            decide(false, false, Offline, t(20, 7) - s),
            WindowDecision::Go
        );
        assert_eq!(decide(false, false, Offline, t(20, 7)), WindowDecision::Go);
        assert!(matches!(
            decide(false, false, Offline, t(20, 7) + s),
            WindowDecision::Stop(_)
        ));
        // 21:12 + 48 min = 22:00.
        assert_eq!(decide(false, false, Swap, t(21, 12)), WindowDecision::Go);
        assert!(matches!(
            decide(false, false, Swap, t(21, 12) + s),
            WindowDecision::Stop(_)
        ));
        assert_eq!(
            decide(true, false, Offline, t(20, 0) - s),
            WindowDecision::Park
        );
        assert_eq!(decide(true, false, Offline, t(20, 0)), WindowDecision::Go);
        // Before the window opens by a second, a manual run is not held.
        assert_eq!(
            decide(false, false, Offline, t(20, 0) - s),
            WindowDecision::Go
        );
        // At the window's start it is held: a one-hour window cannot hold
        // the 113 minutes from offline on (a second earlier, it is not).
        assert!(matches!(
            decide_in(t(21, 0), false, false, Offline, t(20, 0)),
            WindowDecision::Stop(_)
        ));
        assert_eq!(
            decide_in(t(21, 0), false, false, Offline, t(20, 0) - s),
            WindowDecision::Go
        );
    }

    #[test]
    fn a_prestaged_run_parks_before_the_downtime_until_the_window_opens() {
        use StepName::*;
        assert_eq!(decide(true, false, Restore, t(18, 0)), WindowDecision::Go);
        assert_eq!(
            decide(true, false, Offline, t(19, 59)),
            WindowDecision::Park
        );
        assert_eq!(decide(true, false, Offline, t(20, 0)), WindowDecision::Go);
        // Not pre-staged: no parking (the run was started by hand).
        assert_eq!(decide(false, false, Offline, t(19, 59)), WindowDecision::Go);
    }

    #[test]
    fn a_rehearsal_is_never_held() {
        use StepName::*;
        for s in [Preflight, Offline, Restore, Swap] {
            assert_eq!(decide(true, true, s, t(19, 0)), WindowDecision::Go);
            assert_eq!(decide(false, true, s, t(23, 0)), WindowDecision::Go);
        }
    }
}
