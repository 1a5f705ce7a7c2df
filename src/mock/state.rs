//! The mock's world: servers, databases, VMs, long-running operations, tokens,
//! faults and the request journal. One `State` lives behind one mutex; every
//! method here is synchronous so the lock is never held across an await.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::scenario::{backup_redundancy, FaultSpec, Scenario, Settings};
use super::MockError;

pub(crate) use super::model::*;

/// A region as ARM spells it in messages: `West Europe` -> `westeurope`.
pub(crate) fn norm_location(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

const MAX_JOURNAL: usize = 50_000;

/// Azure's default short-term retention.
pub(crate) const DEFAULT_RETENTION_DAYS: u32 = 7;

pub(crate) struct State {
    pub settings: Settings,
    pub servers: Vec<Server>,
    pub vms: Vec<Vm>,
    pub operations: Vec<Operation>,
    /// Where each operation is in `operations` (polls find theirs at once).
    op_index: HashMap<Uuid, usize>,
    /// `operations[..settled]` have all ended: a tick looks from here on.
    pub(super) settled: usize,
    pub tokens: HashMap<String, DateTime<Utc>>,
    /// The client (`client_id`) each ARM token was issued to: ARM throttles
    /// per subscription and client.
    pub token_clients: HashMap<String, String>,
    pub throttle: super::throttle::Throttle,
    pub request_faults: Vec<ActiveFault>,
    pub operation_faults: Vec<ActiveFault>,
    pub held: BTreeSet<OpKind>,
    /// Run commands whose script contains one of these (lowercase) are
    /// held too (`POST /_mock/hold` with `script_contains`).
    pub held_scripts: BTreeSet<String>,
    /// Who the mock issues access tokens for (every `oid` filled in).
    pub users: Vec<super::entra::UserSpec>,
    /// The keys those tokens are signed with.
    pub signing: super::entra::Keys,
    /// Authorization codes handed out by the sign-in, not yet redeemed.
    pub auth_codes: HashMap<String, super::entra::AuthCode>,
    journal: Vec<JournalEntry>,
    next_seq: u64,
    /// Counts completed operations of any kind (their `completed_seq`).
    pub(super) completion_seq: u64,
}

impl State {
    /// Builds the world, resolving relative times against `start`.
    pub fn new(scenario: &Scenario, start: DateTime<Utc>) -> Result<State, MockError> {
        scenario.validate_as("(at start)")?;
        let invalid = |what: String, hint: String| MockError::InvalidScenario {
            origin: "(at start)".into(),
            what,
            hint,
        };
        let mut servers = Vec::new();
        for s in &scenario.servers {
            let mut dbs = Vec::new();
            for d in &s.databases {
                let mut history: Vec<(DateTime<Utc>, String)> = d
                    .history
                    .iter()
                    .map(|h| (h.at.resolve(start), h.content.clone()))
                    .collect();
                history.sort_by_key(|(t, _)| *t);
                let earliest_spec = d.earliest_restore.map(|t| t.resolve(start));
                let created = match d.created {
                    Some(c) => c.resolve(start),
                    None => {
                        let mut c = start - TimeDelta::days(35);
                        if let Some(e) = earliest_spec {
                            c = c.min(e);
                        }
                        if let Some((t, _)) = history.first() {
                            c = c.min(*t);
                        }
                        c
                    }
                };
                let retention_days = d.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS);
                let earliest = earliest_spec.unwrap_or_else(|| {
                    created.max(start - TimeDelta::days(i64::from(retention_days)))
                });
                let what = format!("database '{}' on server '{}'", d.name, s.name);
                if earliest < created {
                    return Err(invalid(
                        format!("{what}: earliest_restore {} is before created {}", ts(earliest), ts(created)),
                        "a database has no backups from before it was created: move earliest_restore later or created earlier".into(),
                    ));
                }
                if earliest > start {
                    return Err(invalid(
                        format!("{what}: earliest_restore {} is in the future", ts(earliest)),
                        "use a past instant such as \"-30d\"".into(),
                    ));
                }
                let sku = match (&d.sku, &d.elastic_pool_id) {
                    (Some(sku), _) => complete_sku(sku.clone()),
                    (None, Some(_)) => pool_sku(),
                    (None, None) => default_sku(),
                };
                dbs.push(Database {
                    name: d.name.clone(),
                    database_id: Uuid::new_v4(),
                    status: d.status.clone().unwrap_or_else(|| "Online".into()),
                    history,
                    creation_date: created,
                    earliest_fixed: earliest_spec,
                    backup_floor: None,
                    retention_days,
                    diff_backup_hours: d
                        .diff_backup_hours
                        .unwrap_or(super::backup::DEFAULT_DIFF_BACKUP_HOURS),
                    ltr: match &d.long_term_retention {
                        Some(spec) => super::backup::ltr_from_spec(spec).map_err(|why| {
                            invalid(format!("database '{}': long_term_retention", d.name), why)
                        })?,
                        None => Default::default(),
                    },
                    replication_links: d
                        .replication_links
                        .iter()
                        .map(|l| super::scenario::ReplicationLinkSpec {
                            partner_database: if l.partner_database.is_empty() {
                                d.name.clone()
                            } else {
                                l.partner_database.clone()
                            },
                            ..l.clone()
                        })
                        .collect(),
                    failover_group_id: d.failover_group_id.clone(),
                    auditing: d.auditing.clone(),
                    license_type: d
                        .license_type
                        .clone()
                        .unwrap_or_else(|| "LicenseIncluded".into()),
                    maintenance_configuration_id: d.maintenance_configuration_id.clone(),
                    ha_replicas: d.high_availability_replica_count.unwrap_or(0),
                    encryption_protector: d.encryption_protector.clone(),
                    atp_state: d
                        .advanced_threat_protection
                        .clone()
                        .unwrap_or_else(|| "New".into()),
                    read_scale: d
                        .read_scale
                        .clone()
                        .unwrap_or_else(|| super::model::default_read_scale(&sku)),
                    sku,
                    elastic_pool_id: d.elastic_pool_id.clone(),
                    max_size_bytes: d.max_size_bytes.unwrap_or(268_435_456_000),
                    tags: d.tags.clone(),
                    zone_redundant: d.zone_redundant,
                    backup_redundancy: d
                        .backup_storage_redundancy
                        .as_deref()
                        .and_then(backup_redundancy)
                        .unwrap_or("Geo"),
                });
            }
            servers.push(Server {
                subscription_id: s.subscription_id.clone(),
                resource_group: s.resource_group.clone(),
                name: s.name.clone(),
                location: s.location.clone(),
                databases: dbs,
            });
        }
        let vms = scenario
            .vms
            .iter()
            .map(|v| Vm {
                subscription_id: v.subscription_id.clone(),
                resource_group: v.resource_group.clone(),
                name: v.name.clone(),
                location: v.location.clone(),
                vm_id: Uuid::new_v4(),
                services: v
                    .services
                    .iter()
                    .map(|s| (s.clone(), "Running".to_string()))
                    .collect(),
                aos: v.aos.clone(),
                run_commands: Vec::new(),
                managed: Vec::new(),
                busy: None,
                removed: false,
            })
            .collect();
        let mut state = State {
            settings: scenario.settings.clone(),
            servers,
            vms,
            operations: Vec::new(),
            op_index: HashMap::new(),
            settled: 0,
            tokens: HashMap::new(),
            token_clients: HashMap::new(),
            throttle: Default::default(),
            request_faults: Vec::new(),
            operation_faults: Vec::new(),
            held: BTreeSet::new(),
            held_scripts: BTreeSet::new(),
            users: scenario
                .users
                .iter()
                .map(|u| super::entra::UserSpec {
                    oid: Some(u.oid.clone().unwrap_or_else(|| Uuid::new_v4().to_string())),
                    ..u.clone()
                })
                .collect(),
            signing: Default::default(),
            auth_codes: HashMap::new(),
            journal: Vec::new(),
            next_seq: 1,
            completion_seq: 0,
        };
        for f in &scenario.faults {
            state.add_fault(f.clone());
        }
        Ok(state)
    }

    pub fn add_fault(&mut self, f: FaultSpec) {
        if f.is_operation_fault() {
            self.operation_faults.push(ActiveFault::new(f));
        } else {
            self.request_faults.push(ActiveFault::new(f));
        }
    }

    pub fn faults_json(&self) -> Value {
        Value::Array(
            self.request_faults
                .iter()
                .chain(self.operation_faults.iter())
                .map(ActiveFault::to_json)
                .collect(),
        )
    }

    pub fn next_seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    pub fn record(&mut self, entry: JournalEntry) {
        // A rehearsal left running for days polls a lot: keep the newest
        // entries, dropping the oldest in chunks so that inserts stay cheap.
        if self.journal.len() >= MAX_JOURNAL {
            self.journal.drain(..MAX_JOURNAL / 10);
        }
        // Entries arrive in completion order; keep them sorted by arrival.
        let pos = self.journal.partition_point(|e| e.seq < entry.seq);
        self.journal.insert(pos, entry);
    }

    pub fn journal_json(&self) -> Value {
        Value::Array(
            self.journal
                .iter()
                .map(|e| {
                    json!({
                        "seq": e.seq,
                        "at": ts(e.at),
                        "method": e.method,
                        "path": e.path,
                        "resource_type": super::arm::resource_type(&e.path),
                        "status": e.status,
                        "body": e.body,
                    })
                })
                .collect(),
        )
    }

    /// First request fault matching the request, consumed.
    pub fn take_request_fault(&mut self, method: &str, path_and_query: &str) -> Option<FaultSpec> {
        let lower = path_and_query.to_ascii_lowercase();
        let idx = self.request_faults.iter().position(|f| {
            f.spec
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && f.spec
                    .path_contains
                    .as_deref()
                    .is_none_or(|p| lower.contains(&p.to_ascii_lowercase()))
        })?;
        let spec = self.request_faults[idx].spec.clone();
        if self.request_faults[idx].consume() {
            self.request_faults.remove(idx);
        }
        Some(spec)
    }

    /// The outcome planned for a new operation by the first matching
    /// operation fault, consumed.
    pub fn take_operation_fault(
        &mut self,
        kind: OpKind,
        script_text: Option<&str>,
    ) -> Option<Planned> {
        let script_lower = script_text.map(str::to_ascii_lowercase);
        let idx = self.operation_faults.iter().position(|f| {
            f.spec.operation.as_deref() == Some(kind.as_str())
                && match (&f.spec.script_contains, &script_lower) {
                    (None, _) => true,
                    (Some(needle), Some(s)) => s.contains(&needle.to_ascii_lowercase()),
                    (Some(_), None) => false,
                }
        })?;
        let spec = self.operation_faults[idx].spec.clone();
        if self.operation_faults[idx].consume() {
            self.operation_faults.remove(idx);
        }
        let code = spec
            .error_code
            .clone()
            .unwrap_or_else(|| "InternalServerError".to_string());
        let message = spec.message.clone().unwrap_or_else(|| {
            "An unexpected error occurred while processing the request (fault injected by the mock scenario).".to_string()
        });
        match spec.outcome.as_deref() {
            Some("never_finish") => Some(Planned::NeverFinish),
            Some("exit_code") => Some(Planned::ExitCode {
                code: spec.exit_code.unwrap_or(1),
                message: spec.message.clone().unwrap_or_else(|| {
                    "The script failed (fault injected by the mock scenario).".into()
                }),
            }),
            _ => {
                let status = spec.status.unwrap_or(if code == "InternalServerError" {
                    500
                } else {
                    400
                });
                Some(Planned::Fail(OpError {
                    status,
                    code,
                    message,
                }))
            }
        }
    }

    /// A new operation, InProgress (an `Ack` is Succeeded at once).
    #[allow(clippy::too_many_arguments)]
    pub fn new_operation(
        &mut self,
        subscription_id: &str,
        location: &str,
        target: String,
        planned: Option<Planned>,
        detail: OpDetail,
        api_version: &str,
        now: DateTime<Utc>,
    ) -> Uuid {
        let id = Uuid::new_v4();
        let kind = match detail {
            OpDetail::Restore { .. } => OpKind::Restore,
            OpDetail::Delete { .. } => OpKind::Delete,
            OpDetail::RunCommand { .. } | OpDetail::Ack { .. } => OpKind::RunCommand,
        };
        let done = matches!(detail, OpDetail::Ack { .. });
        self.op_index.insert(id, self.operations.len());
        self.operations.push(Operation {
            id,
            kind,
            status: if done {
                OpStatus::Succeeded
            } else {
                OpStatus::InProgress
            },
            polls: 0,
            start: now,
            started_at: Instant::now(),
            end: done.then_some(now),
            subscription_id: subscription_id.to_string(),
            location: location.to_string(),
            target,
            error: None,
            planned,
            completed_seq: None,
            api_version: api_version.to_string(),
            detail,
        });
        if done {
            self.completion_seq += 1;
            if let Some(o) = self.operations.last_mut() {
                o.completed_seq = Some(self.completion_seq);
            }
        }
        id
    }

    /// The region of the resources in that resource group (for ARM's
    /// api-version error), else of any resource.
    pub fn location_hint(&self, sub: &str, rg: &str) -> String {
        let same = |s: &str, r: &str| s.eq_ignore_ascii_case(sub) && r.eq_ignore_ascii_case(rg);
        self.servers
            .iter()
            .filter(|s| same(&s.subscription_id, &s.resource_group))
            .map(|s| &s.location)
            .chain(
                self.vms
                    .iter()
                    .filter(|v| same(&v.subscription_id, &v.resource_group))
                    .map(|v| &v.location),
            )
            .next()
            .map(|l| norm_location(l))
            .or_else(|| self.locations().into_iter().next())
            .unwrap_or_else(|| "westeurope".to_string())
    }

    /// Every region the mock's resources are in, as ARM names them.
    pub fn locations(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .servers
            .iter()
            .map(|s| norm_location(&s.location))
            .chain(self.vms.iter().map(|v| norm_location(&v.location)))
            .collect();
        all.sort();
        all.dedup();
        all
    }

    pub fn find_op(&self, id: Uuid) -> Option<usize> {
        self.op_index.get(&id).copied()
    }

    /// The in-progress operation of `kind` on the database, if any.
    pub fn pending_db_op(&self, kind: OpKind, database_id: Uuid) -> Option<usize> {
        let from = self.settled;
        self.operations
            .iter()
            .skip(from)
            .position(|o| {
                o.kind == kind
                    && o.status == OpStatus::InProgress
                    && match &o.detail {
                        OpDetail::Restore { database_id: d, .. }
                        | OpDetail::Delete { database_id: d, .. } => *d == database_id,
                        OpDetail::RunCommand { .. } | OpDetail::Ack { .. } => false,
                    }
            })
            .map(|i| i + from)
    }

    /// Point-in-time restores in progress in a subscription.
    pub fn running_restores(&self, subscription: &str) -> u32 {
        self.operations
            .iter()
            .skip(self.settled)
            .filter(|o| {
                o.kind == OpKind::Restore
                    && o.status == OpStatus::InProgress
                    && o.subscription_id.eq_ignore_ascii_case(subscription)
            })
            .count() as u32
    }

    pub fn issue_token(&mut self, now: DateTime<Utc>, client: &str) -> String {
        // Tokens are opaque to clients; forget expired ones so the map stays small.
        self.tokens.retain(|_, exp| *exp > now);
        let tokens = &self.tokens;
        self.token_clients.retain(|t, _| tokens.contains_key(t));
        let token = format!(
            "mock.{}{}",
            Uuid::new_v4().simple(),
            Uuid::new_v4().simple()
        );
        let secs = i64::try_from(self.settings.token_expires_in_secs).unwrap_or(i64::MAX / 2);
        let exp = now
            .checked_add_signed(TimeDelta::try_seconds(secs).unwrap_or(TimeDelta::days(3650)))
            .unwrap_or(now);
        self.tokens.insert(token.clone(), exp);
        self.token_clients.insert(token.clone(), client.to_string());
        token
    }
}

#[cfg(test)]
mod tests;
