//! The environment's history as the engine writes and reads it: a finished
//! restore is recorded (it bounds later restore points and gives the
//! durations estimates are made from), and the estimates of an
//! environment's steps come from the step table, the config and that history.
use super::{steps, Engine};
use crate::config::EngineConfig;
use crate::domain::schedule::{restore_estimate, Estimates};
use crate::domain::step::{Checkpoints, StepTiming};
use crate::domain::{
    Environment, EnvironmentEvent, HistoryEntry, Job, RestoreRecord, RestoreRequest, StepName,
};
use crate::store::{SharedStore, StoreError};

impl Engine {
    /// Expected step durations for an environment.
    pub async fn estimates(&self, env: &Environment) -> Result<Estimates, StoreError> {
        estimates(&self.store, &self.config, env).await
    }

    /// How long a restore of `env` is expected to take, for pacing its
    /// polls: the environment's own history (as for its estimate), else an
    /// operator's `[engine.estimates] restore_secs`; `None` with neither.
    /// The built-in default (30 minutes) is a planning bound for real
    /// Azure, not a measurement: stretching polls by it made a 5-second
    /// rehearsal against the mock wait 30 s per poll.
    pub(super) async fn restore_pace(&self, env: &Environment) -> Option<std::time::Duration> {
        let history = self.store.environment_events(&env.name).await.ok()?;
        let recent: Vec<f64> = history
            .iter()
            .filter_map(|e| e.restore())
            .filter_map(|r| r.restore_secs)
            .collect();
        let configured = self.config.estimates.secs(StepName::Restore);
        if recent.is_empty() && configured.is_none() {
            return None;
        }
        let fallback = chrono::Duration::seconds(configured.unwrap_or(0) as i64);
        restore_estimate(&recent, fallback).to_std().ok()
    }

    pub(super) async fn record_restore(
        &self,
        req: &RestoreRequest,
        job: &Job,
    ) -> Result<(), StoreError> {
        let steps = self.store.steps(&job.id).await?;
        let secs = |s: StepName| {
            steps.record(s).and_then(|r| {
                Some((r.finished_at? - r.started_at?).num_milliseconds() as f64 / 1000.0)
            })
        };
        self.store
            .add_environment_event(&EnvironmentEvent {
                environment: req.spec.environment.clone(),
                at: job.created_at,
                entry: HistoryEntry::Restore(RestoreRecord {
                    job: job.id.clone(),
                    request: req.id.clone(),
                    restore_point: req.spec.restore_point,
                    finished_at: job.facts.online_at.or(job.finished_at),
                    restore_secs: secs(StepName::Restore),
                    downtime_secs: job.downtime_secs(),
                    prestaged: job.is_prestaged(),
                }),
            })
            .await
    }
}

/// Expected step durations for an environment: each step's
/// `[engine.estimates] <step>_secs`, else its declared default; the
/// restore's from the environment's own history of restores when it has one.
pub async fn estimates(
    store: &SharedStore,
    config: &EngineConfig,
    env: &Environment,
) -> Result<Estimates, StoreError> {
    let history = store.environment_events(&env.name).await?;
    let recent: Vec<f64> = history
        .iter()
        .filter_map(|e| e.restore())
        .filter_map(|r| r.restore_secs)
        .collect();
    Ok(Estimates::new(
        steps::all()
            .map(|def| {
                let configured = chrono::Duration::seconds(
                    config.estimates.secs(def.name).unwrap_or(def.estimate_secs) as i64,
                );
                StepTiming {
                    name: def.name,
                    phase: def.phase,
                    window_guard: def.window_guard,
                    estimate: if def.name == StepName::Restore {
                        restore_estimate(&recent, configured)
                    } else {
                        configured
                    },
                }
            })
            .collect(),
    ))
}
