//! The `Store` operations in SQL. Each reads the rows it needs inside its
//! transaction, asks the rule in [`crate::store::rules`], and writes.
use super::rows::*;
use super::sql::*;
use super::{db, SqliteStore};
use crate::domain::{
    EnvironmentEvent, Job, JobId, RequestEvent, RequestId, RequestStatus, RestoreRequest, StepName,
    StepRecord,
};
use crate::store::rows::Columns;
use crate::store::{rules, Lease, Result, Store, StoreRows};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

#[async_trait]
impl Store for SqliteStore {
    async fn insert_request(&self, req: &RestoreRequest, event: &RequestEvent) -> Result<()> {
        const OP: &str = "insert_request";
        rules::event_matches(OP, req, event)?;
        let (req, event) = (req.clone(), event.clone());
        self.write(OP, move |tx| {
            let spec = &req.spec;
            let others = query_all(
                tx,
                OP,
                "SELECT id, status FROM requests WHERE environment = ?1 ORDER BY submitted_at",
                [&spec.environment],
                |row| {
                    let c = Cols::new(row, "requests", "id")?;
                    let status = c.named("status", "request status", RequestStatus::parse)?;
                    Ok((RequestId::from(c.key), status))
                },
            )?;
            rules::one_active(&spec.environment, others)?;
            insert_request_row(tx, OP, &req)?;
            super::outbox::record_event(tx, OP, &event)
        })
        .await
    }

    async fn get_request(&self, id: &RequestId) -> Result<Option<RestoreRequest>> {
        let id = id.clone();
        self.read("get_request", move |conn| {
            let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?1");
            Ok(
                query_all(conn, "get_request", &sql, [id.as_str()], request_from_row)?
                    .into_iter()
                    .next(),
            )
        })
        .await
    }

    async fn list_requests(&self) -> Result<Vec<RestoreRequest>> {
        self.read("list_requests", |conn| {
            // Ties on submitted_at (a manual clock) go by insertion order: rowid
            // grows with every insert, and VACUUM keeps the relative order.
            let sql = format!(
                "SELECT {REQUEST_COLUMNS} FROM requests ORDER BY submitted_at DESC, rowid DESC"
            );
            query_all(conn, "list_requests", &sql, [], request_from_row)
        })
        .await
    }

    async fn transition_request(&self, event: &RequestEvent) -> Result<()> {
        const OP: &str = "transition_request";
        let event = event.clone();
        self.write(OP, move |tx| {
            let actual = current_status(tx, OP, &event.request_id)?;
            rules::status_is(&event.request_id, event.from, actual)?;
            tx.execute(
                "UPDATE requests SET status = ?2, updated_at = ?3 WHERE id = ?1",
                params![event.request_id.as_str(), event.to.as_str(), ts(&event.at)],
            )
            .map_err(db(OP))?;
            super::outbox::record_event(tx, OP, &event)
        })
        .await
    }

    /// Writes the editable fields (restore point, window, reason, prestage)
    /// and sets the status to `event.to` (the same status for a reschedule),
    /// so the row always agrees with its audit trail; `updated_at` becomes
    /// `event.at`. Identity, environment, database, acknowledgements and
    /// requester are fixed at submission and not written.
    async fn update_request(&self, req: &RestoreRequest, event: &RequestEvent) -> Result<()> {
        const OP: &str = "update_request";
        rules::event_matches(OP, req, event)?;
        let (req, event) = (req.clone(), event.clone());
        self.write(OP, move |tx| {
            let actual = current_status(tx, OP, &req.id)?;
            rules::status_is(&req.id, event.from, actual)?;
            let spec = &req.spec;
            tx.execute(
                "UPDATE requests SET restore_point = ?2, window_start = ?3, window_end = ?4,
                     reason = ?5, prestage = ?6, status = ?7, updated_at = ?8, emergency = ?9,
                     ack_version_mismatch = ?10, warning = ?11
                 WHERE id = ?1",
                params![
                    req.id.as_str(),
                    ts(&spec.restore_point),
                    ts(&spec.window.start),
                    ts(&spec.window.end),
                    spec.reason,
                    spec.prestage,
                    event.to.as_str(),
                    ts(&event.at),
                    spec.emergency,
                    spec.acks.version_mismatch,
                    req.warning,
                ],
            )
            .map_err(db(OP))?;
            super::outbox::record_event(tx, OP, &event)
        })
        .await
    }

