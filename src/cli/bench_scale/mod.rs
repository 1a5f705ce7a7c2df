//! `pitr bench --environments N --subscriptions S [--runners R] [--store URL]`:
//! N environments over S subscriptions, every window opening at the same
//! instant, driven by R `pitr serve` processes sharing one store, against a
//! mock Azure that throttles like ARM (token buckets per subscription and
//! client, Azure SQL's cap on concurrent restores). Operation durations are
//! scaled down (`--restore-ms`, `--run-command-ms`) so that a thousand
//! environments finish in minutes; ARM's buckets keep their real sizes and
//! rates (or `--bucket-scale` of them). Figures, not assertions.
use super::Failure;
use procs::{listening_on, proc_cpu_secs, proc_status_kb};

mod print;
mod procs;
use crate::app::{rehearsal_scenario, sample_environment, App, Azure, SAMPLE_SQL_PASSWORD_ENV};
use crate::config::{Bucket, Config, CredentialKind};
use crate::domain::lifecycle::LifecycleEvent;
use crate::domain::step::Checkpoints;
use crate::domain::{Acknowledgements, RequestSpec, RequestStatus, StepName, Window};
use crate::mock::{BucketSpec, MockAzure, ThrottleSpec};
use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct ScaleArgs {
    pub environments: u64,
    pub subscriptions: u64,
    pub runners: u64,
    pub store: Option<String>,
    pub prestage: bool,
    pub restore_ms: u64,
    pub run_command_ms: u64,
    pub poll_ms: u64,
    pub restore_cap: u32,
    /// Fraction of ARM's documented bucket sizes and rates (1.0: ARM's).
    pub bucket_scale: f64,
    pub timeout_secs: u64,
    /// The `pitr` executable the runners are started from.
    pub exe: PathBuf,
}

/// The client id the runners get their ARM tokens for (the mock keeps
/// buckets per subscription and client); the benchmark's own requests
/// (submitting) use another.
const RUNNER_CLIENT: &str = "pitr-bench-runner";
const SECRET_ENV: &str = "PITR_BENCH_CLIENT_SECRET";

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::failed(format!("bench: {e}"))
}

