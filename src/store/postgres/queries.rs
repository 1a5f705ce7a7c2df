//! The `Store` operations in SQL. Each write locks the rows its decision
//! depends on, reads them inside its transaction, asks the rule in
//! [`crate::store::rules`], and writes (see the module doc of
//! [`super`] for the locks).
use super::rows::*;
use super::sql::*;
use super::{db, PostgresStore};
use crate::domain::{
    EnvironmentEvent, Job, JobId, RequestEvent, RequestId, RestoreRequest, StepRecord,
};
use crate::store::{rules, Lease, Result, Store, StoreError, StoreRows};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

/// The advisory lock that serializes claims under the limit on concurrent
/// runs (one 64-bit key, beside the migration and outbox locks).
const CLAIM_LIMIT_LOCK: i64 = 0x7069_7472_0000_0003;

#[async_trait]
impl Store for PostgresStore {
    async fn insert_request(&self, req: &RestoreRequest, event: &RequestEvent) -> Result<()> {
        const OP: &str = "insert_request";
        rules::event_matches(OP, req, event)?;
        let environment = &req.spec.environment;
        let mut conn = self.conn(OP).await?;
        let tx = conn.transaction().await.map_err(db(OP))?;
        // The row that would conflict may not exist yet: lock the name.
        exec(
            &tx,
            OP,
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&ENVIRONMENT_LOCKS, environment],
        )
        .await?;
        rules::one_active(environment, requests_of(&tx, OP, environment).await?)?;
        if !insert_request_row(&tx, OP, req).await? {
            // The unique index saw an active request the check did not (a
            // writer that skipped the lock): the rule names it.
            rules::one_active(environment, requests_of(&tx, OP, environment).await?)?;
            return Err(StoreError::Database(format!(
                "{OP}: another request of environment '{environment}' was active a moment ago; \
                 submit again"
            )));
        }
        super::outbox::record_event(&tx, OP, event).await?;
        tx.commit().await.map_err(db(OP))
    }

    async fn get_request(&self, id: &RequestId) -> Result<Option<RestoreRequest>> {
        const OP: &str = "get_request";
        let conn = self.conn(OP).await?;
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1");
        let rows = query_all(&conn, OP, &sql, &[&id.as_str()], request_from_row).await?;
        Ok(rows.into_iter().next())
    }

    async fn set_warning(&self, id: &RequestId, warning: Option<&str>) -> Result<bool> {
        const OP: &str = "set_warning";
        let conn = self.conn(OP).await?;
        let found: Option<String> = first(
            &conn,
            OP,
            "SELECT id FROM requests WHERE id = $1",
            &[&id.as_str()],
        )
        .await?;
        rules::request_exists(id, found.is_some())?;
        let changed = exec(
            &conn,
            OP,
            "UPDATE requests SET warning = $2 WHERE id = $1 AND warning IS DISTINCT FROM $2",
            &[&id.as_str(), &warning],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn list_requests(&self) -> Result<Vec<RestoreRequest>> {
        const OP: &str = "list_requests";
        let conn = self.conn(OP).await?;
        // Ties on submitted_at (a manual clock) go by insertion order.
        let sql =
            format!("SELECT {REQUEST_COLUMNS} FROM requests ORDER BY submitted_at DESC, seq DESC");
        query_all(&conn, OP, &sql, &[], request_from_row).await
    }

    async fn transition_request(&self, event: &RequestEvent) -> Result<()> {
        const OP: &str = "transition_request";
        let mut conn = self.conn(OP).await?;
        let tx = conn.transaction().await.map_err(db(OP))?;
        let actual = lock_status(&tx, OP, &event.request_id).await?;
        rules::status_is(&event.request_id, event.from, actual)?;
        exec(
            &tx,
            OP,
            "UPDATE requests SET status = $2, updated_at = $3 WHERE id = $1",
            &[&event.request_id.as_str(), &event.to.as_str(), &event.at],
        )
        .await?;
        super::outbox::record_event(&tx, OP, event).await?;
        tx.commit().await.map_err(db(OP))
    }

    /// As SQLite's: the editable fields and the status (`event.to`) change,
    /// `updated_at` becomes `event.at`; identity, environment, database,
    /// acknowledgements and requester stay as submitted.
    async fn update_request(&self, req: &RestoreRequest, event: &RequestEvent) -> Result<()> {
        const OP: &str = "update_request";
        rules::event_matches(OP, req, event)?;
        let mut conn = self.conn(OP).await?;
        let tx = conn.transaction().await.map_err(db(OP))?;
        let actual = lock_status(&tx, OP, &req.id).await?;
        rules::status_is(&req.id, event.from, actual)?;
        let spec = &req.spec;
        exec(
            &tx,
            OP,
            "UPDATE requests SET restore_point = $2, window_start = $3, window_end = $4,
                 reason = $5, prestage = $6, status = $7, updated_at = $8, emergency = $9,
                 ack_version_mismatch = $10, warning = $11
             WHERE id = $1",
            &[
                &req.id.as_str(),
                &spec.restore_point,
                &spec.window.start,
                &spec.window.end,
                &spec.reason,
                &spec.prestage,
                &event.to.as_str(),
                &event.at,
                &spec.emergency,
                &spec.acks.version_mismatch,
                &req.warning,
            ],
        )
        .await?;
        super::outbox::record_event(&tx, OP, event).await?;
        tx.commit().await.map_err(db(OP))
    }

    async fn request_events(&self, id: &RequestId) -> Result<Vec<RequestEvent>> {
        const OP: &str = "request_events";
        let conn = self.conn(OP).await?;
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM request_events WHERE request_id = $1 ORDER BY id");
        query_all(&conn, OP, &sql, &[&id.as_str()], event_from_row).await
    }

    async fn claim_run(
        &self,
        job: &Job,
        start: Option<&RequestEvent>,
        owner: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
        limit: Option<usize>,
    ) -> Result<Lease> {
        const OP: &str = "claim_run";
        rules::start_matches(OP, job, start)?;
        let mut conn = self.conn(OP).await?;
        let tx = conn.transaction().await.map_err(db(OP))?;
        if limit.is_some() {
            // Limited claims are serialized by one transaction-scoped
            // advisory lock, taken before anything else: two runners
            // cannot both count N-1 and both start. (Only claims take it,
            // first, so it cannot deadlock with row locks.)
            exec(
                &tx,
                OP,
                "SELECT pg_advisory_xact_lock($1)",
                &[&CLAIM_LIMIT_LOCK],
            )
            .await?;
            let running: Option<i64> = first(
                &tx,
                OP,
                "SELECT COUNT(*) FROM jobs JOIN leases ON leases.job_id = jobs.id
                 WHERE jobs.status = 'running' AND NOT jobs.dry_run
                   AND leases.expires_at > $1",
                &[&now],
            )
            .await?;
            rules::under_limit(running.unwrap_or(0), limit)?;
        }
        // The request row serializes every claim of the request: a second
        // claimer waits here, then sees the first one's job.
        let status = lock_status(&tx, OP, &job.request_id).await?;
        let running: Option<String> = first(
            &tx,
            OP,
            "SELECT id FROM jobs WHERE request_id = $1 AND NOT dry_run
                 AND status = 'running' LIMIT 1",
            &[&job.request_id.as_str()],
        )
        .await?;
        rules::no_run_in_progress(&job.request_id, running.map(JobId::from))?;
        rules::status_is(&job.request_id, start.and_then(|e| e.from), status)?;
        insert_job_row(&tx, OP, job).await?;
        if let Some(event) = start {
            exec(
                &tx,
                OP,
                "UPDATE requests SET status = $2, updated_at = $3 WHERE id = $1",
                &[&event.request_id.as_str(), &event.to.as_str(), &event.at],
            )
            .await?;
            super::outbox::record_event(&tx, OP, event).await?;
        }
        let lease = rules::acquire(&job.id, None, owner, now, ttl)?;
        write_lease(&tx, OP, &lease).await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(lease)
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>> {
        const OP: &str = "get_job";
        let conn = self.conn(OP).await?;
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let rows = query_all(&conn, OP, &sql, &[&id.as_str()], job_from_row).await?;
        Ok(rows.into_iter().next())
    }

    async fn jobs_for_request(&self, request_id: &RequestId) -> Result<Vec<Job>> {
        const OP: &str = "jobs_for_request";
        let conn = self.conn(OP).await?;
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE request_id = $1 ORDER BY created_at, seq"
        );
        query_all(&conn, OP, &sql, &[&request_id.as_str()], job_from_row).await
    }

    /// Writes every field but the identity (`id`, `request_id`).
    async fn update_job(&self, job: &Job, fence: Option<&Lease>) -> Result<()> {
        const OP: &str = "update_job";
        let facts = facts_json(OP, &job.facts)?;
        let mut conn = self.conn(OP).await?;
        let tx = conn.transaction().await.map_err(db(OP))?;
        let exists = lock_job(&tx, OP, &job.id).await?;
        rules::fence(fence, lock_fencing(&tx, OP, &job.id).await?)?;
        rules::job_exists(&job.id, exists)?;
        let awaits = super::in_play::job_awaits_cleanup(&tx, OP, job).await?;
        exec(
            &tx,
            OP,
            "UPDATE jobs SET dry_run = $2, status = $3, plan = $4, created_at = $5,
                 updated_at = $6, finished_at = $7, facts = $8, error = $9,
                 awaiting_cleanup = $10
             WHERE id = $1",
            &[
                &job.id.as_str(),
                &job.dry_run,
                &job.status.as_str(),
                &plan_text(&job.plan),
                &job.created_at,
                &job.updated_at,
                &job.finished_at,
                &facts,
                &job.error,
                &awaits,
            ],
        )
        .await?;
        tx.commit().await.map_err(db(OP))
    }

    async fn save_step(
        &self,
        job_id: &JobId,
        step: &StepRecord,
        fence: Option<&Lease>,
    ) -> Result<()> {
        const OP: &str = "save_step";
        let mut conn = self.conn(OP).await?;
        let tx = conn.transaction().await.map_err(db(OP))?;
        // The job row lock also serializes the `seq` of new steps.
        let exists = lock_job(&tx, OP, job_id).await?;
        rules::fence(fence, lock_fencing(&tx, OP, job_id).await?)?;
        rules::job_exists(job_id, exists)?;
        let previous = super::outbox::step_status(&tx, OP, job_id, step).await?;
        // A new step goes after the job's others; an existing one keeps
        // its place (seq is not in the update list).
        exec(
            &tx,
            OP,
            "INSERT INTO job_steps (job_id, step, seq, status, attempts, external_ref,
                 started_at, finished_at, detail, error)
             VALUES ($1, $2,
                 (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_steps WHERE job_id = $1),
                 $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (job_id, step) DO UPDATE SET
                 status = EXCLUDED.status, attempts = EXCLUDED.attempts,
                 external_ref = EXCLUDED.external_ref, started_at = EXCLUDED.started_at,
                 finished_at = EXCLUDED.finished_at, detail = EXCLUDED.detail,
                 error = EXCLUDED.error",
            &[
                &job_id.as_str(),
                &step.step.as_str(),
                &step.status.as_str(),
                &i64::from(step.attempts),
                &step.external_ref,
                &step.started_at,
                &step.finished_at,
                &step.detail,
                &step.error,
            ],
        )
        .await?;
        if step.step == crate::domain::StepName::Cleanup {
            super::in_play::cleanup_saved(&tx, OP, job_id).await?;
        }
        super::outbox::step_event(&tx, OP, job_id, previous, step).await?;
        tx.commit().await.map_err(db(OP))
    }

    async fn steps(&self, job_id: &JobId) -> Result<Vec<StepRecord>> {
        const OP: &str = "steps";
        let conn = self.conn(OP).await?;
        let sql = format!("SELECT {STEP_COLUMNS} FROM job_steps WHERE job_id = $1 ORDER BY seq");
        query_all(&conn, OP, &sql, &[&job_id.as_str()], step_from_row).await
    }

    async fn work_in_play(&self) -> Result<crate::store::WorkInPlay> {
        super::in_play::work_in_play(self).await
    }

    async fn acquire_lease(
        &self,
        job_id: &JobId,
        owner: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Lease> {
        const OP: &str = "acquire_lease";
        let mut conn = self.conn(OP).await?;
        let tx = conn.transaction().await.map_err(db(OP))?;
        rules::job_exists(job_id, lock_job(&tx, OP, job_id).await?)?;
        let current = read_lease(&tx, OP, job_id, true).await?;
        let lease = rules::acquire(job_id, current, owner, now, ttl)?;
        write_lease(&tx, OP, &lease).await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(lease)
    }

    async fn take_over_lease(
        &self,
        job_id: &JobId,
        from_owner: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Lease> {
        const OP: &str = "take_over_lease";
        let mut conn = self.conn(OP).await?;
        let tx = conn.transaction().await.map_err(db(OP))?;
        lock_job(&tx, OP, job_id).await?;
        let current = read_lease(&tx, OP, job_id, true).await?;
        let lease = rules::take_over(job_id, current, from_owner, owner, now, ttl)?;
        write_lease(&tx, OP, &lease).await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(lease)
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Lease> {
        const OP: &str = "renew_lease";
        let mut conn = self.conn(OP).await?;
        let tx = conn.transaction().await.map_err(db(OP))?;
        rules::fence(Some(lease), lock_fencing(&tx, OP, &lease.job_id).await?)?;
        let renewed = rules::renewed(lease, now, ttl);
        write_lease(&tx, OP, &renewed).await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(renewed)
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        const OP: &str = "release_lease";
        let mut conn = self.conn(OP).await?;
        let tx = conn.transaction().await.map_err(db(OP))?;
        // A stale lease (taken over meanwhile) releases nothing.
        if rules::fence(Some(lease), lock_fencing(&tx, OP, &lease.job_id).await?).is_ok() {
            let released = Lease {
                expires_at: rules::RELEASED_AT,
                ..lease.clone()
            };
            write_lease(&tx, OP, &released).await?;
        }
        tx.commit().await.map_err(db(OP))
    }

    async fn get_lease(&self, job_id: &JobId) -> Result<Option<Lease>> {
        const OP: &str = "get_lease";
        let conn = self.conn(OP).await?;
        read_lease(&conn, OP, job_id, false).await
    }

    async fn add_environment_event(&self, ev: &EnvironmentEvent) -> Result<()> {
        const OP: &str = "add_environment_event";
        let conn = self.conn(OP).await?;
        insert_history_row(&conn, OP, ev).await
    }

    async fn environment_events(&self, environment: &str) -> Result<Vec<EnvironmentEvent>> {
        const OP: &str = "environment_history";
        let conn = self.conn(OP).await?;
        let sql = format!(
            "SELECT {HISTORY_COLUMNS} FROM environment_history
             WHERE environment = $1 ORDER BY at, id"
        );
        query_all(&conn, OP, &sql, &[&environment], history_from_row).await
    }

    async fn outbox(
        &self,
        request_id: Option<&RequestId>,
    ) -> Result<Vec<crate::store::OutboxEvent>> {
        let conn = self.conn("outbox").await?;
        super::outbox::outbox(&conn, request_id).await
    }

    async fn claim_deliveries(
        &self,
        receivers: &[crate::store::ReceiverSpec],
        owner: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<crate::store::Delivery>> {
        const OP: &str = "claim_deliveries";
        let mut conn = self.conn(OP).await?;
        let tx = conn.transaction().await.map_err(db(OP))?;
        let out = super::outbox::claim(&tx, receivers, owner, now, ttl, since, limit).await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(out)
    }

    async fn finish_delivery(
        &self,
        delivery: &crate::store::Delivery,
        owner: &str,
        outcome: &crate::store::DeliveryOutcome,
    ) -> Result<()> {
        let conn = self.conn("finish_delivery").await?;
        super::outbox::finish(&conn, delivery, owner, outcome).await
    }

    async fn deliveries(
        &self,
        failed_only: bool,
        limit: usize,
    ) -> Result<Vec<crate::store::DeliveryRecord>> {
        let conn = self.conn("deliveries").await?;
        super::outbox::list(&conn, failed_only, limit).await
    }

    async fn insert_web_login(
        &self,
        login: &crate::store::WebLogin,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.pg_insert_login(login, now).await
    }

    async fn take_web_login(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::store::WebLogin>> {
        self.pg_take_login(id_hash, now).await
    }

    async fn insert_web_session(
        &self,
        session: &crate::store::WebSession,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.pg_insert_session(session, now).await
    }

    async fn web_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::store::WebSession>> {
        self.pg_session(id_hash, now).await
    }

    async fn delete_web_session(&self, id_hash: &str) -> Result<bool> {
        self.pg_delete_session(id_hash).await
    }

    async fn schema_version(&self) -> Result<i64> {
        const OP: &str = "schema_version";
        let conn = self.conn(OP).await?;
        Ok(first(&conn, OP, "SELECT version FROM schema_version", &[])
            .await?
            .unwrap_or(0))
    }

    async fn export(&self) -> Result<StoreRows> {
        super::copy::export(self).await
    }

    async fn import(&self, rows: &StoreRows) -> Result<()> {
        super::copy::import(self, rows).await
    }
}
