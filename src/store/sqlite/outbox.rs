//! The outbox on SQLite: events written inside the transitions' IMMEDIATE
//! transactions (one writer at a time: `seq` order is commit order), and
//! the deliveries' claims, outcomes and listing.
use super::db;
use super::rows::{opt_ts, query_all, ts, Cols};
use super::sql::insert_event;
use crate::domain::{JobId, RequestEvent, RequestId, StepRecord, StepStatus};
use crate::store::outbox::{
    payload, Delivery, DeliveryOutcome, DeliveryRecord, OutboxEvent, ReceiverSpec,
};
use crate::store::rows::{self, Columns};
use crate::store::{rules, Result};
use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

/// Outbox events are kept this long (deliveries give up after 24 h).
const KEEP: i64 = 7;

/// An audit event and, when it makes one, its notification.
pub(super) fn record_event(tx: &Transaction<'_>, op: &str, ev: &RequestEvent) -> Result<()> {
    insert_event(tx, op, ev)?;
    let Some(name) = rules::notification_event(ev.from, ev.to, ev.note.as_deref()) else {
        return Ok(());
    };
    let environment: String = tx
        .query_row(
            "SELECT environment FROM requests WHERE id = ?1",
            [ev.request_id.as_str()],
            |r| r.get(0),
        )
        .map_err(db(op))?;
    let body = payload(
        name,
        &ev.request_id,
        &environment,
        ev.to.as_str(),
        ev.at,
        &ev.actor,
        ev.note.as_deref(),
    );
    insert_outbox(tx, op, &ev.request_id, name, &body, ev.at)
}

fn insert_outbox(
    tx: &Transaction<'_>,
    op: &str,
    request: &RequestId,
    event: &str,
    body: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO outbox (request_id, event, payload, at) VALUES (?1, ?2, ?3, ?4)",
        params![request.as_str(), event, body, ts(&at)],
    )
    .map_err(db(op))?;
    Ok(())
}

