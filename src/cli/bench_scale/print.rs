//! The scale benchmark's figures for a person, from its JSON report (the
//! one `--json` prints), so that both say the same.
use serde_json::Value;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

pub(super) fn human(r: &Value) {
    let set = &r["settings"];
    let n = &set["environments"];
    out!(
        "pitr bench: {n} environments over {} subscriptions, {} runner(s), {}; restore {} ms, Run Command {} ms; restore cap {} per subscription",
        set["subscriptions"],
        set["runners"],
        if set["prestaged"] == true { "pre-staged" } else { "not pre-staged" },
        set["restore_ms"],
        set["run_command_ms"],
        set["max_concurrent_restores_per_subscription"]
    );
    out!(
        "succeeded:               {}/{n}{}",
        r["succeeded"],
        if r["timed_out"] == true {
            " (timed out)"
        } else {
            ""
        }
    );
    out!(
        "makespan:                {:.1} s (lower bound {:.1} s from the {}; ratio {:.3})",
        f(&r["makespan_secs"]),
        f(&r["makespan_lower_bound_secs"]),
        r["lower_bound_from"].as_str().unwrap_or("?"),
        f(&r["makespan_ratio"])
    );
    out!(
        "                         the reads sent from the windows' opening take {:.1} s at ARM's rate (ratio {:.3})",
        f(&r["reads_as_sent_bound_secs"]),
        f(&r["makespan_ratio_to_reads_as_sent"])
    );
    let d = &r["downtime_secs"];
    out!(
        "downtime per env:        p50 {:.1} s, p99 {:.1} s, max {:.1} s",
        f(&d["p50"]),
        f(&d["p99"]),
        f(&d["max"])
    );
    let l = &r["scheduler_lag_secs"];
    out!(
        "scheduler lag:           p50 {:.3} s, p99 {:.3} s (window open -> offline started)",
        f(&l["p50"]),
        f(&l["p99"])
    );
    let j = &r["arm_requests_per_job"];
    out!(
        "ARM requests per job:    reads {}, writes {}, deletes {}",
        j["reads"],
        j["writes"],
        j["deletes"]
    );
    if let Some(ops) = r["arm_requests_per_job_by_operation"].as_object() {
        for (op, v) in ops {
            out!("                         {v:>7} {op}");
        }
    }
    out!(
        "429s:                    {} ({} after the first minute); peak restores in one subscription {}",
        r["arm_429s"],
        r["arm_429s_after_first_minute"],
        r["peak_concurrent_restores_per_subscription"]
    );
    out!(
        "limiter wait:            {:.1} s in all (restore queue {:.1} s)",
        f(&r["limiter_wait_secs"]),
        f(&r["restore_queue_wait_secs"])
    );
    for (i, st) in r["runners"].as_array().into_iter().flatten().enumerate() {
        out!(
            "runner {i}:                peak RSS {} MB, CPU {} s",
            st["peak_rss_mb"],
            st["cpu_secs"]
        );
    }
    let m = &r["mock"];
    out!(
        "mock Azure:              {} requests, state lock held {:.2} s in all ({:.1}% of the run, longest {} us); bench+mock CPU {:.1} s",
        m["requests"],
        f(&m["lock_held_secs"]),
        100.0 * f(&m["lock_held_share_of_wall"]),
        m["lock_held_max_micros"],
        f(&r["bench_and_mock_cpu_secs"])
    );
    let x = &r["metrics"];
    out!(
        "/metrics vs mock:        {} requests, {} 429s seen by the mock; the runners counted {} and {} (and {} without an answer)",
        r["arm_requests"],
        r["arm_429s"],
        x["arm_requests"],
        x["arm_429s"],
        x["unanswered"]
    );
}
