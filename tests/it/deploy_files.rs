//! What `deploy/` promises, checked against the code:
//! - the custom role of `deploy/azure/` grants exactly the ARM actions pitr's
//!   client calls: a run, a rollback, a second run and the cleanup of its
//!   original go through the real client against the mock Azure, every
//!   (method, resource type) the mock's journal saw must be an entry of
//!   `role-actions.json`, every entry must have been used, and the `actions`
//!   of `role-definition.bicep` must be exactly the entries' actions;
//! - the example configs load with pitr's own loader, and no SQL password is
//!   asked for anywhere under `deploy/` (the sync reads the AOS VM's own
//!   credentials).
use crate::helpers::*;
use chrono::Duration;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

/// The quoted strings of the role's `actions: [ ... ]` block (comments and
/// blank lines skipped), and whether `notActions`, `dataActions` and
/// `notDataActions` are empty.
fn bicep_actions(text: &str) -> (Vec<String>, bool) {
    let block = |key: &str| -> Option<Vec<String>> {
        let start = text.find(&format!("{key}: ["))? + key.len() + 3;
        let end = start + text[start..].find(']')?;
        Some(
            text[start..end]
                .lines()
                .map(|l| l.split("//").next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
                .map(|l| {
                    l.strip_prefix('\'')
                        .and_then(|l| l.strip_suffix('\''))
                        .unwrap_or_else(|| panic!("not a quoted action: {l}"))
                        .to_string()
                })
                .collect(),
        )
    };
    let actions = block("actions").expect("role-definition.bicep has actions: [...]");
    let nothing_else = ["notActions", "dataActions", "notDataActions"]
        .iter()
        .all(|k| block(k).is_some_and(|b| b.is_empty()));
    (actions, nothing_else)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_grants_exactly_the_arm_calls_pitr_makes() {
    // Restores answer with a Location header only (the operation-results
    // poll); deletes with both (the Azure-AsyncOperation poll).
    let t = TestEnv::start_with(
        // Business Critical with read scale-out off: the restored database
        // gets it on, and the run PATCHes it back.
        &scenario("restore_polls = 2\nrestore_headers = \"location_only\"")
            .replacen(
                "sku = { name = \"GP_Gen5\", tier = \"GeneralPurpose\", family = \"Gen5\", capacity = 4 }",
                "sku = { name = \"BC_Gen5\", tier = \"BusinessCritical\", family = \"Gen5\", capacity = 4 }\nread_scale = \"Disabled\"",
                1,
            ),
        "[serve]\nlisten = \"127.0.0.1:0\"\n[auth]\nmode = \"none\"\n[engine]\nscheduler_tick_secs = 1\nkeep_original_hours = 0\n",
    );
    let point = rfc3339_ago(Duration::days(1));
    // A run, and its rollback.
    let first = t.submit_accepted(&point);
    t.ok(&["run", &first]);
    t.ok(&["rollback", &first, "--reason", "rehearsing the way back"]);
    // A second run, whose original `pitr serve` drops at once (kept 0 hours).
    let second = t.submit_accepted(&point);
    t.ok(&["run", &second]);
    let show = t.json(&["request", "show", &second, "--json"]);
    let before = format!("AxDB_before_{}", &show["job"]["id"].as_str().unwrap()[..8]);
    assert!(databases(&t.state().await).contains_key(&before));
    let mut serve = t
        .command(&["serve"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while databases(&t.state().await).contains_key(&before) {
        assert!(
            std::time::Instant::now() < deadline,
            "the original was never dropped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    std::process::Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(serve.wait().unwrap().success());

    // Every ARM call the client made: (method, resource type).
    let journal = t.journal().await;
    let called: BTreeSet<(String, String)> = journal
        .iter()
        .filter_map(|e| {
            Some((
                e["method"].as_str()?.to_string(),
                e["resource_type"].as_str()?.to_string(),
            ))
        })
        .collect();
    let entries: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(deploy("azure/role-actions.json")).unwrap())
            .expect("role-actions.json is JSON");
    let listed: BTreeMap<(String, String), String> = entries
        .iter()
        .map(|e| {
            (
                (
                    e["method"].as_str().unwrap().to_string(),
                    e["resource_type"].as_str().unwrap().to_string(),
                ),
                e["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(listed.len(), entries.len(), "an entry is listed twice");
    let unlisted: Vec<_> = called.iter().filter(|k| !listed.contains_key(*k)).collect();
    assert!(
        unlisted.is_empty(),
        "calls the role does not cover: {unlisted:?}"
    );
    let unused: Vec<_> = listed.keys().filter(|k| !called.contains(*k)).collect();
    assert!(unused.is_empty(), "entries no call used: {unused:?}");
    println!(
        "{} ARM requests, {} distinct (method, resource type), {} role actions",
        journal.len(),
        called.len(),
        listed.values().collect::<BTreeSet<_>>().len()
    );

    let (granted, nothing_else) =
        bicep_actions(&std::fs::read_to_string(deploy("azure/role-definition.bicep")).unwrap());
    let granted_set: BTreeSet<&String> = granted.iter().collect();
    assert_eq!(granted_set.len(), granted.len(), "an action granted twice");
    assert_eq!(
        granted_set,
        listed.values().collect::<BTreeSet<_>>(),
        "the role's actions are exactly the calls' actions"
    );
    assert!(nothing_else, "no notActions or data actions");
}

#[test]
fn bicep_actions_are_read_as_written() {
    let (a, ok) = bicep_actions(
        "actions: [\n  // read\n  'Microsoft.Sql/servers/databases/read'\n\n  'X/y/write' // w\n]\nnotActions: []\ndataActions: []\nnotDataActions: []\n",
    );
    assert_eq!(a, ["Microsoft.Sql/servers/databases/read", "X/y/write"]);
    assert!(ok);
    let (_, ok) =
        bicep_actions("actions: []\nnotActions: [\n'a/b'\n]\ndataActions: []\nnotDataActions: []");
    assert!(!ok);
}

/// The ConfigMap's `pitr.toml`, unindented.
fn configmap_toml() -> String {
    let cm = std::fs::read_to_string(deploy("kubernetes/configmap.yaml")).unwrap();
    let body = cm
        .split_once("pitr.toml: |\n")
        .expect("configmap.yaml holds pitr.toml")
        .1;
    body.lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_example_configs_load_and_ask_for_no_sql_password() {
    let dir = tempfile::tempdir().unwrap();
    let cm = dir.path().join("configmap-pitr.toml");
    std::fs::write(&cm, configmap_toml()).unwrap();
    // The ConfigMap is read with the variables deployment.yaml sets.
    let pod = [
        ("PITR_SERVE_LISTEN", "0.0.0.0:8080"),
        ("PITR_AZURE_CREDENTIAL", "workload_identity"),
        (
            "PITR_STORE_URL",
            "postgres://pitr@pg-pitr.postgres.database.azure.com:5432/pitr?sslmode=verify-full",
        ),
    ];
    for (path, vars) in [(deploy("pitr.example.toml"), &[][..]), (cm, &pod[..])] {
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let config = pitr::config::Config::load(&path, vars)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        config
            .check_serve()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!config.environments.is_empty(), "{}", path.display());
        for env in &config.environments {
            assert_eq!(env.sql_password_env, None, "{}", path.display());
        }
    }
    let mut files = vec![deploy("")];
    let mut seen = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&p)
            .unwrap_or_default()
            .to_ascii_lowercase();
        seen += 1;
        for word in ["sql_password", "sql-password"] {
            assert!(!text.contains(word), "{} mentions {word}", p.display());
        }
    }
    assert!(seen > 10, "read {seen} files under deploy/");
}
