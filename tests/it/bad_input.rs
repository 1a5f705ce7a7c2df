//! Bad input gets a clear error naming what is wrong, exit code 2, and
//! changes nothing.
use crate::helpers::*;
use std::process::Command;

fn pitr_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(PITR)
        .args(args)
        .current_dir(dir)
        .env_remove("PITR_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn an_unreadable_or_invalid_config_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = pitr_in(dir.path(), &["--config", "nope.toml", "request", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file nope.toml"));

    std::fs::write(
        dir.path().join("bad.toml"),
        "[azure]\nmin_poll_interval_ms = \"fast\"\n",
    )
    .unwrap();
    let out = pitr_in(dir.path(), &["--config", "bad.toml", "request", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("min_poll_interval_ms"));

    std::fs::write(
        dir.path().join("typo.toml"),
        "[store]\nurl = \"sqlite://x.db\"\n[azure]\narm_endpont = \"https://x\"\n",
    )
    .unwrap();
    let out = pitr_in(dir.path(), &["--config", "typo.toml", "request", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("arm_endpont"));
    // Nothing was created.
    assert!(!dir.path().join("x.db").exists());
    assert!(!dir.path().join("var").exists());
}

#[test]
fn an_invalid_scenario_file_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "[settings]\nrestore_polls = -1\n",
    )
    .unwrap();
    let out = pitr_in(
        dir.path(),
        &[
            "mock-azure",
            "--listen",
            "127.0.0.1:0",
            "--scenario",
            "s.toml",
            "--ca-out",
            "ca.pem",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("s.toml"));
    assert!(!dir.path().join("ca.pem").exists());
    let out = pitr_in(dir.path(), &["mock-azure", "--scenario", "missing.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[test]
fn bad_arguments_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ok.toml"),
        "[store]\nurl = \"sqlite://x.db\"\n",
    )
    .unwrap();
    let out = pitr_in(
        dir.path(),
        &[
            &["--config", "ok.toml"][..],
            &submit_args("yesterday", "x", "y"),
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--restore-point"));
    assert!(
        !dir.path().join("x.db").exists(),
        "no store created for bad arguments"
    );
    let out = pitr_in(dir.path(), &["request", "submit", "--env"]);
    assert_eq!(out.status.code(), Some(2));
    let out = pitr_in(dir.path(), &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_environment_and_unknown_request_are_exit_2() {
    let t = TestEnv::start(&scenario(""));
    let out = t.pitr(&["env", "show", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pitr env list"));
    for args in [
        vec!["request", "show", "nope"],
        vec!["request", "accept", "nope"],
        vec!["run", "nope"],
        vec!["resume", "nope"],
        vec!["rollback", "nope"],
    ] {
        let out = t.pitr(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not found"),
            "{args:?}"
        );
    }
    assert!(t.journal().await.iter().all(|e| e["method"] == "GET"
        || e["method"] == "POST" && e["path"].as_str().unwrap().contains("oauth2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_written_by_a_newer_pitr_is_refused_untouched() {
    let t = TestEnv::start(&scenario(""));
    t.ok(&["request", "list"]);
    let db = t.path("pitr.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("PRAGMA user_version = 99;").unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let out = t.pitr(&["request", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("newer"), "{err}");
    assert!(err.contains("upgrade pitr"), "{err}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the store is unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_misuse_is_exit_2() {
    let t = TestEnv::start(&scenario(""));
    let id = t.submit(&rfc3339_ago(chrono::Duration::days(1)));
    // Each refusal's hint leads somewhere: the command that does it, for
    // this request.
    let refused = |args: &[&str], hint: &str| {
        let out = t.pitr(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.contains(hint), "{args:?}: {err}");
        err
    };
    refused(
        &["run", &id],
        &format!("must be accepted first; accept it with `pitr request accept {id}`"),
    );
    refused(&["resume", &id], &format!("`pitr request accept {id}`"));
    assert_eq!(
        t.json(&["request", "show", &id, "--json"])["status"],
        "submitted"
    );
    assert_eq!(restore_puts(&t.journal().await), 0);
    assert!(t.pitr(&["request", "accept", &id]).status.success());
    refused(&["resume", &id], &format!("start it with `pitr run {id}`"));
    assert!(t.pitr(&["run", &id]).status.success());
    // Finished: resume and run say what is left (roll back, or a new
    // request), not to start a run that would be refused in turn.
    for args in [["resume", id.as_str()], ["run", id.as_str()]] {
        let err = refused(&args, &format!("`pitr rollback {id}` undoes it"));
        assert!(!err.contains("pitr run"), "{err}");
    }
    assert_eq!(restore_puts(&t.journal().await), 1);
}
