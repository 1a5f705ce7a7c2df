//! Environment actions of kind `vm-run-command`: scripts run on the
//! environment's VMs through ARM Run Command. Shared by offline, online,
//! sync and mr_reset.
use crate::azure::{Operation, RunCommandOutput};
use crate::domain::{ActionKind, Environment, Job, StepName, StepRecord};
use crate::engine::{actions, crash, Engine, StepError};
use std::collections::BTreeMap;

/// The crash points of a step that runs scripts on VMs, in the order
/// [`Engine::run_on_vms`] meets them.
pub(super) const RUN_COMMAND_POINTS: &[&str] = &[
    "after_run_command_accepted",
    "after_checkpoint",
    "after_wait",
];

impl Engine {
    /// Stops (`start == false`) or starts the services on every AOS VM in parallel.
    pub(crate) async fn services(
        &self,
        step: StepName,
        env: &Environment,
        job: &mut Job,
        rec: &mut StepRecord,
        start: bool,
    ) -> Result<String, StepError> {
        if env.actions == ActionKind::None {
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
    pub(super) async fn run_on_vms(
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
}

pub(super) fn single_vm<'a>(
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

pub(super) fn summarise(outs: &[(String, RunCommandOutput)]) -> String {
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