fn secs(d: Duration) -> f64 {
    d.num_microseconds().unwrap_or(0) as f64 / 1e6
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn scaled(b: Bucket, f: f64) -> Bucket {
    Bucket {
        capacity: ((f64::from(b.capacity) * f).round() as u32).max(1),
        per_second: b.per_second * f,
    }
}

/// ARM's throttling buckets as the example scenario file
/// (`config/mock-scenario.toml`, `[settings.throttle]`) writes them.
fn arm_throttle() -> Result<ThrottleSpec, Failure> {
    let scenario =
        crate::mock::Scenario::from_toml_str(include_str!("../../../config/mock-scenario.toml"))
            .map_err(fail)?;
    Ok(*scenario.settings.throttle)
}

/// A runner process: its pid, API address and stats.
struct Runner {
    child: tokio::process::Child,
    listen: String,
    peak_rss_kb: u64,
}

pub async fn run(args: ScaleArgs, json_out: bool) -> Result<(), Failure> {
    let n = args.environments as usize;
    let s = args.subscriptions.max(1) as usize;
    let dir = tempfile::tempdir().map_err(fail)?;
    let subs: Vec<String> = (0..s)
        .map(|i| format!("00000000-0000-0000-0000-{:012x}", 0xbe00 + i))
        .collect();
    let envs: Vec<_> = (0..n)
        .map(|i| sample_environment(&format!("env{i:04}"), &subs[i % s]))
        .collect();

    // The mock Azure, throttling like ARM: its buckets are ARM's documented
    // ones as the example scenario file writes them; the runners' limiter
    // paces itself to pitr's own defaults. Neither reads the other, so a
    // default that drifts from ARM's numbers shows as 429s here.
    let f = args.bucket_scale;
    let arm = arm_throttle()?;
    let client = crate::config::RateLimits::default();
    let (reads, writes, deletes) = (
        scaled(client.reads, f),
        scaled(client.writes, f),
        scaled(client.deletes, f),
    );
    let spec = |b: BucketSpec| BucketSpec {
        capacity: ((f64::from(b.capacity) * f).round() as u32).max(1),
        per_second: b.per_second * f,
    };
    let mut scenario = rehearsal_scenario(&envs);
    scenario.settings.restore_polls = 1;
    scenario.settings.restore_duration_ms = args.restore_ms;
    scenario.settings.run_command_polls = 1;
    scenario.settings.run_command_duration_ms = args.run_command_ms;
    scenario.settings.delete_polls = 1;
    scenario.settings.retry_after_secs = 0;
    scenario.settings.throttle = Box::new(ThrottleSpec {
        enabled: true,
        reads: spec(arm.reads),
        writes: spec(arm.writes),
        deletes: spec(arm.deletes),
        max_concurrent_restores_per_subscription: args.restore_cap,
    });
    let ca = dir.path().join("mock-ca.pem");
    let mock = MockAzure::start(
        scenario,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        Some(&ca),
    )
    .await
    .map_err(fail)?;

    // The runners' config: the mock as Azure, ARM's limits, the cap.
    let store_url = args
        .store
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("pitr.db").display()));
    let mut config = Config::from_toml("", "bench", []).map_err(fail)?;
    config.store.url = store_url.clone();
    config.environments = envs.clone();
    let a = &mut config.azure;
    a.arm_endpoint = mock.url();
    a.authority_host = mock.url();
    a.ca_file = Some(ca.clone());
    a.credential = CredentialKind::ClientSecret;
    a.tenant_id = Some("pitr-bench".into());
    a.client_id = Some(RUNNER_CLIENT.into());
    a.client_secret_env = SECRET_ENV.into();
    a.min_poll_interval_ms = args.poll_ms.max(1);
    a.max_poll_interval_ms = args.poll_ms.max(args.restore_ms / 10).max(1);
    a.retry_min_delay_ms = 100;
    a.retry_max_delay_ms = 5_000;
    a.max_concurrent_restores_per_subscription = args.restore_cap;
    a.rate_limits.reads = reads;
    a.rate_limits.writes = writes;
    a.rate_limits.deletes = deletes;
    a.rate_limits.runners = args.runners.max(1) as u32;
    // The runners listen on loopback; the benchmark scrapes their /metrics.
    config.auth.mode = crate::config::AuthMode::None;
    // Counted over every runner; each starts its share
    // (`[azure.rate_limits] runners`).
    config.engine.max_concurrent_runs = n.max(1);
    config.engine.scheduler_tick_secs = 1;
    // The restore estimate a runner with history has: the longest of the
    // last restores plus a quarter (`domain::schedule::restore_estimate`).
    let restore_secs = (args.restore_ms * 5 / 4).div_ceil(1000).max(1);
    let est: toml::Table = toml::from_str(&format!(
        "restore_secs = {restore_secs}\npreflight_secs = 5\n"
    ))
    .map_err(fail)?;
    config.engine.estimates = toml::Value::Table(est).try_into().map_err(fail)?;

    // Requests: submitted and accepted through an engine of this process
    // (its own ARM client id), every window at T0.
    let mut submit_cfg = config.clone();
    submit_cfg.azure.client_id = Some("pitr-bench-submitter".into());
    let app = App::builder(submit_cfg)
        .create_store(true)
        .azure(Azure::Mock {
            url: mock.url(),
            ca_pem: mock.ca_pem().to_string(),
        })
        .actor("bench")
        .secret(SAMPLE_SQL_PASSWORD_ENV, "bench-only-not-a-password")
        .build()
        .await?;
    let engine = super::commands::engine(&app)?;
    let per_sub = n.div_ceil(s);
    let waves = if args.restore_cap == 0 {
        1
    } else {
        per_sub.div_ceil(args.restore_cap as usize)
    };
    let ahead = if args.prestage {
        Duration::seconds((waves as u64 * restore_secs + 10) as i64)
    } else {
        Duration::zero()
    };
    let submit_budget = Duration::milliseconds(5_000 + 50 * n as i64);
    let t0 = Utc::now() + submit_budget + ahead + Duration::seconds(5);
    let submitted = Instant::now();
    let results: Vec<Result<(), Failure>> = futures_util::stream::iter(envs.iter().cloned())
        .map(|env| {
            let engine = engine.clone();
            async move {
                let now = Utc::now();
                let (req, _) = engine
                    .submit(RequestSpec {
                        environment: env.name.clone(),
                        database: env.database.clone(),
                        restore_point: now - Duration::hours(3),
                        window: Window {
                            start: t0,
                            end: t0 + Duration::hours(8),
                        },
                        acks: Acknowledgements {
                            erase: true,
                            downtime: true,
                            scope: true,
                            version_mismatch: false,
                        },
                        requester: "bench".into(),
                        reason: Some("scale benchmark".into()),
                        prestage: args.prestage,
                        emergency: Some("scale benchmark: every window at one instant".into()),
                    })
                    .await?;
                engine
                    .transition(&req.id, LifecycleEvent::Accept, None)
                    .await?;
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let submit_secs = submitted.elapsed().as_secs_f64();
    if Utc::now() + ahead > t0 {
        return Err(fail(format!(
            "submitting {n} requests took {submit_secs:.1}s, past the windows' start; try fewer environments"
        )));
    }
    // Progress on stderr, so that stdout stays the report (--json).
    eprintln!(
        "submitted and accepted {n} requests in {submit_secs:.1} s; every window opens in {:.0} s; starting {} runner{}",
        (t0 - Utc::now()).num_milliseconds() as f64 / 1000.0,
        args.runners.max(1),
        if args.runners.max(1) == 1 { "" } else { "s" }
    );
    let mut reported = Instant::now();

    // The runners.
    let mut runners = Vec::new();
    let started = Instant::now();
    let runners_started_at = Utc::now();
    let cpu_before = proc_cpu_secs("self").unwrap_or(0.0);
    for i in 0..args.runners.max(1) {
        let mut cfg = config.clone();
        cfg.serve.listen = "127.0.0.1:0".into();
        let path = dir.path().join(format!("runner{i}.toml"));
        std::fs::write(&path, toml::to_string(&cfg).map_err(fail)?).map_err(fail)?;
        let log_path = dir.path().join(format!("runner{i}.log"));
        let log = std::fs::File::create(&log_path).map_err(fail)?;
        let mut child = tokio::process::Command::new(&args.exe)
            .arg("--config")
            .arg(&path)
            .arg("--actor")
            .arg(format!("bench-runner-{i}"))
            .arg("serve")
            .arg("--tick-secs")
            .arg("1")
            .env(SECRET_ENV, "bench-only-not-a-secret")
            .env(SAMPLE_SQL_PASSWORD_ENV, "bench-only-not-a-password")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(format!("cannot start {}: {e}", args.exe.display())))?;
        let listen = listening_on(
            &log_path,
            &mut child,
            tokio::time::Instant::now() + std::time::Duration::from_secs(60),
        )
        .await?;
        runners.push(Runner {
            child,
            listen,
            peak_rss_kb: 0,
        });
    }

    // Until every request has ended (or the timeout).
    let deadline = Instant::now() + std::time::Duration::from_secs(args.timeout_secs);
    let mut timed_out = false;
    // What the runners had sent when the windows opened: the requests of
    // the window phase are the rest.
    let mut at_t0: Option<Value> = None;
    loop {
        let tick = std::time::Duration::from_millis(500);
        let to_t0 = (t0 - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(if at_t0.is_none() && !to_t0.is_zero() {
            tick.min(to_t0)
        } else {
            tick
        })
        .await;
        if at_t0.is_none() && Utc::now() >= t0 {
            at_t0 = Some(mock.throttle_json());
        }
        for r in &mut runners {
            if let Some(pid) = r.child.id() {
                r.peak_rss_kb = r
                    .peak_rss_kb
                    .max(proc_status_kb(pid, "VmHWM:").unwrap_or(0));
            }
        }
        let requests = app.store.list_requests().await?;
        if requests.iter().all(|r| r.status.is_terminal()) {
            break;
        }
        if reported.elapsed() >= std::time::Duration::from_secs(10) {
            reported = Instant::now();
            let done = requests.iter().filter(|r| r.status.is_terminal()).count();
            let since = (Utc::now() - t0).num_milliseconds() as f64 / 1000.0;
            eprintln!(
                "{}: {done}/{n} requests ended",
                if since < 0.0 {
                    format!("{:.0} s before the windows open", -since)
                } else {
                    format!("{since:.0} s after the windows opened")
                }
            );
        }
        if let Some((i, r)) = runners
            .iter_mut()
            .enumerate()
            .find_map(|(i, r)| Some((i, r.child.try_wait().ok().flatten()?)))
        {
            let log = std::fs::read_to_string(dir.path().join(format!("runner{i}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(fail(format!(
                "runner {i} exited ({r}); the end of its log:\n{}",
                tail.join("\n")
            )));
        }
        if Instant::now() > deadline {
            timed_out = true;
            break;
        }
    }
    let wall = started.elapsed().as_secs_f64();

    // The runners' CPU, memory and metrics, then they are stopped.
    let http = reqwest::Client::new();
    let mut runner_stats = Vec::new();
    let mut scraped = String::new();
    for r in &mut runners {
        let pid = r.child.id().unwrap_or(0);
        let cpu = proc_cpu_secs(&pid.to_string()).unwrap_or(0.0);
        r.peak_rss_kb = r
            .peak_rss_kb
            .max(proc_status_kb(pid, "VmHWM:").unwrap_or(0));
        let text = match http.get(format!("{}/metrics", r.listen)).send().await {
            Ok(resp) => resp.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        scraped.push_str(&text);
        runner_stats.push(json!({
            "pid": pid,
            "peak_rss_mb": round(r.peak_rss_kb as f64 / 1024.0),
            "cpu_secs": round(cpu),
        }));
        let _ = r.child.start_kill();
        let _ = r.child.wait().await;
    }
    let mock_cpu = proc_cpu_secs("self").unwrap_or(0.0) - cpu_before;

    // What happened, from the store.
    let requests = app.store.list_requests().await?;
    let mut downtime = Vec::new();
    let mut lag = Vec::new();
    let mut ends: HashMap<String, Vec<f64>> = HashMap::new();
    // Per subscription: the least time from T0 to a restore step's start,
    // and from a restore's end to its job's end.
    let mut before_restore: HashMap<String, f64> = HashMap::new();
    let mut after_restore: HashMap<String, f64> = HashMap::new();
    let mut ended: Vec<DateTime<Utc>> = Vec::new();
    let mut statuses: HashMap<String, usize> = HashMap::new();
    for r in &requests {
        *statuses.entry(r.status.as_str().to_string()).or_default() += 1;
        let jobs = app.store.jobs_for_request(&r.id).await?;
        let Some(job) = crate::domain::job::current_run(&jobs) else {
            continue;
        };
        if let (Some(off), Some(on)) = (job.facts.offline_at, job.facts.online_at) {
            downtime.push(secs(on - off));
        }
        let steps = app.store.steps(&job.id).await?;
        if let Some(at) = steps.record(StepName::Offline).and_then(|s| s.started_at) {
            lag.push(secs(at - t0).max(0.0));
        }
        if let Some(done) = job.finished_at {
            ended.push(done);
            let env = envs.iter().find(|e| e.name == r.spec.environment);
            if let Some(env) = env {
                let sub = env.subscription_id.clone();
                ends.entry(sub.clone()).or_default().push(secs(done - t0));
                if let Some(rs) = steps.record(StepName::Restore) {
                    if let (Some(a), Some(b)) = (rs.started_at, rs.finished_at) {
                        let pre = before_restore.entry(sub.clone()).or_insert(f64::MAX);
                        *pre = pre.min(secs(a - t0).max(0.0));
                        let post = after_restore.entry(sub).or_insert(f64::MAX);
                        *post = post.min(secs(done - b).max(0.0));
                    }
                }
            }
        }
    }
    downtime.sort_by(f64::total_cmp);
    lag.sort_by(f64::total_cmp);
    let succeeded = statuses
        .get(RequestStatus::Succeeded.as_str())
        .copied()
        .unwrap_or(0);
    let makespan = ended.iter().max().map(|e| secs(*e - t0)).unwrap_or(0.0);

    // What the mock saw from the runners.
    let th = mock.throttle_json();
    let runner_rows: Vec<&Value> = th["by_subscription"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["client"] == RUNNER_CLIENT)
        .collect();
    let class_total = |class: &str, field: &str| -> u64 {
        runner_rows
            .iter()
            .filter(|r| r["class"] == class)
            .map(|r| r[field].as_u64().unwrap_or(0))
            .sum()
    };
    let runner_requests: u64 = runner_rows
        .iter()
        .map(|r| r["requests"].as_u64().unwrap_or(0))
        .sum();
    let runner_throttled: u64 = runner_rows
        .iter()
        .map(|r| r["throttled"].as_u64().unwrap_or(0))
        .sum();
    let first_minute = runners_started_at + Duration::seconds(60);
    let late_429s = th["throttled_at"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str()?.parse::<DateTime<Utc>>().ok())
        .filter(|t| *t > first_minute)
        .count();
    let peak_restores: u64 = th["peak_concurrent_restores"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["peak"].as_u64().unwrap_or(0))
        .max()
        .unwrap_or(0);

    // The runners' own account, from /metrics.
    let metric_sum = |prefix: &str| -> f64 {
        scraped
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .fold(0.0, |a, b| a + b)
    };
    // Requests that got no answer (`code="0"`: the connection failed, say a
    // pooled one the mock had just closed) never reached the mock's count.
    let unanswered = scraped
        .lines()
        .filter(|l| l.starts_with("pitr_arm_requests_total{") && l.contains("code=\"0\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b);
    let metrics_requests = metric_sum("pitr_arm_requests_total{") - unanswered;
    let metrics_throttled = metric_sum("pitr_arm_throttled_total{");
    // Per job, by class and operation (the runners' counts, all answers).
    let mut by_operation: std::collections::BTreeMap<String, f64> = Default::default();
    for line in scraped
        .lines()
        .filter(|l| l.starts_with("pitr_arm_requests_total{"))
    {
        let label = |name: &str| {
            let start = line.find(&format!("{name}=\""))? + name.len() + 2;
            let len = line[start..].find('"')?;
            Some(line[start..start + len].to_string())
        };
        let (Some(class), Some(op), Some(v)) = (
            label("class"),
            label("operation"),
            line.rsplit_once(' ')
                .and_then(|(_, v)| v.parse::<f64>().ok()),
        ) else {
            continue;
        };
        *by_operation.entry(format!("{class}: {op}")).or_default() += v / n.max(1) as f64;
    }
    let by_operation: serde_json::Map<String, Value> = by_operation
        .into_iter()
        .map(|(k, v)| (k, json!(round(v))))
        .collect();
    let limiter_wait = metric_sum("pitr_arm_limiter_wait_seconds_total{");
    let restore_queue_wait = metric_sum("pitr_restore_queue_wait_seconds_total");

    let before_t0: Vec<&Value> = at_t0
        .iter()
        .flat_map(|t| t["by_subscription"].as_array().into_iter().flatten())
        .filter(|r| r["client"] == RUNNER_CLIENT)
        .collect();
    let sent = |rows: &[&Value], sub: &str, class: &str| -> f64 {
        rows.iter()
            .filter(|r| r["class"] == class && r["subscription"] == sub.to_ascii_lowercase())
            .map(|r| r["requests"].as_u64().unwrap_or(0))
            .sum::<u64>() as f64
    };
    // The lower bound of the makespan: no job is faster than the fastest;
    // restores go `cap` at a time per subscription; writes and deletes are
    // not elastic and ARM refills them at its rate.
    let restore_s = args.restore_ms as f64 / 1000.0;
    let mut bound: f64 = 0.0;
    let mut bound_by = "fastest job";
    let mut reads_bound: f64 = 0.0;
    for (sub, times) in &ends {
        let fastest = times.iter().copied().fold(f64::MAX, f64::min);
        let jobs = times.len();
        let w = if args.restore_cap == 0 {
            1
        } else {
            jobs.div_ceil(args.restore_cap as usize)
        };
        let mut candidates = vec![(fastest, "fastest job")];
        if !args.prestage {
            // The first restore cannot start before the quickest job got to
            // its restore; `w` waves follow, each at least a restore long;
            // then the quickest finish after a restore.
            let pre = before_restore.get(sub).copied().unwrap_or(0.0);
            let post = after_restore.get(sub).copied().unwrap_or(0.0);
            candidates.push((pre + w as f64 * restore_s + post, "restore cap"));
        }
        // Writes and deletes sent from T0 on: at most a full bucket was
        // there at T0, the rest came at ARM's refill rate.
        for (class, b) in [("writes", writes), ("deletes", deletes)] {
            let used = sent(&runner_rows, sub, class) - sent(&before_t0, sub, class);
            candidates.push((
                ((used - f64::from(b.capacity)) / b.per_second).max(0.0),
                if class == "writes" {
                    "ARM write bucket"
                } else {
                    "ARM delete bucket"
                },
            ));
        }
        for (v, why) in candidates {
            if v > bound {
                bound = v;
                bound_by = why;
            }
        }
        // Reads are elastic (a poll more or less), so they make no strict
        // bound; the reads pitr did send, at ARM's rate, say whether its
        // pacing kept the bucket busy.
        let used = sent(&runner_rows, sub, "reads") - sent(&before_t0, sub, "reads");
        reads_bound =
            reads_bound.max(((used - f64::from(reads.capacity)) / reads.per_second).max(0.0));
    }
    let per_job = |class: &str| round(class_total(class, "requests") as f64 / n.max(1) as f64);
    let report = json!({
        "settings": {
            "environments": n, "subscriptions": s, "runners": args.runners.max(1),
            "store": if args.store.is_some() { "given" } else { "sqlite (temporary)" },
            "prestaged": args.prestage, "restore_ms": args.restore_ms,
            "run_command_ms": args.run_command_ms, "poll_floor_ms": args.poll_ms,
            "max_concurrent_restores_per_subscription": args.restore_cap,
            "buckets": {"reads": reads, "writes": writes, "deletes": deletes},
        },
        "succeeded": succeeded,
        "statuses": statuses,
        "timed_out": timed_out,
        "submit_secs": round(submit_secs),
        "makespan_secs": round(makespan),
        "makespan_lower_bound_secs": round(bound),
        "lower_bound_from": bound_by,
        "makespan_ratio": round(makespan / bound.max(1e-9)),
        "reads_as_sent_bound_secs": round(reads_bound),
        "makespan_ratio_to_reads_as_sent": round(makespan / reads_bound.max(bound).max(1e-9)),
        "downtime_secs": {"p50": round(pct(&downtime, 50.0)), "p99": round(pct(&downtime, 99.0)), "max": round(downtime.last().copied().unwrap_or(0.0))},
        "scheduler_lag_secs": {"p50": round(pct(&lag, 50.0)), "p99": round(pct(&lag, 99.0)), "max": round(lag.last().copied().unwrap_or(0.0))},
        "arm_requests_per_job": {"reads": per_job("reads"), "writes": per_job("writes"), "deletes": per_job("deletes")},
        "arm_requests_per_job_by_operation": by_operation,
        "arm_requests": runner_requests,
        "arm_429s": runner_throttled,
        "arm_429s_after_first_minute": late_429s,
        "peak_concurrent_restores_per_subscription": peak_restores,
        "restore_cap_refusals": th["restore_cap_refusals"],
        "limiter_wait_secs": round(limiter_wait),
        "restore_queue_wait_secs": round(restore_queue_wait),
        "metrics": {
            "arm_requests": metrics_requests as u64,
            "arm_429s": metrics_throttled as u64,
            "unanswered": unanswered as u64,
            "match_mock": metrics_requests as u64 == runner_requests && metrics_throttled as u64 == runner_throttled,
        },
        "runners": runner_stats,
        "wall_secs": round(wall),
        "bench_and_mock_cpu_secs": round(mock_cpu),
        "mock": {
            "requests": th["served"],
            "lock_held_secs": th["busy_secs"],
            "lock_held_max_micros": th["max_busy_micros"],
            "lock_held_share_of_wall": round(th["busy_secs"].as_f64().unwrap_or(0.0) / wall.max(1e-9)),
        },
    });
    drop(engine);
    app.shutdown().await;
    mock.shutdown().await;
    if json_out {
        super::output::print_json(&report);
        return Ok(());
    }
    print::human(&report);
    Ok(())
}
