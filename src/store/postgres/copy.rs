//! Every row out, every row in: the two halves of `pitr store copy`
//! ([`crate::store::copy`]) on PostgreSQL.
use super::rows::*;
use super::sql::{
    insert_event, insert_history_row, insert_job_row, insert_request_row, insert_step_row,
    query_all,
};
use super::{db, PostgresStore};
use crate::store::{rules, Result, RowCounts, StepRow, StoreError, StoreRows};
use deadpool_postgres::GenericClient;
use tokio_postgres::IsolationLevel;

/// One consistent snapshot (REPEATABLE READ, read-only), each table in the
/// order it was written.
pub(super) async fn export(store: &PostgresStore) -> Result<StoreRows> {
    const OP: &str = "export";
    let mut conn = store.conn(OP).await?;
    let tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db(OP))?;
    let rows = StoreRows {
        requests: query_all(
            &tx,
            OP,
            &format!("SELECT {REQUEST_COLUMNS} FROM requests ORDER BY seq"),
            &[],
            request_from_row,
        )
        .await?,
        events: query_all(
            &tx,
            OP,
            &format!("SELECT {EVENT_COLUMNS} FROM request_events ORDER BY id"),
            &[],
            event_from_row,
        )
        .await?,
        jobs: query_all(
            &tx,
            OP,
            &format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY seq"),
            &[],
            job_from_row,
        )
        .await?,
        // By job (in the jobs' order), then by place; the inner `seq` is
        // the job's, the outer one the step's.
        steps: query_all(
            &tx,
            OP,
            &format!(
                "SELECT seq, {STEP_COLUMNS} FROM job_steps
                 ORDER BY (SELECT seq FROM jobs WHERE jobs.id = job_steps.job_id), seq"
            ),
            &[],
            |row| {
                let c = Cols::new(row, "job_steps", "job_id")?;
                Ok(StepRow {
                    seq: c.get("seq")?,
                    record: step_from_row(row)?,
                    job_id: c.key.into(),
                })
            },
        )
        .await?,
        history: query_all(
            &tx,
            OP,
            &format!("SELECT {HISTORY_COLUMNS} FROM environment_history ORDER BY id"),
            &[],
            history_from_row,
        )
        .await?,
        leases: query_all(
            &tx,
            OP,
            &format!("SELECT {LEASE_COLUMNS} FROM leases ORDER BY job_id"),
            &[],
            lease_from_row,
        )
        .await?,
    };
    tx.commit().await.map_err(db(OP))?;
    Ok(rows)
}

/// Writes `rows` in their order, in one transaction, into an empty store.
/// The tables are locked against other writers for the duration, so a
/// runner started too early cannot slip rows in between the check and the
/// copy.
pub(super) async fn import(store: &PostgresStore, rows: &StoreRows) -> Result<()> {
    const OP: &str = "import";
    let mut conn = store.conn(OP).await?;
    let tx = conn.transaction().await.map_err(db(OP))?;
    tx.batch_execute(
        "LOCK TABLE requests, request_events, jobs, job_steps, leases, environment_history
         IN EXCLUSIVE MODE",
    )
    .await
    .map_err(db(OP))?;
    rules::empty_target(store.target(), counts(&tx).await?)?;
    for req in &rows.requests {
        if !insert_request_row(&tx, OP, req).await? {
            return Err(StoreError::Database(format!(
                "{OP}: request {} would be a second active request of environment '{}'",
                req.id, req.spec.environment
            )));
        }
    }
    for event in &rows.events {
        insert_event(&tx, OP, event).await?;
    }
    for job in &rows.jobs {
        insert_job_row(&tx, OP, job).await?;
    }
    for StepRow {
        job_id,
        seq,
        record,
    } in &rows.steps
    {
        insert_step_row(&tx, OP, job_id, *seq, record).await?;
    }
    for event in &rows.history {
        insert_history_row(&tx, OP, event).await?;
    }
    for job_id in crate::store::in_play::awaiting_in(&rows.jobs, &rows.steps) {
        super::in_play::set_awaiting(&tx, OP, &job_id, true).await?;
    }
    tx.commit().await.map_err(db(OP))
}

async fn counts(client: &impl GenericClient) -> Result<RowCounts> {
    const OP: &str = "counting rows";
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM request_events),
                 (SELECT count(*) FROM jobs), (SELECT count(*) FROM job_steps),
                 (SELECT count(*) FROM environment_history)",
            &[],
        )
        .await
        .map_err(db(OP))?;
    let n = |i: usize| -> Result<u64> {
        let v: i64 = row.try_get(i).map_err(db(OP))?;
        Ok(u64::try_from(v).unwrap_or(0))
    };
    Ok(RowCounts {
        requests: n(0)?,
        events: n(1)?,
        jobs: n(2)?,
        steps: n(3)?,
        history: n(4)?,
    })
}
