//! The Microsoft.Sql operations pitr uses (api-version 2023-08-01).
use super::client::{last_segment, parse_json, ArmClient, Retry};
use super::error::AzureError;
use super::lro::{Begun, Operation};
use super::models::{Database, RestoreSpec, RetentionPolicy, SQL_API_VERSION};
use azure_core::http::Method;

impl ArmClient {
    /// `None` when the database does not exist.
    pub async fn get_database(&self, id: &str) -> Result<Option<Database>, AzureError> {
        let op = format!("GET database {}", last_segment(id));
        let url = self.url(id, SQL_API_VERSION)?;
        match self.send(&op, Method::Get, &url, None).await {
            Ok(r) => parse_json(&op, &r.body).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Starts a point-in-time restore into the new database `target_id`.
    /// Sent once: only a 429 (which Azure did not act on) is retried here.
    pub async fn begin_restore(
        &self,
        target_id: &str,
        spec: &RestoreSpec,
    ) -> Result<Begun, AzureError> {
        let op = format!("PUT {}", last_segment(target_id));
        self.begin(
            &op,
            Method::Put,
            target_id,
            SQL_API_VERSION,
            Some(&spec.body()),
            Retry::ThrottledOnly,
        )
        .await
    }

    /// Renames a database on the same server (synchronous).
    pub async fn rename_database(&self, id: &str, new_id: &str) -> Result<(), AzureError> {
        let op = format!("rename {} -> {}", last_segment(id), last_segment(new_id));
        let url = self.url(&format!("{id}/move"), SQL_API_VERSION)?;
        let body = serde_json::json!({ "id": new_id });
        self.send_with(&op, Method::Post, &url, Some(&body), Retry::ThrottledOnly)
            .await?;
        Ok(())
    }

    /// Starts deleting a database. `None`: already gone or deleted at once.
    pub async fn begin_delete_database(&self, id: &str) -> Result<Option<Operation>, AzureError> {
        let op = format!("DELETE database {}", last_segment(id));
        match self
            .begin(
                &op,
                Method::Delete,
                id,
                SQL_API_VERSION,
                None,
                Retry::Transient,
            )
            .await
        {
            Ok(begun) => Ok(begun.into_operation()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The database's short-term backup retention, in days (`None` when
    /// Azure has no policy to show).
    pub async fn get_retention_days(&self, database_id: &str) -> Result<Option<u32>, AzureError> {
        let op = format!("GET retention of {}", last_segment(database_id));
        let url = self.url(
            &format!("{database_id}/backupShortTermRetentionPolicies/default"),
            SQL_API_VERSION,
        )?;
        match self.send(&op, Method::Get, &url, None).await {
            Ok(r) => {
                let policy: RetentionPolicy = parse_json(&op, &r.body)?;
                Ok(policy.properties.retention_days)
            }
            // No policy to read: the configured retention applies.
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}
