//! Latency of the two writes a run makes most: `save_step` (every
//! checkpoint, fenced) and `acquire_lease`, 1,000 of each against a fresh
//! store of each engine. Ignored by default (it measures, it does not
//! check); run with
//! `cargo test --release --all-features --test it store_bench -- --ignored --nocapture`.
use crate::helpers::PgDatabase;
use crate::store_suite::{job, request, submitted, t};
use chrono::Duration;
use pitr::domain::{StepName, StepRecord, StepStatus};
use pitr::store::SharedStore;
use std::time::{Duration as Elapsed, Instant};

const N: usize = 1_000;

fn percentiles(mut samples: Vec<Elapsed>) -> String {
    samples.sort();
    let at = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    format!(
        "p50 {:>7.3} ms  p99 {:>7.3} ms",
        at(50).as_secs_f64() * 1e3,
        at(99).as_secs_f64() * 1e3
    )
}

async fn measure(engine: &str, store: SharedStore) {
    let req = request("bench", "env", t(0));
    store.insert_request(&req, &submitted(&req)).await.unwrap();
    let j = job("bench-job", &req.id, t(0));
    let ttl = Duration::seconds(60);
    let mut lease = store
        .claim_run(&j, None, "runner", t(0), ttl, None)
        .await
        .unwrap();

    let mut saves = Vec::with_capacity(N);
    for i in 0..N {
        let mut step = StepRecord::pending(StepName::ALL[i % StepName::ALL.len()]);
        step.status = StepStatus::Running;
        step.attempts = i as u32;
        step.detail = Some(format!("checkpoint {i}"));
        let start = Instant::now();
        store.save_step(&j.id, &step, Some(&lease)).await.unwrap();
        saves.push(start.elapsed());
    }
    let mut acquires = Vec::with_capacity(N);
    for i in 0..N {
        let start = Instant::now();
        lease = store
            .acquire_lease(&j.id, "runner", t(i as i64), ttl)
            .await
            .unwrap();
        acquires.push(start.elapsed());
    }
    assert_eq!(lease.fencing, N as i64 + 1);
    println!("{engine:<10} save_step     {}", percentiles(saves));
    println!("{engine:<10} acquire_lease {}", percentiles(acquires));
}

#[tokio::test]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn store_bench_save_step_and_acquire_lease() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    measure("sqlite", pitr::store::open(&url).await.unwrap()).await;
    let db = PgDatabase::create().await;
    measure("postgres", pitr::store::open(&db.url).await.unwrap()).await;
}
