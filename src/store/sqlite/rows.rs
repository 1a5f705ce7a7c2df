//! SQLite's encoding of rows: instants as fixed-width RFC 3339 text, flags
//! as 0/1, names as text, job facts and restore records as JSON text. The
//! decoders themselves are shared with every engine ([`crate::store::rows`]);
//! [`Cols`] is how they read a SQLite row.
use super::super::rows::{self as shared, Columns};
use super::super::{Lease, Result, StoreError};
use crate::domain::{EnvironmentEvent, Job, RequestEvent, RestoreRequest, StepRecord};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::FromSql;
use rusqlite::{Connection, Row};

pub(super) use shared::{
    facts_json, history_columns, plan_text, EVENT_COLUMNS, HISTORY_COLUMNS, JOB_COLUMNS,
    LEASE_COLUMNS, REQUEST_COLUMNS, STEP_COLUMNS,
};

/// Instants are stored as RFC 3339 UTC text with a fixed nanosecond fraction
/// (`2024-05-01T22:00:00.000000000Z`): text comparison is then chronological,
/// and every `DateTime<Utc>` reads back exactly as it was written.
pub(super) fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(super) fn opt_ts(t: &Option<DateTime<Utc>>) -> Option<String> {
    t.as_ref().map(ts)
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

    pub(super) fn get<T: FromSql>(&self, col: &str) -> Result<T> {
        self.row.get(col).map_err(|e| self.corrupt(col, &e))
    }

    fn parse_instant(&self, col: &str, raw: &str) -> Result<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| self.corrupt(col, &format!("'{raw}' is not an RFC 3339 instant ({e})")))
    }
}

impl Columns for Cols<'_> {
    fn key(&self) -> &str {
        &self.key
    }

    fn corrupt(&self, col: &str, why: &dyn std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("{}.{col} of {}: {why}", self.table, self.key))
    }

    fn text(&self, col: &str) -> Result<String> {
        self.get(col)
    }

    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.get(col)
    }

    fn int(&self, col: &str) -> Result<i64> {
        self.get(col)
    }

    fn flag(&self, col: &str) -> Result<bool> {
        match self.get::<i64>(col)? {
            0 => Ok(false),
            1 => Ok(true),
            n => Err(self.corrupt(col, &format!("{n} is not 0 or 1"))),
        }
    }

    fn instant(&self, col: &str) -> Result<DateTime<Utc>> {
        let raw = self.text(col)?;
        self.parse_instant(col, &raw)
    }

    fn opt_instant(&self, col: &str) -> Result<Option<DateTime<Utc>>> {
        self.opt_text(col)?
            .map(|raw| self.parse_instant(col, &raw))
            .transpose()
    }
}

pub(super) fn request_from_row(row: &Row<'_>) -> Result<RestoreRequest> {
    shared::request(&Cols::new(row, "requests", "id")?)
}

pub(super) fn event_from_row(row: &Row<'_>) -> Result<RequestEvent> {
    shared::event(&Cols::new(row, "request_events", "request_id")?)
}

pub(super) fn job_from_row(row: &Row<'_>) -> Result<Job> {
    shared::job(&Cols::new(row, "jobs", "id")?)
}

pub(super) fn step_from_row(row: &Row<'_>) -> Result<StepRecord> {
    shared::step(&Cols::new(row, "job_steps", "job_id")?)
}

pub(super) fn history_from_row(row: &Row<'_>) -> Result<EnvironmentEvent> {
    shared::history(&Cols::new(row, "environment_history", "environment")?)
}

pub(super) fn lease_from_row(row: &Row<'_>) -> Result<Lease> {
    shared::lease(&Cols::new(row, "leases", "job_id")?)
}
