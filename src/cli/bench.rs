//! `pitr bench`: restores against the mock Azure with fixed operation
//! durations, default order against pre-staged, measuring what the engine
//! adds to Azure's own time while the environment is down. Figures, not
//! assertions: the README records them.
use super::Failure;
use crate::app::{rehearsal_scenario, sample_environment, App, Azure, SAMPLE_SQL_PASSWORD_ENV};
use crate::clock::{Clock, ShiftedClock};
use crate::config::Config;
use crate::domain::lifecycle::LifecycleEvent;
use crate::domain::{Acknowledgements, RequestSpec, Window};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Debug, Clone, Copy)]
pub struct BenchArgs {
    pub runs: u64,
    pub restore_ms: u64,
    pub run_command_ms: u64,
    pub poll_ms: u64,
}

/// One measured job.
#[derive(Debug, Clone, Copy)]
struct Sample {
    downtime: f64,
    azure_busy: f64,
    arm_requests: usize,
    run_commands: usize,
}

pub async fn run(args: BenchArgs, json_out: bool) -> Result<(), Failure> {
    let mut report = Vec::new();
    for prestage in [false, true] {
        let mut samples = Vec::new();
        let mode = if prestage { "pre-staged" } else { "default" };
        for i in 1..=args.runs {
            let sample = one(args, prestage).await?;
            // Progress on stderr, so that stdout stays the report (--json).
            eprintln!(
                "run {i}/{} {mode}: downtime {:.2} s, Azure in it {:.2} s, {} ARM requests",
                args.runs, sample.downtime, sample.azure_busy, sample.arm_requests
            );
            samples.push(sample);
        }
        let n = samples.len() as f64;
        let mean = |f: fn(&Sample) -> f64| samples.iter().map(f).sum::<f64>() / n;
        let downtime = mean(|s| s.downtime);
        let busy = mean(|s| s.azure_busy);
        report.push(json!({
            "mode": if prestage { "prestaged" } else { "default" },
            "runs": samples.len(),
            "downtime_secs": round(downtime),
            "downtime_min_secs": round(samples.iter().map(|s| s.downtime).fold(f64::MAX, f64::min)),
            "downtime_max_secs": round(samples.iter().map(|s| s.downtime).fold(0.0, f64::max)),
            "azure_secs_in_downtime": round(busy),
            "overhead_ratio": round(downtime / busy.max(1e-9)),
            "arm_requests_per_job": mean(|s| s.arm_requests as f64),
            "run_commands_per_job": mean(|s| s.run_commands as f64),
        }));
    }
    let settings = json!({
        "restore_ms": args.restore_ms,
        "run_command_ms": args.run_command_ms,
        "min_poll_interval_ms": args.poll_ms,
        "runs_per_mode": args.runs,
    });
    if json_out {
        super::output::print_json(&json!({"settings": settings, "results": report}));
        return Ok(());
    }
    out!(
        "pitr bench: restore {} ms, each Run Command {} ms, poll floor {} ms, {}",
        args.restore_ms,
        args.run_command_ms,
        args.poll_ms,
        runs_per_mode(args.runs)
    );
    out!(
        "{:<10} {:>13} {:>17} {:>15} {:>17}",
        "mode",
        "downtime (s)",
        "Azure in it (s)",
        "overhead ratio",
        "ARM requests/job"
    );
    for r in &report {
        out!(
            "{:<10} {:>13.2} {:>17.2} {:>15.3} {:>17.1}",
            r["mode"].as_str().unwrap_or(""),
            r["downtime_secs"].as_f64().unwrap_or(0.0),
            r["azure_secs_in_downtime"].as_f64().unwrap_or(0.0),
            r["overhead_ratio"].as_f64().unwrap_or(0.0),
            r["arm_requests_per_job"].as_f64().unwrap_or(0.0),
        );
    }
    out!("downtime: environment offline -> back online; Azure in it: time at least one Azure operation was running then (union of intervals);");
    out!("overhead ratio = downtime / Azure time (1.0 = the engine adds nothing); ARM requests exclude token requests.");
    Ok(())
}

