//! Encoding and decoding of rows: instants as `timestamptz` (microseconds),
//! flags as `boolean`, names and ids as `text`, job facts and restore
//! records as JSON text (kept exactly as written; `jsonb` would refuse some
//! strings, such as `\u0000`, and nothing queries inside them). Anything
//! unreadable becomes `StoreError::Corrupt` naming the table, column and row.
use crate::domain::{
    Acknowledgements, EnvironmentEvent, EnvironmentEventKind, HistoryEntry, Job, JobFacts,
    JobStatus, RequestEvent, RequestSpec, RequestStatus, RestoreRecord, RestoreRequest, StepName,
    StepRecord, StepStatus, Window,
};
use crate::store::{Result, StoreError};
use chrono::{DateTime, Utc};
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

pub(super) const REQUEST_COLUMNS: &str = "id, environment, database, restore_point, window_start, \
     window_end, ack_erase, ack_downtime, ack_scope, requester, reason, prestage, status, \
     submitted_at, updated_at, emergency, ack_version_mismatch";
pub(super) const EVENT_COLUMNS: &str = "request_id, at, actor, from_status, to_status, note";
pub(super) const JOB_COLUMNS: &str =
    "id, request_id, dry_run, status, plan, created_at, updated_at, finished_at, facts, error";
pub(super) const STEP_COLUMNS: &str =
    "job_id, step, status, attempts, external_ref, started_at, finished_at, detail, error";
pub(super) const HISTORY_COLUMNS: &str = "id, environment, kind, at, finished_at, version, detail";

pub(super) fn plan_text(plan: &[StepName]) -> String {
    plan.iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn facts_json(op: &str, facts: &JobFacts) -> Result<String> {
    serde_json::to_string(facts)
        .map_err(|e| StoreError::Database(format!("{op}: encoding the job facts: {e}")))
}

/// What the `environment_history` row of an event holds besides its
/// environment and instant.
pub(super) struct HistoryColumns {
    pub kind: &'static str,
    pub finished_at: Option<DateTime<Utc>>,
    pub version: Option<String>,
    pub detail: Option<String>,
}

pub(super) fn history_columns(ev: &EnvironmentEvent) -> Result<HistoryColumns> {
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
        HistoryEntry::Deployment { version, note } => HistoryColumns {
            kind: EnvironmentEventKind::Deployment.as_str(),
            finished_at: None,
            version: Some(version.clone()),
            detail: note.clone(),
        },
    })
}

/// Reads the columns of one row, turning anything unreadable into
/// `StoreError::Corrupt` that names the table, column and row.
pub(super) struct Cols<'a> {
    row: &'a Row,
    table: &'static str,
    pub(super) key: String,
}

impl<'a> Cols<'a> {
    /// `key_col` names the row in error messages.
    pub(super) fn new(row: &'a Row, table: &'static str, key_col: &'static str) -> Result<Self> {
        let key = row.try_get::<_, String>(key_col).map_err(|e| {
            StoreError::Corrupt(format!("{table}.{key_col}: {}", super::describe(&e)))
        })?;
        Ok(Self { row, table, key })
    }

