//! [`plan`], case by case: one snapshot in, the actions out.
use super::*;
use crate::domain::job::{JobFacts, RollbackOf};
use crate::domain::request::{Acknowledgements, RequestSpec, Window};
use crate::domain::schedule::tests::t;
use SchedulerAction::*;

fn est() -> Estimates {
    // preflight 1, offline 5, restore 60, swap 2, sync 30, mr_reset 10,
    // online 5, verify 1 (min): 114 min in all, 61 ahead when pre-staged.
    Estimates::new(crate::domain::step::tests::timings())
}

fn id(s: &str) -> RequestId {
    s.into()
}

/// An accepted request of environment `env`, window 20:00 to 23:00.
fn request(name: &str, env: &str) -> RestoreRequest {
    RestoreRequest {
        id: name.into(),
        spec: RequestSpec {
            environment: env.into(),
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

fn env(sub: &str) -> Option<EnvFacts> {
    Some(EnvFacts {
        prestage: false,
        subscription: sub.into(),
    })
}

/// Accepted, of environment `name`, subscription "s".
fn accepted(name: &str) -> Run {
    Run {
        request: request(name, name),
        env: env("s"),
        estimates: Some(est()),
        jobs: vec![],
        lease: None,
        steps: vec![],
        driving: false,
        retention_checked: None,
    }
}

fn job(name: &str, status: JobStatus, prestage: bool) -> Job {
    Job {
        id: format!("job-{name}").into(),
        request_id: name.into(),
        dry_run: false,
        status,
        plan: crate::domain::step::order(&crate::domain::step::tests::timings(), prestage),
        created_at: t(19, 0),
        updated_at: t(19, 0),
        finished_at: (status != JobStatus::Running).then_some(t(19, 30)),
        facts: JobFacts::default(),
        error: None,
    }
}

fn done(step: StepName, status: StepStatus) -> StepRecord {
    let mut r = StepRecord::pending(step);
    r.status = status;
    r.attempts = 1;
    r
}

/// Running, its job at `steps`, nobody holding it.
fn running(name: &str, prestage: bool, steps: &[(StepName, StepStatus)]) -> Run {
    let mut run = accepted(name);
    run.request.status = RequestStatus::Running;
    run.request.spec.prestage = prestage;
    run.jobs = vec![job(name, JobStatus::Running, prestage)];
    run.steps = steps.iter().map(|(s, st)| done(*s, *st)).collect();
    run
}

/// Pre-staged, restored, waiting for its window.
fn staged(name: &str) -> Run {
    use StepName::*;
    let ok = StepStatus::Succeeded;
    running(name, true, &[(Preflight, ok), (Restore, ok)])
}

/// Midway: offline done, restore running.
fn midway(name: &str) -> Run {
    use StepName::*;
    let s = [
        (Preflight, StepStatus::Succeeded),
        (Offline, StepStatus::Succeeded),
        (Restore, StepStatus::Running),
    ];
    running(name, false, &s)
}

fn runner(max: usize, runners: usize, slots: usize) -> Runner {
    Runner {
        max_concurrent: max,
        runners,
        restore_slots: slots,
        ..Runner::default()
    }
}

fn snap(runs: Vec<Run>) -> Snapshot {
    Snapshot {
        runs,
        kept: vec![],
        runner: runner(10, 1, 0),
    }
}

fn holder(until: DateTime<Utc>, gone: bool) -> Option<Holder> {
    Some(Holder {
        owner: "other:1.1:aaaaaa".into(),
        expires_at: until,
        gone,
    })
}

fn of<T>(actions: &[SchedulerAction], pick: impl Fn(&SchedulerAction) -> Option<T>) -> Vec<T> {
    actions.iter().filter_map(pick).collect()
}

fn started(a: &[SchedulerAction]) -> Vec<RequestId> {
    of(a, |x| matches!(x, Start(_)).then(|| x.request().unwrap()))
}
fn resumed(a: &[SchedulerAction]) -> Vec<RequestId> {
    of(a, |x| matches!(x, Resume(_)).then(|| x.request().unwrap()))
}
fn deferred(a: &[SchedulerAction]) -> Vec<RequestId> {
    of(a, |x| matches!(x, Defer(_)).then(|| x.request().unwrap()))
}

impl SchedulerAction {
    fn request(&self) -> Option<RequestId> {
        match self {
            Miss { request, .. } => Some(request.clone()),
            CheckRetention(r) | Start(r) | Resume(r) | Defer(r) => Some(r.clone()),
            CleanUp(_) | WakeAt(_) => None,
        }
    }
}

#[test]
fn nothing_in_play_plans_nothing() {
    assert_eq!(plan(&Snapshot::default(), t(20, 0)), vec![]);
}

#[test]
fn a_request_waits_for_its_window_and_its_retention_is_checked_every_15_minutes() {
    let mut run = accepted("a");
    assert_eq!(
        plan(&snap(vec![run.clone()]), t(19, 0)),
        vec![WakeAt(t(20, 0)), CheckRetention(id("a"))]
    );
    run.retention_checked = Some(t(18, 46));
    assert_eq!(
        plan(&snap(vec![run.clone()]), t(19, 0)),
        vec![WakeAt(t(20, 0))]
    );
    run.retention_checked = Some(t(18, 45));
    assert_eq!(
        plan(&snap(vec![run]), t(19, 0)),
        vec![WakeAt(t(20, 0)), CheckRetention(id("a"))]
    );
}

#[test]
fn a_run_starts_when_its_window_opens() {
    assert_eq!(
        plan(&snap(vec![accepted("a")]), t(20, 0)),
        vec![Start(id("a"))]
    );
}

#[test]
fn a_window_that_ended_or_cannot_hold_the_run_is_missed() {
    let a = plan(&snap(vec![accepted("a")]), t(21, 7));
    assert!(
        matches!(&a[..], [Miss { request, why }] if request == &id("a") && why.contains("needs about 114 min")),
        "{a:?}"
    );
    let a = plan(&snap(vec![accepted("a")]), t(23, 0));
    assert!(
        matches!(&a[..], [Miss { why, .. }] if why.contains("without a run")),
        "{a:?}"
    );
}

#[test]
fn a_request_of_an_environment_no_longer_configured_is_left_alone() {
    let mut run = accepted("a");
    run.env = None;
    run.estimates = None;
    assert_eq!(plan(&snap(vec![run]), t(20, 0)), vec![]);
}

#[test]
fn a_prestaged_run_starts_ahead_by_its_restore_and_its_place_in_the_queue() {
    // The environment's setting pre-stages it as well as the request's.
    let mut a = accepted("a");
    a.request.spec.prestage = true;
    let mut b = accepted("b");
    b.env.as_mut().unwrap().prestage = true;
    b.request.spec.window.start = t(20, 1);
    let mut s = snap(vec![a, b]);
    // One restore at a time in the fleet: "b" queues behind "a" and starts
    // a restore-length (60 min) earlier than its own 61 min ahead.
    s.runner = runner(10, 1, 1);
    assert_eq!(
        plan(&s, t(17, 0)),
        vec![
            WakeAt(t(18, 59)),
            CheckRetention(id("a")),
            WakeAt(t(18, 0)),
            CheckRetention(id("b"))
        ]
    );
    assert_eq!(started(&plan(&s, t(18, 0))), vec![id("b")]);
    // Without a cap on restores there is no queue.
    s.runner = runner(10, 1, 0);
    assert!(started(&plan(&s, t(18, 0))).is_empty());
    assert_eq!(started(&plan(&s, t(18, 59))), vec![id("a")]);
}

#[test]
fn a_prestaged_run_starts_ahead_only_with_a_free_restore_slot() {
    let mut a = accepted("a");
    a.request.spec.prestage = true;
    let mut driven = staged("x");
    driven.driving = true;
    let mut s = snap(vec![driven, a]);
    s.runner = runner(10, 1, 1);
    s.runner.active = 1;
    assert_eq!(plan(&s, t(19, 0)), vec![Defer(id("a"))]);
    // Two slots: one free.
    s.runner.restore_slots = 2;
    assert_eq!(plan(&s, t(19, 0)), vec![Start(id("a"))]);
    // At its window, no slot is needed.
    s.runner.restore_slots = 1;
    s.runs[0].request.spec.window.start = t(21, 0);
    assert_eq!(plan(&s, t(20, 0)), vec![Start(id("a"))]);
    // Two early starts in one tick: the second waits for a slot.
    let mut b = accepted("b");
    b.request.spec.prestage = true;
    let mut a = accepted("a");
    a.request.spec.prestage = true;
    let mut s = snap(vec![a, b]);
    s.runner = runner(10, 1, 1);
    assert_eq!(
        plan(&s, t(19, 0)),
        vec![Start(id("a")), Defer(id("b"))],
        "ties keep the store's order"
    );
}

#[test]
fn one_active_run_per_environment() {
    let mut a = accepted("a");
    a.request.spec.environment = "x".into();
    let s = snap(vec![midway("x"), a]);
    let mut s2 = s.clone();
    s2.runs[0].driving = true;
    // "x" midway, nobody driving it: resumed; "a" waits for the environment.
    assert_eq!(plan(&s, t(20, 0)), vec![Resume(id("x")), Defer(id("a"))]);
    assert_eq!(plan(&s2, t(20, 0)), vec![Defer(id("a"))]);
}

#[test]
fn the_limit_on_concurrent_runs_counts_what_this_tick_starts_and_resumes() {
    let s = Snapshot {
        runs: vec![midway("m"), accepted("a"), accepted("b")],
        kept: vec![],
        runner: runner(2, 1, 0),
    };
    assert_eq!(
        plan(&s, t(20, 0)),
        vec![Resume(id("m")), Start(id("a")), Defer(id("b"))]
    );
    let mut busy = s.clone();
    busy.runner.active = 2;
    assert_eq!(
        plan(&busy, t(20, 0)),
        vec![Defer(id("m")), Defer(id("a")), Defer(id("b"))]
    );
}

#[test]
fn runners_sharing_the_budget_take_their_share_of_a_subscription() {
    // Four due in one subscription, two runners: two each.
    let runs: Vec<Run> = ["a", "b", "c", "d"].into_iter().map(accepted).collect();
    let mut s = snap(runs.clone());
    s.runner = runner(100, 2, 0);
    let a = plan(&s, t(20, 0));
    assert_eq!(started(&a), vec![id("a"), id("b")]);
    assert_eq!(deferred(&a), vec![id("c"), id("d")]);
    // Another subscription has its own share.
    s.runs[3].env = env("t");
    assert_eq!(
        started(&plan(&s, t(20, 0))),
        vec![id("a"), id("b"), id("d")]
    );
    // The limit is shared too: 3 runs at most, 2 for this runner.
    let mut s = snap(runs);
    s.runs
        .iter_mut()
        .for_each(|r| r.env = env(r.request.id.as_str()));
    s.runner = runner(3, 2, 0);
    assert_eq!(started(&plan(&s, t(20, 0))), vec![id("a"), id("b")]);
}

#[test]
fn a_run_released_unchanged_is_started_again_after_five_minutes() {
    let mut run = accepted("a");
    run.jobs = vec![job("a", JobStatus::Failed, false)];
    run.jobs[0].finished_at = Some(t(20, 0));
    assert_eq!(plan(&snap(vec![run.clone()]), t(20, 4)), vec![]);
    assert_eq!(
        plan(&snap(vec![run.clone()]), t(20, 5)),
        vec![Start(id("a"))]
    );
    // A dry run after it does not count: the current run is the real one.
    let mut dry = job("a", JobStatus::Succeeded, false);
    dry.dry_run = true;
    run.jobs.push(dry);
    assert_eq!(plan(&snap(vec![run]), t(20, 4)), vec![]);
}

#[test]
fn a_run_a_live_runner_holds_is_left_to_it() {
    let mut run = midway("m");
    run.lease = holder(t(20, 1), false);
    assert_eq!(plan(&snap(vec![run.clone()]), t(20, 0)), vec![]);
    // Expired, or its holder is seen gone: taken over.
    assert_eq!(
        plan(&snap(vec![run.clone()]), t(20, 1)),
        vec![Resume(id("m"))]
    );
    run.lease = holder(t(20, 1), true);
    assert_eq!(
        plan(&snap(vec![run.clone()]), t(20, 0)),
        vec![Resume(id("m"))]
    );
    // Driven by this runner: nothing to do.
    run.driving = true;
    assert_eq!(plan(&snap(vec![run]), t(20, 0)), vec![]);
}

#[test]
fn a_staged_run_waits_for_its_window_then_is_resumed_within_the_share() {
    assert_eq!(
        plan(&snap(vec![staged("x")]), t(19, 30)),
        vec![WakeAt(t(20, 0))]
    );
    assert_eq!(
        plan(&snap(vec![staged("x")]), t(20, 0)),
        vec![Resume(id("x"))]
    );
    // Two runners, four staged runs of one subscription: two each.
    let mut s = snap(["w", "x", "y", "z"].into_iter().map(staged).collect());
    s.runner = runner(100, 2, 0);
    let a = plan(&s, t(20, 0));
    assert_eq!(resumed(&a), vec![id("w"), id("x")]);
    assert_eq!(deferred(&a), vec![id("y"), id("z")]);
    // Recovering (a crash midway through staging): resumed before the
    // window, whatever the share.
    s.runs
        .iter_mut()
        .for_each(|r| r.jobs[0].facts.recovering = Some("crash".into()));
    assert_eq!(resumed(&plan(&s, t(19, 0))).len(), 4);
}

#[test]
fn a_run_another_runner_left_midway_is_taken_over_whatever_the_share() {
    let mut s = snap(["w", "x", "y", "z"].into_iter().map(midway).collect());
    s.runner = runner(100, 2, 0);
    assert_eq!(resumed(&plan(&s, t(20, 0))).len(), 4);
}

#[test]
fn a_run_waiting_for_a_person_is_not_resumed() {
    use StepName::*;
    let waiting = [
        (Preflight, StepStatus::Succeeded),
        (Offline, StepStatus::Waiting),
    ];
    let run = running("p", false, &waiting);
    assert_eq!(
        plan(&snap(vec![run.clone()]), t(19, 0)),
        vec![WakeAt(t(20, 0))]
    );
    assert_eq!(plan(&snap(vec![run]), t(20, 30)), vec![]);
}

#[test]
fn a_rollback_in_progress_is_resumed_though_its_request_is_finished() {
    for status in [RequestStatus::Succeeded, RequestStatus::Failed] {
        let mut run = midway("r");
        run.request.status = status;
        run.jobs[0].facts.rollback = Some(RollbackOf {
            job: "job-earlier".into(),
            by: "ops".into(),
            reason: None,
        });
        assert_eq!(
            plan(&snap(vec![run.clone()]), t(20, 0)),
            vec![Resume(id("r"))]
        );
        // Not a rollback: nothing in progress.
        run.jobs[0].facts.rollback = None;
        assert_eq!(plan(&snap(vec![run]), t(20, 0)), vec![], "{status:?}");
    }
}

#[test]
fn a_running_request_without_an_unfinished_run_is_left_alone() {
    let mut run = midway("m");
    run.jobs[0].status = JobStatus::Failed;
    assert_eq!(plan(&snap(vec![run.clone()]), t(20, 0)), vec![]);
    // Only a dry run running: not the request's run.
    run.jobs[0].status = JobStatus::Running;
    run.jobs[0].dry_run = true;
    assert_eq!(plan(&snap(vec![run]), t(20, 0)), vec![]);
}

fn kept(name: &str) -> Kept {
    let mut job = job(name, JobStatus::Succeeded, false);
    job.finished_at = Some(t(0, 0));
    Kept {
        job,
        steps: vec![],
        driving: false,
    }
}

#[test]
fn an_original_is_dropped_after_its_retention_unless_a_rollback_needs_it() {
    let mut s = snap(vec![]);
    s.kept = vec![kept("a")];
    assert_eq!(plan(&s, t(23, 59)), vec![]);
    assert_eq!(plan(&s, t(24, 0)), vec![CleanUp("job-a".into())]);
    s.runner.keep_original = Duration::hours(48);
    assert_eq!(plan(&s, t(24, 0)), vec![]);
    s.runner.keep_original = Duration::hours(24);
    // Being dropped by this runner already.
    s.kept[0].driving = true;
    assert_eq!(plan(&s, t(24, 0)), vec![]);
    s.kept[0].driving = false;
    // Settled: done, or given up after three failures.
    s.kept[0].steps = vec![done(StepName::Cleanup, StepStatus::Succeeded)];
    assert_eq!(plan(&s, t(24, 0)), vec![]);
    s.kept[0].steps[0].status = StepStatus::Failed;
    assert_eq!(plan(&s, t(24, 0)), vec![CleanUp("job-a".into())]);
    s.kept[0].steps[0].attempts = 3;
    assert_eq!(plan(&s, t(24, 0)), vec![]);
    s.kept[0].steps.clear();
    // A rollback of it is running: it needs the original.
    let mut rollback = midway("a");
    rollback.request.status = RequestStatus::Succeeded;
    rollback.jobs[0].id = "job-rollback".into();
    rollback.jobs[0].facts.rollback = Some(RollbackOf {
        job: "job-a".into(),
        by: "ops".into(),
        reason: None,
    });
    rollback.driving = true;
    s.runs = vec![rollback.clone()];
    assert_eq!(plan(&s, t(24, 0)), vec![]);
    // A rollback job drops nothing itself.
    s.runs.clear();
    s.kept = vec![Kept {
        job: rollback.jobs[0].clone(),
        steps: vec![],
        driving: false,
    }];
    s.kept[0].job.status = JobStatus::Succeeded;
    s.kept[0].job.finished_at = Some(t(0, 0));
    assert_eq!(plan(&s, t(24, 0)), vec![]);
}

#[test]
fn actions_come_in_the_order_they_are_performed() {
    // Misses and retention checks while looking at the accepted requests,
    // then resumes, then starts, then cleanups.
    let mut late = accepted("late");
    late.request.spec.window = Window {
        start: t(18, 0),
        end: t(20, 30),
    };
    let mut later = accepted("later");
    later.request.spec.window = Window {
        start: t(22, 0),
        end: t(23, 30),
    };
    let mut s = snap(vec![later, accepted("now"), late, midway("m")]);
    s.kept = vec![kept("k")];
    s.kept[0].job.finished_at = Some(t(-5, 0));
    let a = plan(&s, t(20, 0));
    assert!(
        matches!(&a[0], Miss { request, .. } if request == &id("late")),
        "{a:?}"
    );
    assert_eq!(
        a[1..],
        [
            WakeAt(t(22, 0)),
            CheckRetention(id("later")),
            Resume(id("m")),
            Start(id("now")),
            CleanUp("job-k".into())
        ]
    );
}
