//! The steps of a run. Each one first observes Azure and its own checkpoint,
//! so running it again after a crash does only what is still missing.
use super::actions;
use super::crash;
use super::progress::ProgressEvent;
use super::{Engine, StepError};
use crate::azure::{Operation, PollProgress, RestoreSpec, RunCommandOutput};
use crate::domain::swap::{next_swap_action, SwapAction, SwapNames};
use crate::domain::{Environment, Job, RestoreRequest, StepName, StepRecord};
use std::collections::{BTreeMap, HashMap};

/// Stops any loop that would otherwise not end on a confused server (two
/// renames, plus re-observations after answers that were lost).
const MAX_RENAMES: usize = 8;

impl Engine {
    pub(super) async fn perform(
        &self,
        step: StepName,
        req: &RestoreRequest,
        env: &Environment,
        job: &mut Job,
        rec: &mut StepRecord,
    ) -> Result<String, StepError> {
        match step {
            StepName::Preflight => self.preflight(req, env, job).await,
            StepName::Offline => {
                if job.facts.offline_at.is_none() {
                    job.facts.offline_at = Some(self.clock.now());
                    self.save_job(job).await?;
                }
                self.services(step, env, job, rec, false).await
            }
            StepName::Restore => self.restore(req, env, job, rec).await,
            StepName::Swap => self.swap(env, job, rec).await,
            StepName::Sync => self.sync(env, job, rec).await,
            StepName::MrReset => self.mr_reset(env, job, rec).await,
            StepName::Online => {
                let s = self.services(step, env, job, rec, true).await?;
                job.facts.online_at = Some(self.clock.now());
                self.save_job(job).await?;
                Ok(s)
            }
            StepName::Verify => self.verify(env, job).await,
            StepName::Cleanup => Err(StepError::Failed(
                "cleanup is not part of a run; it runs after the original's retention".into(),
            )),
        }
    }

    async fn preflight(
        &self,
        req: &RestoreRequest,
        env: &Environment,
        job: &mut Job,
    ) -> Result<String, StepError> {
        let id = env.database_id(&env.database);
        let db = self.azure.get_database(&id).await?.ok_or_else(|| {
            StepError::Failed(format!(
                "database '{}' not found on server '{}'",
                env.database, env.server
            ))
        })?;
        crash::point("preflight.after_get");
        if !db.is_online() {
            return Err(StepError::Failed(format!(
                "database '{}' is {}, not Online; wait for the operation on it to finish and resume",
                env.database,
                db.status()
            )));
        }
        if let Some(earliest) = db.properties.earliest_restore_date {
            if req.restore_point < earliest {
                return Err(StepError::Failed(format!(
                    "rule earliest-restore-date: restore point {} is now before Azure's earliest restore date {earliest}; reschedule with a later restore point",
                    req.restore_point
                )));
            }
        }
        let original = db.database_id().ok_or_else(|| {
            StepError::Failed("Azure reported no databaseId for the source database".into())
        })?;
        for name in [
            job.restored_name(&env.database),
            job.before_name(&env.database),
        ] {
            if let Some(existing) = self.azure.get_database(&env.database_id(&name)).await? {
                return Err(StepError::Failed(format!(
                    "target name '{name}' is already taken (databaseId {}); remove it or start a new job",
                    existing.database_id().unwrap_or("unknown")
                )));
            }
        }
        // Found now, not after the swap when sync needs it.
        if env.actions == crate::domain::ActionKind::VmRunCommand
            && self.sql_password(env, job).is_none()
        {
            return Err(StepError::Failed(match &env.sql_password_env {
                Some(var) => format!(
                    "the SQL password for sync is not set: export {var} before running"
                ),
                None => format!(
                    "environment '{}' has no sql_password_env: name the variable that holds the SQL password sync uses, and export it",
                    env.name
                ),
            }));
        }
        job.facts.original_database_id = Some(original.to_string());
        job.facts.source_resource_id = Some(db.id.clone());
        job.facts.source_sku = db.sku.clone();
        job.facts.source_elastic_pool_id = db.properties.elastic_pool_id.clone();
        self.save_job(job).await?;
        Ok(format!(
            "{} is Online (databaseId {original}, earliest restore {})",
            env.database,
            db.properties
                .earliest_restore_date
                .map(|d| d.to_rfc3339())
                .unwrap_or_else(|| "unknown".into())
        ))
    }

