//! Runs as people start them: run (for real, or a rehearsal against a mock
//! Azure seeded from the config), resume, rollback, and a person's word on
//! a step that waits for one. Each is checked and claimed before it
//! answers; the run itself goes on in the background, owned by the service
//! (awaited at shutdown), and its caller may wait for its outcome
//! ([`Started::outcome`]) or follow it ([`Service::events`]).
use super::{may, Actor, Kind, Permission, Service, ServiceError};
use crate::domain::{Job, RequestId, StepName};
use crate::engine::progress::ProgressEvent;
use crate::engine::{Engine, Outcome};
use tokio::sync::oneshot;
use tracing::Instrument;

/// A run claimed and going on in the background.
pub struct Started {
    pub job: Job,
    /// A rehearsal's mock Azure (it lives as long as the run).
    pub mock_url: Option<String>,
    outcome: oneshot::Receiver<Result<Outcome, ServiceError>>,
}

impl Started {
    /// Waits for the run's end (dropping the [`Started`] instead leaves the
    /// run going).
    pub async fn outcome(self) -> Result<Outcome, ServiceError> {
        self.outcome.await.unwrap_or_else(|_| {
            Err(ServiceError::new(
                Kind::Unavailable,
                "the run's task ended without an outcome",
            ))
        })
    }
}

impl Service {
    /// Runs an accepted request now, or rehearses a submitted or accepted
    /// one (`dry_run`: against a mock Azure seeded from the config; the
    /// request's status is not changed). Operators.
    pub async fn run(
        &self,
        who: &Actor,
        id: &RequestId,
        dry_run: bool,
    ) -> Result<Started, ServiceError> {
        may(who, &Permission::Run)?;
        self.load(id).await?;
        if !dry_run {
            let engine = self.engine()?.as_actor(&who.actor).scoped(id);
            let job = engine.start(id, false).await.map_err(conflict)?;
            return Ok(self.drive(engine, job, None));
        }
        let scenario = super::rehearsal::rehearsal_scenario(&self.config.environments);
        let mock = crate::mock::MockAzure::start(
            scenario,
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            None,
        )
        .await
        .map_err(|e| ServiceError::new(Kind::Azure, e.to_string()))?;
        let azure =
            crate::azure::ArmClient::for_mock(&self.config.azure, &mock.url(), mock.ca_pem())
                .map_err(|e| ServiceError::new(Kind::Azure, e.to_string()))?;
        let engine = self.engine_on(azure, &who.actor).scoped(id);
        match engine.start(id, true).await {
            Ok(job) => Ok(self.drive(engine, job, Some(mock))),
            Err(e) => {
                mock.shutdown().await;
                Err(conflict(e))
            }
        }
    }

    /// Continues an interrupted run where it stopped (operators).
    pub async fn resume(&self, who: &Actor, id: &RequestId) -> Result<Started, ServiceError> {
        may(who, &Permission::Resume)?;
        let engine = self.engine()?.as_actor(&who.actor).scoped(id);
        let job = engine.resumable(id).await.map_err(conflict)?;
        if !engine.lease_is_free(&job).await? {
            return Err(ServiceError::conflict(format!(
                "job {} is being run by a live runner; follow request {id} instead",
                job.id
            )));
        }
        engine
            .progress
            .event(ProgressEvent::Note(format!("resuming job {}", job.id)));
        Ok(self.drive(engine, job, None))
    }

    /// Undoes a finished run: the original database back under its name,
    /// the environment online (operators).
    pub async fn rollback(
        &self,
        who: &Actor,
        id: &RequestId,
        reason: Option<String>,
    ) -> Result<Started, ServiceError> {
        may(who, &Permission::Rollback)?;
        let engine = self.engine()?.as_actor(&who.actor).scoped(id);
        let job = engine
            .prepare_rollback(id, reason)
            .await
            .map_err(conflict)?;
        Ok(self.drive(engine, job, None))
    }

    /// Records a person's word on a step that waits for one (a `manual`
    /// action, or a webhook whose callback did not come), then continues
    /// the run (operators). `id` is the job's id or its request's; with
    /// `failure`, the step fails for that reason and the run recovers.
    pub async fn confirm(
        &self,
        who: &Actor,
        id: &str,
        step: StepName,
        failure: Option<String>,
    ) -> Result<Started, ServiceError> {
        may(who, &Permission::Confirm)?;
        let engine = self.engine()?.as_actor(&who.actor);
        let job = engine
            .record_confirmation(id, step, failure, None)
            .await
            .map_err(conflict)?;
        let engine = engine.scoped(&job.request_id);
        engine.progress.event(ProgressEvent::Note(format!(
            "{step} of job {} confirmed; continuing the run",
            job.id
        )));
        self.changed();
        Ok(self.drive(engine, job, None))
    }

    /// Carries a started or prepared job to its end in the background.
    fn drive(&self, engine: Engine, job: Job, mock: Option<crate::mock::MockAzure>) -> Started {
        let (tx, rx) = oneshot::channel();
        let changed = self.changes();
        let request = job.request_id.clone();
        let mock_url = mock.as_ref().map(|m| m.url());
        let running = job.clone();
        let handle = tokio::spawn(
            async move {
                let outcome = engine.drive_job(running).await;
                match &outcome {
                    Ok(o) => {
                        tracing::info!(request = %request, outcome = %o.describe(), "run ended")
                    }
                    Err(e) => tracing::warn!(request = %request, error = %e, "run stopped"),
                }
                if let Some(mock) = mock {
                    mock.shutdown().await;
                }
                changed.notify_one();
                let _ = tx.send(outcome.map_err(|e| ServiceError::from_engine(e, Kind::Conflict)));
            }
            .in_current_span(),
        );
        self.keep(handle);
        self.changed();
        Started {
            job,
            mock_url,
            outcome: rx,
        }
    }
}

fn conflict(e: crate::engine::EngineError) -> ServiceError {
    ServiceError::from_engine(e, Kind::Conflict)
}
