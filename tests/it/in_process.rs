//! pitr on its library API: `App` with an embedded mock Azure seeded from
//! the config's environments, a fresh SQLite store and a manual clock that
//! only moves when a test moves it (directly, or from a hook on the run's
//! progress events, so that time passes at exact points of a run).
use crate::helpers::restore_puts;
use chrono::{DateTime, Duration, Utc};
use pitr::app::{rehearsal_scenario, App, Azure};
use pitr::clock::ManualClock;
use pitr::config::Config;
use pitr::domain::lifecycle::LifecycleEvent;
use pitr::domain::{
    Acknowledgements, Job, RequestId, RequestSpec, RequestStatus, StepName, StepStatus, Window,
};
use pitr::engine::progress::{Progress, ProgressEvent};
use pitr::engine::Engine;
use pitr::mock::MockAzure;
use std::sync::Arc;

/// pitr on its library API: [`App`] with an embedded mock Azure seeded from
/// the config's environments, a fresh SQLite store and a manual clock
/// starting at `t0`.
pub struct InProcess {
    pub dir: tempfile::TempDir,
    pub app: App,
    pub engine: Arc<Engine>,
    pub clock: ManualClock,
    pub t0: DateTime<Utc>,
    config: String,
    hook: Arc<Hooked>,
}

/// Called with the test's clock on every progress event of a run.
pub type Hook = Box<dyn Fn(&ManualClock, &ProgressEvent) + Send + Sync>;

/// The engines' progress sink: hands each event to the test's hook.
struct Hooked {
    clock: ManualClock,
    hook: std::sync::Mutex<Option<Hook>>,
}

impl Progress for Hooked {
    fn event(&self, ev: ProgressEvent) {
        if let Some(h) = self.hook.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            h(&self.clock, &ev);
        }
    }
}

/// A clock hook that makes each step take `minutes(step)` of the test's
/// clock: the clock moves when the step starts, so the step's checkpoints
/// (and what its body reads from the clock) see the time it took.
pub fn steps_take(minutes: impl Fn(StepName) -> i64 + Send + Sync + 'static) -> Hook {
    Box::new(move |clock, ev| {
        if let ProgressEvent::StepStarted { step, .. } = ev {
            clock.advance(Duration::minutes(minutes(*step)));
        }
    })
}

/// A clock hook that sets the clock to `at` once `step` is done.
pub fn after_step(step: StepName, at: DateTime<Utc>) -> Hook {
    Box::new(move |clock, ev| {
        if matches!(ev, ProgressEvent::StepDone { step: s, .. } if *s == step) {
            clock.set(at);
        }
    })
}

impl InProcess {
    pub async fn start(config: &str) -> InProcess {
        Self::start_with(config, tokio::sync::watch::channel(false).1).await
    }