    /// Never issues a second restore PUT: the operation is checkpointed before
    /// it is polled, and an existing target is waited on, not recreated.
    async fn restore(
        &self,
        req: &RestoreRequest,
        env: &Environment,
        job: &mut Job,
        rec: &mut StepRecord,
    ) -> Result<String, StepError> {
        let name = job.restored_name(&env.database);
        let target = env.database_id(&name);
        let checkpointed = rec
            .external_ref
            .as_deref()
            .and_then(Operation::from_checkpoint);
        let existing = self.azure.get_database(&target).await?;
        let deadline = self.step_timeout(StepName::Restore);
        match (existing, checkpointed) {
            (Some(db), _) if db.is_online() => {}
            (_, Some(op)) => {
                self.note(StepName::Restore, format!("re-attaching to {}", op.op));
                self.azure
                    .wait(&op, deadline, &mut self.poll_reporter(StepName::Restore))
                    .await?;
            }
            (Some(db), None) => {
                // The PUT reached Azure but the crash came before its answer
                // was checkpointed: follow the database itself.
                self.note(
                    StepName::Restore,
                    format!("{name} exists ({}); waiting for it", db.status()),
                );
                self.wait_until_online(&target, deadline).await?;
            }
            (None, None) => {
                let spec = RestoreSpec {
                    location: env.location.clone(),
                    source_database_id: job
                        .facts
                        .source_resource_id
                        .clone()
                        .unwrap_or_else(|| env.database_id(&env.database)),
                    restore_point: req.restore_point,
                    sku: job.facts.source_sku.clone(),
                    elastic_pool_id: job.facts.source_elastic_pool_id.clone(),
                };
                match self.put_restore_once(job, &target, &spec).await? {
                    Some(op) => {
                        crash::point("restore.after_put_accepted");
                        rec.external_ref = Some(op.to_checkpoint());
                        self.checkpoint(&job.id, rec).await?;
                        crash::point("restore.after_checkpoint");
                        self.note(
                            StepName::Restore,
                            format!(
                                "restore of {} as of {} accepted by Azure",
                                env.database,
                                req.restore_point.to_rfc3339()
                            ),
                        );
                        self.azure
                            .wait(&op, deadline, &mut self.poll_reporter(StepName::Restore))
                            .await?;
                    }
                    // An answer was lost but the PUT had reached Azure.
                    None => self.wait_until_online(&target, deadline).await?,
                }
            }
        }
        crash::point("restore.after_wait");
        let db = self.azure.get_database(&target).await?.ok_or_else(|| {
            StepError::Failed(format!(
                "Azure reported the restore done but {name} does not exist"
            ))
        })?;
        if !db.is_online() {
            self.wait_until_online(&target, deadline).await?;
        }
        let restored = db
            .database_id()
            .ok_or_else(|| StepError::Failed(format!("{name} has no databaseId")))?
            .to_string();
        job.facts.restored_database_id = Some(restored.clone());
        self.save_job(job).await?;
        Ok(format!("{name} is Online (databaseId {restored})"))
    }

