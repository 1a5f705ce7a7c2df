//! What a run command's script does on the VM, emulated when its operation
//! completes: the VM's command layer on the parameters, pitr's encoded
//! arguments, the AOS configuration, services, the F&O database sync and the
//! Management Reporter reset. The exit code comes from the emulated script
//! (the setup tool's for a sync, 0 for services and MR reset, 1 when the
//! arguments cannot be decoded) or from a scenario fault; nothing is added to
//! the script's output.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model_rc::Resource;
use super::scenario::{AosSpec, ScriptSeconds};
use super::script::{self, ScriptKind};
use super::script_args::{command_layer, decode_args, lookup, uses_variable};
use super::state::{OpDetail, OpError, OpStatus, Planned, RunCommandRecord, State};

/// Azure's limit for the action run command: 90 minutes.
const ACTION_LIMIT_SECS: u64 = 5400;
const OUTPUT_LIMIT: usize = 4096;
const AOS_ENV_MARKER: &str =
    "[microsoft.dynamics.applicationplatform.environment.environmentfactory]::getapplicationenvironment";

/// How a script run ended.
enum Outcome {
    Exited(i32),
    /// Killed at its timeout.
    TimedOut,
    /// The operation itself failed (a scenario fault).
    Failed(OpError),
}

struct Run {
    outcome: Outcome,
    stdout: String,
    stderr: String,
    kind: ScriptKind,
    services: Vec<String>,
    synced: Option<Uuid>,
    simulated: Option<u64>,
}

impl Run {
    fn exit(code: i32, stderr: String, kind: ScriptKind) -> Run {
        Run {
            outcome: Outcome::Exited(code),
            stdout: String::new(),
            stderr,
            kind,
            services: Vec::new(),
            synced: None,
            simulated: None,
        }
    }
}

fn simulated_seconds(s: &ScriptSeconds, kind: ScriptKind) -> u64 {
    match kind {
        ScriptKind::StopServices => s.stop_services,
        ScriptKind::StartServices => s.start_services,
        ScriptKind::Sync => s.sync,
        ScriptKind::MrReset => s.mr_reset,
        ScriptKind::Other => s.other,
    }
}

/// `tcp:sql-x.database.windows.net,1433` -> `sql-x`.
fn short_server(server: &str) -> String {
    let mut host = server.trim();
    host = host.strip_prefix("tcp:").unwrap_or(host);
    if let Some((h, _port)) = host.split_once(',') {
        host = h;
    }
    let lower = host.to_ascii_lowercase();
    lower
        .strip_suffix(".database.windows.net")
        .unwrap_or(&lower)
        .to_string()
}

impl State {
    /// Completes the run command operation `i` (action or managed).
    pub(super) fn complete_run_command(&mut self, i: usize, now: DateTime<Utc>) {
        let OpDetail::RunCommand {
            vm,
            script: text,
            parameters,
            protected,
            managed,
            ..
        } = self.operations[i].detail.clone()
        else {
            return;
        };
        let op_id = self.operations[i].id;
        let planned = self.operations[i].planned.clone();
        if managed.is_none() {
            if let Some(v) = self.vms.get_mut(vm) {
                if v.busy == Some(op_id) {
                    v.busy = None;
                }
            }
        }
        let limit = match &managed {
            None => ACTION_LIMIT_SECS,
            Some(_) => self
                .vms
                .get(vm)
                .and_then(|v| v.managed.iter().find(|m| m.exec_op == op_id))
                .map(|m| u64::try_from(m.effective_timeout()).unwrap_or(ACTION_LIMIT_SECS))
                .unwrap_or(ACTION_LIMIT_SECS),
        };
        let run = self.emulate(vm, &text, &parameters, &protected, planned, limit);
        let stdout = script::tail_bytes(&run.stdout, OUTPUT_LIMIT);
        let stderr = script::tail_bytes(&run.stderr, OUTPUT_LIMIT);
        if let OpDetail::RunCommand {
            stdout: out,
            stderr: err,
            ..
        } = &mut self.operations[i].detail
        {
            out.clone_from(&stdout);
            err.clone_from(&stderr);
        }
        match managed {
            None => self.end_action(i, vm, op_id, run, now),
            Some(_) => self.end_managed(i, vm, op_id, run, stdout, stderr, limit, now),
        }
    }

