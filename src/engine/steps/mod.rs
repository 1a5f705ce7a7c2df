//! The table of steps. Each step is defined once, in its own file: its
//! name, when it may run, its estimate and timeout keys, its crash points
//! and its body. Every body first observes Azure and its own checkpoint, so
//! running it again after a crash does only what is still missing.
//!
//! Adding a step: a variant in [`StepName`], a file here with its `DEF` and
//! its body, and an arm in [`def`] and in `perform` (the compiler points at
//! both).
pub(crate) mod action;
mod cleanup;
mod mr_reset;
mod offline;
mod online;
mod preflight;
mod restore;
mod retention;
mod swap;
mod sync;
mod verify;
mod vm;
mod webhook;

pub use webhook::{signature, signature_matches, Callback, CallbackRefused};

use super::progress::ProgressEvent;
use super::{Engine, StepError};
use crate::azure::PollProgress;
use crate::config::EngineConfig;
use crate::domain::schedule::Estimates;
use crate::domain::step::{order, Phase};
use crate::domain::swap::{SwapAction, SwapNames, UnexpectedNames};
use crate::domain::{Environment, Job, RestoreRequest, StepName, StepRecord};
use std::collections::HashMap;
use std::time::Duration;

/// A step's deadline: its own default, which the class key of `[engine]`
/// (`restore_timeout_secs`, `action_timeout_secs`, `step_timeout_secs`)
/// replaces when set, which `[engine.timeouts] <step>_secs` replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    pub class: TimeoutClass,
    pub default_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutClass {
    /// `restore_timeout_secs`
    Restore,
    /// `action_timeout_secs` (environment actions: offline, online, sync, mr_reset)
    Action,
    /// `step_timeout_secs`
    Step,
}

impl Timeout {
    pub fn of(self, step: StepName, config: &EngineConfig) -> Duration {
        let class = match self.class {
            TimeoutClass::Restore => config.restore_timeout_secs,
            TimeoutClass::Action => config.action_timeout_secs,
            TimeoutClass::Step => config.step_timeout_secs,
        };
        Duration::from_secs(
            config
                .timeouts
                .secs(step)
                .or(class)
                .unwrap_or(self.default_secs),
        )
    }
}

/// Everything the engine knows of a step besides its body.
#[derive(Debug)]
pub struct StepDef {
    pub name: StepName,
    pub phase: Phase,
    /// Not started when the rest of the run would end after the window.
    pub window_guard: bool,
    /// Default of `[engine.estimates] <name>_secs`.
    pub estimate_secs: u64,
    pub timeout: Timeout,
    /// Places in the body where a crash matters (`<name>.<point>`), besides
    /// `started` and `done`, in the order a run meets them.
    pub crash_points: &'static [&'static str],
}

/// The definition of a step.
pub fn def(step: StepName) -> &'static StepDef {
    match step {
        StepName::Preflight => &preflight::DEF,
        StepName::Offline => &offline::DEF,
        StepName::Restore => &restore::DEF,
        StepName::Swap => &swap::DEF,
        StepName::Sync => &sync::DEF,
        StepName::MrReset => &mr_reset::DEF,
        StepName::Online => &online::DEF,
        StepName::Verify => &verify::DEF,
        StepName::Cleanup => &cleanup::DEF,
    }
}

/// Every step, in the default order of a run.
pub fn all() -> impl Iterator<Item = &'static StepDef> {
    StepName::ALL.into_iter().map(def)
}

/// The steps of a run in order (the restore first when pre-staged).
pub fn plan(est: &Estimates, prestage: bool) -> Vec<StepName> {
    order(est.steps(), prestage)
}

/// A rollback's own steps: the environment goes offline, the original
/// database goes back under its name, the environment comes back online and
/// the original is checked to be live. Never held by a window: a rollback
/// is asked for when it is needed.
pub fn rollback_plan() -> Vec<StepName> {
    vec![
        StepName::Offline,
        StepName::Swap,
        StepName::Online,
        StepName::Verify,
    ]
}

/// The default plan without an environment's history (tests, tools).
pub fn default_plan(prestage: bool) -> Vec<StepName> {
    let est = Estimates::new(
        all()
            .map(|d| crate::domain::step::StepTiming {
                name: d.name,
                phase: d.phase,
                window_guard: d.window_guard,
                estimate: chrono::Duration::seconds(d.estimate_secs as i64),
            })
            .collect(),
    );
    plan(&est, prestage)
}

/// What a step body works on.
pub(crate) struct StepCx<'a> {
    pub req: &'a RestoreRequest,
    pub env: &'a Environment,
    pub job: &'a mut Job,
    pub rec: &'a mut StepRecord,
}

/// Stops any rename loop that would otherwise not end on a confused server
/// (two renames, plus re-observations after answers that were lost).
pub(super) const MAX_RENAMES: usize = 8;

/// What one round of [`Engine::rename_next`] did.
pub(super) enum Renamed {
    /// The names are where the decision wants them.
    Settled,
    Moved {
        from: String,
        to: String,
    },
    /// The rename got no clear answer: look again.
    Unclear,
}

