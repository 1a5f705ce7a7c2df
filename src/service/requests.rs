//! Requests as people handle them: submit, reschedule, accept, reject,
//! cancel, and the deployments the code-version rule reads. Each asks the
//! roles first, then the engine checks every rule before anything is
//! written (a broken rule writes nothing).
use super::{may, Actor, Kind, Permission, Service, ServiceError};
use crate::domain::lifecycle::LifecycleEvent;
use crate::domain::{Acknowledgements, RequestId, RequestSpec, RestoreRequest, Window};
use chrono::{DateTime, Utc};

pub use crate::engine::requests::Reschedule;

/// A new request as a person gives it (the requester is the caller).
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub environment: String,
    pub database: String,
    pub restore_point: DateTime<Utc>,
    pub window: Window,
    pub acks: Acknowledgements,
    pub reason: Option<String>,
    pub prestage: bool,
    /// Operators only: a window sooner than 24 hours ahead, for this reason.
    pub emergency: Option<String>,
}

fn given(s: Option<String>) -> Option<String> {
    s.filter(|r| !r.trim().is_empty())
}

impl Service {
    /// Checks a permission that needs no facts of the call (a front end
    /// asks it before it reads a body, so that a caller without the role
    /// learns nothing from how the body is read).
    pub fn may(&self, who: &Actor, what: &Permission<'_>) -> Result<(), ServiceError> {
        may(who, what)
    }

    /// Submits a request as `who`: the role and the environment's groups,
    /// then every rule (Azure is asked for the database's earliest restore
    /// date and retention). Returns it with the warnings acknowledged.
    pub async fn submit(
        &self,
        who: &Actor,
        new: NewRequest,
    ) -> Result<(RestoreRequest, Vec<String>), ServiceError> {
        may(
            who,
            &Permission::Submit {
                environment_groups: &[],
                emergency: false,
            },
        )?;
        let emergency = given(new.emergency);
        let groups = self
            .config
            .environment(&new.environment)
            .map(|e| e.requester_groups.clone())
            .unwrap_or_default();
        may(
            who,
            &Permission::Submit {
                environment_groups: &groups,
                emergency: emergency.is_some(),
            },
        )?;
        let spec = RequestSpec {
            environment: new.environment,
            database: new.database,
            restore_point: new.restore_point,
            window: new.window,
            acks: new.acks,
            requester: who.actor.clone(),
            reason: new.reason,
            prestage: new.prestage,
            emergency,
        };
        // The catalog's rules first: they need no Azure (nor credentials).
        crate::domain::rules::check_catalog(self.config.environment(&spec.environment), &spec)?;
        let done = self
            .engine()?
            .as_actor(&who.actor)
            .submit(spec)
            .await
            .map_err(|e| ServiceError::from_engine(e, Kind::Invalid))?;
        self.changed();
        Ok(done)
    }

    /// Changes the window and/or restore point of a request that has not
    /// started (its requester, or an operator); every rule is checked again.
    pub async fn reschedule(
        &self,
        who: &Actor,
        id: &RequestId,
        mut change: Reschedule,
    ) -> Result<(RestoreRequest, Vec<String>), ServiceError> {
        may(
            who,
            &Permission::Reschedule {
                own: true,
                emergency: false,
            },
        )?;
        let req = self.load(id).await?;
        change.emergency = given(change.emergency);
        may(
            who,
            &Permission::Reschedule {
                own: req.spec.requester == who.actor,
                emergency: change.emergency.is_some(),
            },
        )?;
        if change.window_start.is_none()
            && change.window_end.is_none()
            && change.restore_point.is_none()
        {
            return Err(ServiceError::bad_input(
                "nothing to reschedule: give a new window start, window end and/or restore point",
            ));
        }
        let done = self
            .engine()?
            .as_actor(&who.actor)
            .reschedule(id, change)
            .await
            .map_err(|e| ServiceError::from_engine(e, Kind::Conflict))?;
        self.changed();
        Ok(done)
    }

    /// Accepts a submitted request (operators); it must still be
    /// restorable at its window (Azure is asked).
    pub async fn accept(
        &self,
        who: &Actor,
        id: &RequestId,
    ) -> Result<RestoreRequest, ServiceError> {
        may(who, &Permission::Accept)?;
        self.transition(who, id, LifecycleEvent::Accept, None).await
    }

    /// Rejects a submitted request, with a reason (operators).
    pub async fn reject(
        &self,
        who: &Actor,
        id: &RequestId,
        reason: Option<String>,
    ) -> Result<RestoreRequest, ServiceError> {
        may(who, &Permission::Reject)?;
        let reason =
            given(reason).ok_or_else(|| ServiceError::bad_input("a rejection needs a reason"))?;
        self.transition(who, id, LifecycleEvent::Reject, Some(reason))
            .await
    }

    /// Cancels a request before its run starts (its requester, or an
    /// operator).
    pub async fn cancel(
        &self,
        who: &Actor,
        id: &RequestId,
        reason: Option<String>,
    ) -> Result<RestoreRequest, ServiceError> {
        may(who, &Permission::Cancel { own: true })?;
        let req = self.load(id).await?;
        may(
            who,
            &Permission::Cancel {
                own: req.spec.requester == who.actor,
            },
        )?;
        self.transition(who, id, LifecycleEvent::Cancel, reason)
            .await
    }

    async fn transition(
        &self,
        who: &Actor,
        id: &RequestId,
        event: LifecycleEvent,
        note: Option<String>,
    ) -> Result<RestoreRequest, ServiceError> {
        let r = self
            .engine()?
            .as_actor(&who.actor)
            .transition(id, event, note)
            .await
            .map_err(|e| ServiceError::from_engine(e, Kind::Conflict))?;
        self.changed();
        Ok(r)
    }

    /// Records that `version` was deployed to `environment` at `at`
    /// (operators), for the code-version rule.
    pub async fn add_deployment(
        &self,
        who: &Actor,
        environment: &str,
        version: &str,
        at: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        may(who, &Permission::RecordDeployment)?;
        self.environment(environment)?;
        if version.trim().is_empty() {
            return Err(ServiceError::bad_input(
                "the version must not be empty (e.g. 10.0.38)",
            ));
        }
        self.engine()?
            .as_actor(&who.actor)
            .add_deployment(environment, version, at)
            .await
            .map_err(|e| ServiceError::from_engine(e, Kind::Invalid))
    }
}
