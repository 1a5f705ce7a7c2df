//! Every row out, every row in: the two halves of `pitr store copy`
//! ([`crate::store::copy`]) on SQLite.
use super::db;
use super::queries::{insert_event, insert_history_row, insert_job_row, insert_request_row};
use super::rows::*;
use crate::domain::JobId;
use crate::store::{rules, Lease, Result, RowCounts, StepRow, StoreError, StoreRows};
use rusqlite::{params, Connection, Transaction};

/// One consistent snapshot (a read transaction), each table in the order
/// it was written (rowid for requests and jobs, which have no counter).
pub(super) fn export(conn: &Connection) -> Result<StoreRows> {
    const OP: &str = "export";
    let tx = conn.unchecked_transaction().map_err(db(OP))?;
    let rows = StoreRows {
        requests: query_all(
            &tx,
            OP,
            &format!("SELECT {REQUEST_COLUMNS} FROM requests ORDER BY rowid"),
            [],
            request_from_row,
        )?,
        events: query_all(
            &tx,
            OP,
            "SELECT request_id, at, actor, from_status, to_status, note
             FROM request_events ORDER BY id",
            [],
            event_from_row,
        )?,
        jobs: query_all(
            &tx,
            OP,
            &format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY rowid"),
            [],
            job_from_row,
        )?,
        steps: query_all(
            &tx,
            OP,
            &format!(
                "SELECT seq, {STEP_COLUMNS} FROM job_steps
                 ORDER BY (SELECT rowid FROM jobs WHERE jobs.id = job_steps.job_id), seq"
            ),
            [],
            |row| {
                let c = Cols::new(row, "job_steps", "job_id")?;
                Ok(StepRow {
                    seq: c.get("seq")?,
                    record: step_from_row(row)?,
                    job_id: c.key.into(),
                })
            },
        )?,
        history: query_all(
            &tx,
            OP,
            &format!("SELECT {HISTORY_COLUMNS} FROM environment_history ORDER BY id"),
            [],
            history_from_row,
        )?,
        leases: query_all(
            &tx,
            OP,
            "SELECT job_id, owner, expires_at, fencing FROM leases ORDER BY job_id",
            [],
            |row| {
                let c = Cols::new(row, "leases", "job_id")?;
                Ok(Lease {
                    owner: c.text("owner")?,
                    expires_at: c.instant("expires_at")?,
                    fencing: c.get("fencing")?,
                    job_id: JobId::from(c.key),
                })
            },
        )?,
    };
    tx.finish().map_err(db(OP))?;
    Ok(rows)
}

/// Writes `rows` in their order into an empty store, inside the caller's
/// IMMEDIATE transaction.
pub(super) fn import(tx: &Transaction<'_>, path: &str, rows: &StoreRows) -> Result<()> {
    const OP: &str = "import";
    rules::empty_target(path, counts(tx)?)?;
    for req in &rows.requests {
        insert_request_row(tx, OP, req)?;
    }
    for event in &rows.events {
        insert_event(tx, OP, event)?;
    }
    for job in &rows.jobs {
        insert_job_row(tx, OP, job, &facts_json(OP, &job.facts)?)?;
    }
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO job_steps (job_id, step, seq, status, attempts, external_ref,
                 started_at, finished_at, detail, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(db(OP))?;
    for StepRow {
        job_id,
        seq,
        record: step,
    } in &rows.steps
    {
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
        .map_err(db(OP))?;
    }
    for event in &rows.history {
        insert_history_row(tx, OP, event)?;
    }
    Ok(())
}

fn counts(conn: &Connection) -> Result<RowCounts> {
    const OP: &str = "counting rows";
    let n = |table: &str| -> Result<u64> {
        let v: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(db(OP))?;
        u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("count of {table}: {v}")))
    };
    Ok(RowCounts {
        requests: n("requests")?,
        events: n("request_events")?,
        jobs: n("jobs")?,
        steps: n("job_steps")?,
        history: n("environment_history")?,
    })
}
