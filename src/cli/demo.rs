//! `pitr demo`: a complete rehearsal with nothing to set up. A temporary
//! SQLite store, the mock Azure in-process, one demo environment; a request
//! is submitted, accepted and run with live progress, then the result is
//! checked against the mock's own view of the databases.
use super::console::Console;
use super::Failure;
use crate::app::{
    rehearsal_scenario, sample_environment, App, Azure, SAMPLE_SQL_PASSWORD_ENV, SEEDED_HISTORY,
};
use crate::config::Config;
use crate::domain::lifecycle::LifecycleEvent;
use crate::domain::{Acknowledgements, Environment, RequestSpec, Window};
use chrono::{Duration, Utc};
use serde_json::{json, Value};
use std::sync::Arc;

const SUB: &str = "00000000-0000-0000-0000-0000000000de";

pub async fn run(json_out: bool) -> Result<(), Failure> {
    let dir =
        tempfile::tempdir().map_err(|e| Failure::failed(format!("temporary directory: {e}")))?;
    let env = sample_environment("demo-uat", SUB);
    let mut config =
        Config::from_toml("", "demo", []).map_err(|e| Failure::failed(e.to_string()))?;
    config.store.url = format!("sqlite://{}", dir.path().join("pitr.db").display());
    config.environments = vec![env.clone()];

    let mut scenario = rehearsal_scenario(&config.environments);
    // Slow enough to watch the restore being polled, fast enough for a demo.
    scenario.settings.restore_polls = 3;
    scenario.settings.restore_duration_ms = 1_500;
    let app = App::builder(config)
        .create_store(true)
        .azure(Azure::Embedded(Box::new(scenario)))
        .progress(Arc::new(Console::default()))
        .actor("demo")
        .secret(SAMPLE_SQL_PASSWORD_ENV, "demo-only-not-a-password")
        .shutdown(super::commands::on_signal())
        .build()
        .await?;
    let mock_url = app.mock().map(|m| m.url()).unwrap_or_default();
    eprintln!(
        "demo: mock Azure at {mock_url}, store {}",
        app.config.store.url
    );
    let engine = super::commands::engine(&app)?;
    let store = app.store.clone();

    // Restore to 3 hours ago: after "1 day ago", before the destructive tests.
    // Whole seconds, as a person would type it (and as it is shown).
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0);
    let point = now - Duration::hours(3);
    let req = engine
        .submit(RequestSpec {
            environment: env.name.clone(),
            database: env.database.clone(),
            restore_point: point,
            window: Window {
                start: now + Duration::days(2),
                end: now + Duration::days(2) + Duration::hours(2),
            },
            acks: Acknowledgements {
                erase: true,
                downtime: true,
                scope: true,
                version_mismatch: false,
            },
            requester: "demo".into(),
            reason: Some("demo: undo the destructive tests".into()),
            prestage: false,
            emergency: None,
        })
        .await?
        .0;
    eprintln!(
        "demo: submitted request {} (restore {} to {})",
        req.id,
        env.database,
        crate::domain::time::show(point)
    );
    engine
        .transition(&req.id, LifecycleEvent::Accept, None)
        .await?;
    eprintln!("demo: accepted; running it now");
    let outcome = engine.run(&req.id, false).await;
    let state = app.mock().map(|m| m.state_json()).unwrap_or_default();
    drop(engine);
    app.shutdown().await;
    let outcome = outcome?;
    if !outcome.is_success() {
        return Err(Failure::failed(outcome.describe()));
    }
    let job = outcome.job();

    let expected_restored = expected_content(&env, 3);
    let expected_original = expected_content(&env, 0);
    let dbs = databases(&state);
    let live = dbs.iter().find(|d| d["name"] == env.database.as_str());
    let before_name = job.before_name(&env.database);
    let before = dbs.iter().find(|d| d["name"] == before_name.as_str());
    let restored_id = job.facts.restored_database_id.clone().unwrap_or_default();
    let original_id = job.facts.original_database_id.clone().unwrap_or_default();
    let checks = [
        (
            "the database under the original name has the restored databaseId",
            live.is_some_and(|d| d["database_id"] == restored_id.as_str()),
        ),
        (
            "its content is the source's content as of the restore point",
            live.is_some_and(|d| d["content"] == expected_restored.as_str()),
        ),
        (
            "the original database is kept under the _before_ name",
            before.is_some_and(|d| {
                d["database_id"] == original_id.as_str()
                    && d["content"] == expected_original.as_str()
            }),
        ),
        ("every service is running again", all_running(&state)),
    ];
    let ok = checks.iter().all(|(_, pass)| *pass);
    let steps = store.steps(&job.id).await?;
    if json_out {
        super::output::print_json(&json!({
            "ok": ok,
            "request_id": req.id,
            "job_id": job.id,
            "restore_point": point.to_rfc3339(),
            "steps": steps.iter().map(|s| json!({
                "name": s.step.as_str(), "status": s.status.as_str(), "attempts": s.attempts,
            })).collect::<Vec<_>>(),
            "database": live,
            "original": before,
            // The mock's own view, for anyone who wants to check the
            // verdicts below rather than trust them.
            "mock": {"databases": dbs, "vms": state["vms"]},
            "checks": checks.iter().map(|(what, pass)| json!({"check": what, "ok": pass})).collect::<Vec<_>>(),
        }));
    } else {
        out!();
        out!("verification (from the mock Azure's state):");
        let show = |d: Option<&Value>| {
            d.map(|d| {
                format!(
                    "databaseId {}  content \"{}\"",
                    d["database_id"].as_str().unwrap_or("?"),
                    d["content"].as_str().unwrap_or("?")
                )
            })
            .unwrap_or_else(|| "missing".into())
        };
        out!("  {:<22} {}", env.database, show(live));
        out!("  {:<22} {}", before_name, show(before));
        for (what, pass) in &checks {
            out!("  [{}] {what}", if *pass { "ok" } else { "FAILED" });
        }
    }
    if ok {
        Ok(())
    } else {
        Err(Failure::failed("demo: the verification failed"))
    }
}

/// The seeded content the database had `hours_ago` hours ago.
fn expected_content(env: &Environment, hours_ago: i64) -> String {
    let what = SEEDED_HISTORY
        .iter()
        .filter(|(h, _)| *h >= hours_ago)
        .min_by_key(|(h, _)| *h)
        .map(|(_, w)| *w)
        .unwrap_or_default();
    format!("{}/{}: {what}", env.name, env.database)
}

fn databases(state: &Value) -> Vec<Value> {
    state["servers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["databases"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn all_running(state: &Value) -> bool {
    state["vms"].as_array().is_some_and(|vms| {
        vms.iter().all(|vm| {
            vm["services"]
                .as_object()
                .is_some_and(|s| s.values().all(|v| v == "Running"))
        })
    })
}
