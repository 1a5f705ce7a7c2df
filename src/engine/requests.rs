//! Requests as users handle them: submit, reschedule, lifecycle moves, and
//! the environment history the rules need. Every rule is checked before
//! anything is written; a broken rule writes nothing.
use super::{Engine, EngineError};
use crate::domain::lifecycle::{transition, LifecycleEvent};
use crate::domain::request::note;
use crate::domain::rules::{self, AzureFacts};
use crate::domain::time::show;
use crate::domain::{
    Environment, EnvironmentEvent, HistoryEntry, RequestEvent, RequestId, RequestSpec,
    RequestStatus, RestoreRequest, Window,
};
use chrono::{DateTime, Utc};

/// What a reschedule changes; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct Reschedule {
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub restore_point: Option<DateTime<Utc>>,
    pub ack_version_mismatch: bool,
    pub emergency: Option<String>,
}

impl Engine {
    /// Azure's earliest restore date for the F&O database, and the
    /// environment's restores and deployments.
    async fn facts(&self, env: &Environment) -> Result<AzureFacts, EngineError> {
        let db = self
            .azure
            .get_database(&env.database_id(&env.database))
            .await?
            .ok_or_else(|| {
                EngineError::BadInput(format!(
                    "database '{}' was not found on server '{}' (resource group '{}'); check the environment's configuration",
                    env.database, env.server, env.resource_group
                ))
            })?;
        let retention_days = self
            .azure
            .get_retention_days(&env.database_id(&env.database))
            .await?;
        let history = self.store.environment_events(&env.name).await?;
        Ok(AzureFacts {
            earliest_restore_date: db.properties.earliest_restore_date,
            retention_days,
            // The history of the database live now: a rolled-back restore
            // no longer bounds restore points (the original is back).
            last_restore_end: crate::domain::request::standing_restores(&history)
                .iter()
                .filter_map(|r| r.finished_at)
                .max(),
            deployments: history
                .iter()
                .filter_map(|e| e.version().map(|v| (e.at, v.to_string())))
                .collect(),
        })
    }

    /// Validates a new request against every rule and stores it. Returns
    /// it with the warnings the requester acknowledged.
    pub async fn submit(
        &self,
        new: RequestSpec,
    ) -> Result<(RestoreRequest, Vec<String>), EngineError> {
        let env = self.environments.iter().find(|e| e.name == new.environment);
        rules::check_catalog(env, &new)?;
        let env = self.environment(&new.environment)?;
        let facts = self.facts(env).await?;
        let now = self.clock.now();
        let warnings = rules::check_times(env, &new, &facts, now)?;
        let req = RestoreRequest::new(RequestId::generate(), new, now);
        let mut note = req.spec.reason.clone().unwrap_or_default();
        if let Some(e) = &req.spec.emergency {
            note = format!("{note} [emergency: {e}]").trim().to_string();
        }
        for w in &warnings {
            note = format!("{note} [{w}]").trim().to_string();
        }
        let ev = RequestEvent {
            request_id: req.id.clone(),
            at: now,
            actor: self.actor.clone(),
            from: None,
            to: RequestStatus::Submitted,
            note: (!note.is_empty()).then_some(note),
        };
        self.store.insert_request(&req, &ev).await?;
        Ok((req, warnings))
    }

