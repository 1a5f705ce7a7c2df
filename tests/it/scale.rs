//! Many environments at once (issue 13): the scale benchmark run small,
//! with tight ARM buckets, through the real binary: one `pitr serve` runner
//! against the throttling mock Azure. Every run succeeds, the runner's
//! shared limiter keeps ARM from ever answering 429 although it had to wait
//! (the buckets were too small for the load), no subscription ever runs
//! more restores than its cap, and the runner's `/metrics` counts exactly
//! the requests and 429s the mock received from it.
use crate::helpers::PITR;
use serde_json::Value;

#[test]
fn many_environments_are_paced_within_arm_limits_and_metrics_match_the_mock() {
    let out = std::process::Command::new(PITR)
        .args([
            "bench",
            "--environments",
            "30",
            "--subscriptions",
            "2",
            "--restore-ms",
            "500",
            "--run-command-ms",
            "100",
            "--poll-ms",
            "50",
            "--bucket-scale",
            "0.6",
            "--restore-cap",
            "4",
            "--timeout-secs",
            "600",
            "--json",
        ])
        .output()
        .expect("pitr runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(r["succeeded"], 30, "{r:#}");
    assert_eq!(r["timed_out"], false, "{r:#}");
    // The buckets (reads 150 +15/s, writes 120 +6/s per subscription) were
    // too small for 15 jobs each: the limiter had to hold requests back...
    assert!(r["limiter_wait_secs"].as_f64().unwrap() > 0.0, "{r:#}");
    // ...and so ARM never refused one.
    assert_eq!(r["arm_429s"], 0, "{r:#}");
    // 15 restores per subscription, never more than 4 at once, none refused.
    let peak = r["peak_concurrent_restores_per_subscription"]
        .as_u64()
        .unwrap();
    assert!((1..=4).contains(&peak), "{r:#}");
    assert_eq!(r["restore_cap_refusals"], 0, "{r:#}");
    assert!(
        r["restore_queue_wait_secs"].as_f64().unwrap() > 0.0,
        "{r:#}"
    );
    // The runner's /metrics agrees with what the mock received from it.
    let mock_requests = r["arm_requests"].as_u64().unwrap();
    assert!(mock_requests > 30 * 20, "{r:#}");
    assert_eq!(
        r["metrics"]["arm_requests"].as_u64(),
        Some(mock_requests),
        "{r:#}"
    );
    assert_eq!(r["metrics"]["arm_429s"], r["arm_429s"], "{r:#}");
    assert_eq!(r["metrics"]["match_mock"], true, "{r:#}");
    // Every job's downtime and scheduler lag were measured.
    assert!(r["downtime_secs"]["p50"].as_f64().unwrap() > 0.0, "{r:#}");
    let bound = r["makespan_lower_bound_secs"].as_f64().unwrap();
    assert!(
        bound > 0.0 && r["makespan_secs"].as_f64().unwrap() >= bound,
        "{r:#}"
    );
    let rss = r["runners"][0]["peak_rss_mb"].as_f64().unwrap();
    assert!(rss > 0.0, "{r:#}");
}
