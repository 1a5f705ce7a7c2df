//! Environment actions of kind `vm-run-command`: scripts run on the
//! environment's VMs as managed Run Commands (`{VM}/runCommands/{name}`),
//! shared by offline, online, sync and mr_reset.
//!
//! A round of commands is crash-safe by name: the name of each VM's command
//! (`pitr-<job8>-<step>-<attempt>-<vm>`) is checkpointed before its PUT, so
//! a resumed step finds its command again instead of starting a second one;
//! the outcome (Azure's `executionState` and `exitCode`) is checkpointed
//! before the command is deleted.
use crate::azure::{AzureError, RunCommand, RunCommandSpec};
use crate::domain::{Environment, Job, StepName, StepRecord};
use crate::engine::actions::Script;
use crate::engine::{actions, crash, Engine, StepError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The crash points of a step that runs scripts on VMs, in the order
/// [`Engine::run_on_vms`] meets them.
pub(super) const RUN_COMMAND_POINTS: &[&str] = &[
    "after_checkpoint",
    "after_run_command_accepted",
    "after_wait",
];

/// How often a PUT whose answer was lost is looked for and sent again.
const PUT_ATTEMPTS: u32 = 6;

/// One round of Run Commands of a step, as checkpointed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Round {
    /// Each VM's command name, chosen before the first PUT.
    commands: BTreeMap<String, String>,
    /// What each command came to, once read from Azure.
    #[serde(default)]
    outcomes: BTreeMap<String, Outcome>,
}

/// A command's end, as its instance view reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Outcome {
    state: String,
    exit_code: Option<i64>,
    /// The end of stderr, or Azure's execution message.
    message: String,
}

impl Outcome {
    fn from(rc: &RunCommand, secrets: &[String]) -> Self {
        let view = rc.instance_view();
        let stderr = view.and_then(|v| v.error.as_deref()).unwrap_or("");
        let message = if stderr.trim().is_empty() {
            view.and_then(|v| v.execution_message.as_deref())
                .unwrap_or("")
        } else {
            stderr
        };
        Self {
            state: rc.execution_state().to_string(),
            exit_code: view.and_then(|v| v.exit_code),
            message: tail(&redact(message, secrets), 600).to_string(),
        }
    }

    fn succeeded(&self) -> bool {
        self.state == "Succeeded" && self.exit_code.unwrap_or(0) == 0
    }