impl Engine {
    pub(super) async fn perform(
        &self,
        step: StepName,
        cx: &mut StepCx<'_>,
    ) -> Result<String, StepError> {
        match step {
            StepName::Preflight => self.preflight(cx).await,
            StepName::Offline => self.offline(cx).await,
            StepName::Restore => self.restore(cx).await,
            StepName::Swap => self.swap(cx).await,
            StepName::Sync => self.sync(cx).await,
            StepName::MrReset => self.mr_reset(cx).await,
            StepName::Online => self.online(cx).await,
            StepName::Verify => self.verify(cx).await,
            StepName::Cleanup => self.drop_original(cx).await,
        }
    }

    /// Reads which databaseId sits under each of the swap's names.
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

    /// One round of a swap or its reverse: look at the names, ask `decide`
    /// (a pure function of what Azure shows), perform the rename it wants.
    /// A rename is never resent blindly: a lost answer is settled by looking
    /// again in the next round.
    pub(super) async fn rename_next(
        &self,
        env: &Environment,
        job: &Job,
        names: &SwapNames,
        step: StepName,
        prefix: &str,
        decide: impl Fn(&HashMap<String, String>) -> Result<SwapAction, UnexpectedNames>,
    ) -> Result<Renamed, StepError> {
        let seen = self.observe(env, names).await?;
        let (from, to) = match decide(&seen).map_err(|e| StepError::Failed(e.to_string()))? {
            SwapAction::Done => return Ok(Renamed::Settled),
            SwapAction::Rename { from, to } => (from, to),
        };
        self.note(step, format!("{prefix}renaming {from} -> {to}"));
        self.confirm_lease(&job.id).await?;
        match self
            .azure
            .rename_database(&env.database_id(&from), &env.database_id(&to))
            .await
        {
            Ok(()) => Ok(Renamed::Moved { from, to }),
            Err(e) if e.is_transient() => {
                self.note(
                    step,
                    format!("rename got no clear answer ({e}); looking at the names again"),
                );
                tokio::time::sleep(self.azure.poll.interval(None)).await;
                Ok(Renamed::Unclear)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a database and waits until it is gone (reported under `step`).
    pub(super) async fn drop_database(&self, id: &str, step: StepName) -> Result<(), StepError> {
        if let Some(op) = self.azure.begin_delete_database(id).await? {
            self.azure
                .wait(
                    &op,
                    self.step_timeout(StepName::Cleanup),
                    &mut self.poll_reporter(step),
                )
                .await?;
        }
        Ok(())
    }

    pub(super) fn note(&self, step: StepName, message: String) {
        self.progress.event(ProgressEvent::Azure { step, message });
    }

    pub(super) fn poll_reporter(&self, step: StepName) -> impl FnMut(&PollProgress) + Send + '_ {
        move |p: &PollProgress| {
            let next = p
                .next_check
                .map(|d| format!(", next check in {}", seconds(d)))
                .unwrap_or_default();
            let message = if p.polls == 0 {
                format!("{}: in progress{next}", p.op)
            } else {
                format!(
                    "{}: {} (poll {}, {:.1}s){next}",
                    p.op,
                    p.status,
                    p.polls,
                    p.elapsed.as_secs_f64()
                )
            };
            self.note(step, message)
        }
    }
}

/// A wait as a person reads it: "0.5 s", "30 s".
fn seconds(d: std::time::Duration) -> String {
    if d >= std::time::Duration::from_secs(10) {
        format!("{} s", d.as_secs_f64().round())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

pub fn swap_names(env: &Environment, job: &Job) -> SwapNames {
    SwapNames {
        live: env.database.clone(),
        before: job.before_name(&env.database),
        restored: job.restored_name(&env.database),
    }
}

/// The original's and the restored database's ids, once preflight and
/// restore have recorded them.
fn job_ids(job: &Job) -> Result<(String, String), StepError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_its_own_definition_and_the_default_plans_hold() {
        for s in StepName::ALL {
            assert_eq!(
                def(s).name,
                s,
                "{s} must not borrow another step's definition"
            );
        }
        use StepName::*;
        assert_eq!(
            default_plan(false),
            [Preflight, Offline, Restore, Swap, Sync, MrReset, Online, Verify]
        );
        assert_eq!(
            default_plan(true),
            [Preflight, Restore, Offline, Swap, Sync, MrReset, Online, Verify]
        );
    }

    /// The defaults the README documents for `[engine.estimates]`.
    #[test]
    fn default_estimates() {
        let secs: Vec<(StepName, u64)> = all().map(|d| (d.name, d.estimate_secs)).collect();
        use StepName::*;
        assert_eq!(
            secs,
            [
                (Preflight, 30),
                (Offline, 300),
                (Restore, 1800),
                (Swap, 120),
                (Sync, 1800),
                (MrReset, 300),
                (Online, 300),
                (Verify, 30),
                (Cleanup, 600),
            ]
        );
    }
}
