//! Rehearsals: a mock Azure seeded from the configured environments, so
//! that any of them can be rehearsed (`pitr run ID --dry-run`, the API's
//! dry run, `pitr mock-azure` without a scenario) without writing a
//! scenario.
use crate::config::parse_vm_id;
use crate::domain::{DatabaseKind, Environment};
use crate::engine::actions::FNO_SERVICES;
use crate::mock::{
    AosSpec, DatabaseSpec, HistoryEntry, Scenario, ServerSpec, SkuSpec, TimeSpec, VmSpec,
};
use chrono::TimeDelta;

/// The content history given to a seeded F&O database: what a restore to an
/// instant should bring back.
pub const SEEDED_HISTORY: [(i64, &str); 4] = [
    (30 * 24, "state 30 days ago"),
    (7 * 24, "state 7 days ago"),
    (24, "state 1 day ago"),
    (1, "state 1 hour ago (after destructive tests)"),
];

/// A scenario holding every Azure SQL environment's server, databases and VMs.
pub fn rehearsal_scenario(envs: &[Environment]) -> Scenario {
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
                // earliestRestoreDate follows: the later of the creation
                // and retention_days ago.
                retention_days: Some(env.retention_days.clamp(1, 35)),
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
        // The AOS configuration an AOS (and the sync VM) reads its own
        // database access from; the password exists only in the mock.
        let aos = AosSpec {
            server: format!("{}.database.windows.net", env.server),
            database: env.database.clone(),
            sql_user: env.sql_user.clone(),
            sql_password: format!("mock-{}", uuid::Uuid::new_v4().simple()),
        };
        for vm in env.aos_vms.iter().chain(&env.sync_vm).chain(&env.mr_vm) {
            let Some((sub, rg, name)) = parse_vm_id(vm) else {
                continue;
            };
            let is_aos = env.aos_vms.contains(vm) || env.sync_vm.as_ref() == Some(vm);
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
                aos: is_aos.then(|| aos.clone()),
            });
        }
    }
    scenario
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn every_azure_sql_environment_is_seeded_once() {
        let config = Config::from_toml(
            &std::fs::read_to_string("config/pitr.toml").unwrap(),
            "config/pitr.toml",
            [],
        )
        .unwrap();
        let s = rehearsal_scenario(&config.environments);
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
        let uat_env = config
            .environments
            .iter()
            .find(|e| e.server == "sql-contoso-uat")
            .unwrap();
        assert_eq!(
            uat.databases[0].retention_days,
            Some(uat_env.retention_days.min(35))
        );
        for vm in &s.vms {
            let id = format!(
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/{}",
                vm.subscription_id, vm.resource_group, vm.name
            );
            let env = config
                .environments
                .iter()
                .find(|e| {
                    e.aos_vms.contains(&id)
                        || e.sync_vm.as_ref() == Some(&id)
                        || e.mr_vm.as_ref() == Some(&id)
                })
                .unwrap();
            let aos_or_sync = env.aos_vms.contains(&id) || env.sync_vm.as_ref() == Some(&id);
            assert_eq!(vm.aos.is_some(), aos_or_sync, "{id}");
            if let Some(a) = &vm.aos {
                assert_eq!(a.server, format!("{}.database.windows.net", env.server));
                assert_eq!(a.database, env.database);
                assert_eq!(a.sql_user, env.sql_user);
                assert!(!a.sql_password.is_empty());
            }
        }
    }
}