    /// Sends the restore PUT so that it reaches Azure at most once: after a
    /// lost answer (timeout, dropped connection, 5xx) the target is read
    /// first, and an existing one is followed (`None`) instead of re-PUT.
    async fn put_restore_once(
        &self,
        job: &Job,
        target: &str,
        spec: &RestoreSpec,
    ) -> Result<Option<Operation>, StepError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.confirm_lease(&job.id).await?;
            match self.azure.begin_restore(target, spec).await {
                Ok(op) => return Ok(Some(op)),
                Err(e) if e.is_transient() && attempt < 6 => {
                    self.note(
                        StepName::Restore,
                        format!("the restore request got no clear answer ({e}); checking Azure before sending it again"),
                    );
                    tokio::time::sleep(self.azure.poll.interval(None) * attempt).await;
                    if self.azure.get_database(target).await?.is_some() {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn wait_until_online(
        &self,
        id: &str,
        deadline: std::time::Duration,
    ) -> Result<(), StepError> {
        let started = std::time::Instant::now();
        loop {
            match self.azure.get_database(id).await? {
                Some(db) if db.is_online() => return Ok(()),
                Some(db) => self.note(StepName::Restore, format!("{}: {}", db.name, db.status())),
                None => {
                    return Err(StepError::Failed(format!(
                        "{} disappeared while being restored; the restore failed or was cancelled in Azure",
                        crate::azure::client::last_segment(id)
                    )))
                }
            }
            let wait = self.azure.poll.interval(None);
            if started.elapsed() + wait > deadline {
                return Err(StepError::Failed(format!(
                    "{} did not come Online within {}s",
                    crate::azure::client::last_segment(id),
                    deadline.as_secs()
                )));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Reads which databaseId sits under each of the given names.
    pub(super) async fn observe(
        &self,
        env: &Environment,
        names: &SwapNames,
    ) -> Result<HashMap<String, String>, StepError> {
        let mut seen = HashMap::new();
        for n in [&names.live, &names.before, &names.restored] {
            if let Some(db) = self.azure.get_database(&env.database_id(n)).await? {
                seen.insert(n.clone(), db.database_id().unwrap_or("").to_string());
            }
        }
        Ok(seen)
    }

    pub(super) fn swap_names(env: &Environment, job: &Job) -> SwapNames {
        SwapNames {
            live: env.database.clone(),
            before: job.before_name(&env.database),
            restored: job.restored_name(&env.database),
        }
    }

    async fn swap(
        &self,
        env: &Environment,
        job: &mut Job,
        rec: &mut StepRecord,
    ) -> Result<String, StepError> {
        let names = Self::swap_names(env, job);
        let (original, restored) = job_ids(job)?;
        let mut done = Vec::new();
        for _ in 0..MAX_RENAMES {
            let seen = self.observe(env, &names).await?;
            match next_swap_action(&names, &seen, &original, &restored)
                .map_err(|e| StepError::Failed(e.to_string()))?
            {
                SwapAction::Done => {
                    return Ok(format!(
                        "{} now holds the restored database; the original is {}",
                        names.live, names.before
                    ))
                }
                SwapAction::Rename { from, to } => {
                    self.note(StepName::Swap, format!("renaming {from} -> {to}"));
                    self.confirm_lease(&job.id).await?;
                    if let Err(e) = self
                        .azure
                        .rename_database(&env.database_id(&from), &env.database_id(&to))
                        .await
                    {
                        // The rename may or may not have happened: look again.
                        if !e.is_transient() {
                            return Err(e.into());
                        }
                        self.note(
                            StepName::Swap,
                            format!("rename got no clear answer ({e}); looking at the names again"),
                        );
                        tokio::time::sleep(self.azure.poll.interval(None)).await;
                        continue;
                    }
                    let first = to == names.before;
                    crash::point(if first {
                        "swap.after_first_rename"
                    } else {
                        "swap.after_second_rename"
                    });
                    done.push(format!("{from} -> {to}"));
                    rec.detail = Some(format!("renamed {}", done.join(", ")));
                    self.checkpoint(&job.id, rec).await?;
                    if first {
                        crash::point("swap.after_first_checkpoint");
                    }
                }
            }
        }
        Err(StepError::Failed(
            "the swap did not settle after the expected renames".into(),
        ))
    }

    async fn sync(
        &self,
        env: &Environment,
        job: &mut Job,
        rec: &mut StepRecord,
    ) -> Result<String, StepError> {
        let vm = single_vm(env, &env.sync_vm, "sync_vm")?;
        let password = self.sql_password(env, job).unwrap_or_default();
        let params = vec![
            ("PackageDir".to_string(), env.package_dir.clone()),
            ("Server".to_string(), env.server.clone()),
            ("Database".to_string(), env.database.clone()),
            ("SqlUser".to_string(), env.sql_user.clone()),
            ("SqlPwd".to_string(), password.clone()),
        ];
        let secrets = [password];
        let outs = self
            .run_on_vms(
                StepName::Sync,
                job,
                rec,
                std::slice::from_ref(vm),
                &actions::sync_script(),
                &params,
                &secrets,
            )
            .await?;
        Ok(summarise(&outs))
    }

    async fn mr_reset(
        &self,
        env: &Environment,
        job: &mut Job,
        rec: &mut StepRecord,
    ) -> Result<String, StepError> {
        let vm = single_vm(env, &env.mr_vm, "mr_vm")?;
        let params = vec![
            ("MRInstallDirectory".to_string(), env.mr_install_dir.clone()),
            ("Job".to_string(), job.id.clone()),
        ];
        let outs = self
            .run_on_vms(
                StepName::MrReset,
                job,
                rec,
                std::slice::from_ref(vm),
                &actions::mr_reset_script(),
                &params,
                &[],
            )
            .await?;
        Ok(summarise(&outs))
    }

    /// Stops (`start == false`) or starts the services on every AOS VM in parallel.
    pub(super) async fn services(
        &self,
        step: StepName,
        env: &Environment,
        job: &mut Job,
        rec: &mut StepRecord,
        start: bool,
    ) -> Result<String, StepError> {
        if env.actions == crate::domain::ActionKind::None {
            return Ok("no environment actions configured".into());
        }
        let script = if start {
            actions::online_script()
        } else {
            actions::offline_script()
        };
        let outs = self
            .run_on_vms(step, job, rec, &env.aos_vms, &script, &[], &[])
            .await?;
        Ok(summarise(&outs))
    }

    /// Runs a script on VMs: every Run Command is issued and checkpointed
    /// first (re-attaching to a checkpointed one instead), then all are
    /// awaited together. A script that did not report exit code 0 fails.
    #[allow(clippy::too_many_arguments)]
    async fn run_on_vms(
        &self,
        step: StepName,
        job: &Job,
        rec: &mut StepRecord,
        vms: &[String],
        script: &[String],
        params: &[(String, String)],
        secrets: &[String],
    ) -> Result<Vec<(String, RunCommandOutput)>, StepError> {
        let mut ops: BTreeMap<String, Operation> = rec
            .external_ref
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        for vm in vms {
            if ops.contains_key(vm) {
                continue;
            }
            self.confirm_lease(&job.id).await?;
            let op = self.begin_run_command(step, vm, script, params).await?;
            crash::at(step, "after_run_command_accepted");
            ops.insert(vm.clone(), op);
            rec.external_ref = serde_json::to_string(&ops).ok();
            self.checkpoint(&job.id, rec).await?;
            crash::at(step, "after_checkpoint");
        }
        let deadline = self.step_timeout(step);
        let waits = vms.iter().map(|vm| {
            let op = ops.get(vm).cloned();
            async move {
                let op = op.ok_or_else(|| StepError::Failed(format!("no operation for {vm}")))?;
                let mut report = self.poll_reporter(step);
                let body = self.azure.wait(&op, deadline, &mut report).await?;
                let out = RunCommandOutput::from_json(&body.unwrap_or_default());
                let vm_name = crate::azure::client::last_segment(vm).to_string();
                match out.exit_code() {
                    Some(0) => Ok((vm_name, out)),
                    code => Err(StepError::Failed(format!(
                        "script on {vm_name} {}: {}",
                        code.map(|c| format!("exited with code {c}"))
                            .unwrap_or_else(|| "did not report its exit code".into()),
                        tail(&redact(&out.stderr, secrets), 600)
                    ))),
                }
            }
        });
        let results = futures_util::future::join_all(waits).await;
        crash::at(step, "after_wait");
        // Once every VM has answered, the operations are spent: a retry of
        // the step must issue new ones.
        rec.external_ref = None;
        results.into_iter().collect()
    }

    /// One Run Command at a time per VM: a 409 means an earlier one (say, from
    /// a run that crashed before checkpointing it) is still running, so wait
    /// for it to end instead of failing.
    async fn begin_run_command(
        &self,
        step: StepName,
        vm: &str,
        script: &[String],
        params: &[(String, String)],
    ) -> Result<Operation, StepError> {
        let started = std::time::Instant::now();
        let deadline = self.step_timeout(step);
        loop {
            match self.azure.begin_run_command(vm, script, params).await {
                Err(crate::azure::AzureError::Refused { status: 409, .. })
                    if started.elapsed() < deadline =>
                {
                    self.note(
                        step,
                        format!(
                            "another Run Command is still running on {}; waiting",
                            crate::azure::client::last_segment(vm)
                        ),
                    );
                    tokio::time::sleep(self.azure.poll.interval(None)).await;
                }
                other => return Ok(other?),
            }
        }
    }

    async fn verify(&self, env: &Environment, job: &Job) -> Result<String, StepError> {
        let (_, restored) = job_ids(job)?;
        let db = self
            .azure
            .get_database(&env.database_id(&env.database))
            .await?
            .ok_or_else(|| StepError::Failed(format!("{} does not exist", env.database)))?;
        if !db.is_online() {
            return Err(StepError::Failed(format!(
                "{} is {}, not Online",
                env.database,
                db.status()
            )));
        }
        if db.database_id() != Some(restored.as_str()) {
            return Err(StepError::Failed(format!(
                "{} has databaseId {}, not the restored {restored}",
                env.database,
                db.database_id().unwrap_or("none")
            )));
        }
        Ok(format!(
            "{} is Online with the restored databaseId {restored}",
            env.database
        ))
    }

    pub(super) fn note(&self, step: StepName, message: String) {
        self.progress.event(ProgressEvent::Azure { step, message });
    }

    pub(super) fn poll_reporter(&self, step: StepName) -> impl FnMut(&PollProgress) + Send + '_ {
        move |p: &PollProgress| {
            self.note(
                step,
                format!(
                    "{}: {} (poll {}, {:.1}s)",
                    p.op,
                    p.status,
                    p.polls,
                    p.elapsed.as_secs_f64()
                ),
            )
        }
    }

    fn sql_password(&self, env: &Environment, job: &Job) -> Option<String> {
        let given = env.sql_password_env.as_ref().and_then(|var| {
            self.secrets
                .get(var)
                .cloned()
                .or_else(|| std::env::var(var).ok())
                .filter(|v| !v.is_empty())
        });
        // A rehearsal against the mock needs no real password.
        given.or_else(|| job.dry_run.then(|| "dry-run-placeholder".into()))
    }
}

pub(super) fn job_ids(job: &Job) -> Result<(String, String), StepError> {
    match (
        &job.facts.original_database_id,
        &job.facts.restored_database_id,
    ) {
        (Some(o), Some(r)) => Ok((o.clone(), r.clone())),
        _ => Err(StepError::Failed(
            "the job does not know the original and restored databaseIds; preflight and restore must succeed first".into(),
        )),
    }
}

fn single_vm<'a>(
    env: &Environment,
    vm: &'a Option<String>,
    key: &str,
) -> Result<&'a String, StepError> {
    vm.as_ref().ok_or_else(|| {
        StepError::Failed(format!(
            "environment '{}' has no {key} configured",
            env.name
        ))
    })
}

fn summarise(outs: &[(String, RunCommandOutput)]) -> String {
    if outs.is_empty() {
        return "skipped".into();
    }
    outs.iter()
        .map(|(vm, _)| format!("{vm}: exit 0"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].trim()
}

fn redact(s: &str, secrets: &[String]) -> String {
    let mut out = s.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret.as_str(), "***");
    }
    out
}