    /// Changes the window and/or restore point of a request that has not
    /// started, checking every rule again.
    pub async fn reschedule(
        &self,
        id: &RequestId,
        change: Reschedule,
    ) -> Result<(RestoreRequest, Vec<String>), EngineError> {
        let req = self.request(id).await?;
        let to = transition(req.status, LifecycleEvent::Reschedule).map_err(|e| e.of(&req.id))?;
        let env = self.environment(&req.spec.environment)?;
        let old = &req.spec;
        let mut candidate = old.clone();
        candidate.acks.version_mismatch |= change.ack_version_mismatch;
        candidate.restore_point = change.restore_point.unwrap_or(old.restore_point);
        candidate.window = Window {
            start: change.window_start.unwrap_or(old.window.start),
            end: change.window_end.unwrap_or(old.window.end),
        };
        candidate.emergency = change.emergency.clone().or(old.emergency.clone());
        rules::check_catalog(Some(env), &candidate)?;
        let facts = self.facts(env).await?;
        let warnings = rules::check_times(env, &candidate, &facts, self.clock.now())?;
        let note = format!(
            "{}: restore point {} -> {}, window {} .. {} -> {} .. {}",
            note::RESCHEDULED,
            show(old.restore_point),
            show(candidate.restore_point),
            show(old.window.start),
            show(old.window.end),
            show(candidate.window.start),
            show(candidate.window.end)
        );
        // An operator's emergency reason is part of the record, as on submit.
        let note = match &change.emergency {
            Some(e) if !e.trim().is_empty() => format!("{note} [emergency: {e}]"),
            _ => note,
        };
        // Every rule holds again: a warning from before is resolved.
        let updated = RestoreRequest {
            spec: candidate,
            warning: None,
            ..req.clone()
        };
        let ev = self.event(&req, to, Some(note));
        self.store.update_request(&updated, &ev).await?;
        Ok((self.request(id).await?, warnings))
    }

    /// Moves a request through its lifecycle, recording who and why. An
    /// accepted request must still be restorable at its window.
    pub async fn transition(
        &self,
        id: &RequestId,
        event: LifecycleEvent,
        note: Option<String>,
    ) -> Result<RestoreRequest, EngineError> {
        let req = self.request(id).await?;
        let to = transition(req.status, event).map_err(|e| e.of(&req.id))?;
        if event == LifecycleEvent::Accept {
            let env = self.environment(&req.spec.environment)?;
            let facts = self.facts(env).await?;
            rules::check_retention_at_window(env, &req.spec, &facts)?;
        }
        let ev = self.event(&req, to, note);
        self.store.transition_request(&ev).await?;
        self.request(id).await
    }

    /// Looks again at whether an accepted request's restore point will still
    /// be restorable when its window opens (retention may have been
    /// shortened since it was accepted), and flags the request if not: its
    /// warning, shown by `request show` and `list`, and a line in its audit
    /// trail when the warning appears, changes or clears. Returns the
    /// warning now in force.
    pub async fn recheck_retention(
        &self,
        req: &RestoreRequest,
    ) -> Result<Option<String>, EngineError> {
        if req.status != RequestStatus::Accepted {
            return Ok(req.warning.clone());
        }
        let env = self.environment(&req.spec.environment)?;
        let facts = self.facts(env).await?;
        let warning = rules::check_retention_at_window(env, &req.spec, &facts)
            .err()
            .map(|v| {
                format!(
                    "{v}; reschedule it (`pitr request reschedule {}`) or it fails at its window",
                    req.id
                )
            });
        if self.store.set_warning(&req.id, warning.as_deref()).await? {
            let note = match &warning {
                Some(w) => {
                    tracing::warn!(request = %req.id, warning = %w, "request flagged");
                    format!("{}: {w}", note::FLAGGED)
                }
                None => format!(
                    "{}: the restore point is restorable at the window",
                    note::WARNING_CLEARED
                ),
            };
            self.store
                .transition_request(&self.event(req, req.status, Some(note)))
                .await?;
        }
        Ok(warning)
    }

    /// Records a deployment of a code version (for the code-version rule).
    pub async fn add_deployment(
        &self,
        environment: &str,
        version: &str,
        at: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        self.environment(environment)?;
        if version.trim().is_empty() {
            return Err(EngineError::BadInput(
                "--version must not be empty (e.g. 10.0.38)".into(),
            ));
        }
        self.store
            .add_environment_event(&EnvironmentEvent {
                environment: environment.to_string(),
                at,
                entry: HistoryEntry::Deployment {
                    version: version.trim().to_string(),
                    note: Some(format!("recorded by {}", self.actor)),
                },
            })
            .await?;
        Ok(())
    }
}
