//! `pitr serve`'s scheduler, driven tick by tick with an injectable clock:
//! runs start when their window opens, windows that cannot hold a run are
//! missed, pre-staged restores run ahead, a restart resumes runs in progress.
//! Against the in-process mock Azure and a real SQLite store.
use chrono::{DateTime, Duration, Utc};
use pitr::azure::ArmClient;
use pitr::clock::ManualClock;
use pitr::config::Config;
use pitr::domain::lifecycle::LifecycleEvent;
use pitr::domain::{
    Acknowledgements, Job, JobStatus, NewRequest, RequestStatus, StepName, StepStatus, Window,
};
use pitr::engine::progress::Silent;
use pitr::engine::scheduler::Scheduler;
use pitr::engine::{Engine, EngineError};
use pitr::mock::MockAzure;
use serde_json::json;
use std::sync::Arc;

const SUB: &str = "00000000-0000-0000-0000-00000000aaaa";

fn config() -> String {
    let mut c = String::from(
        "[azure]\nmin_poll_interval_ms = 20\n[engine.estimates]\nrestore_secs = 600\nsync_secs = 600\n",
    );
    for (name, server) in [("uat", "sql-uat"), ("qa", "sql-qa")] {
        let vm = format!("/subscriptions/{SUB}/resourceGroups/rg-{name}/providers/Microsoft.Compute/virtualMachines/aos-{name}");
        c.push_str(&format!(
            r#"
[[environments]]
name = "{name}"
tier = "sandbox"
database_kind = "azure_sql"
subscription_id = "{SUB}"
resource_group = "rg-{name}"
server = "{server}"
location = "westeurope"
database = "AxDB"
sql_password_env = "PITR_TEST_SQL_PASSWORD"
aos_vms = ["{vm}"]
sync_vm = "{vm}"
mr_vm = "{vm}"
"#
        ));
    }
    c
}

struct Harness {
    _dir: tempfile::TempDir,
    mock: MockAzure,
    engine: Arc<Engine>,
    clock: ManualClock,
    t0: DateTime<Utc>,
}

impl Harness {
    async fn start() -> Harness {
        Self::start_with(tokio::sync::watch::channel(false).1).await
    }

    async fn start_with(stop: tokio::sync::watch::Receiver<bool>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::from_toml(&config(), "test", []).unwrap();
        config.store.url = format!("sqlite://{}", dir.path().join("pitr.db").display());
        let scenario = pitr::cli::dry_run::scenario_for(&config.environments);
        let mock = MockAzure::start(scenario, "127.0.0.1:0".parse().unwrap(), None)
            .await
            .unwrap();
        let azure = ArmClient::for_mock(&config.azure, &mock.url(), mock.ca_pem()).unwrap();
        let store = pitr::store::open(&config.store.url).await.unwrap();
        let t0 = Utc::now();
        let clock = ManualClock::new(t0);
        let engine = Arc::new(
            Engine::new(
                &config,
                store,
                azure,
                Arc::new(clock.clone()),
                Arc::new(Silent),
                "scheduler".into(),
            )
            .with_secret("PITR_TEST_SQL_PASSWORD", "x-test")
            .with_shutdown(stop),
        );
        Harness {
            _dir: dir,
            mock,
            engine,
            clock,
            t0,
        }
    }

    /// A new engine on the same store and mock: a restarted `pitr serve`.
    async fn restarted(&self) -> Arc<Engine> {
        let mut config = Config::from_toml(&config(), "test", []).unwrap();
        config.store.url = format!("sqlite://{}", self._dir.path().join("pitr.db").display());
        let azure =
            ArmClient::for_mock(&config.azure, &self.mock.url(), self.mock.ca_pem()).unwrap();
        let store = pitr::store::open(&config.store.url).await.unwrap();
        Arc::new(
            Engine::new(
                &config,
                store,
                azure,
                Arc::new(self.clock.clone()),
                Arc::new(Silent),
                "scheduler-2".into(),
            )
            .with_secret("PITR_TEST_SQL_PASSWORD", "x-test"),
        )
    }

    /// An accepted request for `env` whose 2-hour window opens a day from t0.
    async fn accepted(&self, env: &str, prestage: bool) -> (String, Window) {
        let start = self.t0 + Duration::days(1);
        let window = Window {
            start,
            end: start + Duration::hours(2),
        };
        let (req, _) = self
            .engine
            .submit(NewRequest {
                environment: env.into(),
                database: "AxDB".into(),
                restore_point: self.t0 - Duration::hours(3),
                window,
                acks: Acknowledgements {
                    erase: true,
                    downtime: true,
                    scope: true,
                    version_mismatch: false,
                },
                requester: "tester".into(),
                reason: None,
                prestage,
                emergency: None,
            })
            .await
            .unwrap();
        self.engine
            .transition(&req.id, LifecycleEvent::Accept, None)
            .await
            .unwrap();
        (req.id, window)
    }

    async fn status(&self, id: &str) -> RequestStatus {
        self.engine.request(id).await.unwrap().status
    }

    async fn job(&self, id: &str) -> Job {
        self.engine
            .store()
            .jobs_for_request(id)
            .await
            .unwrap()
            .pop()
            .unwrap()
    }

    async fn step(&self, job: &Job, s: StepName) -> Option<StepStatus> {
        self.engine
            .store()
            .steps(&job.id)
            .await
            .unwrap()
            .iter()
            .find(|r| r.step == s)
            .map(|r| r.status)
    }

    fn restore_puts(&self) -> usize {
        self.mock
            .journal_json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["method"] == "PUT")
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_request_runs_when_its_window_opens() {
    let h = Harness::start().await;
    let (id, window) = h.accepted("uat", false).await;
    let sched = Scheduler::new(h.engine.clone(), 2);
    assert_eq!(sched.tick().await.unwrap(), Default::default(), "not yet");
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
    let before = format!("AxDB_before_{}", &job.id[..8]);
    let names = |h: &Harness| -> Vec<String> {
        h.mock.state_json()["servers"]
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
    let h = Harness::start().await;
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
            format!("the window ended at {} without a run", window.end)
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_on_concurrent_runs_defers_the_others() {
    let h = Harness::start().await;
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
    let h = Harness::start().await;
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
    let state = h.mock.state_json();
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
    assert!(history[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("\"prestaged\":true"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_prestaged_restore_holds_the_downtime_back_until_it_is_done() {
    let h = Harness::start().await;
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
    let h = Harness::start_with(stop_rx).await;
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

impl Harness {
    async fn mock_hold(&self, hold: bool) {
        let client = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.mock.ca_pem().as_bytes()).unwrap(),
            )
            .build()
            .unwrap();
        let r = client
            .post(format!("{}/_mock/hold", self.mock.url()))
            .json(&json!({"operation": "restore", "hold": hold}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    async fn wait_for_restore_poll(&self) {
        for _ in 0..500 {
            let polled = self
                .mock
                .journal_json()
                .as_array()
                .unwrap()
                .iter()
                .any(|e| {
                    e["method"] == "GET"
                        && e["path"]
                            .as_str()
                            .unwrap_or("")
                            .contains("databaseAzureAsyncOperation")
                });
            if polled {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the restore was never polled");
    }
}
