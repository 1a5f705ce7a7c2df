//! `pitr serve` runs an accepted request unattended when its window opens.
//! (When a window opens, to the second, is the scheduler's tests' business,
//! on the test's clock; here the window is already open, so nothing depends
//! on how fast this machine is.)
use crate::helpers::*;
use chrono::{Duration, Utc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_an_accepted_request_when_its_window_opens() {
    let t = TestEnv::start_with(
        &scenario("restore_polls = 2"),
        "[serve]\nlisten = \"127.0.0.1:0\"\n[auth]\nmode = \"none\"\n[engine]\nscheduler_tick_secs = 1\n[engine.estimates]\nrestore_secs = 60\nsync_secs = 60\n",
    );
    let start = Utc::now() - Duration::minutes(1);
    let (point, ws, we) = (
        rfc3339_ago(Duration::days(1)),
        start.to_rfc3339(),
        (start + Duration::hours(3)).to_rfc3339(),
    );
    let mut args = submit_args(&point, &ws, &we);
    args.extend([
        "--emergency-reason",
        "test data corrupted; rehearsal tomorrow",
    ]);
    let id = t.ok(&args).trim().to_string();
    t.ok(&["request", "accept", &id]);

    let serve = t
        .command(&["serve"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while std::time::Instant::now() < deadline {
        status = t.json(&["request", "show", &id, "--json"])["status"]
            .as_str()
            .unwrap()
            .to_string();
        if status == "succeeded" || status == "failed" || status == "missed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let pid = serve.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let exit = serve.wait_with_output().unwrap();
    assert_eq!(status, "succeeded");
    assert!(exit.status.success(), "serve stops cleanly on SIGTERM");
    // The banner gives the effective values, overrides included.
    let banner = String::from_utf8_lossy(&exit.stderr);
    assert!(banner.contains("lease_ttl=60s"), "{banner}");
    assert!(
        banner.contains("sync=60s") && banner.contains("restore=60s"),
        "{banner}"
    );
    let show = t.json(&["request", "show", &id, "--json"]);
    let instant = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    assert!(
        instant(&show["job"]["offline_at"]) >= start - Duration::seconds(1),
        "not before the window"
    );
    // The downtime is the one recorded in the environment's history, and
    // the estimate follows the documented rule: offline 300 + restore (the
    // history's longest + 25%) + swap 120 + sync 60 + mr_reset 300 + online 300.
    let env = t.json(&["env", "show", "uat", "--json"]);
    let restore = &env["restores"][0];
    assert_eq!(restore["request"], id.as_str());
    assert_eq!(show["downtime_secs"], restore["downtime_secs"]);
    let restore_secs = restore["restore_secs"].as_f64().unwrap();
    let estimated_restore = ((restore_secs * 1250.0).ceil() as i64) / 1000;
    assert_eq!(
        show["estimated_downtime_secs"],
        300 + estimated_restore + 120 + 60 + 300 + 300
    );
    let history = t.json(&["request", "history", &id, "--json"]);
    let to: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(to, ["submitted", "accepted", "running", "succeeded"]);
    assert_eq!(restore_puts(&t.journal().await), 1);
}
