//! The work in play on PostgreSQL ([`crate::store::in_play`]): five indexed
//! reads in one REPEATABLE READ, read-only transaction, none of which
//! visits finished history; and the `awaiting_cleanup` column kept with
//! every job and `cleanup` checkpoint.
use super::rows::*;
use super::sql::{exec, query_all};
use super::{db, PostgresStore};
use crate::domain::{Job, JobId, StepName};
use crate::store::in_play::{self, WorkInPlay, IN_PLAY, RUNNING};
use crate::store::{Result, StepRow};
use deadpool_postgres::GenericClient;
use tokio_postgres::IsolationLevel;

/// The ids of the requests in play ($1, $2: the statuses in play; $3: running).
const REQUESTS_IN_PLAY: &str = "SELECT id FROM requests WHERE status IN ($1, $2)
     UNION SELECT request_id FROM jobs WHERE status = $3";

pub(super) async fn work_in_play(store: &PostgresStore) -> Result<WorkInPlay> {
    const OP: &str = "work_in_play";
    let mut conn = store.conn(OP).await?;
    let tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db(OP))?;
    let [accepted, running] = IN_PLAY.map(|s| s.as_str());
    let job_running = RUNNING.as_str();
    let work = WorkInPlay {
        requests: query_all(
            &tx,
            OP,
            &format!(
                "SELECT {REQUEST_COLUMNS} FROM requests WHERE id IN ({REQUESTS_IN_PLAY})
                 ORDER BY submitted_at DESC, seq DESC"
            ),
            &[&accepted, &running, &job_running],
            request_from_row,
        )
        .await?,
        jobs: query_all(
            &tx,
            OP,
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE request_id IN ({REQUESTS_IN_PLAY})
                 ORDER BY created_at, seq"
            ),
            &[&accepted, &running, &job_running],
            job_from_row,
        )
        .await?,
        leases: query_all(
            &tx,
            OP,
            &format!(
                "SELECT {LEASE_COLUMNS} FROM leases
                 WHERE job_id IN (SELECT id FROM jobs WHERE status = $1)"
            ),
            &[&job_running],
            lease_from_row,
        )
        .await?,
        steps: query_all(
            &tx,
            OP,
            &format!(
                "SELECT seq, {STEP_COLUMNS} FROM job_steps
                 WHERE job_id IN (SELECT id FROM jobs WHERE status = $1
                                  UNION SELECT id FROM jobs WHERE awaiting_cleanup)
                 ORDER BY job_id, seq"
            ),
            &[&job_running],
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
        awaiting_cleanup: query_all(
            &tx,
            OP,
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE awaiting_cleanup ORDER BY created_at, seq"
            ),
            &[],
            job_from_row,
        )
        .await?,
    };
    tx.commit().await.map_err(db(OP))?;
    Ok(work)
}

/// Whether `job`, being written, awaits a cleanup: its `cleanup` checkpoint
/// is read only for a restore that succeeded.
pub(super) async fn job_awaits_cleanup(
    client: &impl GenericClient,
    op: &str,
    job: &Job,
) -> Result<bool> {
    if !in_play::may_await_cleanup(job) {
        return Ok(false);
    }
    let sql = format!("SELECT {STEP_COLUMNS} FROM job_steps WHERE job_id = $1 AND step = $2");
    let found = query_all(
        client,
        op,
        &sql,
        &[&job.id.as_str(), &StepName::Cleanup.as_str()],
        step_from_row,
    )
    .await?;
    Ok(in_play::awaits_cleanup(job, found.first()))
}

/// After a `cleanup` checkpoint of `job_id` is written: its job awaits a
/// cleanup again, or no more.
pub(super) async fn cleanup_saved(
    client: &impl GenericClient,
    op: &str,
    job_id: &JobId,
) -> Result<()> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
    let jobs = query_all(client, op, &sql, &[&job_id.as_str()], job_from_row).await?;
    let Some(job) = jobs.first() else {
        return Ok(());
    };
    let awaits = job_awaits_cleanup(client, op, job).await?;
    set_awaiting(client, op, job_id, awaits).await
}

pub(super) async fn set_awaiting(
    client: &impl GenericClient,
    op: &str,
    job_id: &JobId,
    awaits: bool,
) -> Result<()> {
    exec(
        client,
        op,
        "UPDATE jobs SET awaiting_cleanup = $2 WHERE id = $1 AND awaiting_cleanup <> $2",
        &[&job_id.as_str(), &awaits],
    )
    .await?;
    Ok(())
}
