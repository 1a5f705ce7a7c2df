//! What people read: a request in full, the requests, the audit trail, the
//! environments with their history, the notification deliveries; each
//! asks the `Read` role first, and each returns the one representation of
//! [`super::views`] (or the domain values it is built from).
use super::views::{EnvironmentDetail, RequestDetail};
use super::{may, Actor, Permission, Service, ServiceError};
use crate::domain::{Environment, RequestEvent, RequestId, RequestStatus, RestoreRequest};
use crate::store::{DeliveryRecord, StoreError};

/// Which requests a list shows (every field optional).
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub status: Option<RequestStatus>,
    pub environment: Option<String>,
}

impl Service {
    /// The requests, newest first.
    pub async fn requests(
        &self,
        who: &Actor,
        filter: &RequestFilter,
    ) -> Result<Vec<RestoreRequest>, ServiceError> {
        may(who, &Permission::Read)?;
        let mut all = self.store.list_requests().await?;
        all.retain(|r| {
            filter.status.is_none_or(|s| r.status == s)
                && filter
                    .environment
                    .as_deref()
                    .is_none_or(|e| r.spec.environment == e)
        });
        Ok(all)
    }

    /// A request with its audit trail, runs, the latest run's steps, the
    /// downtime and the runner holding it (`request show`).
    pub async fn request_detail(
        &self,
        who: &Actor,
        id: &RequestId,
    ) -> Result<RequestDetail, ServiceError> {
        may(who, &Permission::Read)?;
        RequestDetail::load(&self.store, &self.config, self.clock.now(), id)
            .await?
            .ok_or_else(|| StoreError::RequestNotFound(id.clone()).into())
    }

    /// A request as stored (for a front end that asks facts of it, such as
    /// whether the caller submitted it).
    pub async fn request(
        &self,
        who: &Actor,
        id: &RequestId,
    ) -> Result<RestoreRequest, ServiceError> {
        may(who, &Permission::Read)?;
        self.load(id).await
    }

    /// The audit trail: every transition with who, when and why, oldest first.
    pub async fn history(
        &self,
        who: &Actor,
        id: &RequestId,
    ) -> Result<Vec<RequestEvent>, ServiceError> {
        may(who, &Permission::Read)?;
        self.load(id).await?;
        Ok(self.store.request_events(id).await?)
    }

    /// The configured environments.
    pub fn environments(&self, who: &Actor) -> Result<&[Environment], ServiceError> {
        may(who, &Permission::Read)?;
        Ok(&self.config.environments)
    }

    /// The environments `who` may request a restore for: those their roles
    /// and the environment's requester groups allow, and that the catalog's
    /// rules do not refuse outright (production, one-box SQL Server).
    pub fn requestable_environments(&self, who: &Actor) -> Vec<&Environment> {
        requestable(&self.config.environments, who)
    }

    /// An environment with its restores, rollbacks and deployments.
    pub async fn environment_detail(
        &self,
        who: &Actor,
        name: &str,
    ) -> Result<EnvironmentDetail, ServiceError> {
        let (env, history) = self.environment_history(who, name).await?;
        Ok(EnvironmentDetail::new(env, &history))
    }

    /// An environment and its history, oldest first.
    pub async fn environment_history(
        &self,
        who: &Actor,
        name: &str,
    ) -> Result<(&Environment, Vec<crate::domain::EnvironmentEvent>), ServiceError> {
        may(who, &Permission::Read)?;
        let env = self
            .environment(name)
            .map_err(|e| e.as_kind(super::Kind::NotFound))?;
        Ok((env, self.store.environment_events(name).await?))
    }

    /// Notification deliveries, newest first.
    pub async fn deliveries(
        &self,
        who: &Actor,
        failed_only: bool,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, ServiceError> {
        may(who, &Permission::Read)?;
        Ok(self.store.deliveries(failed_only, limit).await?)
    }
}

/// The environments of `envs` that `who` may request a restore for.
fn requestable<'a>(envs: &'a [Environment], who: &Actor) -> Vec<&'a Environment> {
    envs.iter()
        .filter(|e| {
            let groups = Permission::Submit {
                environment_groups: &e.requester_groups,
                emergency: false,
            };
            super::roles::decide(who, &groups).is_ok()
                && e.database_kind == crate::domain::DatabaseKind::AzureSql
                && e.tier != crate::domain::Tier::Production
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DatabaseKind, Tier};
    use crate::service::Role;

    #[test]
    fn only_what_a_submit_would_not_refuse_is_offered() {
        let env = |name: &str| Environment::sandbox(name, "s", "rg", "srv");
        let prod = Environment {
            tier: Tier::Production,
            ..env("prod")
        };
        let onebox = Environment {
            database_kind: DatabaseKind::SqlServer,
            ..env("onebox")
        };
        let grouped = Environment {
            requester_groups: vec!["g1".into()],
            ..env("grouped")
        };
        let envs = [env("uat"), prod, onebox, grouped];
        let who = |roles: &[Role], groups: &[&str]| Actor {
            actor: "x".into(),
            roles: roles.iter().copied().collect(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        let names = |a: &Actor| -> Vec<String> {
            requestable(&envs, a)
                .iter()
                .map(|e| e.name.clone())
                .collect()
        };
        assert_eq!(names(&who(&[Role::Requester], &[])), ["uat"]);
        assert_eq!(names(&who(&[Role::Requester], &["g1"])), ["uat", "grouped"]);
        assert_eq!(names(&who(&[Role::Operator], &[])), ["uat", "grouped"]);
        assert!(names(&who(&[Role::Viewer], &["g1"])).is_empty());
    }
}