    pub(super) fn corrupt(&self, col: &str, why: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("{}.{col} of {}: {why}", self.table, self.key))
    }

    pub(super) fn get<T: for<'r> FromSql<'r>>(&self, col: &str) -> Result<T> {
        self.row.try_get(col).map_err(|e| {
            // The driver's error names the column; its cause says why.
            let why = std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_else(|| e.to_string());
            self.corrupt(col, why)
        })
    }

    pub(super) fn text(&self, col: &str) -> Result<String> {
        self.get(col)
    }

    pub(super) fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.get(col)
    }

    pub(super) fn flag(&self, col: &str) -> Result<bool> {
        self.get(col)
    }

    pub(super) fn instant(&self, col: &str) -> Result<DateTime<Utc>> {
        self.get(col)
    }

    pub(super) fn opt_instant(&self, col: &str) -> Result<Option<DateTime<Utc>>> {
        self.get(col)
    }

    /// A column holding one of a closed set of names (`what` says which set).
    pub(super) fn named<T>(
        &self,
        col: &str,
        what: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<T> {
        let raw = self.text(col)?;
        parse(&raw).ok_or_else(|| self.corrupt(col, format!("'{raw}' is not a {what}")))
    }

    pub(super) fn opt_named<T>(
        &self,
        col: &str,
        what: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<Option<T>> {
        self.opt_text(col)?
            .map(|raw| {
                parse(&raw).ok_or_else(|| self.corrupt(col, format!("'{raw}' is not a {what}")))
            })
            .transpose()
    }
}

pub(super) fn request_from_row(row: &Row) -> Result<RestoreRequest> {
    let c = Cols::new(row, "requests", "id")?;
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
        submitted_at: c.instant("submitted_at")?,
        updated_at: c.instant("updated_at")?,
        id: c.key.into(),
    })
}

pub(super) fn event_from_row(row: &Row) -> Result<RequestEvent> {
    let c = Cols::new(row, "request_events", "request_id")?;
    Ok(RequestEvent {
        at: c.instant("at")?,
        actor: c.text("actor")?,
        from: c.opt_named("from_status", "request status", RequestStatus::parse)?,
        to: c.named("to_status", "request status", RequestStatus::parse)?,
        note: c.opt_text("note")?,
        request_id: c.key.into(),
    })
}

pub(super) fn job_from_row(row: &Row) -> Result<Job> {
    let c = Cols::new(row, "jobs", "id")?;
    let plan_raw = c.text("plan")?;
    let plan = plan_raw
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            StepName::parse(s).ok_or_else(|| c.corrupt("plan", format!("'{s}' is not a step")))
        })
        .collect::<Result<Vec<_>>>()?;
    let facts_raw = c.text("facts")?;
    let facts: JobFacts = serde_json::from_str(&facts_raw)
        .map_err(|e| c.corrupt("facts", format!("not the JSON of job facts ({e})")))?;
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
        id: c.key.into(),
    })
}

pub(super) fn step_from_row(row: &Row) -> Result<StepRecord> {
    let c = Cols::new(row, "job_steps", "job_id")?;
    let attempts = c.get::<i64>("attempts")?;
    Ok(StepRecord {
        step: c.named("step", "step", StepName::parse)?,
        status: c.named("status", "step status", StepStatus::parse)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| c.corrupt("attempts", format!("{attempts} is out of range")))?,
        external_ref: c.opt_text("external_ref")?,
        started_at: c.opt_instant("started_at")?,
        finished_at: c.opt_instant("finished_at")?,
        detail: c.opt_text("detail")?,
        error: c.opt_text("error")?,
    })
}

pub(super) fn history_from_row(row: &Row) -> Result<EnvironmentEvent> {
    let c = Cols::new(row, "environment_history", "environment")?;
    let kind = c.named("kind", "history kind", EnvironmentEventKind::parse)?;
    let detail = c.opt_text("detail")?;
    let entry = match kind {
        EnvironmentEventKind::Restore => {
            let raw = detail.ok_or_else(|| c.corrupt("detail", "a restore without its record"))?;
            let mut record: RestoreRecord = serde_json::from_str(&raw)
                .map_err(|e| c.corrupt("detail", format!("not a restore record ({e})")))?;
            record.finished_at = c.opt_instant("finished_at")?;
            HistoryEntry::Restore(record)
        }
        EnvironmentEventKind::Deployment => HistoryEntry::Deployment {
            version: c
                .opt_text("version")?
                .ok_or_else(|| c.corrupt("version", "a deployment without its version"))?,
            note: detail,
        },
    };
    Ok(EnvironmentEvent {
        at: c.instant("at")?,
        entry,
        environment: c.key,
    })
}
