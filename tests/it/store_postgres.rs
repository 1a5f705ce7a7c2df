//! PostgreSQL-specific behaviour, mirroring the SQLite tests after the
//! store suite: schema versions and migrations, reopening, corrupt values,
//! races between several processes (several stores, each with its own
//! pool), TLS and secrets. Each test has a database of its own.
use crate::helpers::PgDatabase;
use crate::store_suite::{event, fresh, job, request, submitted, t};
use chrono::Duration;
use pitr::domain::{JobId, RequestStatus, StepName, StepRecord};
use pitr::store::migrations::{MIGRATIONS, SCHEMA_VERSION};
use pitr::store::postgres::PostgresStore;
use pitr::store::{SharedStore, StoreError};
use std::sync::Arc;
use tokio::sync::Barrier;

async fn schema_version(db: &PgDatabase) -> i64 {
    db.client()
        .await
        .query_one("SELECT version FROM schema_version", &[])
        .await
        .unwrap()
        .get(0)
}

/// `n` stores on one database, each with its own connection pool: as many
/// processes.
async fn stores(db: &PgDatabase, n: usize) -> Vec<SharedStore> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(pitr::store::open(&db.url).await.unwrap());
    }
    out
}

#[tokio::test]
async fn postgres_reopen_keeps_data_and_is_idempotent() {
    let db = PgDatabase::create().await;
    // Several processes opening a new database at once: each script is
    // applied once (a second CREATE TABLE would fail).
    let opened = futures_util::future::join_all((0..4).map(|_| pitr::store::open(&db.url))).await;
    let store = opened.into_iter().map(Result::unwrap).next().unwrap();
    assert_eq!(schema_version(&db).await, SCHEMA_VERSION);

    let req = request("r1", "env", t(0));
    store.insert_request(&req, &submitted(&req)).await.unwrap();
    let j = job("j1", &"r1".into(), t(5));
    store
        .claim_run(&j, None, "runner", t(5), Duration::seconds(60), None)
        .await
        .unwrap();
    store
        .save_step(
            &"j1".into(),
            &StepRecord::pending(StepName::Preflight),
            None,
        )
        .await
        .unwrap();
    drop(store);

    let reopened = pitr::store::open(&db.url).await.unwrap();
    assert_eq!(
        reopened.get_request(&"r1".into()).await.unwrap(),
        Some(req.clone())
    );
    assert_eq!(
        reopened.request_events(&"r1".into()).await.unwrap(),
        vec![submitted(&req)]
    );
    assert_eq!(reopened.get_job(&"j1".into()).await.unwrap(), Some(j));
    assert_eq!(reopened.steps(&"j1".into()).await.unwrap().len(), 1);
    assert_eq!(schema_version(&db).await, SCHEMA_VERSION);
}

#[tokio::test]
async fn postgres_migrates_an_older_schema_keeping_its_rows() {
    let db = PgDatabase::create().await;
    let client = db.client().await;
    // A store written by a pitr of schema version 1.
    client.batch_execute(MIGRATIONS[0].postgres).await.unwrap();
    client
        .batch_execute(
            "INSERT INTO schema_version (version) VALUES (1);
             INSERT INTO requests (id, environment, database, restore_point, window_start,
                 window_end, ack_erase, ack_downtime, ack_scope, requester, reason, prestage,
                 status, submitted_at, updated_at)
             VALUES ('old', 'env', 'db', '2024-05-01T00:00:00Z', '2024-05-02T00:00:00Z',
                 '2024-05-02T02:00:00Z', true, true, true, 'me', NULL, false, 'accepted',
                 '2024-05-01T01:00:00Z', '2024-05-01T01:00:00Z')",
        )
        .await
        .unwrap();
    let store = pitr::store::open(&db.url).await.unwrap();
    assert_eq!(schema_version(&db).await, SCHEMA_VERSION);
    let old = store.get_request(&"old".into()).await.unwrap().unwrap();
    assert_eq!(old.status, RequestStatus::Accepted);
    assert_eq!(
        (old.spec.emergency, old.spec.acks.version_mismatch),
        (None, false)
    );
}

