//! What a new user trips on: each story is a place where a user stopped,
//! guessed, or was told something untrue, and what they see now.
use crate::helpers::*;
use std::time::{Duration, Instant};

fn window() -> (String, String) {
    let now = chrono::Utc::now();
    (
        (now + chrono::Duration::days(2)).to_rfc3339(),
        (now + chrono::Duration::days(2) + chrono::Duration::hours(2)).to_rfc3339(),
    )
}

/// With nothing listening at the ARM endpoint, a command ends within
/// seconds with one error naming the endpoint, the cause and the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_azure_is_named_quickly_with_what_to_check() {
    let t = TestEnv::start(&scenario(""));
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dead = format!("https://127.0.0.1:{port}");
    let (ws, we) = window();
    let point = rfc3339_ago(chrono::Duration::days(1));
    let started = Instant::now();
    let out = t
        .command(&submit_args(&point, &ws, &we))
        .env("PITR_AZURE_ARM_ENDPOINT", &dead)
        .env("PITR_AZURE_AUTHORITY_HOST", &dead)
        .output()
        .unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(err.contains(&dead), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(err.contains("pitr mock-azure"), "{err}");
    assert!(!err.contains("WARN"), "one error, no retry noise: {err}");
}

/// A run that could not reach Azure changed nothing: the request stays
/// accepted and runnable, the user is told so, and nothing claims a
/// recovery that did not happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_changed_nothing_leaves_the_request_accepted() {
    let t = TestEnv::start(&scenario(""));
    let id = t.submit_accepted(&rfc3339_ago(chrono::Duration::days(1)));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("https://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let out = t
        .command(&["run", &id])
        .env("PITR_AZURE_ARM_ENDPOINT", &dead)
        .env("PITR_AZURE_AUTHORITY_HOST", &dead)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nothing was changed in Azure"), "{err}");
    assert!(err.contains(&format!("pitr run {id}")), "{err}");
    assert!(!err.contains("recovering"), "{err}");
    assert!(!err.contains("online"), "nothing went offline: {err}");
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "accepted");
    // And it runs for real once Azure is back.
    t.ok(&["run", &id]);
    assert_eq!(
        t.json(&["request", "show", &id, "--json"])["status"],
        "succeeded"
    );
}

/// Entra ID refusing the credential (AADSTS...) is final: no minute of
/// retries, and the message names the client, the tenant and the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_credential_is_final_and_names_what_to_fix() {
    let t = TestEnv::start(&format!(
        "{}\n[[faults]]\npath_contains = \"oauth2/v2.0/token\"\nstatus = 401\nerror_code = \"invalid_client\"\nmessage = \"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\"\ntimes = 0\n",
        scenario("")
    ));
    let (ws, we) = window();
    let started = Instant::now();
    let out = t.pitr(&submit_args(
        &rfc3339_ago(chrono::Duration::days(1)),
        &ws,
        &we,
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    assert!(err.contains("AADSTS7000215"), "{err}");
    assert!(
        err.contains("test-client") && err.contains("test-tenant"),
        "{err}"
    );
    assert!(err.contains("client_secret_env"), "{err}");
    let tokens = requests(&t.journal().await, "POST", "oauth2/v2.0/token").len();
    assert_eq!(tokens, 1, "asked once, not retried");
}

/// Every instant in `text` written as RFC 3339 (what a user may copy).
fn instants(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';'))
        .filter(|w| chrono::DateTime::parse_from_rfc3339(w).is_ok())
        .map(str::to_string)
        .collect()
}

/// The word after `marker` in `text`.
fn after<'a>(text: &'a str, marker: &str) -> &'a str {
    let i = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in {text}"))
        + marker.len();
    text[i..].split_whitespace().next().unwrap()
}

/// 10.4: rule messages print instants a user can paste: RFC 3339 to the
/// second, rounded in the user's favour; pasting the suggestion is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instants_in_messages_can_be_pasted_back() {
    let t = TestEnv::start(&scenario(""));
    let now = chrono::Utc::now();
    let point = rfc3339_ago(chrono::Duration::days(1));
    let secs =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (soon, soon_end) = (
        secs(now + chrono::Duration::hours(1)),
        secs(now + chrono::Duration::hours(3)),
    );
    let out = t.pitr(&submit_args(&point, &soon, &soon_end));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("rule notice-24h"), "{err}");
    assert!(!err.contains(" UTC"), "{err}");
    for i in instants(&err) {
        assert!(!i.contains('.'), "whole seconds here: {err}");
    }
    let start = after(&err, "start it at ").to_string();
    assert!(start.ends_with('Z') && start.len() == 20, "{start}");
    let end = (chrono::DateTime::parse_from_rfc3339(&start).unwrap() + chrono::Duration::hours(2))
        .to_rfc3339();
    t.ok(&submit_args(&point, &start, &end));

    // Azure's earliest restore date (7 days of retention in the scenario).
    let t = TestEnv::start(&scenario(""));
    let (ws, we) = window();
    let out = t.pitr(&submit_args(
        &rfc3339_ago(chrono::Duration::days(8)),
        &ws,
        &we,
    ));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("rule earliest-restore-date"), "{err}");
    let earliest = after(&err, "choose ").to_string();
    assert!(
        earliest.ends_with('Z') && earliest.len() == 20,
        "{earliest}"
    );
    // Pasted as the restore point it passes that rule (the window, two days
    // out, is then past the retention: that rule names its own fix).
    let out = t.pitr(&submit_args(&earliest, &ws, &we));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("earliest-restore-date"), "{err}");
    assert!(err.contains("rule retention-at-window"), "{err}");
    let latest = after(&err, "no later than ")
        .trim_end_matches(',')
        .to_string();
    let end = (chrono::DateTime::parse_from_rfc3339(&latest).unwrap() + chrono::Duration::hours(2))
        .to_rfc3339();
    // That window is sooner than 24 hours: an operator's emergency.
    let mut args = submit_args(&earliest, &latest, &end);
    args.extend(["--emergency-reason", "rehearsal"]);
    let out = t.pitr(&args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("retention-at-window"), "{err}");
}

