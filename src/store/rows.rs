//! Rows to domain values and back, written once for every engine: the
//! column lists, the names and JSON kept in columns, and the decoders, over
//! [`Columns`], which each backend implements for its own row type (how it
//! reads text, flags and instants). Anything unreadable becomes
//! `StoreError::Corrupt` naming the table, column and row.
use super::{Lease, Result, StoreError};
use crate::domain::{
    Acknowledgements, EnvironmentEvent, EnvironmentEventKind, HistoryEntry, Job, JobFacts,
    JobStatus, RequestEvent, RequestSpec, RequestStatus, RestoreRecord, RestoreRequest, StepName,
    StepRecord, StepStatus, Window,
};
use chrono::{DateTime, Utc};

pub(crate) const REQUEST_COLUMNS: &str = "id, environment, database, restore_point, window_start, \
     window_end, ack_erase, ack_downtime, ack_scope, requester, reason, prestage, status, \
     submitted_at, updated_at, emergency, ack_version_mismatch, warning";
pub(crate) const EVENT_COLUMNS: &str = "request_id, at, actor, from_status, to_status, note";
pub(crate) const JOB_COLUMNS: &str =
    "id, request_id, dry_run, status, plan, created_at, updated_at, finished_at, facts, error";
pub(crate) const STEP_COLUMNS: &str =
    "job_id, step, status, attempts, external_ref, started_at, finished_at, detail, error";
pub(crate) const HISTORY_COLUMNS: &str = "id, environment, kind, at, finished_at, version, detail";
pub(crate) const LEASE_COLUMNS: &str = "job_id, owner, expires_at, fencing";

/// One row as a backend reads it. `key` names the row in messages.
pub(crate) trait Columns {
    fn key(&self) -> &str;
    fn corrupt(&self, col: &str, why: &dyn std::fmt::Display) -> StoreError;
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn int(&self, col: &str) -> Result<i64>;
    fn flag(&self, col: &str) -> Result<bool>;
    fn instant(&self, col: &str) -> Result<DateTime<Utc>>;
    fn opt_instant(&self, col: &str) -> Result<Option<DateTime<Utc>>>;

    /// A column holding one of a closed set of names (`what` says which set).
    fn named<T>(&self, col: &str, what: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
        let raw = self.text(col)?;
        parse(&raw).ok_or_else(|| self.corrupt(col, &format!("'{raw}' is not a {what}")))
    }

    fn opt_named<T>(
        &self,
        col: &str,
        what: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<Option<T>> {
        self.opt_text(col)?
            .map(|raw| {
                parse(&raw).ok_or_else(|| self.corrupt(col, &format!("'{raw}' is not a {what}")))
            })
            .transpose()
    }
}

/// The plan of a job: step names, comma-separated, in order.
pub(crate) fn plan_text(plan: &[StepName]) -> String {
    plan.iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn facts_json(op: &str, facts: &JobFacts) -> Result<String> {
    serde_json::to_string(facts)
        .map_err(|e| StoreError::Database(format!("{op}: encoding the job facts: {e}")))
}

/// What the `environment_history` row of an event holds besides its
/// environment and instant.
pub(crate) struct HistoryColumns {
    pub kind: &'static str,
    pub finished_at: Option<DateTime<Utc>>,
    pub version: Option<String>,
    pub detail: Option<String>,
}

pub(crate) fn history_columns(ev: &EnvironmentEvent) -> Result<HistoryColumns> {
    Ok(match &ev.entry {
        HistoryEntry::Restore(r) => HistoryColumns {
            kind: EnvironmentEventKind::Restore.as_str(),
            finished_at: r.finished_at,
            version: None,
            detail: Some(
                serde_json::to_string(r)
                    .map_err(|e| StoreError::Database(format!("encoding a restore record: {e}")))?,
            ),
        },
        HistoryEntry::Rollback(r) => {
            HistoryColumns {
                kind: EnvironmentEventKind::Rollback.as_str(),
                finished_at: r.finished_at,
                version: None,
                detail: Some(serde_json::to_string(r).map_err(|e| {
                    StoreError::Database(format!("encoding a rollback record: {e}"))
                })?),
            }
        }
        HistoryEntry::Deployment { version, note } => HistoryColumns {
            kind: EnvironmentEventKind::Deployment.as_str(),
            finished_at: None,
            version: Some(version.clone()),
            detail: note.clone(),
        },
    })
}

/// A row of `requests` (keyed by `id`).
pub(crate) fn request(c: &impl Columns) -> Result<RestoreRequest> {
    Ok(RestoreRequest {
        spec: RequestSpec {
            environment: c.text("environment")?,
            database: c.text("database")?,
            restore_point: c.instant("restore_point")?,
            window: Window {
                start: c.instant("window_start")?,
                end: c.instant("window_end")?,
            },
            acks: Acknowledgements {
                erase: c.flag("ack_erase")?,
                downtime: c.flag("ack_downtime")?,
                scope: c.flag("ack_scope")?,
                version_mismatch: c.flag("ack_version_mismatch")?,
            },
            requester: c.text("requester")?,
            reason: c.opt_text("reason")?,
            prestage: c.flag("prestage")?,
            emergency: c.opt_text("emergency")?,
        },
        status: c.named("status", "request status", RequestStatus::parse)?,
        warning: c.opt_text("warning")?,
        submitted_at: c.instant("submitted_at")?,
        updated_at: c.instant("updated_at")?,
        id: c.key().into(),
    })
}

/// A row of `request_events` (keyed by `request_id`).
pub(crate) fn event(c: &impl Columns) -> Result<RequestEvent> {
    Ok(RequestEvent {
        at: c.instant("at")?,
        actor: c.text("actor")?,
        from: c.opt_named("from_status", "request status", RequestStatus::parse)?,
        to: c.named("to_status", "request status", RequestStatus::parse)?,
        note: c.opt_text("note")?,
        request_id: c.key().into(),
    })
}

/// A row of `jobs` (keyed by `id`).
pub(crate) fn job(c: &impl Columns) -> Result<Job> {
    let plan_raw = c.text("plan")?;
    let plan = plan_raw
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            StepName::parse(s).ok_or_else(|| c.corrupt("plan", &format!("'{s}' is not a step")))
        })
        .collect::<Result<Vec<_>>>()?;
    let facts_raw = c.text("facts")?;
    let facts: JobFacts = serde_json::from_str(&facts_raw)
        .map_err(|e| c.corrupt("facts", &format!("not the JSON of job facts ({e})")))?;
    Ok(Job {
        request_id: c.text("request_id")?.into(),
        dry_run: c.flag("dry_run")?,
        status: c.named("status", "job status", JobStatus::parse)?,
        plan,
        created_at: c.instant("created_at")?,
        updated_at: c.instant("updated_at")?,
        finished_at: c.opt_instant("finished_at")?,
        facts,
        error: c.opt_text("error")?,
        id: c.key().into(),
    })
}