    /// Runs stop at a safe point when `stop` becomes true.
    pub async fn start_with(config: &str, stop: tokio::sync::watch::Receiver<bool>) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Utc::now();
        let clock = ManualClock::new(t0);
        let parsed = Self::config(config, &dir);
        let scenario = rehearsal_scenario(&parsed.environments);
        let hook = Arc::new(Hooked {
            clock: clock.clone(),
            hook: std::sync::Mutex::new(None),
        });
        let app = App::builder(parsed)
            .create_store(true)
            .azure(Azure::Embedded(Box::new(scenario)))
            .clock(Arc::new(clock.clone()))
            .progress(hook.clone())
            .actor("scheduler")
            .secret("PITR_TEST_SQL_PASSWORD", "x-test")
            .shutdown(stop)
            .build()
            .await
            .unwrap();
        let engine = app.engine().unwrap();
        InProcess {
            dir,
            app,
            engine,
            clock,
            t0,
            config: config.to_string(),
            hook,
        }
    }

    /// Every progress event of the runs from now on goes to `hook`.
    pub fn on_progress(&self, hook: Hook) {
        *self.hook.hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    /// The config, with a bounded restore: a test whose mock is held never
    /// waits for the 12-hour default.
    fn config(text: &str, dir: &tempfile::TempDir) -> Config {
        let mut config = Config::from_toml(text, "test", []).unwrap();
        config.store.url = format!("sqlite://{}", dir.path().join("pitr.db").display());
        config.engine.restore_timeout_secs.get_or_insert(300);
        config
    }

    /// `pitr ARGS` on this store and config (the CLI's view of what the
    /// library wrote); Azure is not reachable from it.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let path = self.dir.path().join("cli.toml");
        if !path.exists() {
            let store = format!("sqlite://{}", self.dir.path().join("pitr.db").display());
            std::fs::write(
                &path,
                format!("[store]\nurl = \"{store}\"\n{}", self.config),
            )
            .unwrap();
        }
        std::process::Command::new(crate::helpers::PITR)
            .args(args)
            .env("PITR_CONFIG", &path)
            .env_remove("PITR_LOG")
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    /// `pitr ARGS --json`, which must succeed.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "pitr {all:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// An ARM client of the embedded mock acting beside pitr (an operator
    /// in the portal).
    pub fn operator(&self) -> pitr::azure::ArmClient {
        pitr::azure::ArmClient::for_mock(
            &pitr::config::AzureConfig::default(),
            &self.mock().url(),
            self.mock().ca_pem(),
        )
        .unwrap()
    }

    /// POSTs to the embedded mock's admin API (faults, holds).
    pub async fn mock_post(&self, path: &str, body: serde_json::Value) {
        let client = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.mock().ca_pem().as_bytes()).unwrap(),
            )
            .build()
            .unwrap();
        let r = client
            .post(format!("{}{path}", self.mock().url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "POST {path}: {}", r.status());
    }

    pub fn mock(&self) -> &MockAzure {
        self.app.mock().expect("an embedded mock")
    }

    /// Another pitr on the same store and mock: a restarted `pitr serve`.
    pub async fn restarted(&self) -> Arc<Engine> {
        let mock = self.mock();
        App::builder(Self::config(&self.config, &self.dir))
            .azure(Azure::Mock {
                url: mock.url(),
                ca_pem: mock.ca_pem().to_string(),
            })
            .clock(Arc::new(self.clock.clone()))
            .progress(self.hook.clone())
            .actor("scheduler-2")
            .secret("PITR_TEST_SQL_PASSWORD", "x-test")
            .build()
            .await
            .unwrap()
            .engine()
            .unwrap()
    }

    /// An accepted request restoring `env` to 3 hours before t0, with a
    /// 2-hour window opening a day after t0.
    pub async fn accepted(&self, env: &str, prestage: bool) -> (RequestId, Window) {
        let start = self.t0 + Duration::days(1);
        let window = Window {
            start,
            end: start + Duration::hours(2),
        };
        let (req, _) = self
            .engine
            .submit(RequestSpec {
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

    pub async fn status(&self, id: &RequestId) -> RequestStatus {
        self.engine.request(id).await.unwrap().status
    }

    /// The request's latest job.
    pub async fn job(&self, id: &RequestId) -> Job {
        self.engine
            .store()
            .jobs_for_request(id)
            .await
            .unwrap()
            .pop()
            .unwrap()
    }

    pub async fn step(&self, job: &Job, s: StepName) -> Option<StepStatus> {
        self.engine
            .store()
            .steps(&job.id)
            .await
            .unwrap()
            .iter()
            .find(|r| r.step == s)
            .map(|r| r.status)
    }

    pub fn restore_puts(&self) -> usize {
        restore_puts(self.mock().journal_json().as_array().unwrap())
    }

    /// Holds (or releases) the mock's restore operations in progress.
    pub async fn mock_hold(&self, hold: bool) {
        self.mock_hold_operation("restore", hold).await
    }

    /// Holds (or releases) the mock's operations of one kind (`restore`,
    /// `delete`, `run_command`) in progress.
    pub async fn mock_hold_operation(&self, operation: &str, hold: bool) {
        self.mock_post(
            "/_mock/hold",
            serde_json::json!({"operation": operation, "hold": hold}),
        )
        .await;
    }

    /// Waits until the engine has polled the restore operation once.
    pub async fn wait_for_restore_poll(&self) {
        // Bounded, and wide enough for a loaded machine.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            let polled = self
                .mock()
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
