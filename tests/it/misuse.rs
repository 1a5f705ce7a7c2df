//! `pitr` used as an attacker or an unlucky operator would: commands racing
//! each other, hostile values, a server that redirects. Each story checks
//! that nothing was done twice and nothing was lost.
use crate::helpers::*;
use std::process::{Child, Stdio};

/// Fast operations: a round (a whole run) takes well under a second.
const QUICK: &str = "restore_polls = 1\nrun_command_polls = 1\ndelete_polls = 1";

fn spawn(t: &TestEnv, args: &[&str]) -> Child {
    t.command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pitr")
}

/// `rounds` requests, each started by `racers` processes at once (the
/// first two `pitr run`, the rest `pitr resume`): exactly one run per
/// request, exactly one accepted restore PUT, no job left running.
async fn race(racers: usize, rounds: usize) {
    let t = TestEnv::start(&scenario(QUICK));
    for round in 0..rounds {
        // After the previous round's restore ended (backup history restarts).
        let point = chrono::Utc::now().to_rfc3339();
        let id = t.submit_accepted(&point);
        let before = accepted_restore_puts(&t.journal().await);
        let children: Vec<(String, Child)> = (0..racers)
            .map(|i| {
                let verb = if i < 2 { "run" } else { "resume" };
                (verb.to_string(), spawn(&t, &[verb, &id]))
            })
            .collect();
        let mut run_wins = 0;
        let mut outputs = Vec::new();
        for (verb, child) in children {
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            if verb == "run" && out.status.success() {
                run_wins += 1;
            }
            if !out.status.success() {
                // A loser is told why, never by a panic.
                assert!(
                    err.contains("run in progress")
                        || err.contains("being run by")
                        || err.contains("no unfinished run")
                        || err.contains("cannot be started"),
                    "round {round}: {verb}: {err}"
                );
            }
            outputs.push((verb, out.status.code(), err));
        }
        assert_eq!(run_wins, 1, "round {round}: {outputs:?}");
        let show = t.json(&["request", "show", &id, "--json"]);
        assert_eq!(show["status"], "succeeded", "round {round}: {outputs:?}");
        let jobs = show["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 1, "round {round}: one job, no orphan: {jobs:?}");
        assert!(jobs.iter().all(|j| j["status"] != "running"));
        assert_eq!(
            accepted_restore_puts(&t.journal().await) - before,
            1,
            "round {round}: {outputs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_simultaneous_runs_start_exactly_one() {
    race(2, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_and_a_resume_at_once_start_exactly_one() {
    race(3, 50).await;
}
