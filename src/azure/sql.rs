//! The Microsoft.Sql operations pitr uses (api-version 2023-08-01).
use super::client::{last_segment, parse_json, ArmClient, Retry};
use super::error::AzureError;
use super::lro::{Begun, Operation};
use super::models::{
    Auditing, Database, LongTermRetention, PolicyResource, ReplicationLink, RestoreSpec,
    ShortTermRetention, SQL_API_VERSION,
};
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
        Ok(self
            .get_short_term_retention(database_id)
            .await?
            .and_then(|p| p.retention_days))
    }

    /// `GET {DB}/backupShortTermRetentionPolicies/default` (`None`: no
    /// policy to show).
    pub async fn get_short_term_retention(
        &self,
        database_id: &str,
    ) -> Result<Option<ShortTermRetention>, AzureError> {
        self.get_policy(database_id, SHORT_TERM).await
    }

    /// `GET {DB}/backupLongTermRetentionPolicies/default` (`None`: no
    /// policy to show).
    pub async fn get_long_term_retention(
        &self,
        database_id: &str,
    ) -> Result<Option<LongTermRetention>, AzureError> {
        self.get_policy(database_id, LONG_TERM).await
    }

    /// Starts `PUT {DB}/backupShortTermRetentionPolicies/default`. The PUT
    /// states the whole policy, so sending it again does no harm.
    pub async fn begin_set_short_term_retention(
        &self,
        database_id: &str,
        policy: &ShortTermRetention,
    ) -> Result<Option<Operation>, AzureError> {
        self.put_policy(database_id, SHORT_TERM, policy).await
    }

    /// Starts `PUT {DB}/backupLongTermRetentionPolicies/default`.
    pub async fn begin_set_long_term_retention(
        &self,
        database_id: &str,
        policy: &LongTermRetention,
    ) -> Result<Option<Operation>, AzureError> {
        self.put_policy(database_id, LONG_TERM, policy).await
    }

    /// `GET {DB}/auditingSettings/default`: the database's own auditing
    /// (`None`: Azure has none to show).
    pub async fn get_auditing(&self, database_id: &str) -> Result<Option<Auditing>, AzureError> {
        self.get_policy(database_id, "auditingSettings").await
    }

    /// Defender's `state` for the database (`advancedThreatProtectionSettings/Default`):
    /// `Enabled`, `Disabled` or `New` (never set on it).
    pub async fn get_threat_protection(
        &self,
        database_id: &str,
    ) -> Result<Option<String>, AzureError> {
        #[derive(serde::Deserialize)]
        struct Props {
            #[serde(default)]
            state: Option<String>,
        }
        let p: Option<Props> = self
            .get_policy(database_id, "advancedThreatProtectionSettings")
            .await?;
        Ok(p.and_then(|p| p.state))
    }

    /// `PUT {DB}/advancedThreatProtectionSettings/Default` (200/201).
    pub async fn begin_set_threat_protection(
        &self,
        database_id: &str,
        state: &str,
    ) -> Result<Option<Operation>, AzureError> {
        self.put_policy(
            database_id,
            "advancedThreatProtectionSettings",
            &serde_json::json!({ "state": state }),
        )
        .await
    }

    /// `PATCH {DB}` with `properties` (what a restore PUT cannot set, such
    /// as `readScale`). States values, so sending it again does no harm.
    pub async fn begin_patch_database(
        &self,
        database_id: &str,
        properties: &serde_json::Value,
    ) -> Result<Option<Operation>, AzureError> {
        let op = format!("PATCH {}", last_segment(database_id));
        let body = serde_json::json!({ "properties": properties });
        let begun = self
            .begin(
                &op,
                Method::Patch,
                database_id,
                SQL_API_VERSION,
                Some(&body),
                Retry::Transient,
            )
            .await?;
        Ok(begun.into_operation())
    }

    /// `GET {DB}/replicationLinks`: the database's geo-replication links
    /// (one page: a database has a handful at most).
    pub async fn list_replication_links(
        &self,
        database_id: &str,
    ) -> Result<Vec<ReplicationLink>, AzureError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            value: Vec<PolicyResource<ReplicationLink>>,
        }
        let op = format!("GET replicationLinks of {}", last_segment(database_id));
        let url = self.url(&format!("{database_id}/replicationLinks"), SQL_API_VERSION)?;
        let r = self.send(&op, Method::Get, &url, None).await?;
        let page: Page = parse_json(&op, &r.body)?;
        Ok(page.value.into_iter().map(|l| l.properties).collect())
    }

    async fn get_policy<P: serde::de::DeserializeOwned>(
        &self,
        database_id: &str,
        collection: &str,
    ) -> Result<Option<P>, AzureError> {
        let op = format!("GET {collection} of {}", last_segment(database_id));
        let url = self.url(
            &format!("{database_id}/{collection}/default"),
            SQL_API_VERSION,
        )?;
        match self.send(&op, Method::Get, &url, None).await {
            Ok(r) => {
                let policy: PolicyResource<P> = parse_json(&op, &r.body)?;
                Ok(Some(policy.properties))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put_policy<P: serde::Serialize>(
        &self,
        database_id: &str,
        collection: &str,
        policy: &P,
    ) -> Result<Option<Operation>, AzureError> {
        let op = format!("PUT {collection} of {}", last_segment(database_id));
        let body = serde_json::json!({ "properties": policy });
        let begun = self
            .begin(
                &op,
                Method::Put,
                &format!("{database_id}/{collection}/default"),
                SQL_API_VERSION,
                Some(&body),
                Retry::Transient,
            )
            .await?;
        Ok(begun.into_operation())
    }
}

const SHORT_TERM: &str = "backupShortTermRetentionPolicies";
const LONG_TERM: &str = "backupLongTermRetentionPolicies";