    async fn set_warning(&self, id: &RequestId, warning: Option<&str>) -> Result<bool> {
        const OP: &str = "set_warning";
        let (id, warning) = (id.clone(), warning.map(str::to_string));
        self.write(OP, move |tx| {
            let found: Option<String> = tx
                .query_row(
                    "SELECT id FROM requests WHERE id = ?1",
                    [id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db(OP))?;
            rules::request_exists(&id, found.is_some())?;
            let changed = tx
                .execute(
                    "UPDATE requests SET warning = ?2 WHERE id = ?1 AND warning IS NOT ?2",
                    params![id.as_str(), warning],
                )
                .map_err(db(OP))?;
            Ok(changed > 0)
        })
        .await
    }

    async fn request_events(&self, id: &RequestId) -> Result<Vec<RequestEvent>> {
        let id = id.clone();
        self.read("request_events", move |conn| {
            query_all(
                conn,
                "request_events",
                "SELECT request_id, at, actor, from_status, to_status, note
                 FROM request_events WHERE request_id = ?1 ORDER BY id",
                [id.as_str()],
                event_from_row,
            )
        })
        .await
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
        let facts = facts_json(OP, &job.facts)?;
        let (job, start, owner) = (job.clone(), start.cloned(), owner.to_string());
        // A write transaction (BEGIN IMMEDIATE) holds the file's write lock:
        // the count below cannot change before this claim commits.
        self.write(OP, move |tx| {
            if limit.is_some() {
                let running: i64 = tx
                    .query_row(
                        "SELECT COUNT(*) FROM jobs JOIN leases ON leases.job_id = jobs.id
                         WHERE jobs.status = 'running' AND jobs.dry_run = 0
                           AND leases.expires_at > ?1",
                        [ts(&now)],
                        |r| r.get(0),
                    )
                    .map_err(db(OP))?;
                rules::under_limit(running, limit)?;
            }
            let running: Option<String> = tx
                .query_row(
                    "SELECT id FROM jobs WHERE request_id = ?1 AND dry_run = 0
                         AND status = 'running' LIMIT 1",
                    [job.request_id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db(OP))?;
            rules::no_run_in_progress(&job.request_id, running.map(JobId::from))?;
            let status = current_status(tx, OP, &job.request_id)?;
            rules::status_is(&job.request_id, start.as_ref().and_then(|e| e.from), status)?;
            insert_job_row(tx, OP, &job, &facts)?;
            if let Some(event) = &start {
                tx.execute(
                    "UPDATE requests SET status = ?2, updated_at = ?3 WHERE id = ?1",
                    params![event.request_id.as_str(), event.to.as_str(), ts(&event.at)],
                )
                .map_err(db(OP))?;
                super::outbox::record_event(tx, OP, event)?;
            }
            let lease = rules::acquire(&job.id, None, &owner, now, ttl)?;
            write_lease(tx, OP, &lease)?;
            Ok(lease)
        })
        .await
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>> {
        let id = id.clone();
        self.read("get_job", move |conn| {
            let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
            Ok(
                query_all(conn, "get_job", &sql, [id.as_str()], job_from_row)?
                    .into_iter()
                    .next(),
            )
        })
        .await
    }

    async fn jobs_for_request(&self, request_id: &RequestId) -> Result<Vec<Job>> {
        let id = request_id.clone();
        self.read("jobs_for_request", move |conn| {
            // rowid breaks ties on created_at by insertion order (see list_requests).
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE request_id = ?1 ORDER BY created_at, rowid"
            );
            query_all(conn, "jobs_for_request", &sql, [id.as_str()], job_from_row)
        })
        .await
    }

    /// Writes every field but the identity (`id`, `request_id`), which is
    /// fixed when the job is inserted.
    async fn update_job(&self, job: &Job, fence: Option<&Lease>) -> Result<()> {
        const OP: &str = "update_job";
        let facts = facts_json(OP, &job.facts)?;
        let (job, fence) = (job.clone(), fence.cloned());
        self.write(OP, move |tx| {
            rules::fence(fence.as_ref(), read_fencing(tx, OP, &job.id)?)?;
            let awaits = super::in_play::job_awaits_cleanup(tx, OP, &job)?;
            let changed = tx
                .execute(
                    "UPDATE jobs SET dry_run = ?2, status = ?3, plan = ?4, created_at = ?5,
                         updated_at = ?6, finished_at = ?7, facts = ?8, error = ?9,
                         awaiting_cleanup = ?10
                     WHERE id = ?1",
                    params![
                        job.id.as_str(),
                        job.dry_run,
                        job.status.as_str(),
                        plan_text(&job.plan),
                        ts(&job.created_at),
                        ts(&job.updated_at),
                        opt_ts(&job.finished_at),
                        facts,
                        job.error,
                        awaits,
                    ],
                )
                .map_err(db(OP))?;
            rules::job_exists(&job.id, changed > 0)
        })
        .await
    }

    async fn save_step(
        &self,
        job_id: &JobId,
        step: &StepRecord,
        fence: Option<&Lease>,
    ) -> Result<()> {
        const OP: &str = "save_step";
        let (job_id, step, fence) = (job_id.clone(), step.clone(), fence.cloned());
        self.write(OP, move |tx| {
            rules::fence(fence.as_ref(), read_fencing(tx, OP, &job_id)?)?;
            rules::job_exists(&job_id, job_exists(tx, OP, &job_id)?)?;
            let previous = super::outbox::step_status(tx, OP, &job_id, &step)?;
            // A new step goes after the job's others; an existing one keeps
            // its place (seq is not in the update list).
            tx.execute(
                "INSERT INTO job_steps (job_id, step, seq, status, attempts, external_ref,
                     started_at, finished_at, detail, error)
                 VALUES (?1, ?2,
                     (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_steps WHERE job_id = ?1),
                     ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (job_id, step) DO UPDATE SET
                     status = excluded.status, attempts = excluded.attempts,
                     external_ref = excluded.external_ref, started_at = excluded.started_at,
                     finished_at = excluded.finished_at, detail = excluded.detail,
                     error = excluded.error",
                params![
                    job_id.as_str(),
                    step.step.as_str(),
                    step.status.as_str(),
                    i64::from(step.attempts),
                    step.external_ref,
                    opt_ts(&step.started_at),
                    opt_ts(&step.finished_at),
                    step.detail,
                    step.error,
                ],
            )
            .map_err(db(OP))?;
            if step.step == StepName::Cleanup {
                super::in_play::cleanup_saved(tx, OP, &job_id)?;
            }
            super::outbox::step_event(tx, OP, &job_id, previous, &step)
        })
        .await
    }

    async fn steps(&self, job_id: &JobId) -> Result<Vec<StepRecord>> {
        let id = job_id.clone();
        self.read("steps", move |conn| {
            let sql =
                format!("SELECT {STEP_COLUMNS} FROM job_steps WHERE job_id = ?1 ORDER BY seq");
            query_all(conn, "steps", &sql, [id.as_str()], step_from_row)
        })
        .await
    }

    async fn work_in_play(&self) -> Result<crate::store::WorkInPlay> {
        self.read("work_in_play", super::in_play::work_in_play)
            .await
    }

    async fn acquire_lease(
        &self,
        job_id: &JobId,
        owner: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Lease> {
        const OP: &str = "acquire_lease";
        let (job_id, owner) = (job_id.clone(), owner.to_string());
        self.write(OP, move |tx| {
            rules::job_exists(&job_id, job_exists(tx, OP, &job_id)?)?;
            let lease = rules::acquire(&job_id, read_lease(tx, OP, &job_id)?, &owner, now, ttl)?;
            write_lease(tx, OP, &lease)?;
            Ok(lease)
        })
        .await
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
        let (job_id, from, owner) = (job_id.clone(), from_owner.to_string(), owner.to_string());
        self.write(OP, move |tx| {
            let current = read_lease(tx, OP, &job_id)?;
            let lease = rules::take_over(&job_id, current, &from, &owner, now, ttl)?;
            write_lease(tx, OP, &lease)?;
            Ok(lease)
        })
        .await
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Lease> {
        const OP: &str = "renew_lease";
        let lease = lease.clone();
        self.write(OP, move |tx| {
            rules::fence(Some(&lease), read_fencing(tx, OP, &lease.job_id)?)?;
            let renewed = rules::renewed(&lease, now, ttl);
            write_lease(tx, OP, &renewed)?;
            Ok(renewed)
        })
        .await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        const OP: &str = "release_lease";
        let lease = lease.clone();
        self.write(OP, move |tx| {
            // A stale lease (taken over meanwhile) releases nothing.
            if rules::fence(Some(&lease), read_fencing(tx, OP, &lease.job_id)?).is_ok() {
                let released = Lease {
                    expires_at: rules::RELEASED_AT,
                    ..lease
                };
                write_lease(tx, OP, &released)?;
            }
            Ok(())
        })
        .await
    }

    async fn get_lease(&self, job_id: &JobId) -> Result<Option<Lease>> {
        let id = job_id.clone();
        self.read("get_lease", move |conn| read_lease(conn, "get_lease", &id))
            .await
    }

    async fn add_environment_event(&self, ev: &EnvironmentEvent) -> Result<()> {
        const OP: &str = "add_environment_event";
        let ev = ev.clone();
        self.write(OP, move |tx| insert_history_row(tx, OP, &ev))
            .await
    }

    async fn environment_events(&self, environment: &str) -> Result<Vec<EnvironmentEvent>> {
        let environment = environment.to_string();
        self.read("environment_history", move |conn| {
            query_all(
                conn,
                "environment_history",
                &format!(
                    "SELECT {HISTORY_COLUMNS} FROM environment_history
                     WHERE environment = ?1 ORDER BY at, id"
                ),
                [environment],
                history_from_row,
            )
        })
        .await
    }

    async fn outbox(
        &self,
        request_id: Option<&RequestId>,
    ) -> Result<Vec<crate::store::OutboxEvent>> {
        let id = request_id.cloned();
        self.read("outbox", move |conn| {
            super::outbox::outbox(conn, id.as_ref())
        })
        .await
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
        let (receivers, owner) = (receivers.to_vec(), owner.to_string());
        self.write("claim_deliveries", move |tx| {
            super::outbox::claim(tx, &receivers, &owner, now, ttl, since, limit)
        })
        .await
    }

    async fn finish_delivery(
        &self,
        delivery: &crate::store::Delivery,
        owner: &str,
        outcome: &crate::store::DeliveryOutcome,
    ) -> Result<()> {
        let (d, owner, outcome) = (delivery.clone(), owner.to_string(), outcome.clone());
        self.write("finish_delivery", move |tx| {
            super::outbox::finish(tx, &d, &owner, &outcome)
        })
        .await
    }

    async fn deliveries(
        &self,
        failed_only: bool,
        limit: usize,
    ) -> Result<Vec<crate::store::DeliveryRecord>> {
        self.read("deliveries", move |conn| {
            super::outbox::list(conn, failed_only, limit)
        })
        .await
    }

    async fn insert_web_login(
        &self,
        login: &crate::store::WebLogin,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let login = login.clone();
        self.write("insert_web_login", move |tx| {
            super::web::insert_login(tx, &login, now)
        })
        .await
    }

    async fn take_web_login(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::store::WebLogin>> {
        let id = id_hash.to_string();
        self.write("take_web_login", move |tx| {
            super::web::take_login(tx, &id, now)
        })
        .await
    }

    async fn insert_web_session(
        &self,
        session: &crate::store::WebSession,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let session = session.clone();
        self.write("insert_web_session", move |tx| {
            super::web::insert_session(tx, &session, now)
        })
        .await
    }

    async fn web_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::store::WebSession>> {
        let id = id_hash.to_string();
        self.read("web_session", move |conn| {
            super::web::session(conn, &id, now)
        })
        .await
    }

    async fn delete_web_session(&self, id_hash: &str) -> Result<bool> {
        let id = id_hash.to_string();
        self.write("delete_web_session", move |tx| {
            super::web::delete_session(tx, &id)
        })
        .await
    }

    async fn schema_version(&self) -> Result<i64> {
        self.read("schema_version", |conn| {
            super::schema::user_version(conn).map_err(db("schema_version"))
        })
        .await
    }

    async fn export(&self) -> Result<StoreRows> {
        self.read("export", super::copy::export).await
    }

    async fn import(&self, rows: &StoreRows) -> Result<()> {
        let (rows, path) = (rows.clone(), self.path().to_string());
        self.write("import", move |tx| super::copy::import(tx, &path, &rows))
            .await
    }
}
