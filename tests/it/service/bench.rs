//! Ignored measurement: API latency under a bounded local load, and the
//! server's peak memory. 50 concurrent clients for 30 seconds against
//! `GET /requests` (100 requests in the store), then 30 seconds against
//! `POST /requests` (each client submits for an environment of its own and
//! cancels, so that every submission is a real one); p50/p99 of each, and
//! `VmHWM` of `pitr serve`.
//!
//! cargo test --release --all-features --test it service::bench -- --ignored --nocapture
use super::*;
use std::time::{Duration, Instant};

const CLIENTS: usize = 50;
const SECONDS: u64 = 30;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn bench_environments() -> String {
    (0..CLIENTS)
        .map(|i| {
            format!(
                "[[environments]]\nname = \"bench-{i}\"\ntier = \"sandbox\"\ndatabase_kind = \"azure_sql\"\nsubscription_id = \"{SUB}\"\nresource_group = \"{RG}\"\nserver = \"{SERVER}\"\nlocation = \"westeurope\"\ndatabase = \"AxDB\"\nactions = \"none\"\n\n"
            )
        })
        .collect()
}

async fn load<F, Fut>(clients: usize, work: F) -> (Vec<Duration>, usize)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Option<Duration>> + Send,
{
    let end = Instant::now() + Duration::from_secs(SECONDS);
    let mut tasks = Vec::new();
    for i in 0..clients {
        let work = work.clone();
        tasks.push(tokio::spawn(async move {
            let (mut times, mut errors) = (Vec::new(), 0);
            while Instant::now() < end {
                match work(i).await {
                    Some(t) => times.push(t),
                    None => errors += 1,
                }
            }
            (times, errors)
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (times, e) = t.await.unwrap();
        all.extend(times);
        errors += e;
    }
    all.sort();
    (all, errors)
}

fn report(what: &str, times: &[Duration], errors: usize) {
    println!(
        "{what}: {} calls in {SECONDS}s ({:.0}/s), {errors} errors, p50 {:.1} ms, p99 {:.1} ms",
        times.len(),
        times.len() as f64 / SECONDS as f64,
        percentile(times, 0.50).as_secs_f64() * 1000.0,
        percentile(times, 0.99).as_secs_f64() * 1000.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn api_latency_under_load() {
    let svc = Arc::new(
        Service::start(
            Backend::Sqlite,
            &bench_environments(),
            &[("PITR_LOG", "error")],
        )
        .await,
    );
    let op = Arc::new(svc.token("operator").await);
    // 100 requests in the store (cancelled, so the environments are free).
    for i in 0..100 {
        let mut body = Service::new_request(false);
        body["environment"] = json!(format!("bench-{}", i % CLIENTS));
        let (s, r) = svc
            .call("POST", "/api/v1/requests", Some(&op), Some(body))
            .await;
        assert_eq!(s, 201, "{r}");
        let id = r["id"].as_str().unwrap().to_string();
        svc.call(
            "POST",
            &format!("/api/v1/requests/{id}/cancel"),
            Some(&op),
            None,
        )
        .await;
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();

    let (s, o, h) = (svc.clone(), op.clone(), http.clone());
    let (times, errors) = load(CLIENTS, move |_| {
        let (s, o, h) = (s.clone(), o.clone(), h.clone());
        async move {
            let t = Instant::now();
            let r = h
                .get(s.url("/api/v1/requests"))
                .bearer_auth(o.as_str())
                .send()
                .await
                .ok()?;
            let ok = r.status() == 200;
            r.bytes().await.ok()?;
            ok.then(|| t.elapsed())
        }
    })
    .await;
    report("GET /api/v1/requests", &times, errors);

    let (s, o, h) = (svc.clone(), op.clone(), http.clone());
    let (times, errors) = load(CLIENTS, move |i| {
        let (s, o, h) = (s.clone(), o.clone(), h.clone());
        async move {
            let mut body = Service::new_request(false);
            body["environment"] = json!(format!("bench-{i}"));
            let t = Instant::now();
            let r = h
                .post(s.url("/api/v1/requests"))
                .bearer_auth(o.as_str())
                .json(&body)
                .send()
                .await
                .ok()?;
            let took = t.elapsed();
            if r.status() != 201 {
                return None;
            }
            let v: Value = r.json().await.ok()?;
            let id = v["id"].as_str()?.to_string();
            h.post(s.url(&format!("/api/v1/requests/{id}/cancel")))
                .bearer_auth(o.as_str())
                .send()
                .await
                .ok()?;
            Some(took)
        }
    })
    .await;
    report("POST /api/v1/requests", &times, errors);
    println!(
        "pitr serve peak RSS (VmHWM): {:.1} MiB",
        peak_rss_kib(svc.pid()) as f64 / 1024.0
    );
}