/// A row of `job_steps` (keyed by `job_id`).
pub(crate) fn step(c: &impl Columns) -> Result<StepRecord> {
    let attempts = c.int("attempts")?;
    Ok(StepRecord {
        step: c.named("step", "step", StepName::parse)?,
        status: c.named("status", "step status", StepStatus::parse)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| c.corrupt("attempts", &format!("{attempts} is out of range")))?,
        external_ref: c.opt_text("external_ref")?,
        started_at: c.opt_instant("started_at")?,
        finished_at: c.opt_instant("finished_at")?,
        detail: c.opt_text("detail")?,
        error: c.opt_text("error")?,
    })
}

/// A row of `environment_history` (keyed by `environment`).
pub(crate) fn history(c: &impl Columns) -> Result<EnvironmentEvent> {
    let kind = c.named("kind", "history kind", EnvironmentEventKind::parse)?;
    let detail = c.opt_text("detail")?;
    let entry = match kind {
        EnvironmentEventKind::Restore => {
            let raw = detail.ok_or_else(|| c.corrupt("detail", &"a restore without its record"))?;
            let mut record: RestoreRecord = serde_json::from_str(&raw)
                .map_err(|e| c.corrupt("detail", &format!("not a restore record ({e})")))?;
            record.finished_at = c.opt_instant("finished_at")?;
            HistoryEntry::Restore(record)
        }
        EnvironmentEventKind::Rollback => {
            let raw =
                detail.ok_or_else(|| c.corrupt("detail", &"a rollback without its record"))?;
            let mut record: crate::domain::RollbackRecord = serde_json::from_str(&raw)
                .map_err(|e| c.corrupt("detail", &format!("not a rollback record ({e})")))?;
            record.finished_at = c.opt_instant("finished_at")?;
            HistoryEntry::Rollback(record)
        }
        EnvironmentEventKind::Deployment => HistoryEntry::Deployment {
            version: c
                .opt_text("version")?
                .ok_or_else(|| c.corrupt("version", &"a deployment without its version"))?,
            note: detail,
        },
    };
    Ok(EnvironmentEvent {
        at: c.instant("at")?,
        entry,
        environment: c.key().to_string(),
    })
}

/// A row of `leases` (keyed by `job_id`).
pub(crate) fn lease(c: &impl Columns) -> Result<Lease> {
    Ok(Lease {
        owner: c.text("owner")?,
        expires_at: c.instant("expires_at")?,
        fencing: c.int("fencing")?,
        job_id: c.key().into(),
    })
}

/// An outbox row (`seq, request_id, event, payload, at`; keyed by request).
pub(crate) fn outbox_event(c: &impl Columns) -> Result<super::OutboxEvent> {
    Ok(super::OutboxEvent {
        seq: c.int("seq")?,
        event: c.text("event")?,
        payload: c.text("payload")?,
        at: c.instant("at")?,
        request_id: c.key().to_string().into(),
    })
}

/// A delivery claimed for sending (keyed by delivery id).
pub(crate) fn delivery(c: &impl Columns) -> Result<super::Delivery> {
    Ok(super::Delivery {
        receiver: c.text("receiver")?,
        seq: c.int("outbox_seq")?,
        request_id: c.text("request_id")?.into(),
        event: c.text("event")?,
        payload: c.text("payload")?,
        attempts: u32::try_from(c.int("attempts")?).unwrap_or(u32::MAX),
        created_at: c.instant("created_at")?,
        delivery_id: c.key().to_string(),
    })
}

/// A delivery as `pitr notifications list` shows it (keyed by delivery id).
pub(crate) fn delivery_record(c: &impl Columns) -> Result<super::DeliveryRecord> {
    let status = c.text("status")?;
    Ok(super::DeliveryRecord {
        receiver: c.text("receiver")?,
        seq: c.int("outbox_seq")?,
        request_id: c.text("request_id")?,
        event: c.text("event")?,
        attempts: u32::try_from(c.int("attempts")?).unwrap_or(u32::MAX),
        created_at: c.instant("created_at")?,
        next_attempt_at: (status == "pending")
            .then(|| c.instant("next_attempt_at"))
            .transpose()?,
        last_attempt_at: c.opt_instant("last_attempt_at")?,
        delivered_at: c.opt_instant("delivered_at")?,
        last_error: c.opt_text("last_error")?,
        delivery_id: c.key().to_string(),
        status,
    })
}