    fn end_action(&mut self, i: usize, vm: usize, op_id: Uuid, run: Run, now: DateTime<Utc>) {
        let (status, exit_code) = match run.outcome {
            Outcome::Failed(err) => {
                self.finish(i, OpStatus::Failed, Some(err), now);
                ("Failed", None)
            }
            Outcome::TimedOut => {
                // The exact code and text Azure gives an action run command
                // stopped at 90 minutes are not confirmed; this follows the
                // VM extension provisioning timeout it reports.
                let err = OpError {
                    status: 500,
                    code: "VMExtensionProvisioningTimeout".into(),
                    message: format!(
                        "Provisioning of VM extension RunCommandWindows has timed out. The script ran for longer than {ACTION_LIMIT_SECS} seconds (90 minutes), the limit of the action run command; use a managed run command (runCommands) with timeoutInSeconds for longer scripts."
                    ),
                };
                self.finish(i, OpStatus::Failed, Some(err), now);
                ("Failed", None)
            }
            Outcome::Exited(code) => {
                self.finish(i, OpStatus::Succeeded, None, now);
                ("Succeeded", Some(code))
            }
        };
        let completed = self.operations.get(i).and_then(|o| o.completed_seq);
        if let Some(rec) = self.action_record(vm, op_id) {
            rec.status = status;
            rec.exit_code = exit_code;
            rec.synced_database_id = run.synced;
            rec.completed_seq = completed;
            rec.kind = run.kind;
            rec.services = run.services;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn end_managed(
        &mut self,
        i: usize,
        vm: usize,
        op_id: Uuid,
        run: Run,
        stdout: String,
        stderr: String,
        limit: u64,
        now: DateTime<Utc>,
    ) {
        let Some(m) = self
            .vms
            .get_mut(vm)
            .and_then(|v| v.managed.iter_mut().find(|m| m.exec_op == op_id))
        else {
            self.finish(i, OpStatus::Succeeded, None, now);
            return;
        };
        let mut op_error = None;
        match run.outcome {
            Outcome::Exited(code) => {
                m.execution_state = if code == 0 { "Succeeded" } else { "Failed" };
                m.exit_code = Some(code);
                m.execution_message = String::new();
            }
            Outcome::TimedOut => {
                m.execution_state = "TimedOut";
                m.exit_code = None;
                m.execution_message =
                    format!("The script execution timed out after {limit} seconds.");
            }
            Outcome::Failed(err) => {
                m.execution_state = "Failed";
                m.exit_code = None;
                m.execution_message = err.message.clone();
                op_error = Some(err);
            }
        }
        let failed = m.execution_state != "Succeeded";
        if op_error.is_none() && failed && m.treat_failure_as_deployment_failure {
            // Code and text not confirmed against Azure.
            op_error = Some(OpError {
                status: 400,
                code: "VMExtensionProvisioningError".into(),
                message: format!(
                    "VM has reported a failure when processing extension 'RunCommand {}'. Execution state: {}{}.",
                    m.name,
                    m.execution_state,
                    m.exit_code.map(|c| format!(", exit code {c}")).unwrap_or_default()
                ),
            });
        }
        m.provisioning_state = if op_error.is_some() {
            "Failed"
        } else {
            "Succeeded"
        };
        m.output = stdout;
        m.error = stderr;
        m.end_time = Some(now);
        m.kind = run.kind;
        m.services = run.services;
        m.synced_database_id = run.synced;
        m.simulated_seconds = run.simulated;
        match op_error {
            Some(err) => self.finish(i, OpStatus::Failed, Some(err), now),
            None => self.finish(i, OpStatus::Succeeded, None, now),
        }
    }

    fn action_record(&mut self, vm: usize, op_id: Uuid) -> Option<&mut RunCommandRecord> {
        self.vms
            .get_mut(vm)?
            .run_commands
            .iter_mut()
            .find(|r| r.operation_id == op_id)
    }

    /// Runs the script against the world (effects included) and says how it
    /// ended.
    fn emulate(
        &mut self,
        vm: usize,
        text: &str,
        parameters: &[(String, String)],
        protected: &[(String, String)],
        planned: Option<Planned>,
        limit: u64,
    ) -> Run {
        if let Some(Planned::Fail(err)) = planned {
            let mut r = Run::exit(0, String::new(), ScriptKind::Other);
            r.outcome = Outcome::Failed(err);
            return r;
        }
        // What the script sees: every value through the VM's command layer.
        let through = |ps: &[(String, String)]| -> Vec<(String, String)> {
            ps.iter()
                .map(|(n, v)| (n.clone(), command_layer(v)))
                .collect()
        };
        let plain = through(parameters);
        let secret = through(protected);
        let mut all: Vec<(String, String)> = plain.iter().chain(&secret).cloned().collect();
        let mut decoded = Vec::new();
        for (name, prefer) in [("PitrArgs", &plain), ("PitrSecrets", &secret)] {
            if !uses_variable(text, name) {
                continue;
            }
            let value = lookup(prefer, name).or_else(|| lookup(&all, name));
            match decode_args(name, value) {
                Ok(props) => decoded.extend(props),
                Err(line) => return Run::exit(1, format!("{line}\n"), ScriptKind::Other),
            }
        }
        let aos = if text.to_ascii_lowercase().contains(AOS_ENV_MARKER) {
            match self.vms.get(vm).and_then(|v| v.aos.clone()) {
                Some(a) => Some(a),
                None => {
                    return Run::exit(
                        1,
                        "Exception calling \"GetApplicationEnvironment\" with \"0\" argument(s): \"The AOS webroot bin folder was not found (%ServiceDrive%\\AOSService\\webroot\\bin): this VM is no AOS.\"\n".into(),
                        ScriptKind::Other,
                    )
                }
            }
        } else {
            None
        };
        // Decoded properties come first, so that they win in name lookups.
        let mut vars = decoded.clone();
        vars.append(&mut all);
        let parsed = script::parse_script(text, &vars);
        let kind = parsed.kind;
        let services: Vec<String> = parsed.actions.iter().map(|a| a.name.clone()).collect();
        if let Some(Planned::ExitCode { code, message }) = planned {
            let mut r = Run::exit(code, format!("{message}\n"), kind);
            r.stdout = "Script started by the mock.\n".into();
            r.services = services;
            return r;
        }
        let simulated = simulated_seconds(&self.settings.script_seconds, kind);
        if simulated > limit {
            let mut r = Run::exit(0, String::new(), kind);
            r.outcome = Outcome::TimedOut;
            r.simulated = Some(simulated);
            r.services = services;
            return r;
        }
        let mut run = Run::exit(0, String::new(), kind);
        run.simulated = Some(simulated);
        run.services = services;
        if kind == ScriptKind::Sync {
            let server = lookup(&decoded, "Server")
                .map(str::to_string)
                .or_else(|| aos.as_ref().map(|a| a.server.clone()))
                .or(parsed.sync_server.clone());
            let database = lookup(&decoded, "Database")
                .map(str::to_string)
                .or_else(|| aos.as_ref().map(|a| a.database.clone()))
                .or(parsed.sync_database.clone());
            let password_given =
                lookup(&decoded, "SqlPwd").is_some() || lookup(&vars, "SqlPwd").is_some();
            let login = if password_given { None } else { aos.as_ref() };
            match self.sync(server.as_deref(), database.as_deref(), login) {
                Ok((server, db, id)) => {
                    run.synced = Some(id);
                    run.stdout.push_str(&format!(
                        "Database synchronization of '{db}' on '{server}' (databaseId {id}) completed.\n"
                    ));
                }
                Err(msg) => {
                    run.stderr.push_str(&msg);
                    run.stderr.push('\n');
                    run.outcome = Outcome::Exited(1);
                    return run;
                }
            }
        }
        self.apply_services(vm, &parsed.actions, &mut run);
        match kind {
            ScriptKind::MrReset => run
                .stdout
                .push_str("Reset-DatamartIntegration: data mart reset requested.\n"),
            ScriptKind::Other if parsed.actions.is_empty() => run
                .stdout
                .push_str("Script ran (the mock recognised no action in it).\n"),
            _ => {}
        }
        run
    }

    fn apply_services(&mut self, vm: usize, actions: &[script::ServiceAction], run: &mut Run) {
        let Some(v) = self.vms.get_mut(vm) else {
            return;
        };
        for a in actions {
            match v
                .services
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case(&a.name))
            {
                Some((name, state)) => {
                    let target = if a.stop { "Stopped" } else { "Running" };
                    if state == target {
                        run.stdout.push_str(&format!(
                            "Service {name} is already {}.\n",
                            target.to_ascii_lowercase()
                        ));
                    } else {
                        *state = target.to_string();
                        run.stdout.push_str(&format!(
                            "{} service {name}.\n",
                            if a.stop { "Stopped" } else { "Started" }
                        ));
                    }
                }
                // Scripts are expected to skip services a VM does not host
                // (the same template runs on every VM): a warning only.
                None => run.stderr.push_str(&format!(
                    "WARNING: Cannot find any service with service name '{}'; skipped.\n",
                    a.name
                )),
            }
        }
    }

    /// The setup tool's sync: opens the database; errors are the SQL login
    /// failures it prints. `login` is the AOS's own access when the password
    /// comes from its configuration: valid only for its server and database.
    fn sync(
        &self,
        server: Option<&str>,
        db: Option<&str>,
        login: Option<&AosSpec>,
    ) -> Result<(String, String, Uuid), String> {
        let (Some(server), Some(db)) = (server, db) else {
            return Err(
                "The sync needs a server and a database: PitrArgs Server/Database, the AOS configuration, the script parameters 'Server' and 'Database', or -sqlserver / -sqldatabase."
                    .to_string(),
            );
        };
        let short = short_server(server);
        if let Some(a) = login {
            if short_server(&a.server) != short || !a.database.eq_ignore_ascii_case(db.trim()) {
                return Err(format!(
                    "Login failed for user '{}'. (the AOS configuration's password is for database '{}' on '{}')",
                    a.sql_user, a.database, a.server
                ));
            }
        }
        let cannot_open =
            || format!("Cannot open database \"{db}\" requested by the login. The login failed.");
        let srv = self
            .servers
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(&short))
            .ok_or_else(cannot_open)?;
        let d = srv
            .find_db(db.trim())
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
                parameters: params.to_vec(),
                exit_code: None,
                synced_database_id: None,
            });
        }
    }

    /// Deleting a managed run command stops its script (Canceled).
    pub fn cancel_managed(&mut self, vm: usize, idx: usize, now: DateTime<Utc>) {
        let Some(m) = self.vms.get_mut(vm).and_then(|v| v.managed.get_mut(idx)) else {
            return;
        };
        m.resource = Resource::Deleted;
        let exec = m.exec_op;
        if m.end_time.is_none() {
            m.execution_state = "Canceled";
            m.execution_message =
                "The run command was canceled: it was deleted while running.".into();
            m.end_time = Some(now);
            if let Some(i) = self.find_op(exec) {
                if self.operations[i].status == OpStatus::InProgress {
                    self.cancel(
                        i,
                        "The run command was canceled because it was deleted.".into(),
                        now,
                    );
                }
            }
        }
    }
}
