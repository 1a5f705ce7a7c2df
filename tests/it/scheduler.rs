//! `pitr serve`'s scheduler, driven tick by tick with an injectable clock:
//! runs start when their window opens, windows that cannot hold a run are
//! missed, pre-staged restores run ahead, a restart resumes runs in progress.
//! Against the in-process mock Azure and a real SQLite store.
use crate::helpers::*;
use chrono::Duration;
use pitr::clock::Clock;
use pitr::domain::{JobStatus, RequestStatus, StepName, StepStatus};
use pitr::engine::scheduler::{Scheduler, TickReport};
use pitr::engine::EngineError;

const SUB: &str = "00000000-0000-0000-0000-00000000aaaa";

fn config() -> String {
    let mut c = String::from(
        "[azure]\nmin_poll_interval_ms = 20\n[engine.estimates]\nrestore_secs = 600\nsync_secs = 600\n",
    );
    for name in ["uat", "qa"] {
        c.push_str(&sandbox_environment(name, SUB));
    }
    c
}

type Harness = InProcess;

async fn start() -> Harness {
    InProcess::start(&config()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_request_runs_when_its_window_opens() {
    let h = start().await;
    let (id, window) = h.accepted("uat", false).await;
    let sched = Scheduler::new(h.engine.clone(), 2);
    // Not yet; the scheduler will wake when the window opens.
    assert_eq!(
        sched.tick().await.unwrap(),
        TickReport {
            next_due: Some(window.start),
            ..Default::default()
        },
        "not yet"
    );
    h.clock.set(window.start - Duration::seconds(1));
    assert!(sched.tick().await.unwrap().started.is_empty());
    h.clock.set(window.start);
    assert_eq!(sched.tick().await.unwrap().started, vec![id.clone()]);
    sched.wait_idle().await;
    assert_eq!(h.status(&id).await, RequestStatus::Succeeded);
    let job = h.job(&id).await;
    assert!(job.facts.offline_at.unwrap() >= window.start);
    assert_eq!(h.restore_puts(), 1);
    // Nothing left to do.
    assert_eq!(sched.tick().await.unwrap(), Default::default());

    // The original is kept for 24 hours, then dropped.
    let before = format!("AxDB_before_{}", job.id.tag());
    let names = |h: &Harness| -> Vec<String> {
        h.mock().state_json()["servers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["databases"].as_array().unwrap().clone())
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect()
    };
    h.clock
        .set(job.finished_at.unwrap() + Duration::hours(24) - Duration::seconds(1));
    assert!(sched.tick().await.unwrap().cleaned.is_empty());
    assert!(names(&h).contains(&before));
    h.clock.set(job.finished_at.unwrap() + Duration::hours(24));
    assert_eq!(sched.tick().await.unwrap().cleaned, vec![job.id.clone()]);
    sched.wait_idle().await;
    assert!(!names(&h).contains(&before), "{:?}", names(&h));
    assert!(names(&h).contains(&"AxDB".to_string()));
    assert_eq!(
        h.step(&job, StepName::Cleanup).await,
        Some(StepStatus::Succeeded)
    );
    assert!(sched.tick().await.unwrap().cleaned.is_empty(), "once");
    // With the original gone, a rollback is refused.
    let err = h.engine.rollback(&id, None).await.unwrap_err();
    assert!(err.to_string().contains("no longer exists"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_that_passed_or_cannot_hold_the_run_is_missed() {
    let h = start().await;
    let (passed, window) = h.accepted("uat", false).await;
    let (short, _) = h.accepted("qa", false).await;
    let sched = Scheduler::new(h.engine.clone(), 2);
    // 30 minutes before the end: preflight + offline + restore (10 min) +
    // swap + sync (10 min) + mr_reset + online + verify take longer.
    h.clock.set(window.end - Duration::minutes(30));
    let r = sched.tick().await.unwrap();
    assert!(r.started.is_empty());
    assert_eq!(r.missed.len(), 2);
    assert!(r
        .missed
        .iter()
        .all(|(_, why)| why.contains("the run needs about")));
    for id in [&passed, &short] {
        assert_eq!(h.status(id).await, RequestStatus::Missed);
        let events = h.engine.store().request_events(id).await.unwrap();
        let last = events.last().unwrap();
        assert_eq!(last.to, RequestStatus::Missed);
        assert_eq!(last.actor, "scheduler");
    }
    assert_eq!(h.restore_puts(), 0);
    h.clock.set(h.t0);
    let (late, window) = h.accepted("uat", false).await;
    h.clock.set(window.end);
    let r = sched.tick().await.unwrap();
    assert_eq!(
        r.missed,
        vec![(
            late.clone(),
            format!(
                "the window ended at {} without a run",
                pitr::domain::time::show(window.end)
            )
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_on_concurrent_runs_defers_the_others() {
    let h = start().await;
    let (a, window) = h.accepted("uat", false).await;
    let (b, _) = h.accepted("qa", false).await;
    let sched = Scheduler::new(h.engine.clone(), 1);
    h.clock.set(window.start);
    let r = sched.tick().await.unwrap();
    assert_eq!(r.started.len(), 1);
    assert_eq!(r.deferred.len(), 1);
    sched.wait_idle().await;
    let r = sched.tick().await.unwrap();
    assert_eq!(r.started.len(), 1);
    sched.wait_idle().await;
    assert_eq!(h.status(&a).await, RequestStatus::Succeeded);
    assert_eq!(h.status(&b).await, RequestStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prestaged_restore_runs_ahead_and_the_window_holds_only_the_downtime() {
    let h = start().await;
    let (id, window) = h.accepted("uat", true).await;
    let sched = Scheduler::new(h.engine.clone(), 2);
    // Estimates: preflight 30 s + restore 600 s: start 10.5 min ahead.
    h.clock.set(window.start - Duration::minutes(11));
    assert!(sched.tick().await.unwrap().started.is_empty());
    h.clock.set(window.start - Duration::minutes(10));
    assert_eq!(sched.tick().await.unwrap().started, vec![id.clone()]);
    sched.wait_idle().await;
    // Staged: restored, not swapped, environment still up.
    assert_eq!(h.status(&id).await, RequestStatus::Running);
    let job = h.job(&id).await;
    assert_eq!(job.status, JobStatus::Running);
    assert_eq!(
        h.step(&job, StepName::Restore).await,
        Some(StepStatus::Succeeded)
    );
    assert_eq!(h.step(&job, StepName::Offline).await, None);
    assert!(job.facts.offline_at.is_none());
    let state = h.mock().state_json();
    assert!(state["vms"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["services"]
            .as_object()
            .unwrap()
            .values()
            .all(|s| s == "Running")));
    assert!(
        sched.tick().await.unwrap().resumed.is_empty(),
        "waits for the window"
    );

    // A restarted scheduler continues it when the window opens.
    let sched = Scheduler::new(h.restarted().await, 2);
    h.clock.set(window.start);
    assert_eq!(sched.tick().await.unwrap().resumed, vec![id.clone()]);
    sched.wait_idle().await;
    assert_eq!(h.status(&id).await, RequestStatus::Succeeded);
    let job = h.job(&id).await;
    assert_eq!(job.facts.offline_at, Some(window.start));
    assert_eq!(h.restore_puts(), 1);
    let history = h.engine.store().environment_events("uat").await.unwrap();
    assert_eq!(history.len(), 1);
    assert!(history[0].restore().unwrap().prestaged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_prestaged_restore_holds_the_downtime_back_until_it_is_done() {
    let h = start().await;
    let (id, window) = h.accepted("uat", true).await;
    let sched = Scheduler::new(h.engine.clone(), 2);
    h.mock_hold(true).await;
    h.clock.set(window.start - Duration::minutes(10));
    assert_eq!(sched.tick().await.unwrap().started, vec![id.clone()]);
    h.wait_for_restore_poll().await;
    // The window opens while the restore is still running: nothing goes offline.
    h.clock.set(window.start + Duration::minutes(5));
    assert!(
        sched.tick().await.unwrap().resumed.is_empty(),
        "the run is still driven"
    );
    let job = h.job(&id).await;
    assert_eq!(
        h.step(&job, StepName::Restore).await,
        Some(StepStatus::Running)
    );
    assert_eq!(h.step(&job, StepName::Offline).await, None);
    let steps = h.engine.store().steps(&job.id).await.unwrap();
    let req = h.engine.request(&id).await.unwrap();
    let why = pitr::domain::schedule::waiting_reason(
        &req,
        &job,
        &steps,
        pitr::clock::Clock::now(&h.clock),
    )
    .unwrap();
    assert!(why.contains("pre-staged restore"), "{why}");
    h.mock_hold(false).await;
    sched.wait_idle().await;
    assert_eq!(h.status(&id).await, RequestStatus::Succeeded);
    let job = h.job(&id).await;
    assert_eq!(
        job.facts.offline_at,
        Some(window.start + Duration::minutes(5))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_an_interrupted_run_is_resumed() {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let h = InProcess::start_with(&config(), stop_rx).await;
    let (id, window) = h.accepted("uat", false).await;
    h.mock_hold(true).await;
    h.clock.set(window.start);
    let engine = h.engine.clone();
    let run = tokio::spawn({
        let id = id.clone();
        async move { engine.run(&id, false).await }
    });
    h.wait_for_restore_poll().await;
    stop_tx.send(true).unwrap();
    assert!(matches!(
        run.await.unwrap(),
        Err(EngineError::Interrupted { .. })
    ));
    assert_eq!(h.status(&id).await, RequestStatus::Running);
    h.mock_hold(false).await;

    let sched = Scheduler::new(h.restarted().await, 2);
    assert_eq!(sched.tick().await.unwrap().resumed, vec![id.clone()]);
    sched.wait_idle().await;
    assert_eq!(h.status(&id).await, RequestStatus::Succeeded);
    assert_eq!(h.restore_puts(), 1);
}

/// A rollback interrupted mid-way (its request keeps its status while it
/// runs) is resumed by a restarted scheduler like any run in progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_an_interrupted_rollback_is_resumed() {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let h = InProcess::start_with(&config(), stop_rx).await;
    let (id, window) = h.accepted("uat", false).await;
    h.clock.set(window.start);
    assert!(h.engine.run(&id, false).await.unwrap().is_success());
    let restore = h.job(&id).await;
    h.mock_hold_operation("run_command", true).await;
    let engine = h.engine.clone();
    let rollback = tokio::spawn({
        let id = id.clone();
        async move { engine.rollback(&id, Some("wrong data".into())).await }
    });
    // Wait until the rollback's offline step has its run command in Azure.
    for _ in 0..500 {
        let started = h.job(&id).await.id != restore.id;
        if started
            && h.step(&h.job(&id).await, StepName::Offline).await == Some(StepStatus::Running)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop_tx.send(true).unwrap();
    assert!(matches!(
        rollback.await.unwrap(),
        Err(EngineError::Interrupted { .. })
    ));
    let job = h.job(&id).await;
    assert!(job.is_rollback());
    assert_eq!(job.status, JobStatus::Running);
    assert_eq!(h.status(&id).await, RequestStatus::Succeeded);
    h.mock_hold_operation("run_command", false).await;

    // Past the time the original is kept: the rollback needs it, so it is
    // not cleaned up, neither meanwhile nor after.
    h.clock
        .set(restore.finished_at.unwrap() + Duration::hours(25));
    let sched = Scheduler::new(h.restarted().await, 2);
    let report = sched.tick().await.unwrap();
    assert_eq!(report.resumed, vec![id.clone()]);
    assert!(report.cleaned.is_empty(), "{report:?}");
    sched.wait_idle().await;
    assert!(sched.tick().await.unwrap().cleaned.is_empty());
    assert_eq!(h.status(&id).await, RequestStatus::RolledBack);
    let job = h.job(&id).await;
    assert_eq!(job.status, JobStatus::Succeeded);
    let restore = h
        .engine
        .store()
        .get_job(&restore.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(restore.status, JobStatus::RolledBack);
    let history = h.engine.store().environment_events("uat").await.unwrap();
    assert_eq!(
        history
            .iter()
            .filter_map(|e| e.rollback())
            .map(|r| &r.rolled_back)
            .collect::<Vec<_>>(),
        vec![&restore.id]
    );
    assert_eq!(h.restore_puts(), 1);
}

/// `max_concurrent_runs` holds across runners sharing a store: a second
/// runner (its own engine and scheduler, its own count of zero) is refused
/// the start while the first runner's run holds the only place, and starts
/// it once that run ends. `request show` (library view and CLI, text and
/// JSON) names the runner holding the run and its lease's expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_on_concurrent_runs_holds_across_runners() {
    let h = start().await;
    let (a, window) = h.accepted("uat", false).await;
    let (b, _) = h.accepted("qa", false).await;
    // The restore stays in progress: the first run keeps its place.
    h.mock_hold(true).await;
    let first = Scheduler::new(h.engine.clone(), 1);
    let second = Scheduler::new(h.restarted().await, 1);
    h.clock.set(window.start);
    let r = first.tick().await.unwrap();
    assert_eq!((r.started.len(), r.deferred.len()), (1, 1), "{r:?}");
    let (running, waiting) = if r.started[0] == a { (a, b) } else { (b, a) };
    // The other runner drives nothing yet, but the store counts the
    // first runner's run: its start is refused and changes nothing.
    let r = second.tick().await.unwrap();
    assert!(r.started.is_empty(), "{r:?}");
    assert_eq!(r.deferred, vec![waiting.clone()]);
    assert_eq!(h.status(&waiting).await, RequestStatus::Accepted);
    assert!(h
        .engine
        .store()
        .jobs_for_request(&waiting)
        .await
        .unwrap()
        .is_empty());

    // Who holds the run: this process's runner id, until the lease's expiry.
    let me = pitr::engine::runner_id();
    let shown = pitr::service::views::RequestDetail::load(
        h.engine.store(),
        &h.app.config,
        h.clock.now(),
        &running,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(shown.runner.as_deref(), Some(me.as_str()));
    let until =
        chrono::DateTime::parse_from_rfc3339(shown.runner_lease_until.as_deref().unwrap()).unwrap();
    assert!(until > h.clock.now(), "{until}");
    let cli = h.cli_json(&["request", "show", running.as_str()]);
    assert_eq!(cli["runner"], me.as_str());
    assert_eq!(cli["runner_lease_until"], shown.runner_lease_until.unwrap());
    let text = h.cli(&["request", "show", running.as_str()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("runner") && l.contains(&me) && l.contains("lease until")),
        "{text}"
    );
    let idle = h.cli_json(&["request", "show", waiting.as_str()]);
    assert!(idle["runner"].is_null() && idle["runner_lease_until"].is_null());

    h.mock_hold(false).await;
    first.wait_idle().await;
    assert_eq!(h.status(&running).await, RequestStatus::Succeeded);
    // Finished: nobody holds it any more.
    assert!(h.cli_json(&["request", "show", running.as_str()])["runner"].is_null());
    let r = second.tick().await.unwrap();
    assert_eq!(r.started, vec![waiting.clone()]);
    second.wait_idle().await;
    assert_eq!(h.status(&waiting).await, RequestStatus::Succeeded);
}

/// Six environments of one subscription, with two runners sharing ARM's
/// budget (`[azure.rate_limits] runners = 2`) and Azure SQL's restore cap
/// (4 per subscription: two slots each).
fn shared_config() -> String {
    let mut c = String::from(
        "[azure]\nmin_poll_interval_ms = 20\nmax_concurrent_restores_per_subscription = 4\n[azure.rate_limits]\nrunners = 2\n[engine.estimates]\nrestore_secs = 600\nsync_secs = 600\n",
    );
    for i in 0..6 {
        c.push_str(&sandbox_environment(&format!("env{i}"), SUB));
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_sharing_the_budget_split_a_subscriptions_runs_between_them() {
    let h = InProcess::start(&shared_config()).await;
    let mut ids = Vec::new();
    let mut window = None;
    for i in 0..6 {
        let (id, w) = h.accepted(&format!("env{i}"), true).await;
        ids.push(id);
        window = Some(w);
    }
    let window = window.unwrap();
    let a = Scheduler::new(h.engine.clone(), 100);
    let b = Scheduler::new(h.restarted().await, 100);

    // Pre-staging, ten minutes before the window (restores are estimated
    // at ten minutes, queued four at a time): every run is due, but a runner
    // takes a pre-staged run only while one of its restore slots (two
    // here) is free.
    h.clock.set(window.start - Duration::minutes(10));
    let first = a.tick().await.unwrap();
    assert_eq!(first.started.len(), 2, "{first:?}");
    assert_eq!(first.deferred.len(), 4, "{first:?}");
    // The other runner takes the next two from the store's queue rather
    // than leaving them behind the first runner's slots.
    let second = b.tick().await.unwrap();
    assert_eq!(second.started.len(), 2, "{second:?}");
    a.wait_idle().await;
    b.wait_idle().await;
    // Slots free again: the last two, one runner each.
    assert_eq!(a.tick().await.unwrap().started.len(), 2);
    a.wait_idle().await;
    assert!(b.tick().await.unwrap().started.is_empty());
    for id in &ids {
        let job = h.job(id).await;
        assert_eq!(
            h.step(&job, StepName::Restore).await,
            Some(StepStatus::Succeeded)
        );
        assert_eq!(h.step(&job, StepName::Offline).await, None);
    }

    // The window opens: the first runner to look resumes only its share of
    // the subscription's staged runs (half), so that each runner drives
    // what its half of ARM's budget can carry.
    h.clock.set(window.start);
    let first = a.tick().await.unwrap();
    assert_eq!(first.resumed.len(), 3, "{first:?}");
    assert_eq!(first.deferred.len(), 3, "{first:?}");
    a.wait_idle().await;
    // The share is of what is still in play: three runs, two of them.
    let second = b.tick().await.unwrap();
    assert_eq!(second.resumed.len(), 2, "{second:?}");
    assert_eq!(second.deferred.len(), 1, "{second:?}");
    b.wait_idle().await;
    assert_eq!(b.tick().await.unwrap().resumed.len(), 1);
    b.wait_idle().await;
    for id in &ids {
        assert_eq!(h.status(id).await, RequestStatus::Succeeded);
    }
    assert_eq!(h.restore_puts(), 6);
}