    /// Why the step fails, naming the VM.
    fn failure(&self, vm: &str, timeout: Duration) -> String {
        let what = match (self.state.as_str(), self.exit_code) {
            ("TimedOut", _) => format!(
                "did not finish within its timeout of {}s (timeoutInSeconds); raise [engine.timeouts] for this step if the action needs longer",
                timeout.as_secs()
            ),
            ("Canceled", _) => "was canceled in Azure".to_string(),
            (_, Some(code)) if code != 0 => format!("exited with code {code}"),
            (state, _) => format!("ended {state}"),
        };
        format!("script on {vm} {what}: {}", self.message)
    }
}

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
        let action = if start {
            actions::online()
        } else {
            actions::offline()
        };
        self.act(step, env, job, rec, super::action::Vms::Aos, &action)
            .await
    }

    /// Runs `action` on every VM of `vms` in parallel, as one round of
    /// managed Run Commands; succeeds when every script exited 0.
    pub(super) async fn run_on_vms(
        &self,
        step: StepName,
        env: &Environment,
        job: &Job,
        rec: &mut StepRecord,
        vms: &[String],
        action: &Script,
    ) -> Result<String, StepError> {
        let mut round: Round = rec
            .external_ref
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        if round.commands.is_empty() {
            for vm in vms {
                let name = command_name(job, step, rec.attempts, vm);
                round.commands.insert(vm.clone(), name);
            }
            self.save_round(job, rec, &round).await?;
            crash::at(step, "after_checkpoint");
        }
        let timeout = self.step_timeout(step);
        let (parameters, protected_parameters) = action.parameters();
        let spec = RunCommandSpec {
            location: env.location.clone(),
            script: action.script.clone(),
            parameters,
            protected_parameters,
            timeout_secs: timeout.as_secs(),
        };
        let secrets: Vec<String> = action.secrets.values().cloned().collect();
        let pending: Vec<(&String, &String)> = round
            .commands
            .iter()
            .filter(|(vm, _)| !round.outcomes.contains_key(*vm))
            .collect();
        let waits = pending.iter().map(|(vm, name)| {
            let spec = &spec;
            let secrets = &secrets;
            async move {
                let rc = self.run_to_end(step, job, vm, name, spec, timeout).await?;
                Ok::<_, StepError>(((*vm).clone(), Outcome::from(&rc, secrets)))
            }
        });
        let mut first_error = None;
        for result in futures_util::future::join_all(waits).await {
            match result {
                Ok((vm, outcome)) => {
                    round.outcomes.insert(vm, outcome);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        // What is known is kept, even when another VM's command failed to run.
        self.save_round(job, rec, &round).await?;
        if let Some(e) = first_error {
            return Err(e);
        }
        crash::at(step, "after_wait");
        for (vm, name) in &round.commands {
            self.confirm_lease(&job.id).await?;
            if let Err(e) = self.delete_command(vm, name).await {
                self.note(
                    step,
                    format!("run command {name} on {} was not deleted: {e}", vm_name(vm)),
                );
            }
        }
        // The round is spent: a later attempt of the step starts a new one.
        rec.external_ref = None;
        self.checkpoint(&job.id, rec).await?;
        let failures: Vec<String> = round
            .outcomes
            .iter()
            .filter(|(_, o)| !o.succeeded())
            .map(|(vm, o)| o.failure(vm_name(vm), timeout))
            .collect();
        if let Some(first) = failures.into_iter().next() {
            return Err(StepError::Failed(first));
        }
        Ok(round
            .outcomes
            .keys()
            .map(|vm| format!("{}: exit 0", vm_name(vm)))
            .collect::<Vec<_>>()
            .join(", "))
    }

    async fn save_round(
        &self,
        job: &Job,
        rec: &mut StepRecord,
        round: &Round,
    ) -> Result<(), StepError> {
        rec.external_ref = Some(
            serde_json::to_string(round)
                .map_err(|e| StepError::Failed(format!("checkpointing the run commands: {e}")))?,
        );
        Ok(self.checkpoint(&job.id, rec).await?)
    }

    /// Finds the VM's command by name (starting it when it is absent) and
    /// waits until its script has ended.
    async fn run_to_end(
        &self,
        step: StepName,
        job: &Job,
        vm: &str,
        name: &str,
        spec: &RunCommandSpec,
        timeout: Duration,
    ) -> Result<RunCommand, StepError> {
        let mut attempt = 0;
        let current = loop {
            if let Some(rc) = self.azure.get_run_command(vm, name).await? {
                self.note(
                    step,
                    format!(
                        "run command {name} on {} found ({})",
                        vm_name(vm),
                        rc.execution_state()
                    ),
                );
                break rc;
            }
            attempt += 1;
            self.confirm_lease(&job.id).await?;
            match self.azure.put_run_command(vm, name, spec).await {
                Ok(_) => {
                    crash::at(step, "after_run_command_accepted");
                    self.note(
                        step,
                        format!("run command {name} started on {}", vm_name(vm)),
                    );
                    if let Some(rc) = self.azure.get_run_command(vm, name).await? {
                        break rc;
                    }
                }
                // Ours, already running: a PUT whose answer was lost.
                Err(AzureError::Refused { status: 409, .. }) => {}
                Err(e) if e.is_transient() && attempt < PUT_ATTEMPTS => {
                    self.note(
                        step,
                        format!("the run command got no clear answer ({e}); looking for it before sending it again"),
                    );
                    tokio::time::sleep(self.azure.poll.interval(None) * attempt).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        self.wait_for_command(step, vm, name, current, timeout)
            .await
    }

    /// Polls the command until its script has ended, more rarely the longer
    /// it runs (a six-hour sync is not polled every few seconds).
    async fn wait_for_command(
        &self,
        step: StepName,
        vm: &str,
        name: &str,
        mut rc: RunCommand,
        timeout: Duration,
    ) -> Result<RunCommand, StepError> {
        let started = Instant::now();
        // Azure ends the script at its timeoutInSeconds; this is a margin for
        // reporting it, not a second deadline.
        let deadline = timeout + Duration::from_secs(300);
        let mut polls = 0u32;
        // Since when the command shows a state that does not lead to an end.
        let mut unexpected: Option<Instant> = None;
        while !rc.is_finished() {
            if crate::azure::states::execution_state(rc.execution_state())
                == crate::azure::states::Phase::Unexpected
            {
                let since = *unexpected.get_or_insert_with(Instant::now);
                if since.elapsed() >= crate::azure::states::UNEXPECTED_GRACE {
                    return Err(StepError::Failed(format!(
                        "run command {name} on {} has been in executionState {} for {}s, a state that does not lead to an end; inspect it in the Azure portal (resume finds it by name)",
                        vm_name(vm),
                        rc.execution_state(),
                        since.elapsed().as_secs()
                    )));
                }
            } else {
                unexpected = None;
            }
            let elapsed = started.elapsed();
            let wait = self.azure.poll.interval(Some(elapsed / 10));
            if elapsed + wait > deadline {
                return Err(StepError::Failed(format!(
                    "run command {name} on {} did not end within {}s; it may still run (resume finds it by name)",
                    vm_name(vm),
                    deadline.as_secs()
                )));
            }
            tokio::time::sleep(wait).await;
            polls += 1;
            rc = self.azure.get_run_command(vm, name).await?.ok_or_else(|| {
                StepError::Failed(format!(
                    "run command {name} on {} disappeared while running (deleted in Azure?)",
                    vm_name(vm)
                ))
            })?;
            self.note(
                step,
                format!(
                    "run command {name} on {}: {} (poll {polls}, {:.1}s)",
                    vm_name(vm),
                    rc.execution_state(),
                    started.elapsed().as_secs_f64()
                ),
            );
        }
        Ok(rc)
    }

    async fn delete_command(&self, vm: &str, name: &str) -> Result<(), StepError> {
        if let Some(op) = self.azure.delete_run_command(vm, name).await? {
            self.azure
                .wait(&op, self.step_timeout(StepName::Cleanup), &mut |_| {})
                .await?;
        }
        Ok(())
    }
}

/// `pitr-<job8>-<step>-<attempt>-<vm>`: the same for a resumed attempt of a
/// step, new for a later attempt. Within Azure's 80 characters.
fn command_name(job: &Job, step: StepName, attempt: u32, vm: &str) -> String {
    let name = format!(
        "pitr-{}-{}-{attempt}-{}",
        job.id.tag(),
        step.as_str().replace('_', "-"),
        vm_name(vm)
    );
    name.chars().take(80).collect()
}

fn vm_name(vm: &str) -> &str {
    crate::azure::client::last_segment(vm)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_are_stable_per_attempt_and_fit_azure() {
        let job = Job {
            id: "0123456789abcdef0123456789abcdef".into(),
            request_id: "r".into(),
            dry_run: false,
            status: crate::domain::JobStatus::Running,
            plan: vec![],
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            finished_at: None,
            facts: Default::default(),
            error: None,
        };
        let vm =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/aos1";
        assert_eq!(
            command_name(&job, StepName::MrReset, 2, vm),
            "pitr-01234567-mr-reset-2-aos1"
        );
        let long = format!("{vm}{}", "x".repeat(100));
        assert_eq!(command_name(&job, StepName::Sync, 1, &long).len(), 80);
    }

    /// A round as checkpointed, kept as text: a resumed step of a later
    /// pitr must find its commands again. The first form (names only) is
    /// what is written before any outcome is known.
    #[test]
    fn a_checkpointed_round_still_loads() {
        let vm =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/aos1";
        let names_only = format!(r#"{{"commands":{{"{vm}":"pitr-01234567-offline-1-aos1"}}}}"#);
        let round: Round = serde_json::from_str(&names_only).unwrap();
        assert_eq!(round.commands[vm], "pitr-01234567-offline-1-aos1");
        assert!(round.outcomes.is_empty());
        let with_outcome = format!(
            r#"{{"commands":{{"{vm}":"pitr-01234567-offline-1-aos1"}},"outcomes":{{"{vm}":{{"state":"Failed","exit_code":3,"message":"boom"}}}}}}"#
        );
        let round: Round = serde_json::from_str(&with_outcome).unwrap();
        assert_eq!(
            round.outcomes[vm],
            Outcome {
                state: "Failed".into(),
                exit_code: Some(3),
                message: "boom".into(),
            }
        );
        assert_eq!(serde_json::to_string(&round).unwrap(), with_outcome);
    }

    #[test]
    fn outcomes_name_the_vm_and_what_happened() {
        let o = |state: &str, code: Option<i64>| Outcome {
            state: state.into(),
            exit_code: code,
            message: "boom".into(),
        };
        let t = Duration::from_secs(21600);
        assert!(o("Succeeded", Some(0)).succeeded());
        assert!(!o("Failed", Some(3)).succeeded());
        assert!(o("Failed", Some(3))
            .failure("aos1", t)
            .contains("exited with code 3: boom"));
        assert!(o("TimedOut", None)
            .failure("aos1", t)
            .contains("timeout of 21600s"));
        assert!(!o("Succeeded", Some(2)).succeeded(), "an exit code counts");
    }
}
