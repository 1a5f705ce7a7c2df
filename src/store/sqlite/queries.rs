//! The `Store` operations in SQL. Each reads the rows it needs inside its
//! transaction, asks the rule in [`crate::store::rules`], and writes.
use super::rows::*;
use super::{db, SqliteStore};
use crate::domain::{
    EnvironmentEvent, Job, JobId, RequestEvent, RequestId, RequestStatus, RestoreRequest,
    StepRecord,
};
use crate::store::{rules, Lease, Result, Store, StoreError, StoreRows};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

/// The status of a request (`None`: no such request).
fn current_status(conn: &Connection, op: &str, id: &RequestId) -> Result<Option<RequestStatus>> {
    let raw: Option<String> = conn
        .query_row(
            "SELECT status FROM requests WHERE id = ?1",
            [id.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(db(op))?;
    raw.map(|raw| {
        RequestStatus::parse(&raw).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "requests.status of {id}: '{raw}' is not a request status"
            ))
        })
    })
    .transpose()
}

pub(super) fn insert_event(tx: &Transaction<'_>, op: &str, ev: &RequestEvent) -> Result<()> {
    tx.execute(
        "INSERT INTO request_events (request_id, at, actor, from_status, to_status, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            ev.request_id.as_str(),
            ts(&ev.at),
            ev.actor,
            ev.from.map(RequestStatus::as_str),
            ev.to.as_str(),
            ev.note,
        ],
    )
    .map_err(db(op))?;
    Ok(())
}

pub(super) fn insert_request_row(
    tx: &Transaction<'_>,
    op: &str,
    req: &RestoreRequest,
) -> Result<()> {
    let spec = &req.spec;
    tx.prepare_cached(&format!(
        "INSERT INTO requests ({REQUEST_COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    ))
    .and_then(|mut stmt| {
        stmt.execute(params![
            req.id.as_str(),
            spec.environment,
            spec.database,
            ts(&spec.restore_point),
            ts(&spec.window.start),
            ts(&spec.window.end),
            spec.acks.erase,
            spec.acks.downtime,
            spec.acks.scope,
            spec.requester,
            spec.reason,
            spec.prestage,
            req.status.as_str(),
            ts(&req.submitted_at),
            ts(&req.updated_at),
            spec.emergency,
            spec.acks.version_mismatch,
        ])
    })
    .map_err(db(op))?;
    Ok(())
}

/// `facts` is the job's facts as JSON ([`facts_json`]).
pub(super) fn insert_job_row(tx: &Transaction<'_>, op: &str, job: &Job, facts: &str) -> Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))
    .and_then(|mut stmt| {
        stmt.execute(params![
            job.id.as_str(),
            job.request_id.as_str(),
            job.dry_run,
            job.status.as_str(),
            plan_text(&job.plan),
            ts(&job.created_at),
            ts(&job.updated_at),
            opt_ts(&job.finished_at),
            facts,
            job.error,
        ])
    })
    .map_err(db(op))?;
    Ok(())
}

pub(super) fn insert_history_row(
    tx: &Transaction<'_>,
    op: &str,
    ev: &EnvironmentEvent,
) -> Result<()> {
    let row = history_columns(ev)?;
    tx.prepare_cached(
        "INSERT INTO environment_history (environment, kind, at, finished_at, version, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            ev.environment,
            row.kind,
            ts(&ev.at),
            row.finished_at,
            row.version,
            row.detail
        ])
    })
    .map_err(db(op))?;
    Ok(())
}

fn read_fencing(conn: &Connection, op: &str, job_id: &JobId) -> Result<Option<i64>> {
    conn.query_row(
        "SELECT fencing FROM leases WHERE job_id = ?1",
        params![job_id.as_str()],
        |r| r.get(0),
    )
    .optional()
    .map_err(db(op))
}

pub(super) fn read_lease(conn: &Connection, op: &str, job_id: &JobId) -> Result<Option<Lease>> {
    let row: Option<(String, String, i64)> = conn
        .query_row(
            "SELECT owner, expires_at, fencing FROM leases WHERE job_id = ?1",
            params![job_id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(db(op))?;
    row.map(|(owner, expires, fencing)| {
        let expires_at = DateTime::parse_from_rfc3339(&expires)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| StoreError::Corrupt(format!("leases.expires_at of {job_id}: {e}")))?;
        Ok(Lease {
            job_id: job_id.clone(),
            owner,
            expires_at,
            fencing,
        })
    })
    .transpose()
}

fn write_lease(tx: &Transaction<'_>, op: &str, lease: &Lease) -> Result<()> {
    tx.execute(
        "INSERT INTO leases (job_id, owner, expires_at, fencing) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (job_id) DO UPDATE SET owner = excluded.owner,
             expires_at = excluded.expires_at, fencing = excluded.fencing",
        params![
            lease.job_id.as_str(),
            lease.owner,
            ts(&lease.expires_at),
            lease.fencing
        ],
    )
    .map_err(db(op))?;
    Ok(())
}

fn job_exists(conn: &Connection, op: &str, id: &JobId) -> Result<bool> {
    conn.query_row(
        "SELECT 1 FROM jobs WHERE id = ?1",
        [id.as_str()],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(db(op))
}

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
            insert_event(tx, OP, &event)
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
            insert_event(tx, OP, &event)
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
                     ack_version_mismatch = ?10
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
                ],
            )
            .map_err(db(OP))?;
            insert_event(tx, OP, &event)
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
    ) -> Result<Lease> {
        const OP: &str = "claim_run";
        rules::start_matches(OP, job, start)?;
        let facts = facts_json(OP, &job.facts)?;
        let (job, start, owner) = (job.clone(), start.cloned(), owner.to_string());
        self.write(OP, move |tx| {
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
                insert_event(tx, OP, event)?;
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
            let changed = tx
                .execute(
                    "UPDATE jobs SET dry_run = ?2, status = ?3, plan = ?4, created_at = ?5,
                         updated_at = ?6, finished_at = ?7, facts = ?8, error = ?9
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
            Ok(())
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

    async fn export(&self) -> Result<StoreRows> {
        self.read("export", super::copy::export).await
    }

    async fn import(&self, rows: &StoreRows) -> Result<()> {
        let (rows, path) = (rows.clone(), self.path().to_string());
        self.write("import", move |tx| super::copy::import(tx, &path, &rows))
            .await
    }
}
