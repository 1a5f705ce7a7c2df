//! The work in play on SQLite ([`crate::store::in_play`]): five indexed
//! reads in one read transaction, none of which visits finished history;
//! and the `awaiting_cleanup` column kept with every job and `cleanup`
//! checkpoint.
use super::db;
use super::rows::*;
use crate::domain::{Job, JobId, StepName, StepRecord};
use crate::store::in_play::{self, WorkInPlay, IN_PLAY, RUNNING};
use crate::store::{Result, StepRow};
use rusqlite::{params, Connection};

/// The ids of the requests in play (?1, ?2: the statuses in play; ?3: running).
const REQUESTS_IN_PLAY: &str = "SELECT id FROM requests WHERE status IN (?1, ?2)
     UNION SELECT request_id FROM jobs WHERE status = ?3";

pub(super) fn work_in_play(conn: &Connection) -> Result<WorkInPlay> {
    const OP: &str = "work_in_play";
    let tx = conn.unchecked_transaction().map_err(db(OP))?;
    let [accepted, running] = IN_PLAY.map(|s| s.as_str());
    let job_running = RUNNING.as_str();
    let in_play = params![accepted, running, job_running];
    let work = WorkInPlay {
        requests: query_all(
            &tx,
            OP,
            &format!(
                "SELECT {REQUEST_COLUMNS} FROM requests WHERE id IN ({REQUESTS_IN_PLAY})
                 ORDER BY submitted_at DESC, rowid DESC"
            ),
            in_play,
            request_from_row,
        )?,
        jobs: query_all(
            &tx,
            OP,
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE request_id IN ({REQUESTS_IN_PLAY})
                 ORDER BY created_at, rowid"
            ),
            in_play,
            job_from_row,
        )?,
        leases: query_all(
            &tx,
            OP,
            &format!(
                "SELECT {LEASE_COLUMNS} FROM leases
                 WHERE job_id IN (SELECT id FROM jobs WHERE status = ?1)"
            ),
            [job_running],
            lease_from_row,
        )?,
        steps: query_all(
            &tx,
            OP,
            &format!(
                "SELECT seq, {STEP_COLUMNS} FROM job_steps
                 WHERE job_id IN (SELECT id FROM jobs WHERE status = ?1
                                  UNION SELECT id FROM jobs WHERE awaiting_cleanup = 1)
                 ORDER BY job_id, seq"
            ),
            [job_running],
            |row| {
                let c = Cols::new(row, "job_steps", "job_id")?;
                Ok(StepRow {
                    seq: c.get("seq")?,
                    record: step_from_row(row)?,
                    job_id: c.key.into(),
                })
            },
        )?,
        awaiting_cleanup: query_all(
            &tx,
            OP,
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE awaiting_cleanup = 1
                 ORDER BY created_at, rowid"
            ),
            [],
            job_from_row,
        )?,
    };
    tx.finish().map_err(db(OP))?;
    Ok(work)
}

/// Whether `job`, just written, awaits a cleanup: its `cleanup` checkpoint
/// is read only for a restore that succeeded.
pub(super) fn job_awaits_cleanup(conn: &Connection, op: &str, job: &Job) -> Result<bool> {
    if !in_play::may_await_cleanup(job) {
        return Ok(false);
    }
    let cleanup = cleanup_of(conn, op, &job.id)?;
    Ok(in_play::awaits_cleanup(job, cleanup.as_ref()))
}

fn cleanup_of(conn: &Connection, op: &str, job_id: &JobId) -> Result<Option<StepRecord>> {
    let sql = format!("SELECT {STEP_COLUMNS} FROM job_steps WHERE job_id = ?1 AND step = ?2");
    let found = query_all(
        conn,
        op,
        &sql,
        [job_id.as_str(), StepName::Cleanup.as_str()],
        step_from_row,
    )?;
    Ok(found.into_iter().next())
}

/// After a `cleanup` checkpoint of `job_id` is written: its job awaits a
/// cleanup again, or no more.
pub(super) fn cleanup_saved(conn: &Connection, op: &str, job_id: &JobId) -> Result<()> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
    let Some(job) = query_all(conn, op, &sql, [job_id.as_str()], job_from_row)?
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    let awaits = job_awaits_cleanup(conn, op, &job)?;
    set_awaiting(conn, op, job_id, awaits)
}

pub(super) fn set_awaiting(
    conn: &Connection,
    op: &str,
    job_id: &JobId,
    awaits: bool,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE jobs SET awaiting_cleanup = ?2 WHERE id = ?1 AND awaiting_cleanup <> ?2",
    )
    .and_then(|mut stmt| stmt.execute(params![job_id.as_str(), awaits]))
    .map_err(db(op))?;
    Ok(())
}
