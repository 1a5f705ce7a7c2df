//! Encoding and decoding of rows: instants as fixed-width RFC 3339 text,
//! names as text, job facts and restore records as JSON. Anything unreadable
//! becomes `StoreError::Corrupt` naming the table, column and row.
use super::super::{Result, StoreError};
use crate::domain::{
    Acknowledgements, EnvironmentEvent, EnvironmentEventKind, HistoryEntry, Job, JobFacts,
    JobStatus, RequestEvent, RequestSpec, RequestStatus, RestoreRecord, RestoreRequest, StepName,
    StepRecord, StepStatus, Window,
};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::FromSql;
use rusqlite::{Connection, Row};

pub(super) const REQUEST_COLUMNS: &str = "id, environment, database, restore_point, window_start, \
     window_end, ack_erase, ack_downtime, ack_scope, requester, reason, prestage, status, \
     submitted_at, updated_at, emergency, ack_version_mismatch";
pub(super) const JOB_COLUMNS: &str =
    "id, request_id, dry_run, status, plan, created_at, updated_at, finished_at, facts, error";
pub(super) const STEP_COLUMNS: &str =
    "job_id, step, status, attempts, external_ref, started_at, finished_at, detail, error";
pub(super) const HISTORY_COLUMNS: &str = "id, environment, kind, at, finished_at, version, detail";

/// Instants are stored as RFC 3339 UTC text with a fixed nanosecond fraction
/// (`2024-05-01T22:00:00.000000000Z`): text comparison is then chronological,
/// and every `DateTime<Utc>` reads back exactly as it was written.
pub(super) fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(super) fn opt_ts(t: &Option<DateTime<Utc>>) -> Option<String> {
    t.as_ref().map(ts)
}

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
    pub finished_at: Option<String>,
    pub version: Option<String>,
    pub detail: Option<String>,
}

pub(super) fn history_columns(ev: &EnvironmentEvent) -> Result<HistoryColumns> {
    Ok(match &ev.entry {
        HistoryEntry::Restore(r) => HistoryColumns {
            kind: EnvironmentEventKind::Restore.as_str(),
            finished_at: opt_ts(&r.finished_at),
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

/// Runs a query and decodes every row with `decode`.
pub(super) fn query_all<T>(
    conn: &Connection,
    op: &str,
    sql: &str,
    params: impl rusqlite::Params,
    decode: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare(sql).map_err(super::db(op))?;
    let mut rows = stmt.query(params).map_err(super::db(op))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(super::db(op))? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// Reads the columns of one row, turning anything unreadable into
/// `StoreError::Corrupt` that names the table, column and row.
pub(super) struct Cols<'a> {
    row: &'a Row<'a>,
    table: &'static str,
    pub(super) key: String,
}

impl<'a> Cols<'a> {
    /// `key_col` names the row in error messages.
    pub(super) fn new(
        row: &'a Row<'a>,
        table: &'static str,
        key_col: &'static str,
    ) -> Result<Self> {
        let key = row
            .get::<_, String>(key_col)
            .map_err(|e| StoreError::Corrupt(format!("{table}.{key_col}: {e}")))?;
        Ok(Self { row, table, key })
    }

    pub(super) fn corrupt(&self, col: &str, why: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("{}.{col} of {}: {why}", self.table, self.key))
    }

    pub(super) fn get<T: FromSql>(&self, col: &str) -> Result<T> {
        self.row.get(col).map_err(|e| self.corrupt(col, e))
    }

    pub(super) fn text(&self, col: &str) -> Result<String> {
        self.get(col)
    }

    pub(super) fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.get(col)
    }

    pub(super) fn flag(&self, col: &str) -> Result<bool> {
        match self.get::<i64>(col)? {
            0 => Ok(false),
            1 => Ok(true),
            n => Err(self.corrupt(col, format!("{n} is not 0 or 1"))),
        }
    }

    fn parse_instant(&self, col: &str, raw: &str) -> Result<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| self.corrupt(col, format!("'{raw}' is not an RFC 3339 instant ({e})")))
    }

    pub(super) fn instant(&self, col: &str) -> Result<DateTime<Utc>> {
        let raw = self.text(col)?;
        self.parse_instant(col, &raw)
    }

    pub(super) fn opt_instant(&self, col: &str) -> Result<Option<DateTime<Utc>>> {
        self.opt_text(col)?
            .map(|raw| self.parse_instant(col, &raw))
            .transpose()
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

pub(super) fn request_from_row(row: &Row<'_>) -> Result<RestoreRequest> {
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

pub(super) fn event_from_row(row: &Row<'_>) -> Result<RequestEvent> {
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

pub(super) fn job_from_row(row: &Row<'_>) -> Result<Job> {
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

pub(super) fn step_from_row(row: &Row<'_>) -> Result<StepRecord> {
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

pub(super) fn history_from_row(row: &Row<'_>) -> Result<EnvironmentEvent> {
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
