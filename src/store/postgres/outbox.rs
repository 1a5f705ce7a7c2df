//! The outbox on PostgreSQL. Outbox rows are written under a
//! transaction-scoped advisory lock taken last in the transition's
//! transaction, so they commit in `seq` order: a reader that sees an event
//! has seen every earlier one, and no delivery can overtake an earlier event
//! of its request. Claims lock the due deliveries `FOR UPDATE SKIP LOCKED`,
//! so several runners never attempt the same one at once.
use super::db;
use super::rows::Cols;
use super::sql::{exec, first, insert_event, query_all};
use crate::domain::{JobId, RequestEvent, RequestId, StepRecord, StepStatus};
use crate::store::outbox::{
    payload, Delivery, DeliveryOutcome, DeliveryRecord, OutboxEvent, ReceiverSpec,
};
use crate::store::rows::{self, Columns};
use crate::store::{rules, Result};
use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

/// The advisory lock that orders outbox writes.
const OUTBOX_LOCK: i64 = 0x7069_7472_0000_0002;
/// Outbox events are kept this long (deliveries give up after 24 h).
const KEEP: i64 = 7;

async fn insert_outbox(
    client: &impl GenericClient,
    op: &str,
    request: &RequestId,
    event: &str,
    body: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    exec(
        client,
        op,
        "SELECT pg_advisory_xact_lock($1)",
        &[&OUTBOX_LOCK],
    )
    .await?;
    exec(
        client,
        op,
        "INSERT INTO outbox (request_id, event, payload, at) VALUES ($1, $2, $3, $4)",
        &[&request.as_str(), &event, &body, &at],
    )
    .await?;
    Ok(())
}

/// An audit event and, when it makes one, its notification.
pub(super) async fn record_event(
    client: &impl GenericClient,
    op: &str,
    ev: &RequestEvent,
) -> Result<()> {
    insert_event(client, op, ev).await?;
    let Some(name) = rules::notification_event(ev.from, ev.to, ev.note.as_deref()) else {
        return Ok(());
    };
    let environment: String = first(
        client,
        op,
        "SELECT environment FROM requests WHERE id = $1",
        &[&ev.request_id.as_str()],
    )
    .await?
    .unwrap_or_default();
    let body = payload(
        name,
        &ev.request_id,
        &environment,
        ev.to.as_str(),
        ev.at,
        &ev.actor,
        ev.note.as_deref(),
    );
    insert_outbox(client, op, &ev.request_id, name, &body, ev.at).await
}

/// The status a step had before this checkpoint.
pub(super) async fn step_status(
    client: &impl GenericClient,
    op: &str,
    job: &JobId,
    step: &StepRecord,
) -> Result<Option<StepStatus>> {
    let raw: Option<String> = first(
        client,
        op,
        "SELECT status FROM job_steps WHERE job_id = $1 AND step = $2",
        &[&job.as_str(), &step.step.as_str()],
    )
    .await?;
    Ok(raw.and_then(|r| StepStatus::parse(&r)))
}

/// The `step_failed` notification of a checkpoint, when it makes one.
pub(super) async fn step_event(
    client: &impl GenericClient,
    op: &str,
    job: &JobId,
    previous: Option<StepStatus>,
    step: &StepRecord,
) -> Result<()> {
    let stmt = client
        .prepare_cached("SELECT request_id, dry_run FROM jobs WHERE id = $1")
        .await
        .map_err(db(op))?;
    let Some(row) = client
        .query_opt(&stmt, &[&job.as_str()])
        .await
        .map_err(db(op))?
    else {
        return Ok(());
    };
    let request: String = row.try_get(0).map_err(db(op))?;
    let dry_run: bool = row.try_get(1).map_err(db(op))?;
    if !rules::step_failed(previous, step.status, dry_run) {
        return Ok(());
    }
    let stmt = client
        .prepare_cached("SELECT environment, status FROM requests WHERE id = $1")
        .await
        .map_err(db(op))?;
    let row = client.query_one(&stmt, &[&request]).await.map_err(db(op))?;
    let environment: String = row.try_get(0).map_err(db(op))?;
    let status: String = row.try_get(1).map_err(db(op))?;
    // Nobody acts on a checkpoint: the run's is whoever moved it last.
    let actor: String = first(
        client,
        op,
        "SELECT actor FROM request_events WHERE request_id = $1 ORDER BY id DESC LIMIT 1",
        &[&request],
    )
    .await?
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
    insert_outbox(client, op, &request, "step_failed", &body, at).await
}

fn outbox_row(row: &Row) -> Result<OutboxEvent> {
    rows::outbox_event(&Cols::new(row, "outbox", "request_id")?)
}

pub(super) async fn outbox(
    client: &impl GenericClient,
    request: Option<&RequestId>,
) -> Result<Vec<OutboxEvent>> {
    const OP: &str = "outbox";
    let cols = "seq, request_id, event, payload, at";
    match request {
        Some(r) => {
            query_all(
                client,
                OP,
                &format!("SELECT {cols} FROM outbox WHERE request_id = $1 ORDER BY seq"),
                &[&r.as_str()],
                outbox_row,
            )
            .await
        }
        None => {
            query_all(
                client,
                OP,
                &format!("SELECT {cols} FROM outbox ORDER BY seq"),
                &[],
                outbox_row,
            )
            .await
        }
    }
}

