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

/// A 307 from the ARM endpoint is not followed: nothing reaches the other
/// origin (it would carry the request body there, around the poll-origin
/// check), and the command fails naming the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_never_followed_to_another_origin() {
    let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    let port = elsewhere.local_addr().unwrap().port();
    let t = TestEnv::start(&format!(
        "{}\n[[faults]]\nmethod = \"GET\"\npath_contains = \"/databases/AxDB?\"\nstatus = 307\nlocation = \"http://127.0.0.1:{port}/steal\"\ntimes = 0\n",
        scenario("")
    ));
    let now = chrono::Utc::now();
    let (ws, we) = (
        (now + chrono::Duration::days(2)).to_rfc3339(),
        (now + chrono::Duration::days(2) + chrono::Duration::hours(2)).to_rfc3339(),
    );
    let out = t.pitr(&submit_args(
        &rfc3339_ago(chrono::Duration::days(1)),
        &ws,
        &we,
    ));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("307"), "{err}");
    assert!(
        matches!(elsewhere.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a connection reached the other origin"
    );
    assert!(t
        .json(&["request", "list", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
}

/// A `PITR_*` variable that is not UTF-8 is refused by name (its bytes are
/// never printed); any other non-UTF-8 variable is no concern of pitr's.
#[test]
fn a_non_utf8_environment_variable_is_refused_by_name_or_ignored() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.toml"), "").unwrap();
    let raw = std::ffi::OsStr::from_bytes(b"sqlite://\xff\x1b[2Jx.db");
    let run = |var: &str| {
        std::process::Command::new(PITR)
            .args(["--config", "c.toml", "env", "list"])
            .current_dir(dir.path())
            .env(var, raw)
            .output()
            .unwrap()
    };
    let out = run("PITR_STORE_URL");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PITR_STORE_URL") && err.contains("UTF-8"),
        "{err}"
    );
    assert!(!out.stderr.contains(&0xff) && !out.stderr.contains(&0x1b));
    let out = run("SOME_OTHER_VARIABLE");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Each out-of-range value or unsafe name is refused with exit 2 naming its
/// key, before anything is created.
#[test]
fn every_config_value_is_bounded_and_every_name_checked() {
    let dir = tempfile::tempdir().unwrap();
    let env = |extra: &str| {
        format!(
            "[[environments]]\nname = \"uat\"\ntier = \"sandbox\"\ndatabase_kind = \"azure_sql\"\nsubscription_id = \"00000000-0000-0000-0000-00000000aaaa\"\nresource_group = \"rg\"\nserver = \"sql-uat\"\nlocation = \"westeurope\"\ndatabase = \"AxDB\"\nactions = \"none\"\n{extra}\n"
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (
            "[engine]\nrestore_timeout_secs = 0".into(),
            "restore_timeout_secs",
        ),
        (
            "[engine]\naction_timeout_secs = 0".into(),
            "action_timeout_secs",
        ),
        (
            "[engine]\nstep_timeout_secs = 0".into(),
            "step_timeout_secs",
        ),
        ("[engine]\nlease_ttl_secs = 0".into(), "lease_ttl_secs"),
        (
            "[engine]\nscheduler_tick_secs = 0".into(),
            "scheduler_tick_secs",
        ),
        (
            "[engine]\nmax_concurrent_runs = 0".into(),
            "max_concurrent_runs",
        ),
        (
            "[azure]\nrequest_timeout_secs = 0".into(),
            "request_timeout_secs",
        ),
        (
            "[azure]\nretry_min_delay_ms = 9223372036854775807".into(),
            "retry_min_delay_ms",
        ),
        ("[azure]\nretry_max_times = 1000".into(), "retry_max_times"),
        (
            "[azure]\nclient_secret_env = \"\"".into(),
            "client_secret_env",
        ),
        ("[store]\nurl = \"sqlite://\"".into(), "[store] url"),
        (
            env("").replace("database = \"AxDB\"", "database = \"AxDB/../../x\""),
            "database",
        ),
        (
            env("").replace("database = \"AxDB\"", "database = \"\""),
            "database",
        ),
        (
            env("").replace("server = \"sql-uat\"", "server = \"sql?x\""),
            "server",
        ),
        (
            env("").replace("name = \"uat\"", "name = \"\""),
            "environment name",
        ),
        (
            env("").replace("00000000-0000-0000-0000-00000000aaaa", "sub#1"),
            "subscription_id",
        ),
        (
            env("").replace("location = \"westeurope\"", "location = \"\""),
            "location",
        ),
        (env("retention_days = 0"), "retention_days"),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        let file = format!("c{i}.toml");
        std::fs::write(dir.path().join(&file), text).unwrap();
        let out = std::process::Command::new(PITR)
            .args(["--config", &file, "request", "list"])
            .current_dir(dir.path())
            .env_remove("PITR_CONFIG")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {err}");
        assert!(err.contains(key), "{key}: {err}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        cases.len(),
        "nothing but the config files: no store was created"
    );
    // A string key takes a numeric-looking value.
    // (The default store is made on first use.)
    std::fs::write(dir.path().join("ok.toml"), "").unwrap();
    let out = std::process::Command::new(PITR)
        .args(["--config", "ok.toml", "env", "list"])
        .current_dir(dir.path())
        .env("PITR_AZURE_TENANT_ID", "12345")
        .env("PITR_ENGINE_ESTIMATES_RESTORE_SECS", "600")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A leap second is refused before anything is stored, and no emergency
/// makes a window that already ended acceptable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leap_seconds_and_past_windows_are_refused() {
    let t = TestEnv::start(&scenario(""));
    let now = chrono::Utc::now();
    let future = |d: chrono::Duration| (now + d).to_rfc3339();
    let (ws, we) = (
        future(chrono::Duration::days(2)),
        future(chrono::Duration::days(3)),
    );
    let out = t.pitr(&submit_args("2026-11-25T12:34:60Z", &ws, &we));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--restore-point") && err.contains("leap second"),
        "{err}"
    );
    let (ps, pe) = (
        future(chrono::Duration::hours(-5)),
        future(chrono::Duration::hours(-2)),
    );
    let point = rfc3339_ago(chrono::Duration::days(1));
    let mut args = submit_args(&point, &ps, &pe);
    args.extend(["--emergency-reason", "we need it back"]);
    let out = t.pitr(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("window-in-past"));
    assert!(t
        .json(&["request", "list", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
}

/// Reasons and actors are shown with their control characters escaped: no
/// escape sequence reaches the terminal and no newline forges a line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_cannot_be_forged_with_control_characters() {
    let t = TestEnv::start(&scenario(""));
    let now = chrono::Utc::now();
    let (ws, we) = (
        (now + chrono::Duration::days(2)).to_rfc3339(),
        (now + chrono::Duration::days(3)).to_rfc3339(),
    );
    let point = rfc3339_ago(chrono::Duration::days(1));
    let evil = "ok\u{1b}[2J\n2026-01-01T00:00:00Z  accepted   -> succeeded   by admin";
    let mut args = submit_args(&point, &ws, &we);
    args.extend(["--reason", evil]);
    let id = t
        .command(&args)
        .env("PITR_ACTOR", "mallory\nby admin")
        .output()
        .unwrap();
    assert!(
        id.status.success(),
        "{}",
        String::from_utf8_lossy(&id.stderr)
    );
    let id = String::from_utf8_lossy(&id.stdout).trim().to_string();
    for cmd in [
        vec!["request", "history", id.as_str()],
        vec!["request", "show", id.as_str()],
        vec!["request", "list"],
    ] {
        let out = t.ok(&cmd);
        assert!(!out.contains('\u{1b}'), "{cmd:?}: {out}");
        assert!(
            !out.lines().any(|l| l.starts_with("2026-01-01")),
            "{cmd:?}: {out}"
        );
        assert!(
            !out.lines().any(|l| l.trim_start().starts_with("by admin")),
            "{cmd:?}: {out}"
        );
    }
    let history = t.ok(&["request", "history", &id]);
    assert_eq!(history.lines().count(), 1, "{history}");
    // JSON keeps the text as it was given.
    let json = t.json(&["request", "history", &id, "--json"]);
    assert_eq!(json[0]["actor"], "mallory\nby admin");
}

/// The mock Azure as a server others point at: a body that never arrives
/// gets a 408 and the connection is closed; a 1xx fault is refused; the CA
/// is never written through a symbolic link; a non-loopback address warns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_azure_holds_against_its_clients() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = TestEnv::start(&scenario("body_timeout_ms = 300"));
    let pem = std::fs::read(t.path("ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ));
    let addr = t.url.trim_start_matches("https://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let host = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = tls.connect(host, tcp).await.unwrap();
    conn.write_all(
        b"PUT /subscriptions/x/resourceGroups/rg/providers/Microsoft.Sql/servers/s/databases/d?api-version=2023-08-01 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"loc",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        conn.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the mock kept the connection open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A fault with an informational status is refused.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = client
        .post(format!("{}/_mock/faults", t.url))
        .json(&serde_json::json!({"status": 101, "path_contains": "/databases/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // --ca-out through a symbolic link: refused, the target untouched.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("precious.txt");
    std::fs::write(&target, "keep me").unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("ca.pem")).unwrap();
    let out = std::process::Command::new(PITR)
        .args(["mock-azure", "--listen", "127.0.0.1:0", "--ca-out"])
        .arg(dir.path().join("ca.pem"))
        .arg("--scenario")
        .arg(t.path("scenario.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");

    // Not on loopback: a warning, before it serves.
    let mut mock = std::process::Command::new(PITR)
        .args(["mock-azure", "--listen", "0.0.0.0:0", "--ca-out"])
        .arg(dir.path().join("other-ca.pem"))
        .arg("--scenario")
        .arg(t.path("scenario.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(mock.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    let _ = mock.kill();
    let _ = mock.wait();
    assert!(line.contains("not a loopback address"), "{line}");
}

/// A store that fails mid-run (here: another process holds its write lock
/// past the busy timeout) stops the run, and the person is told that the
/// environment is offline and that `pitr resume` continues; it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_mid_run_says_where_the_environment_is_and_resume_continues() {
    let t = TestEnv::start(&scenario("restore_polls = 1"));
    let id = t.submit_accepted(&rfc3339_ago(chrono::Duration::days(1)));
    t.hold("restore", true).await;
    let run = spawn(&t, &["run", &id]);
    t.wait_for_restore_poll().await;
    // Another writer takes the lock and keeps it.
    let blocker = rusqlite::Connection::open(t.path("pitr.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    t.hold("restore", false).await;
    let out = run.wait_with_output().unwrap();
    drop(blocker);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the store failed"), "{err}");
    assert!(err.contains("OFFLINE"), "{err}");
    assert!(err.contains(&format!("pitr resume {id}")), "{err}");
    // Nothing was rolled back for a store failure; resume finishes the run.
    t.ok(&["resume", &id]);
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "succeeded");
    assert_eq!(accepted_restore_puts(&t.journal().await), 1);
    assert!(all_running(&t.state().await));
}

/// A mistyped store path or an empty file is refused, never silently made
/// into a new store; `pitr store init` makes one on purpose; a read-only
/// command does not wait for another process's write lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_is_created_on_purpose_only_and_read_without_the_write_lock() {
    let t = TestEnv::start(&scenario(""));
    let id = t.submit(&rfc3339_ago(chrono::Duration::days(1)));
    let elsewhere = |url: &str| {
        t.command(&["request", "list"])
            .env("PITR_STORE_URL", url)
            .output()
            .unwrap()
    };
    let typo = t.path("pitr.bd");
    let out = elsewhere(&format!("sqlite://{}", typo.display()));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not exist") && err.contains("pitr store init"),
        "{err}"
    );
    assert!(!typo.exists(), "no store was made");
    std::fs::write(&typo, "").unwrap();
    let out = elsewhere(&format!("sqlite://{}", typo.display()));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty (0 bytes)"));
    assert_eq!(std::fs::metadata(&typo).unwrap().len(), 0, "left as it was");
    let out = t
        .command(&["store", "init"])
        .env("PITR_STORE_URL", format!("sqlite://{}", typo.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(&typo).unwrap().len() > 0);

    // Another process holds the write lock: reads go on.
    let blocker = rusqlite::Connection::open(t.path("pitr.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "submitted");
    assert!(t.ok(&["request", "list"]).contains(&id));
    // A read waiting behind the writer would wait its 5 s busy timeout
    // (and then fail): two reads under 9 s did not wait, however loaded
    // the machine.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(9),
        "waited {:?} behind the writer",
        started.elapsed()
    );
    drop(blocker);
}
