//! What one scheduler tick costs, with and without finished history: a
//! store holding 10,000 finished requests (with their audit trails, jobs
//! and checkpoints) and 20 in play, against the same 20 alone. Prints each
//! tick's wall time and its store queries (calls of the `Store` trait,
//! counted by [`CountingStore`]). Ignored by default (it measures, it does
//! not check); run with
//! `cargo test --all-features --test it scheduler_bench -- --ignored --nocapture`
//! (add `--release` for release figures; `PITR_BENCH_POSTGRES=1` measures
//! a PostgreSQL store too).
//!
//! The 20 in play, one per environment: 10 accepted requests waiting for
//! tomorrow's window, 5 runs driven by another (live) runner, 5 pre-staged
//! runs parked until their window. Of the finished requests, 5 succeeded
//! two hours ago and keep their original (a cleanup not due yet); nothing
//! is started, resumed or cleaned, so the tick only looks.
use crate::counting_store::CountingStore;
use crate::helpers::{sandbox_environment, PgDatabase};
use crate::store_suite::{event, request, submitted};
use chrono::{DateTime, Duration, Utc};
use pitr::app::{rehearsal_scenario, App, Azure};
use pitr::clock::ManualClock;
use pitr::config::Config;
use pitr::domain::{
    Job, JobFacts, JobStatus, RequestStatus, RestoreRequest, StepName, StepRecord, StepStatus,
    Window,
};
use pitr::engine::scheduler::Scheduler;
use pitr::engine::steps::default_plan;
use pitr::store::{StepRow, StoreRows};
use std::sync::Arc;
use std::time::Instant;

const SUB: &str = "00000000-0000-0000-0000-00000000bbbb";
const ENVS: usize = 20;
/// The owner of the runs another runner drives (another host: never seen gone).
const OTHER: &str = "elsewhere:1.1:aaaaaa";

fn env(i: usize) -> String {
    format!("env{:02}", i % ENVS)
}

fn step(name: StepName, status: StepStatus, at: DateTime<Utc>) -> StepRecord {
    let mut s = StepRecord::pending(name);
    s.status = status;
    s.attempts = 1;
    s.started_at = Some(at);
    s.finished_at = (status != StepStatus::Running).then_some(at + Duration::minutes(1));
    s
}

/// A request that went through `path` (its audit trail), ending in the last status.
fn lived(rows: &mut StoreRows, mut req: RestoreRequest, path: &[RequestStatus]) -> RestoreRequest {
    rows.events.push(submitted(&req));
    let mut from = RequestStatus::Submitted;
    for (n, to) in path.iter().enumerate() {
        let at = req.submitted_at + Duration::minutes(n as i64 + 1);
        rows.events.push(event(&req.id, Some(from), *to, at));
        from = *to;
        req.updated_at = at;
    }
    req.status = from;
    rows.requests.push(req.clone());
    req
}

fn job_of(
    rows: &mut StoreRows,
    req: &RestoreRequest,
    prestage: bool,
    status: JobStatus,
    steps: &[(StepName, StepStatus)],
    finished_at: Option<DateTime<Utc>>,
) -> Job {
    let created = req.updated_at;
    let job = Job {
        id: format!("job-{}", req.id).into(),
        request_id: req.id.clone(),
        dry_run: false,
        status,
        plan: default_plan(prestage),
        created_at: created,
        updated_at: finished_at.unwrap_or(created),
        finished_at,
        facts: JobFacts::default(),
        error: (status == JobStatus::Failed).then(|| "sync failed".to_string()),
    };
    for (seq, (name, st)) in steps.iter().enumerate() {
        rows.steps.push(StepRow {
            job_id: job.id.clone(),
            seq: seq as i64 + 1,
            record: step(*name, *st, created),
        });
    }
    rows.jobs.push(job.clone());
    job
}