fn delivery_row(row: &Row) -> Result<Delivery> {
    rows::delivery(&Cols::new(row, "deliveries", "delivery_id")?)
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn claim(
    client: &impl GenericClient,
    receivers: &[ReceiverSpec],
    owner: &str,
    now: DateTime<Utc>,
    ttl: Duration,
    since: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Delivery>> {
    const OP: &str = "claim_deliveries";
    exec(
        client,
        OP,
        "DELETE FROM outbox WHERE at < $1",
        &[&(now - Duration::days(KEEP))],
    )
    .await?;
    let mut out = Vec::new();
    for r in receivers {
        let missing: Vec<(i64, String, String)> = query_all(
            client,
            OP,
            "SELECT o.seq, o.request_id, o.event FROM outbox o
             WHERE o.at >= $2 AND NOT EXISTS
                 (SELECT 1 FROM deliveries d WHERE d.receiver = $1 AND d.outbox_seq = o.seq)
             ORDER BY o.seq",
            &[&r.url, &since],
            |row| {
                let c = Cols::new(row, "outbox", "request_id")?;
                Ok((c.int("seq")?, c.key.clone(), c.text("event")?))
            },
        )
        .await?;
        for (seq, request, _) in missing.into_iter().filter(|(_, _, e)| r.events.contains(e)) {
            exec(
                client,
                OP,
                "INSERT INTO deliveries (receiver, outbox_seq, request_id, delivery_id, status,
                     attempts, created_at, next_attempt_at)
                 VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)
                 ON CONFLICT (receiver, outbox_seq) DO NOTHING",
                &[
                    &r.url,
                    &seq,
                    &request,
                    &uuid::Uuid::new_v4().to_string(),
                    &now,
                ],
            )
            .await?;
        }
        let room = limit.saturating_sub(out.len()) as i64;
        let due = query_all(
            client,
            OP,
            "SELECT d.receiver, d.outbox_seq, d.delivery_id, d.request_id, d.attempts, d.created_at,
                    o.event, o.payload
             FROM deliveries d JOIN outbox o ON o.seq = d.outbox_seq
             WHERE d.receiver = $1 AND d.status = 'pending' AND d.next_attempt_at <= $2
               AND (d.claimed_until IS NULL OR d.claimed_until <= $2)
               AND NOT EXISTS (SELECT 1 FROM deliveries e
                   WHERE e.receiver = d.receiver AND e.request_id = d.request_id
                     AND e.status = 'pending' AND e.outbox_seq < d.outbox_seq)
             ORDER BY d.outbox_seq LIMIT $3
             FOR UPDATE OF d SKIP LOCKED",
            &[&r.url, &now, &room],
            delivery_row,
        )
        .await?;
        for mut d in due {
            exec(
                client,
                OP,
                "UPDATE deliveries SET claimed_by = $3, claimed_until = $4, attempts = attempts + 1,
                     last_attempt_at = $5
                 WHERE receiver = $1 AND outbox_seq = $2",
                &[&d.receiver, &d.seq, &owner, &(now + ttl), &now],
            )
            .await?;
            d.attempts += 1;
            out.push(d);
        }
    }
    Ok(out)
}

pub(super) async fn finish(
    client: &impl GenericClient,
    d: &Delivery,
    owner: &str,
    outcome: &DeliveryOutcome,
) -> Result<()> {
    let (status, next, error, delivered) = match outcome {
        DeliveryOutcome::Delivered { at } => ("delivered", *at, None, Some(*at)),
        DeliveryOutcome::Retry { next, error, .. } => {
            ("pending", *next, Some(error.as_str()), None)
        }
        DeliveryOutcome::Failed { at, error } => ("failed", *at, Some(error.as_str()), None),
    };
    exec(
        client,
        "finish_delivery",
        "UPDATE deliveries SET status = $4, next_attempt_at = $5, last_error = COALESCE($6, last_error),
             delivered_at = $7, claimed_by = NULL, claimed_until = NULL
         WHERE receiver = $1 AND outbox_seq = $2 AND claimed_by = $3 AND status = 'pending'",
        &[&d.receiver, &d.seq, &owner, &status, &next, &error, &delivered],
    )
    .await?;
    Ok(())
}

pub(super) async fn list(
    client: &impl GenericClient,
    failed_only: bool,
    limit: usize,
) -> Result<Vec<DeliveryRecord>> {
    let filter = if failed_only {
        "WHERE d.status = 'failed'"
    } else {
        ""
    };
    query_all(
        client,
        "deliveries",
        &format!(
            "SELECT d.receiver, d.outbox_seq, d.delivery_id, d.request_id, o.event, d.status,
                    d.attempts, d.created_at, d.next_attempt_at, d.last_attempt_at,
                    d.delivered_at, d.last_error
             FROM deliveries d JOIN outbox o ON o.seq = d.outbox_seq {filter}
             ORDER BY d.outbox_seq DESC, d.receiver LIMIT $1"
        ),
        &[&(limit as i64)],
        |row| rows::delivery_record(&Cols::new(row, "deliveries", "delivery_id")?),
    )
    .await
}
