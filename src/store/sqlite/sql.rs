//! The statements the `Store` operations and the copy are made of: reads
//! of what a decision depends on, and row writes (inside the caller's
//! IMMEDIATE transaction, which holds the write lock).
use super::db;
use super::rows::*;
use crate::domain::{
    EnvironmentEvent, Job, JobId, RequestEvent, RequestId, RequestStatus, RestoreRequest,
    StepRecord,
};
use crate::store::{Lease, Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

/// The status of a request (`None`: no such request).
pub(super) fn current_status(
    conn: &Connection,
    op: &str,
    id: &RequestId,
) -> Result<Option<RequestStatus>> {
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
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
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
            req.warning,
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
            opt_ts(&row.finished_at),
            row.version,
            row.detail
        ])
    })
    .map_err(db(op))?;
    Ok(())
}

pub(super) fn read_fencing(conn: &Connection, op: &str, job_id: &JobId) -> Result<Option<i64>> {
    conn.query_row(
        "SELECT fencing FROM leases WHERE job_id = ?1",
        params![job_id.as_str()],
        |r| r.get(0),
    )
    .optional()
    .map_err(db(op))
}

pub(super) fn read_lease(conn: &Connection, op: &str, job_id: &JobId) -> Result<Option<Lease>> {
    let sql = format!("SELECT {LEASE_COLUMNS} FROM leases WHERE job_id = ?1");
    Ok(
        query_all(conn, op, &sql, [job_id.as_str()], lease_from_row)?
            .into_iter()
            .next(),
    )
}

pub(super) fn write_lease(tx: &Transaction<'_>, op: &str, lease: &Lease) -> Result<()> {
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

pub(super) fn job_exists(conn: &Connection, op: &str, id: &JobId) -> Result<bool> {
    conn.query_row(
        "SELECT 1 FROM jobs WHERE id = ?1",
        [id.as_str()],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(db(op))
}

/// A step checkpoint at a given place (the copy keeps the source's).
pub(super) fn insert_step_row(
    tx: &Transaction<'_>,
    op: &str,
    job_id: &JobId,
    seq: i64,
    step: &StepRecord,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO job_steps (job_id, step, seq, status, attempts, external_ref,
             started_at, finished_at, detail, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            job_id.as_str(),
            step.step.as_str(),
            seq,
            step.status.as_str(),
            i64::from(step.attempts),
            step.external_ref,
            opt_ts(&step.started_at),
            opt_ts(&step.finished_at),
            step.detail,
            step.error,
        ])
    })
    .map_err(db(op))?;
    Ok(())
}