/// "1 run per mode", "5 runs per mode".
fn runs_per_mode(n: u64) -> String {
    format!("{n} run{} per mode", if n == 1 { "" } else { "s" })
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

async fn one(args: BenchArgs, prestage: bool) -> Result<Sample, Failure> {
    let fail = |e: String| Failure::failed(format!("bench: {e}"));
    let dir = tempfile::tempdir().map_err(|e| fail(e.to_string()))?;
    let mut config = Config::from_toml("", "bench", []).map_err(|e| fail(e.to_string()))?;
    config.store.url = format!("sqlite://{}", dir.path().join("pitr.db").display());
    config.azure.min_poll_interval_ms = args.poll_ms.max(1);
    config.azure.max_poll_interval_ms = args.poll_ms.max(1);
    config.environments = vec![sample_environment(
        "bench",
        "00000000-0000-0000-0000-0000000000be",
    )];
    let mut scenario = rehearsal_scenario(&config.environments);
    scenario.settings.restore_polls = 1;
    scenario.settings.restore_duration_ms = args.restore_ms;
    scenario.settings.run_command_polls = 1;
    scenario.settings.run_command_duration_ms = args.run_command_ms;
    scenario.settings.retry_after_secs = 0;
    let clock = ShiftedClock::default();
    let app = App::builder(config)
        .create_store(true)
        .azure(Azure::Embedded(Box::new(scenario)))
        .clock(Arc::new(clock.clone()))
        .actor("bench")
        .secret(SAMPLE_SQL_PASSWORD_ENV, "bench-only-not-a-password")
        .build()
        .await?;
    let engine = super::commands::engine(&app)?;
    let now = clock.now();
    let window_start = now + Duration::days(2);
    let (req, _) = engine
        .submit(RequestSpec {
            environment: "bench".into(),
            database: "AxDB".into(),
            restore_point: now - Duration::hours(3),
            window: Window {
                start: window_start,
                end: window_start + Duration::hours(4),
            },
            acks: Acknowledgements {
                erase: true,
                downtime: true,
                scope: true,
                version_mismatch: false,
            },
            requester: "bench".into(),
            reason: None,
            prestage,
            emergency: None,
        })
        .await?;
    engine
        .transition(&req.id, LifecycleEvent::Accept, None)
        .await?;
    // Jump into the window (a pre-staged run first stages its restore).
    if !prestage {
        clock.shift_by(window_start - clock.now());
    }
    let mut outcome = engine.run(&req.id, false).await?;
    if prestage {
        clock.shift_by(window_start - clock.now());
        outcome = engine.resume(&req.id).await?;
    }
    if !outcome.is_success() {
        return Err(fail(outcome.describe()));
    }
    let job = outcome.job();
    let offset = clock.offset();
    let (Some(off), Some(on)) = (job.facts.offline_at, job.facts.online_at) else {
        return Err(fail("the job recorded no downtime".into()));
    };
    let (off, on) = (off - offset, on - offset);
    let (state, journal) = match app.mock() {
        Some(mock) => (mock.state_json(), mock.journal_json()),
        None => (Value::Null, Value::Null),
    };
    drop(engine);
    app.shutdown().await;
    Ok(Sample {
        downtime: secs(on - off),
        azure_busy: busy_within(&state, off, on),
        arm_requests: journal
            .as_array()
            .map(|j| {
                j.iter()
                    .filter(|e| {
                        e["path"]
                            .as_str()
                            .is_some_and(|p| p.starts_with("/subscriptions/"))
                    })
                    .count()
            })
            .unwrap_or(0),
        // Managed Run Commands started (a PUT Azure accepted).
        run_commands: journal
            .as_array()
            .map(|j| {
                j.iter()
                    // A managed Run Command is created by one PUT.
                    .filter(|e| {
                        e["method"] == "PUT"
                            && e["status"]
                                .as_u64()
                                .is_some_and(|s| (200..300).contains(&s))
                            && e["path"]
                                .as_str()
                                .is_some_and(|p| p.contains("/runCommands/"))
                    })
                    .count()
            })
            .unwrap_or(0),
    })
}

fn secs(d: Duration) -> f64 {
    d.num_microseconds().unwrap_or(0) as f64 / 1e6
}

/// Seconds within [from, to] during which at least one operation ran.
fn busy_within(state: &Value, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    let parse = |v: &Value| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
    };
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = state["operations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| Some((parse(&o["start_time"])?, parse(&o["end_time"])?)))
        .map(|(s, e)| (s.max(from), e.min(to)))
        .filter(|(s, e)| s < e)
        .collect();
    spans.sort();
    let mut total = Duration::zero();
    let mut current: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    for (s, e) in spans {
        current = match current {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = current {
        total += ce - cs;
    }
    secs(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_is_the_union_of_operations_inside_the_window() {
        let t = |s: i64| (DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(s)).to_rfc3339();
        let state = json!({"operations": [
            {"start_time": t(0), "end_time": t(10)},
            {"start_time": t(5), "end_time": t(12)},
            {"start_time": t(20), "end_time": t(25)},
            {"start_time": t(30), "end_time": null},
        ]});
        let at = |s: i64| DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(s);
        assert_eq!(busy_within(&state, at(2), at(22)), 12.0);
    }

    #[test]
    fn runs_per_mode_is_said_in_the_singular_for_one() {
        assert_eq!(runs_per_mode(1), "1 run per mode");
        assert_eq!(runs_per_mode(5), "5 runs per mode");
    }
}
