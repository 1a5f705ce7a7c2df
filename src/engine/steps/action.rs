//! An environment action (offline, online, sync, mr_reset), carried out the
//! way the environment says (`actions`): managed Run Commands on its VMs
//! (`vm.rs`), a signed webhook (`webhook.rs`), a person (`manual`: the job
//! waits, with its lease released, until `pitr job confirm`), or nothing.
use super::vm::single_vm;
use crate::domain::{ActionKind, Environment, Job, StepName, StepRecord};
use crate::engine::actions::Script;
use crate::engine::{Engine, StepError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which VMs an action runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Vms {
    Aos,
    Sync,
    Mr,
}

/// A person's word on an action that waited for them (`pitr job confirm`),
/// or a webhook's callback: kept in the step's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub by: String,
    pub at: DateTime<Utc>,
    /// The action could not be done: the step fails with `reason`.
    pub failed: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Confirmed {
    confirmation: Option<Confirmation>,
}

impl Confirmation {
    /// The confirmation recorded in a step's checkpoint, if any.
    pub fn of(rec: &StepRecord) -> Option<Confirmation> {
        rec.external_ref
            .as_deref()
            .and_then(|s| serde_json::from_str::<Confirmed>(s).ok())
            .and_then(|c| c.confirmation)
    }

    pub fn into_checkpoint(self) -> String {
        serde_json::to_string(&Confirmed {
            confirmation: Some(self),
        })
        .unwrap_or_default()
    }

    /// The step's end.
    fn outcome(&self, step: StepName) -> Result<String, StepError> {
        if self.failed {
            Err(StepError::Failed(format!(
                "{step} was reported not done by {}: {}",
                self.by,
                self.reason.as_deref().unwrap_or("no reason given")
            )))
        } else {
            Ok(format!(
                "{step} confirmed done by {} at {}",
                self.by,
                self.at.to_rfc3339()
            ))
        }
    }
}

impl Engine {
    /// Carries out `action` for `step` the environment's way.
    pub(crate) async fn act(
        &self,
        step: StepName,
        env: &Environment,
        job: &Job,
        rec: &mut StepRecord,
        vms: Vms,
        action: &Script,
    ) -> Result<String, StepError> {
        match env.actions {
            ActionKind::None => Ok("no environment actions configured".into()),
            ActionKind::VmRunCommand => {
                let vms: Vec<String> = match vms {
                    Vms::Aos => env.aos_vms.clone(),
                    Vms::Sync => vec![single_vm(env, &env.sync_vm, "sync_vm")?.clone()],
                    Vms::Mr => vec![single_vm(env, &env.mr_vm, "mr_vm")?.clone()],
                };
                self.run_on_vms(step, env, job, rec, &vms, action).await
            }
            ActionKind::Manual => match Confirmation::of(rec) {
                Some(c) => c.outcome(step),
                None => Err(StepError::Waiting(format!(
                    "{step} waits for a person: {}; then run `pitr job confirm {} --step {step}` (or add `--failed --reason TEXT` if it cannot be done)",
                    what_to_do(step, env),
                    job.id
                ))),
            },
            ActionKind::Webhook => match Confirmation::of(rec) {
                Some(c) => c.outcome(step),
                None => self.webhook(step, env, job, rec).await,
            },
        }
    }
}

/// What a person does for a manual action.
fn what_to_do(step: StepName, env: &Environment) -> String {
    let services = crate::engine::actions::FNO_SERVICES.join(", ");
    match step {
        StepName::Offline => format!("stop the services ({services}) of environment '{}'", env.name),
        StepName::Online => format!("start the services ({services}) of environment '{}'", env.name),
        StepName::Sync => format!(
            "run a full database synchronization of '{}' against database {} on server {}",
            env.name, env.database, env.server
        ),
        StepName::MrReset => format!(
            "reset the Management Reporter data mart of '{}' (Reset-DatamartIntegration -Reason OTHER -SkipMRTableReset)",
            env.name
        ),
        other => format!("do {other} for '{}'", env.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A person's confirmation as checkpointed, kept as text.
    #[test]
    fn a_checkpointed_confirmation_still_loads() {
        let stored = r#"{"confirmation":{"by":"ana","at":"2026-11-27T20:15:00Z","failed":true,"reason":"AOS2 unreachable"}}"#;
        let rec = StepRecord {
            external_ref: Some(stored.into()),
            ..StepRecord::pending(StepName::Offline)
        };
        let c = Confirmation::of(&rec).expect("loads");
        assert_eq!(
            c,
            Confirmation {
                by: "ana".into(),
                at: "2026-11-27T20:15:00Z".parse().unwrap(),
                failed: true,
                reason: Some("AOS2 unreachable".into()),
            }
        );
        assert_eq!(c.clone().into_checkpoint(), stored);
        assert!(c.outcome(StepName::Offline).is_err());
    }
}
