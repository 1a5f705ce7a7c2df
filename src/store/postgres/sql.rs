//! The statements the `Store` operations and the copy are made of: reads
//! that lock what a decision depends on, and row writes.
use super::db;
use super::rows::*;
use crate::domain::{
    EnvironmentEvent, Job, JobId, RequestEvent, RequestId, RequestStatus, RestoreRequest,
};
use crate::store::rows::Columns;
use crate::store::{Lease, Result, StoreError};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The two-key advisory locks of environments (`pg_advisory_xact_lock(NS,
/// hashtext(environment))`): "pitr" in ASCII.
pub(super) const ENVIRONMENT_LOCKS: i32 = 0x7069_7472;

/// Runs a query (a cached prepared statement) and decodes every row.
pub(super) async fn query_all<T>(
    client: &impl GenericClient,
    op: &str,
    sql: &str,
    params: Params<'_>,
    decode: impl Fn(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    let stmt = client.prepare_cached(sql).await.map_err(db(op))?;
    let rows = client.query(&stmt, params).await.map_err(db(op))?;
    rows.iter().map(decode).collect()
}

/// Runs a statement (cached), returning the number of rows it changed.
pub(super) async fn exec(
    client: &impl GenericClient,
    op: &str,
    sql: &str,
    params: Params<'_>,
) -> Result<u64> {
    let stmt = client.prepare_cached(sql).await.map_err(db(op))?;
    client.execute(&stmt, params).await.map_err(db(op))
}

/// The first column of the first row, if any.
pub(super) async fn first<T: for<'r> tokio_postgres::types::FromSql<'r>>(
    client: &impl GenericClient,
    op: &str,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<T>> {
    let stmt = client.prepare_cached(sql).await.map_err(db(op))?;
    let row = client.query_opt(&stmt, params).await.map_err(db(op))?;
    row.map(|r| r.try_get(0).map_err(db(op))).transpose()
}

/// The status of a request, its row locked until the transaction ends
/// (`None`: no such request).
pub(super) async fn lock_status(
    client: &impl GenericClient,
    op: &str,
    id: &RequestId,
) -> Result<Option<RequestStatus>> {
    let raw: Option<String> = first(
        client,
        op,
        "SELECT status FROM requests WHERE id = $1 FOR UPDATE",
        &[&id.as_str()],
    )
    .await?;
    raw.map(|raw| {
        RequestStatus::parse(&raw).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "requests.status of {id}: '{raw}' is not a request status"
            ))
        })
    })
    .transpose()
}

/// Locks the job row (whether it exists) before its lease: every lease
/// operation and fenced write takes them in this order.
pub(super) async fn lock_job(client: &impl GenericClient, op: &str, id: &JobId) -> Result<bool> {
    let found: Option<i32> = first(
        client,
        op,
        "SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE",
        &[&id.as_str()],
    )
    .await?;
    Ok(found.is_some())
}

pub(super) async fn lock_fencing(
    client: &impl GenericClient,
    op: &str,
    job_id: &JobId,
) -> Result<Option<i64>> {
    first(
        client,
        op,
        "SELECT fencing FROM leases WHERE job_id = $1 FOR UPDATE",
        &[&job_id.as_str()],
    )
    .await
}

