//! Every row out, every row in: the two halves of `pitr store copy`
//! ([`crate::store::copy`]) on SQLite.
use super::db;
use super::rows::*;
use super::sql::{
    insert_event, insert_history_row, insert_job_row, insert_request_row, insert_step_row,
};
use crate::store::{rules, Result, RowCounts, StepRow, StoreError, StoreRows};
use rusqlite::{Connection, Transaction};

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
            &format!("SELECT {EVENT_COLUMNS} FROM request_events ORDER BY id"),
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
            &format!("SELECT {LEASE_COLUMNS} FROM leases ORDER BY job_id"),
            [],
            lease_from_row,
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
    for StepRow {
        job_id,
        seq,
        record,
    } in &rows.steps
    {
        insert_step_row(tx, OP, job_id, *seq, record)?;
    }
    for event in &rows.history {
        insert_history_row(tx, OP, event)?;
    }
    for job_id in crate::store::in_play::awaiting_in(&rows.jobs, &rows.steps) {
        super::in_play::set_awaiting(tx, OP, &job_id, true)?;
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