/// The status a step had before this checkpoint.
pub(super) fn step_status(
    tx: &Transaction<'_>,
    op: &str,
    job: &JobId,
    step: &StepRecord,
) -> Result<Option<StepStatus>> {
    let raw: Option<String> = tx
        .query_row(
            "SELECT status FROM job_steps WHERE job_id = ?1 AND step = ?2",
            params![job.as_str(), step.step.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(db(op))?;
    Ok(raw.and_then(|r| StepStatus::parse(&r)))
}

/// The `step_failed` notification of a checkpoint, when it makes one.
pub(super) fn step_event(
    tx: &Transaction<'_>,
    op: &str,
    job: &JobId,
    previous: Option<StepStatus>,
    step: &StepRecord,
) -> Result<()> {
    let row: Option<(String, i64)> = tx
        .query_row(
            "SELECT request_id, dry_run FROM jobs WHERE id = ?1",
            [job.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db(op))?;
    let Some((request, dry_run)) = row else {
        return Ok(());
    };
    if !rules::step_failed(previous, step.status, dry_run != 0) {
        return Ok(());
    }
    let (environment, status): (String, String) = tx
        .query_row(
            "SELECT environment, status FROM requests WHERE id = ?1",
            [request.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db(op))?;
    // Nobody acts on a checkpoint: the run's is whoever moved it last.
    let actor: String = tx
        .query_row(
            "SELECT actor FROM request_events WHERE request_id = ?1 ORDER BY id DESC LIMIT 1",
            [request.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(db(op))?
        .unwrap_or_else(|| "pitr".into());
    let at = step.finished_at.unwrap_or_else(Utc::now);
    let detail = format!(
        "step {} failed (attempt {}): {}",
        step.step,
        step.attempts,
        step.error.as_deref().unwrap_or("no error text")
    );
    let request = RequestId::from(request);
    let body = payload(
        "step_failed",
        &request,
        &environment,
        &status,
        at,
        &actor,
        Some(&detail),
    );
    insert_outbox(tx, op, &request, "step_failed", &body, at)
}

fn outbox_row(row: &rusqlite::Row<'_>) -> Result<OutboxEvent> {
    rows::outbox_event(&Cols::new(row, "outbox", "request_id")?)
}

pub(super) fn outbox(conn: &Connection, request: Option<&RequestId>) -> Result<Vec<OutboxEvent>> {
    const OP: &str = "outbox";
    let cols = "seq, request_id, event, payload, at";
    match request {
        Some(r) => query_all(
            conn,
            OP,
            &format!("SELECT {cols} FROM outbox WHERE request_id = ?1 ORDER BY seq"),
            [r.as_str()],
            outbox_row,
        ),
        None => query_all(
            conn,
            OP,
            &format!("SELECT {cols} FROM outbox ORDER BY seq"),
            [],
            outbox_row,
        ),
    }
}

pub(super) fn claim(
    tx: &Transaction<'_>,
    receivers: &[ReceiverSpec],
    owner: &str,
    now: DateTime<Utc>,
    ttl: Duration,
    since: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Delivery>> {
    const OP: &str = "claim_deliveries";
    tx.execute(
        "DELETE FROM outbox WHERE at < ?1",
        [ts(&(now - Duration::days(KEEP)))],
    )
    .map_err(db(OP))?;
    let mut out = Vec::new();
    for r in receivers {
        // The deliveries this receiver is missing, in the order written.
        let missing: Vec<(i64, String, String)> = query_all(
            tx,
            OP,
            "SELECT o.seq, o.request_id, o.event FROM outbox o
             WHERE o.at >= ?2 AND NOT EXISTS
                 (SELECT 1 FROM deliveries d WHERE d.receiver = ?1 AND d.outbox_seq = o.seq)
             ORDER BY o.seq",
            params![r.url, ts(&since)],
            |row| {
                let c = Cols::new(row, "outbox", "request_id")?;
                Ok((c.int("seq")?, c.key.clone(), c.text("event")?))
            },
        )?;
        for (seq, request, _) in missing.into_iter().filter(|(_, _, e)| r.events.contains(e)) {
            tx.execute(
                "INSERT INTO deliveries (receiver, outbox_seq, request_id, delivery_id, status,
                     attempts, created_at, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5)",
                params![
                    r.url,
                    seq,
                    request,
                    uuid::Uuid::new_v4().to_string(),
                    ts(&now)
                ],
            )
            .map_err(db(OP))?;
        }
        // The head of each request's chain, when due and not claimed.
        let due = query_all(
            tx,
            OP,
            "SELECT d.receiver, d.outbox_seq, d.delivery_id, d.request_id, d.attempts, d.created_at,
                    o.event, o.payload
             FROM deliveries d JOIN outbox o ON o.seq = d.outbox_seq
             WHERE d.receiver = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2
               AND (d.claimed_until IS NULL OR d.claimed_until <= ?2)
               AND NOT EXISTS (SELECT 1 FROM deliveries e
                   WHERE e.receiver = d.receiver AND e.request_id = d.request_id
                     AND e.status = 'pending' AND e.outbox_seq < d.outbox_seq)
             ORDER BY d.outbox_seq LIMIT ?3",
            params![r.url, ts(&now), limit.saturating_sub(out.len()) as i64],
            delivery_row,
        )?;
        for mut d in due {
            tx.execute(
                "UPDATE deliveries SET claimed_by = ?3, claimed_until = ?4, attempts = attempts + 1,
                     last_attempt_at = ?5
                 WHERE receiver = ?1 AND outbox_seq = ?2",
                params![d.receiver, d.seq, owner, ts(&(now + ttl)), ts(&now)],
            )
            .map_err(db(OP))?;
            d.attempts += 1;
            out.push(d);
        }
    }
    Ok(out)
}

fn delivery_row(row: &rusqlite::Row<'_>) -> Result<Delivery> {
    rows::delivery(&Cols::new(row, "deliveries", "delivery_id")?)
}

pub(super) fn finish(
    tx: &Transaction<'_>,
    d: &Delivery,
    owner: &str,
    outcome: &DeliveryOutcome,
) -> Result<()> {
    const OP: &str = "finish_delivery";
    let (status, next, error, delivered) = match outcome {
        DeliveryOutcome::Delivered { at } => ("delivered", *at, None, Some(*at)),
        DeliveryOutcome::Retry { next, error, .. } => {
            ("pending", *next, Some(error.as_str()), None)
        }
        DeliveryOutcome::Failed { at, error } => ("failed", *at, Some(error.as_str()), None),
    };
    tx.execute(
        "UPDATE deliveries SET status = ?4, next_attempt_at = ?5, last_error = COALESCE(?6, last_error),
             delivered_at = ?7, claimed_by = NULL, claimed_until = NULL
         WHERE receiver = ?1 AND outbox_seq = ?2 AND claimed_by = ?3 AND status = 'pending'",
        params![d.receiver, d.seq, owner, status, ts(&next), error, opt_ts(&delivered)],
    )
    .map_err(db(OP))?;
    Ok(())
}

pub(super) fn list(
    conn: &Connection,
    failed_only: bool,
    limit: usize,
) -> Result<Vec<DeliveryRecord>> {
    const OP: &str = "deliveries";
    let filter = if failed_only {
        "WHERE d.status = 'failed'"
    } else {
        ""
    };
    query_all(
        conn,
        OP,
        &format!(
            "SELECT d.receiver, d.outbox_seq, d.delivery_id, d.request_id, o.event, d.status,
                    d.attempts, d.created_at, d.next_attempt_at, d.last_attempt_at,
                    d.delivered_at, d.last_error
             FROM deliveries d JOIN outbox o ON o.seq = d.outbox_seq {filter}
             ORDER BY d.outbox_seq DESC, d.receiver LIMIT ?1"
        ),
        [limit as i64],
        |row| rows::delivery_record(&Cols::new(row, "deliveries", "delivery_id")?),
    )
}