/// The history and the work in play, as rows for `Store::import`.
fn rows(finished: usize, t0: DateTime<Utc>) -> StoreRows {
    use RequestStatus::*;
    use StepStatus::{Failed as StepFailed, Running as StepRunning, Succeeded as Done};
    let mut rows = StoreRows::default();
    let all_done: Vec<(StepName, StepStatus)> = default_plan(false)
        .into_iter()
        .chain([StepName::Cleanup])
        .map(|s| (s, Done))
        .collect();
    let start = t0 - Duration::days(400);
    for i in 0..finished {
        let at = start + Duration::minutes(50 * i as i64);
        let req = request(&format!("old-{i:05}"), &env(i), at);
        // Five successes of two hours ago: their originals are still kept.
        let kept = (finished.saturating_sub(15)..finished.saturating_sub(10)).contains(&i);
        match i % 100 {
            0..=89 => {
                let req = lived(&mut rows, req, &[Accepted, Running, Succeeded]);
                let (steps, end) = if kept {
                    (&all_done[..all_done.len() - 1], t0 - Duration::hours(2))
                } else {
                    (&all_done[..], at + Duration::hours(3))
                };
                job_of(
                    &mut rows,
                    &req,
                    false,
                    JobStatus::Succeeded,
                    steps,
                    Some(end),
                );
            }
            90..=94 => {
                let req = lived(&mut rows, req, &[Accepted, Running, Failed]);
                let steps = [
                    (StepName::Preflight, Done),
                    (StepName::Offline, Done),
                    (StepName::Restore, StepFailed),
                ];
                let end = Some(at + Duration::hours(1));
                job_of(&mut rows, &req, false, JobStatus::Failed, &steps, end);
            }
            95..=97 => {
                lived(&mut rows, req, &[Accepted, Cancelled]);
            }
            98 => {
                lived(&mut rows, req, &[Accepted, Missed]);
            }
            _ => {
                let req = lived(&mut rows, req, &[Accepted, Running, RolledBack]);
                let end = Some(at + Duration::hours(3));
                job_of(
                    &mut rows,
                    &req,
                    false,
                    JobStatus::RolledBack,
                    &all_done[..8],
                    end,
                );
            }
        }
    }
    for i in 0..ENVS {
        let mut req = request(&format!("now-{i:02}"), &env(i), t0 - Duration::hours(30));
        let window = |from: Duration| Window {
            start: t0 + from,
            end: t0 + from + Duration::hours(3),
        };
        match i {
            0..=9 => {
                req.spec.window = window(Duration::hours(30));
                lived(&mut rows, req, &[Accepted]);
            }
            10..=14 => {
                req.spec.window = window(-Duration::minutes(30));
                let req = lived(&mut rows, req, &[Accepted, Running]);
                let steps = [
                    (StepName::Preflight, Done),
                    (StepName::Offline, Done),
                    (StepName::Restore, StepRunning),
                ];
                job_of(&mut rows, &req, false, JobStatus::Running, &steps, None);
            }
            _ => {
                req.spec.window = window(Duration::hours(2));
                req.spec.prestage = true;
                let req = lived(&mut rows, req, &[Accepted, Running]);
                let steps = [(StepName::Preflight, Done), (StepName::Restore, Done)];
                job_of(&mut rows, &req, true, JobStatus::Running, &steps, None);
            }
        }
    }
    rows
}

/// Fills a store at `url` (with `pg`, its PostgreSQL database), then
/// measures ticks of a scheduler on it.
async fn measure(label: &str, url: &str, finished: usize, pg: Option<&PgDatabase>) {
    let t0 = Utc::now();
    let filling = Instant::now();
    {
        let store = pitr::store::open(url).await.unwrap();
        let rows = rows(finished, t0);
        store.import(&rows).await.unwrap();
        for job in rows.jobs.iter().filter(|j| j.status == JobStatus::Running) {
            if !job.is_prestaged() {
                let ttl = Duration::hours(1);
                store.acquire_lease(&job.id, OTHER, t0, ttl).await.unwrap();
            }
        }
    }
    // PostgreSQL plans from statistics, which autovacuum gathers within a
    // minute or so of a bulk load: gathered now, as a running store has them.
    if let Some(db) = pg {
        db.client().await.batch_execute("ANALYZE").await.unwrap();
    }
    let filled = filling.elapsed();

    let mut text = String::from("[azure]\nmin_poll_interval_ms = 20\n");
    for i in 0..ENVS {
        text.push_str(&sandbox_environment(&env(i), SUB));
    }
    let mut config = Config::from_toml(&text, "bench", []).unwrap();
    config.store.url = url.to_string();
    let clock = ManualClock::new(t0);
    let scenario = rehearsal_scenario(&config.environments);
    let mut app = App::builder(config)
        .azure(Azure::Embedded(Box::new(scenario)))
        .clock(Arc::new(clock.clone()))
        .actor("scheduler")
        .secret("PITR_TEST_SQL_PASSWORD", "x-test")
        .build()
        .await
        .unwrap();
    let counting = Arc::new(CountingStore::new(app.store.clone()));
    app.store = counting.clone();
    let engine = app.engine().unwrap();
    let sched = Scheduler::new(engine, 100);
    counting.take();

    let mut lines = Vec::new();
    for n in 1..=6 {
        let started = Instant::now();
        let report = sched.tick().await.unwrap();
        let wall = started.elapsed();
        let calls = counting.take();
        assert!(
            report.started.is_empty() && report.resumed.is_empty() && report.cleaned.is_empty(),
            "the bench's tick only looks: {report:?}"
        );
        let total: u64 = calls.values().sum();
        let top: Vec<String> = calls.iter().map(|(op, n)| format!("{op} {n}")).collect();
        lines.push((n, wall, total, top.join(", ")));
    }
    sched.wait_idle().await;
    println!(
        "{label}: {finished} finished requests + {ENVS} in play (filled in {:.1} s)",
        filled.as_secs_f64()
    );
    for (n, wall, total, top) in lines {
        println!(
            "  tick {n}: {:>9.2} ms  {total:>6} store queries  ({top})",
            wall.as_secs_f64() * 1e3
        );
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn scheduler_bench_one_tick_with_and_without_history() {
    for finished in [0, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        measure("sqlite", &url, finished, None).await;
    }
    if std::env::var("PITR_BENCH_POSTGRES").is_ok_and(|v| v == "1") {
        for finished in [0, 10_000] {
            let db = PgDatabase::create().await;
            measure("postgres", &db.url, finished, Some(&db)).await;
        }
    }
}
