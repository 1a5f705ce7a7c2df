//! The facts a tick plans from: the store's work in play (one query),
//! with what only this process knows added (the environments as
//! configured, their estimates, what this scheduler drives, whether a
//! lease's holder is seen gone, when a retention was last checked).
use super::{Scheduler, Task};
use crate::domain::schedule::Estimates;
use crate::domain::tick::{EnvFacts, Holder, Kept, Run, Runner, Snapshot};
use crate::domain::{Environment, Job, JobId, RequestStatus};
use crate::engine::{Engine, EngineError};
use crate::store::{Lease, WorkInPlay};
use std::collections::HashMap;

/// How long the scheduler uses an environment's estimates before it reads
/// its history again.
const ESTIMATES_REREAD: chrono::Duration = chrono::Duration::minutes(1);

impl Scheduler {
    pub(super) async fn snapshot(
        &self,
        work: WorkInPlay,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Snapshot, EngineError> {
        let steps = work.steps_by_job();
        let leases: HashMap<JobId, Lease> = work
            .leases
            .into_iter()
            .map(|l| (l.job_id.clone(), l))
            .collect();
        let mut jobs: HashMap<_, Vec<Job>> = HashMap::new();
        for job in &work.jobs {
            jobs.entry(job.request_id.clone())
                .or_default()
                .push(job.clone());
        }
        let checked = self.retention_checked();
        let mut runs = Vec::with_capacity(work.requests.len());
        for request in work.requests {
            let env = self.engine.environment(&request.spec.environment).ok();
            let estimates = match env {
                Some(env) if request.status == RequestStatus::Accepted => {
                    Some(self.estimates_of(env, now).await?)
                }
                None if request.status == RequestStatus::Accepted => {
                    tracing::warn!(request = %request.id, environment = %request.spec.environment, "request names an environment no longer configured");
                    None
                }
                _ => None,
            };
            let mut run = Run {
                env: env.map(|e| EnvFacts {
                    prestage: e.prestage,
                    subscription: e.subscription_id.to_ascii_lowercase(),
                }),
                estimates,
                jobs: jobs.remove(&request.id).unwrap_or_default(),
                lease: None,
                steps: Vec::new(),
                driving: self.is_driving(&Task::Run(request.id.clone())),
                retention_checked: checked.get(&request.id).copied(),
                request,
            };
            if let Some(job) = run.unfinished().map(|j| j.id.clone()) {
                run.lease = leases.get(&job).map(|l| Holder {
                    owner: l.owner.clone(),
                    expires_at: l.expires_at,
                    gone: Engine::holder_is_gone(&l.owner),
                });
                run.steps = steps.get(&job).cloned().unwrap_or_default();
            }
            runs.push(run);
        }
        let kept = work
            .awaiting_cleanup
            .into_iter()
            .map(|job| Kept {
                steps: steps.get(&job.id).cloned().unwrap_or_default(),
                driving: self.is_driving(&Task::Cleanup(job.id.clone())),
                job,
            })
            .collect();
        // Requests no longer in play are forgotten.
        self.forget_retention_checks(&runs);
        Ok(Snapshot {
            runs,
            kept,
            runner: Runner {
                max_concurrent: self.max_concurrent,
                runners: self.engine.azure.runners_sharing(),
                restore_slots: self.engine.azure.restore_cap(),
                active: self.active(),
                keep_original: chrono::Duration::hours(
                    self.engine.config.keep_original_hours as i64,
                ),
            },
        })
    }

    /// The environment's estimates, from its history at most
    /// [`ESTIMATES_REREAD`] ago.
    async fn estimates_of(
        &self,
        env: &Environment,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Estimates, EngineError> {
        if let Some((est, _)) = self
            .estimates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&env.name)
            .filter(|(_, at)| now < *at + ESTIMATES_REREAD && *at <= now)
        {
            return Ok(est.clone());
        }
        let est = self.engine.estimates(env).await?;
        self.estimates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(env.name.clone(), (est.clone(), now));
        Ok(est)
    }
}
