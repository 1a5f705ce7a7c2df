//! Dry runs: the same engine against an embedded mock Azure seeded from the
//! configured environments, so any of them can be rehearsed without writing
//! a scenario. The rehearsal is recorded as a dry-run job; the request keeps
//! its status.
use super::Failure;
use crate::azure::ArmClient;
use crate::clock::SystemClock;
use crate::config::{parse_vm_id, Config};
use crate::domain::{DatabaseKind, Environment};
use crate::engine::actions::FNO_SERVICES;
use crate::engine::progress::Console;
use crate::engine::Engine;
use crate::mock::{
    DatabaseSpec, HistoryEntry, MockAzure, Scenario, ServerSpec, SkuSpec, TimeSpec, VmSpec,
};
use crate::store::SharedStore;
use chrono::TimeDelta;
use std::path::Path;
use std::sync::Arc;

/// The content history given to a seeded F&O database: what a restore to an
/// instant should bring back.
pub const SEEDED_HISTORY: [(i64, &str); 4] = [
    (30 * 24, "state 30 days ago"),
    (7 * 24, "state 7 days ago"),
    (24, "state 1 day ago"),
    (1, "state 1 hour ago (after destructive tests)"),
];

/// A scenario holding every Azure SQL environment's server, databases and VMs.
pub fn scenario_for(envs: &[Environment]) -> Scenario {
    let mut scenario = Scenario::default();
    for env in envs
        .iter()
        .filter(|e| e.database_kind == DatabaseKind::AzureSql)
    {
        let pos = scenario.servers.iter().position(|s| {
            s.subscription_id == env.subscription_id
                && s.resource_group == env.resource_group
                && s.name == env.server
        });
        let server = match pos {
            Some(i) => &mut scenario.servers[i],
            None => {
                scenario.servers.push(ServerSpec {
                    subscription_id: env.subscription_id.clone(),
                    resource_group: env.resource_group.clone(),
                    name: env.server.clone(),
                    location: env.location.clone(),
                    ..Default::default()
                });
                scenario.servers.last_mut().expect("just pushed")
            }
        };
        // Two environments may name the same server and database: seed it once.
        if !server.databases.iter().any(|d| d.name == env.database) {
            let history = SEEDED_HISTORY
                .iter()
                .map(|(hours, what)| HistoryEntry {
                    at: TimeSpec::ago(TimeDelta::hours(*hours)),
                    content: format!("{}/{}: {what}", env.name, env.database),
                })
                .collect();
            server.databases.push(DatabaseSpec {
                name: env.database.clone(),
                sku: Some(SkuSpec {
                    name: "GP_Gen5".into(),
                    tier: Some("GeneralPurpose".into()),
                    family: Some("Gen5".into()),
                    capacity: Some(4),
                }),
                earliest_restore: Some(TimeSpec::ago(TimeDelta::days(i64::from(
                    env.retention_days,
                )))),
                created: Some(TimeSpec::ago(TimeDelta::days(90))),
                history,
                ..Default::default()
            });
        }
        for other in env.entity_store_database.iter().chain(&env.mr_database) {
            if server.databases.iter().any(|d| &d.name == other) {
                continue;
            }
            server.databases.push(DatabaseSpec {
                name: other.clone(),
                history: vec![HistoryEntry {
                    at: TimeSpec::ago(TimeDelta::days(90)),
                    content: format!("{}/{other}", env.name),
                }],
                ..Default::default()
            });
        }
        for vm in env.aos_vms.iter().chain(&env.sync_vm).chain(&env.mr_vm) {
            let Some((sub, rg, name)) = parse_vm_id(vm) else {
                continue;
            };
            if scenario
                .vms
                .iter()
                .any(|v| v.subscription_id == sub && v.resource_group == rg && v.name == name)
            {
                continue;
            }
            scenario.vms.push(VmSpec {
                subscription_id: sub.to_string(),
                resource_group: rg.to_string(),
                name: name.to_string(),
                location: env.location.clone(),
                services: FNO_SERVICES.iter().map(|s| s.to_string()).collect(),
            });
        }
    }
    scenario
}

/// `pitr run ID --dry-run`.
pub async fn run(
    config: &Config,
    store: SharedStore,
    actor: &str,
    id: &str,
) -> Result<(), Failure> {
    let mock = MockAzure::start(
        scenario_for(&config.environments),
        "127.0.0.1:0".parse().expect("loopback address"),
        None,
    )
    .await
    .map_err(|e| Failure::failed(e.to_string()))?;
    eprintln!("dry run against an embedded mock Azure at {}", mock.url());
    let azure = ArmClient::for_mock(&config.azure, &mock.url(), mock.ca_pem())
        .map_err(|e| Failure::failed(e.to_string()))?;
    let engine = Engine::new(
        config,
        store,
        azure,
        Arc::new(SystemClock),
        Arc::new(Console::default()),
        actor.to_string(),
    )
    .with_shutdown(super::commands::on_signal());
    let result = engine.run(id, true).await;
    mock.shutdown().await;
    let job = result?;
    out!(
        "dry run succeeded (job {}); the request's status is unchanged: run it for real with `pitr run {id}`",
        job.id
    );
    Ok(())
}

/// `pitr mock-azure`.
pub async fn serve_mock(
    config: Option<&Path>,
    listen: std::net::SocketAddr,
    scenario: Option<&Path>,
    ca_out: &Path,
) -> Result<(), Failure> {
    let scenario = match scenario {
        Some(p) => Scenario::from_file(p).map_err(|e| Failure::bad_input(e.to_string()))?,
        None => {
            let config = super::commands::load_config(config)?;
            scenario_for(&config.environments)
        }
    };
    if let Some(parent) = ca_out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Failure::bad_input(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mock = MockAzure::start(scenario, listen, Some(ca_out))
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    let ca = mock
        .ca_path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    out!("mock Azure listening on {}", mock.url());
    out!("CA certificate: {ca}");
    out!(
        "point pitr at it with: PITR_AZURE_ARM_ENDPOINT={0} PITR_AZURE_AUTHORITY_HOST={0} PITR_AZURE_CA_FILE={ca}",
        mock.url()
    );
    out!(
        "inspect: {0}/_mock/state and {0}/_mock/requests",
        mock.url()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let mut stop = super::commands::on_signal();
    let _ = stop.wait_for(|s| *s).await;
    mock.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_azure_sql_environment_is_seeded_once() {
        let config = Config::from_toml(
            &std::fs::read_to_string("config/pitr.toml").unwrap(),
            "config/pitr.toml",
            [],
        )
        .unwrap();
        let s = scenario_for(&config.environments);
        // contoso-uat and contoso-prod are Azure SQL; the one-box is not.
        assert_eq!(s.servers.len(), 2);
        let uat = s
            .servers
            .iter()
            .find(|s| s.name == "sql-contoso-uat")
            .unwrap();
        let names: Vec<_> = uat.databases.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["AxDB", "AxDW", "MRDB"]);
        assert_eq!(uat.databases[0].history.len(), SEEDED_HISTORY.len());
        // aos1 is both an AOS and the sync VM: one VM.
        assert_eq!(s.vms.len(), 3);
    }
}