pub(super) async fn read_lease(
    client: &impl GenericClient,
    op: &str,
    job_id: &JobId,
    lock: bool,
) -> Result<Option<Lease>> {
    let sql = format!(
        "SELECT {LEASE_COLUMNS} FROM leases WHERE job_id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let rows = query_all(client, op, &sql, &[&job_id.as_str()], lease_from_row).await?;
    Ok(rows.into_iter().next())
}

pub(super) async fn write_lease(
    client: &impl GenericClient,
    op: &str,
    lease: &Lease,
) -> Result<()> {
    exec(
        client,
        op,
        "INSERT INTO leases (job_id, owner, expires_at, fencing) VALUES ($1, $2, $3, $4)
         ON CONFLICT (job_id) DO UPDATE SET owner = EXCLUDED.owner,
             expires_at = EXCLUDED.expires_at, fencing = EXCLUDED.fencing",
        &[
            &lease.job_id.as_str(),
            &lease.owner,
            &lease.expires_at,
            &lease.fencing,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn insert_event(
    client: &impl GenericClient,
    op: &str,
    ev: &RequestEvent,
) -> Result<()> {
    exec(
        client,
        op,
        "INSERT INTO request_events (request_id, at, actor, from_status, to_status, note)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &ev.request_id.as_str(),
            &ev.at,
            &ev.actor,
            &ev.from.map(RequestStatus::as_str),
            &ev.to.as_str(),
            &ev.note,
        ],
    )
    .await?;
    Ok(())
}

/// Inserts a request row; `false` when the one-active index refused it.
pub(super) async fn insert_request_row(
    client: &impl GenericClient,
    op: &str,
    req: &RestoreRequest,
) -> Result<bool> {
    let spec = &req.spec;
    let inserted = exec(
        client,
        op,
        &format!(
            "INSERT INTO requests ({REQUEST_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
             ON CONFLICT (environment) WHERE status IN ('submitted', 'accepted', 'running')
             DO NOTHING"
        ),
        &[
            &req.id.as_str(),
            &spec.environment,
            &spec.database,
            &spec.restore_point,
            &spec.window.start,
            &spec.window.end,
            &spec.acks.erase,
            &spec.acks.downtime,
            &spec.acks.scope,
            &spec.requester,
            &spec.reason,
            &spec.prestage,
            &req.status.as_str(),
            &req.submitted_at,
            &req.updated_at,
            &spec.emergency,
            &spec.acks.version_mismatch,
            &req.warning,
        ],
    )
    .await?;
    Ok(inserted > 0)
}

pub(super) async fn insert_job_row(client: &impl GenericClient, op: &str, job: &Job) -> Result<()> {
    let facts = facts_json(op, &job.facts)?;
    exec(
        client,
        op,
        &format!(
            "INSERT INTO jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ),
        &[
            &job.id.as_str(),
            &job.request_id.as_str(),
            &job.dry_run,
            &job.status.as_str(),
            &plan_text(&job.plan),
            &job.created_at,
            &job.updated_at,
            &job.finished_at,
            &facts,
            &job.error,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn insert_history_row(
    client: &impl GenericClient,
    op: &str,
    ev: &EnvironmentEvent,
) -> Result<()> {
    let row = history_columns(ev)?;
    exec(
        client,
        op,
        "INSERT INTO environment_history (environment, kind, at, finished_at, version, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &ev.environment,
            &row.kind,
            &ev.at,
            &row.finished_at,
            &row.version,
            &row.detail,
        ],
    )
    .await?;
    Ok(())
}

/// The environment's requests (id, status), oldest first.
pub(super) async fn requests_of(
    client: &impl GenericClient,
    op: &str,
    environment: &str,
) -> Result<Vec<(RequestId, RequestStatus)>> {
    query_all(
        client,
        op,
        "SELECT id, status FROM requests WHERE environment = $1 ORDER BY submitted_at, seq",
        &[&environment],
        |row| {
            let c = Cols::new(row, "requests", "id")?;
            let status = c.named("status", "request status", RequestStatus::parse)?;
            Ok((RequestId::from(c.key), status))
        },
    )
    .await
}

/// A step checkpoint at a given place (the copy keeps the source's).
pub(super) async fn insert_step_row(
    client: &impl GenericClient,
    op: &str,
    job_id: &JobId,
    seq: i64,
    step: &crate::domain::StepRecord,
) -> Result<()> {
    exec(
        client,
        op,
        "INSERT INTO job_steps (job_id, step, seq, status, attempts, external_ref,
             started_at, finished_at, detail, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &job_id.as_str(),
            &step.step.as_str(),
            &seq,
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
    Ok(())
}
