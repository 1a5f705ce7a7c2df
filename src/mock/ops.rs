//! How long-running operations end: completion rules (polls, wall time,
//! holds, faults) and the emulated effect of each kind, run at completion so
//! that effects are ordered by completion, like on Azure.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::script::{self, ScriptKind};
use super::state::{
    redact_params, OpDetail, OpError, OpKind, OpStatus, Planned, RunCommandRecord, State,
};

impl State {
    fn required(&self, kind: OpKind) -> (u32, Duration) {
        let s = &self.settings;
        match kind {
            OpKind::Restore => (
                s.restore_polls,
                Duration::from_millis(s.restore_duration_ms),
            ),
            OpKind::Delete => (s.delete_polls, Duration::from_millis(s.delete_duration_ms)),
            OpKind::RunCommand => (
                s.run_command_polls,
                Duration::from_millis(s.run_command_duration_ms),
            ),
        }
    }

    /// Completes every operation that is due. Called before each request is
    /// handled and after each poll is counted.
    pub fn tick(&mut self, now: DateTime<Utc>) {
        let due: Vec<usize> = self
            .operations
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                let (polls, dur) = self.required(o.kind);
                o.status == OpStatus::InProgress
                    && !matches!(o.planned, Some(Planned::NeverFinish))
                    && !self.held.contains(&o.kind)
                    && o.polls >= polls
                    && o.started_at.elapsed() >= dur
            })
            .map(|(i, _)| i)
            .collect();
        for i in due {
            self.complete(i, now);
        }
    }

    fn finish(&mut self, i: usize, status: OpStatus, error: Option<OpError>, now: DateTime<Utc>) {
        self.completion_seq += 1;
        let seq = self.completion_seq;
        let op = &mut self.operations[i];
        op.status = status;
        op.error = error;
        op.end = Some(now);
        op.completed_seq = Some(seq);
    }

    /// Ends a restore whose target database was deleted while restoring.
    pub fn cancel(&mut self, i: usize, reason: String, now: DateTime<Utc>) {
        self.finish(
            i,
            OpStatus::Canceled,
            Some(OpError {
                status: 400,
                code: "OperationCanceled".into(),
                message: reason,
            }),
            now,
        );
    }

    fn complete(&mut self, i: usize, now: DateTime<Utc>) {
        let planned = self.operations[i].planned.clone();
        match self.operations[i].detail.clone() {
            OpDetail::Restore {
                server,
                database_id,
                content,
            } => {
                let Some(srv) = self.servers.get_mut(server) else {
                    return;
                };
                let pos = srv
                    .databases
                    .iter()
                    .position(|d| d.database_id == database_id);
                if let Some(Planned::Fail(err)) = planned {
                    if let Some(p) = pos {
                        srv.databases.remove(p);
                    }
                    self.finish(i, OpStatus::Failed, Some(err), now);
                    return;
                }
                match pos {
                    Some(p) => {
                        let db = &mut srv.databases[p];
                        db.status = "Online".into();
                        db.history = vec![(now, content)];
                        db.earliest_restore = Some(now);
                        db.creation_date = now;
                        self.finish(i, OpStatus::Succeeded, None, now);
                    }
                    None => self.cancel(
                        i,
                        "The restore was canceled because its target database no longer exists."
                            .into(),
                        now,
                    ),
                }
            }
            OpDetail::Delete {
                server,
                database_id,
            } => {
                if let Some(Planned::Fail(err)) = planned {
                    self.finish(i, OpStatus::Failed, Some(err), now);
                    return;
                }
                if let Some(srv) = self.servers.get_mut(server) {
                    srv.databases.retain(|d| d.database_id != database_id);
                }
                self.finish(i, OpStatus::Succeeded, None, now);
            }
            OpDetail::RunCommand {
                vm,
                script: text,
                parameters,
                ..
            } => self.complete_run_command(i, vm, &text, &parameters, planned, now),
        }
    }

    fn complete_run_command(
        &mut self,
        i: usize,
        vm: usize,
        text: &str,
        parameters: &[(String, String)],
        planned: Option<Planned>,
        now: DateTime<Utc>,
    ) {
        let op_id = self.operations[i].id;
        if let Some(v) = self.vms.get_mut(vm) {
            if v.busy == Some(op_id) {
                v.busy = None;
            }
        }
        if let Some(Planned::Fail(err)) = planned {
            self.finish(i, OpStatus::Failed, Some(err), now);
            self.update_record(vm, op_id, "Failed", None, None, i);
            return;
        }
        let parsed = script::parse_script(text, parameters);
        let mut stdout = String::new();
        let mut stderr = String::new();
        let mut synced = None;
        let exit_code = match planned {
            Some(Planned::ExitCode { code, message }) => {
                stdout.push_str("Script started by the mock.\n");
                stderr.push_str(&message);
                stderr.push('\n');
                code
            }
            _ => {
                let mut code = 0;
                if parsed.kind == ScriptKind::Sync {
                    match self.sync_target(
                        parsed.sync_server.as_deref(),
                        parsed.sync_database.as_deref(),
                    ) {
                        Ok((server, db, id)) => {
                            synced = Some(id);
                            stdout.push_str(&format!(
                                "Database synchronization of '{db}' on '{server}' (databaseId {id}) completed.\n"
                            ));
                        }
                        Err(msg) => {
                            stderr.push_str(&msg);
                            stderr.push('\n');
                            code = 1;
                        }
                    }
                }
                if code == 0 {
                    if let Some(v) = self.vms.get_mut(vm) {
                        for a in &parsed.actions {
                            match v
                                .services
                                .iter_mut()
                                .find(|(n, _)| n.eq_ignore_ascii_case(&a.name))
                            {
                                Some((name, state)) => {
                                    let target = if a.stop { "Stopped" } else { "Running" };
                                    if state == target {
                                        stdout.push_str(&format!("Service {name} is already {}.\n", target.to_ascii_lowercase()));
                                    } else {
                                        *state = target.to_string();
                                        stdout.push_str(&format!(
                                            "{} service {name}.\n",
                                            if a.stop { "Stopped" } else { "Started" }
                                        ));
                                    }
                                }
                                // Scripts are expected to skip services a VM
                                // does not host (the same template runs on
                                // every VM), so this is a warning only.
                                None => stderr.push_str(&format!(
                                    "WARNING: Cannot find any service with service name '{}'; skipped.\n",
                                    a.name
                                )),
                            }
                        }
                    }
                    match parsed.kind {
                        ScriptKind::MrReset => stdout
                            .push_str("Reset-DatamartIntegration: data mart reset requested.\n"),
                        ScriptKind::Other if parsed.actions.is_empty() => {
                            stdout.push_str("Script ran (the mock recognised no action in it).\n")
                        }
                        _ => {}
                    }
                }
                code
            }
        };
        stdout.push_str(&format!("pitr-exit-code: {exit_code}\n"));
        if let OpDetail::RunCommand {
            stdout: out,
            stderr: err,
            ..
        } = &mut self.operations[i].detail
        {
            *out = script::tail_bytes(&stdout, 4096);
            *err = script::tail_bytes(&stderr, 4096);
        }
        self.finish(i, OpStatus::Succeeded, None, now);
        if let Some(rec) = self.record_mut(vm, op_id) {
            rec.kind = parsed.kind;
            rec.services = parsed.actions.iter().map(|a| a.name.clone()).collect();
        }
        self.update_record(vm, op_id, "Succeeded", Some(exit_code), synced, i);
    }

    fn record_mut(&mut self, vm: usize, op_id: Uuid) -> Option<&mut RunCommandRecord> {
        self.vms
            .get_mut(vm)?
            .run_commands
            .iter_mut()
            .find(|r| r.operation_id == op_id)
    }

    fn update_record(
        &mut self,
        vm: usize,
        op_id: Uuid,
        status: &'static str,
        exit_code: Option<i32>,
        synced: Option<Uuid>,
        op_index: usize,
    ) {
        let completed = self.operations.get(op_index).and_then(|o| o.completed_seq);
        if let Some(rec) = self.record_mut(vm, op_id) {
            rec.status = status;
            rec.exit_code = exit_code;
            rec.synced_database_id = synced;
            rec.completed_seq = completed;
        }
    }

    /// Resolves a sync's `Server`/`Database`; errors are the SQL login
    /// failure text the real setup tool prints.
    fn sync_target(
        &self,
        server: Option<&str>,
        db: Option<&str>,
    ) -> Result<(String, String, Uuid), String> {
        let (Some(server), Some(db)) = (server, db) else {
            return Err(
                "The sync needs the script parameters 'Server' and 'Database' (or -sqlserver / -sqldatabase)."
                    .to_string(),
            );
        };
        let mut host = server.trim();
        host = host.strip_prefix("tcp:").unwrap_or(host);
        if let Some((h, _port)) = host.split_once(',') {
            host = h;
        }
        let lower = host.to_ascii_lowercase();
        let short = lower
            .strip_suffix(".database.windows.net")
            .unwrap_or(&lower);
        let cannot_open = || format!("Cannot open database \"{db}\" requested by the login.");
        let srv = self
            .servers
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(short))
            .ok_or_else(cannot_open)?;
        let d = srv
            .find_db(db)
            .map(|i| &srv.databases[i])
            .filter(|d| d.status == "Online")
            .ok_or_else(cannot_open)?;
        Ok((srv.name.clone(), d.name.clone(), d.database_id))
    }

    pub fn start_run_command_record(
        &mut self,
        vm: usize,
        seq: u64,
        op_id: Uuid,
        params: &[(String, String)],
    ) {
        if let Some(v) = self.vms.get_mut(vm) {
            v.busy = Some(op_id);
            v.run_commands.push(RunCommandRecord {
                seq,
                operation_id: op_id,
                status: "InProgress",
                completed_seq: None,
                kind: ScriptKind::Other,
                services: Vec::new(),
                parameters: redact_params(params),
                exit_code: None,
                synced_database_id: None,
            });
        }
    }
}