#[tokio::test]
async fn postgres_refuses_a_newer_schema_untouched() {
    let db = PgDatabase::create().await;
    drop(pitr::store::open(&db.url).await.unwrap());
    db.client()
        .await
        .execute(
            "UPDATE schema_version SET version = $1",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    for open in [
        pitr::store::open(&db.url).await,
        pitr::store::open_read_only(&db.url).await,
    ] {
        match open {
            Err(StoreError::SchemaTooNew {
                path,
                found,
                supported,
            }) => {
                // The user is named (the password never is).
                let user = db
                    .url
                    .split("://")
                    .nth(1)
                    .and_then(|r| r.split(['@', ':']).next())
                    .unwrap();
                assert!(
                    path.starts_with(&format!("postgres://{user}@127.0.0.1:5432/")),
                    "{path}"
                );
                assert!(path.ends_with(&db.name), "{path}");
                assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
    assert_eq!(schema_version(&db).await, SCHEMA_VERSION + 1);
}

#[tokio::test]
async fn postgres_reports_unreadable_values_as_corrupt() {
    let db = PgDatabase::create().await;
    let store = pitr::store::open(&db.url).await.unwrap();
    let req = request("r1", "env", t(0));
    store.insert_request(&req, &submitted(&req)).await.unwrap();
    store
        .claim_run(
            &job("j1", &"r1".into(), t(1)),
            None,
            "runner",
            t(1),
            Duration::seconds(60),
            None,
        )
        .await
        .unwrap();
    db.client()
        .await
        .batch_execute(
            "UPDATE requests SET status = 'paused', window_end = 'infinity';
             UPDATE jobs SET facts = '{\"source_sku\": ', plan = 'preflight,teleport'",
        )
        .await
        .unwrap();
    for result in [
        store.get_request(&"r1".into()).await.map(|_| ()),
        store.list_requests().await.map(|_| ()),
        store.get_job(&"j1".into()).await.map(|_| ()),
        store.jobs_for_request(&"r1".into()).await.map(|_| ()),
        store.export().await.map(|_| ()),
    ] {
        match result {
            Err(e @ StoreError::Corrupt(_)) => {
                let msg = e.to_string();
                assert!(msg.contains("requests.") || msg.contains("jobs."), "{msg}");
                assert!(msg.contains("r1") || msg.contains("j1"), "{msg}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    // An instant no DateTime holds (infinity) is corrupt, not a panic.
    db.client()
        .await
        .batch_execute("UPDATE requests SET status = 'accepted'")
        .await
        .unwrap();
    assert!(matches!(
        store.get_request(&"r1".into()).await,
        Err(StoreError::Corrupt(msg)) if msg.contains("requests.window_end of r1")
    ));
    // The status is also read under the compare-and-set.
    db.client()
        .await
        .batch_execute("UPDATE requests SET status = 'paused'")
        .await
        .unwrap();
    assert!(matches!(
        store
            .transition_request(&event(&"r1".into(), None, RequestStatus::Accepted, t(2)))
            .await,
        Err(StoreError::Corrupt(msg)) if msg.contains("requests.status")
    ));
}

/// Several processes submit for one environment at once: the
/// per-environment lock serializes them, exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_one_active_request_across_processes() {
    let db = PgDatabase::create().await;
    let racers = stores(&db, 6).await;
    let barrier = Arc::new(Barrier::new(racers.len()));
    let tasks: Vec<_> = racers
        .into_iter()
        .enumerate()
        .map(|(i, store)| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let req = request(&format!("r{i}"), "env", t(i as i64));
                barrier.wait().await;
                store.insert_request(&req, &submitted(&req)).await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::ActiveRequestExists { environment, .. }) => {
                assert_eq!(environment, "env")
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(won, 1);
    let store = pitr::store::open(&db.url).await.unwrap();
    assert_eq!(store.list_requests().await.unwrap().len(), 1);
}

/// The partial unique index refuses a second active request even from a
/// writer that skips the store's lock.
#[tokio::test]
async fn postgres_one_active_index_matches_the_domain() {
    let db = PgDatabase::create().await;
    drop(pitr::store::open(&db.url).await.unwrap());
    let client = db.client().await;
    for status in RequestStatus::ALL {
        let insert = |id: String| {
            format!(
                "INSERT INTO requests (id, environment, database, restore_point, window_start,
                     window_end, ack_erase, ack_downtime, ack_scope, requester, prestage, status,
                     submitted_at, updated_at)
                 VALUES ('{id}', 'env-{status}', 'db', now(), now(), now(), true, true, true,
                     'me', false, '{status}', now(), now())"
            )
        };
        client
            .batch_execute(&insert(format!("{status}-1")))
            .await
            .unwrap();
        let second = client.batch_execute(&insert(format!("{status}-2"))).await;
        assert_eq!(second.is_err(), status.is_active(), "{status}");
    }
}

/// N processes claim the same accepted request at once, round after round:
/// exactly one starts the run; the others are told a run is in progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_claim_run_has_exactly_one_winner() {
    let db = PgDatabase::create().await;
    let racers = stores(&db, 6).await;
    for round in 0..10 {
        let env = fresh("env");
        let req = request(&fresh("req"), &env, t(0));
        racers[0]
            .insert_request(&req, &submitted(&req))
            .await
            .unwrap();
        let accepted = event(
            &req.id,
            Some(RequestStatus::Submitted),
            RequestStatus::Accepted,
            t(1),
        );
        racers[0].transition_request(&accepted).await.unwrap();

        let barrier = Arc::new(Barrier::new(racers.len()));
        let tasks: Vec<_> = racers
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, store)| {
                let (barrier, id) = (barrier.clone(), req.id.clone());
                tokio::spawn(async move {
                    let start = event(
                        &id,
                        Some(RequestStatus::Accepted),
                        RequestStatus::Running,
                        t(2),
                    );
                    let j = job(&format!("{id}-job{i}"), &id, t(2));
                    barrier.wait().await;
                    store
                        .claim_run(
                            &j,
                            Some(&start),
                            &format!("runner-{i}"),
                            t(2),
                            Duration::seconds(60),
                            None,
                        )
                        .await
                        .map(|lease| (j.id, lease))
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(won) => winners.push(won),
                Err(StoreError::RunInProgress { .. }) => {}
                Err(e) => panic!("round {round}: unexpected error {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}");
        let (job_id, lease) = winners.remove(0);
        let store = &racers[1];
        let jobs = store.jobs_for_request(&req.id).await.unwrap();
        assert_eq!(
            jobs.iter().map(|j| &j.id).collect::<Vec<_>>(),
            vec![&job_id]
        );
        assert_eq!(store.get_lease(&job_id).await.unwrap(), Some(lease));
        let events = store.request_events(&req.id).await.unwrap();
        assert_eq!(events.len(), 3, "round {round}: one start event");
        assert_eq!(
            store.get_request(&req.id).await.unwrap().map(|r| r.status),
            Some(RequestStatus::Running)
        );
    }
}

/// N processes race for an expired lease: one takes it, with the next
/// fencing token; the others are told who holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_lease_races_have_one_winner() {
    let db = PgDatabase::create().await;
    let racers = stores(&db, 6).await;
    let req = request("r1", "env", t(0));
    racers[0]
        .insert_request(&req, &submitted(&req))
        .await
        .unwrap();
    let job_id = JobId::from("j1");
    racers[0]
        .claim_run(
            &job("j1", &req.id, t(1)),
            None,
            "first",
            t(1),
            Duration::seconds(60),
            None,
        )
        .await
        .unwrap();
    for round in 1..=10i64 {
        // Every earlier lease has expired by now.
        let now = t(10 * round);
        let barrier = Arc::new(Barrier::new(racers.len()));
        let tasks: Vec<_> = racers
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, store)| {
                let (barrier, job_id) = (barrier.clone(), job_id.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .acquire_lease(&job_id, &format!("runner-{i}"), now, Duration::seconds(60))
                        .await
                })
            })
            .collect();
        let mut won = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(lease) => won.push(lease),
                Err(StoreError::LeaseHeld { .. }) => {}
                Err(e) => panic!("round {round}: unexpected error {e}"),
            }
        }
        assert_eq!(won.len(), 1, "round {round}");
        assert_eq!(won[0].fencing, round + 1);
        assert_eq!(
            racers[2].get_lease(&job_id).await.unwrap(),
            Some(won[0].clone())
        );
    }
}

/// `sslmode=require` encrypts (the server says so); `verify-ca` accepts the
/// server's certificate given as the CA; `verify-full` refuses it for a name
/// it was not issued to, and a certificate no system CA signed.
#[tokio::test]
async fn postgres_tls_modes_against_the_local_server() {
    let db = PgDatabase::create().await;
    let client = db.client().await;
    let ssl: String = client.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    assert_eq!(
        ssl, "on",
        "the test server must offer TLS (Debian's default, with its snakeoil certificate)"
    );
    let cert: String = client
        .query_one("SHOW ssl_cert_file", &[])
        .await
        .unwrap()
        .get(0);
    let encrypted = |app: String| {
        let client = &client;
        async move {
            let row = client
                .query_one(
                    "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                     WHERE a.application_name = $1 LIMIT 1",
                    &[&app],
                )
                .await
                .unwrap();
            row.get::<_, bool>(0)
        }
    };
    let with = |query: &str| {
        let sep = if db.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}{query}", db.url)
    };
    for (mode, expect_tls) in [("disable", false), ("prefer", true), ("require", true)] {
        let app = fresh(&format!("pitr-{mode}"));
        let _store = pitr::store::open(&with(&format!("sslmode={mode}&application_name={app}")))
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(encrypted(app).await, expect_tls, "{mode}");
    }
    let app = fresh("pitr-verify-ca");
    let _store = pitr::store::open(&with(&format!(
        "sslmode=verify-ca&sslrootcert={cert}&application_name={app}"
    )))
    .await
    .unwrap();
    assert!(encrypted(app).await);

    for (query, expected) in [
        // The snakeoil certificate names the host, not 127.0.0.1.
        (
            format!("sslmode=verify-full&sslrootcert={cert}"),
            "not valid for name",
        ),
        (
            "sslmode=verify-full".to_string(),
            "invalid peer certificate",
        ),
    ] {
        match pitr::store::open(&with(&query)).await {
            Err(e @ StoreError::Open { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(expected), "{query}: {msg}");
                assert!(
                    msg.contains("sslrootcert"),
                    "{query}: the hint names it: {msg}"
                );
                assert!(
                    msg.contains(&format!("127.0.0.1:5432/{}", db.name)),
                    "{msg}"
                );
            }
            other => panic!("{query}: expected Open, got {other:?}"),
        }
    }
}

/// The password never appears in an error, in `Debug`, or in the store.
/// (The local server trusts every connection, so a wrong password is never
/// refused there; an unknown role, a database that does not exist and a
/// port nobody listens on stand in for it.)
#[tokio::test]
async fn postgres_never_shows_the_password() {
    let db = PgDatabase::create().await;
    const SECRET: &str = "S3cret-Pa55word";
    let base = url::Url::parse(&db.url).unwrap();
    let with = |user: &str, port: u16, dbname: &str, query: &str| {
        let mut u = base.clone();
        u.set_username(user).unwrap();
        u.set_password(Some(SECRET)).unwrap();
        u.set_port(Some(port)).unwrap();
        u.set_path(dbname);
        u.set_query(Some(query).filter(|q| !q.is_empty()));
        u.to_string()
    };
    for (url, expected) in [
        (
            with("no_such_role_pitr", 5432, &db.name, ""),
            "check the user and its password",
        ),
        (
            with("postgres", 5432, "no_such_db_pitr", ""),
            "CREATE DATABASE",
        ),
        (
            with("postgres", 1, &db.name, "connect_timeout=2"),
            "pg_hba.conf",
        ),
    ] {
        match PostgresStore::open(&url, None).await {
            Err(e @ StoreError::Open { .. }) => {
                let (msg, debug) = (e.to_string(), format!("{e:?}"));
                assert!(!msg.contains(SECRET) && !debug.contains(SECRET), "{msg}");
                assert!(msg.contains(expected), "{msg}");
                assert!(msg.contains("127.0.0.1:"), "names host and port: {msg}");
            }
            other => panic!("expected Open, got {other:?}"),
        }
        // The same from the environment variable.
        let no_password = url.replace(&format!(":{SECRET}@"), "@");
        let e = PostgresStore::open(&no_password, Some(SECRET.into()))
            .await
            .unwrap_err();
        assert!(!format!("{e} {e:?}").contains(SECRET), "{e}");
    }
    // A bad URL shows itself redacted.
    let e = pitr::store::open(&with("postgres", 5432, &db.name, "sslmode=sometimes"))
        .await
        .unwrap_err();
    assert!(!e.to_string().contains(SECRET), "{e}");
    assert!(e.to_string().contains("***"), "{e}");

    // Connected with the password (trust ignores it): not in Debug, not in
    // any row.
    let store = pitr::store::open(&with(
        "postgres",
        5432,
        &db.name,
        &format!("password={SECRET}"),
    ))
    .await
    .unwrap();
    assert!(!format!("{store:?}").contains(SECRET));
    let req = request("r1", "env", t(0));
    store.insert_request(&req, &submitted(&req)).await.unwrap();
    let dump = format!("{:?}", store.export().await.unwrap());
    assert!(!dump.contains(SECRET));
    let stored: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM requests r WHERE r::text LIKE '%' || $1 || '%'",
            &[&SECRET],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0);
}