/// 10.6: small truths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_small_things_say_what_is_true() {
    let t = TestEnv::start(&scenario(""));
    let (ws, we) = window();
    let point = rfc3339_ago(chrono::Duration::days(1));

    // A window that ends before it starts is called that.
    let out = t.pitr(&submit_args(&point, &we, &ws));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("ends") && err.contains("before it starts"),
        "{err}"
    );
    assert!(!err.contains("shorter than"), "{err}");

    // The emergency reason of a reschedule is in the audit trail and shown.
    let id = t.ok(&submit_args(&point, &ws, &we)).trim().to_string();
    let soon = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let soon_end = (chrono::Utc::now() + chrono::Duration::hours(4)).to_rfc3339();
    t.ok(&[
        "request",
        "reschedule",
        &id,
        "--window-start",
        &soon,
        "--window-end",
        &soon_end,
        "--emergency-reason",
        "payroll data corrupted",
    ]);
    let history = t.json(&["request", "history", &id, "--json"]);
    let last = history.as_array().unwrap().last().unwrap();
    assert!(
        last["note"]
            .as_str()
            .unwrap()
            .contains("emergency: payroll data corrupted"),
        "{last}"
    );
    let show = t.ok(&["request", "show", &id]);
    assert!(
        show.contains("emergency   payroll data corrupted"),
        "{show}"
    );

    // A dry run of a request not yet accepted does not send the user to
    // `pitr run`, which would refuse it.
    let out = t.ok(&["run", &id, "--dry-run"]);
    assert!(
        !out.contains(&format!("run it for real with `pitr run {id}`")),
        "{out}"
    );
    assert!(out.contains(&format!("pitr request accept {id}")), "{out}");

    // A bad override names the variable, the key and what it expects, not the file.
    let out = t
        .command(&["env", "list"])
        .env("PITR_AZURE_MIN_POLL_INTERVAL_MS", "abc")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("PITR_AZURE_MIN_POLL_INTERVAL_MS"), "{err}");
    assert!(err.contains("[azure] min_poll_interval_ms"), "{err}");
    assert!(!err.contains("abc"), "the value is not repeated: {err}");
    assert!(!err.contains("pitr.toml"), "{err}");

    // Bench refuses what it cannot do.
    for args in [["bench", "--runs", "0"], ["bench", "--poll-ms", "0"]] {
        assert_eq!(t.pitr(&args).status.code(), Some(2), "{args:?}");
    }

    // Without $USER or PITR_ACTOR the actor is the OS account, not "unknown".
    let id2 = {
        let other = t
            .command(&["request", "cancel", &id, "--reason", "superseded"])
            .env_remove("USER")
            .env_remove("PITR_ACTOR")
            .output()
            .unwrap();
        assert!(
            other.status.success(),
            "{}",
            String::from_utf8_lossy(&other.stderr)
        );
        id.clone()
    };
    let history = t.json(&["request", "history", &id2, "--json"]);
    let actor = history.as_array().unwrap().last().unwrap()["actor"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!actor.is_empty() && actor != "unknown", "{actor}");

    // env list uses the config's names, in columns wide enough.
    let list = t.ok(&["env", "list"]);
    assert!(
        list.contains("azure_sql") && !list.contains("azuresql"),
        "{list}"
    );
    let header = list.lines().next().unwrap();
    let col = header.find("SERVER").unwrap();
    for line in list.lines().skip(1) {
        assert_eq!(line.as_bytes()[col - 1], b' ', "{list}");
        assert_ne!(line.as_bytes()[col], b' ', "{list}");
    }
}

/// 10.6: progress lines name one verb, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_lines_say_each_thing_once() {
    let t = TestEnv::start(&scenario("restore_polls = 1"));
    let id = t.submit_accepted(&rfc3339_ago(chrono::Duration::days(1)));
    let out = t.command(&["run", &id]).output().unwrap();
    assert!(out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("restore"), "{all}");
    for doubled in [
        "restore restore",
        "restore PUT restore",
        "swap swap",
        "sync sync",
    ] {
        assert!(!all.contains(doubled), "{doubled:?} in {all}");
    }
}

/// 10.5: the README's command table has what the CLI accepts and asks for,
/// and the note the code-version message sends people to exists.
#[test]
fn the_readme_matches_the_cli() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for needle in [
        "--ack-version-mismatch",
        "--emergency-reason",
        "pitr job confirm",
        "pitr store init",
        "pitr store copy",
        "cargo install --locked --path .",
        ".ci/run",
        "### Code versions",
    ] {
        assert!(readme.contains(needle), "README lacks {needle}");
    }
    let rule = pitr::domain::RuleViolation::VersionMismatch {
        environment: "uat".into(),
        at_point: "9.1".into(),
        current: "10.0".into(),
    }
    .to_string();
    assert!(rule.contains("\"Code versions\" in the README"), "{rule}");
    let deploy =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/README.md")).unwrap();
    assert!(!deploy.contains("to come"), "deploy/README.md");
}
