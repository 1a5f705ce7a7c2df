//! PostgreSQL's encoding of rows: instants as `timestamptz` (microseconds),
//! flags as `boolean`, names and ids as `text`, job facts and restore
//! records as JSON `text`, kept exactly as written (`jsonb` would refuse
//! some strings, such as `\u0000`, and nothing queries inside them). The
//! decoders themselves are shared with every engine
//! ([`crate::store::rows`]); [`Cols`] is how they read a PostgreSQL row.
use crate::domain::{EnvironmentEvent, Job, RequestEvent, RestoreRequest, StepRecord};
use crate::store::rows::{self as shared, Columns};
use crate::store::{Lease, Result, StoreError};
use chrono::{DateTime, Utc};
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

pub(super) use shared::{
    facts_json, history_columns, plan_text, EVENT_COLUMNS, HISTORY_COLUMNS, JOB_COLUMNS,
    LEASE_COLUMNS, REQUEST_COLUMNS, STEP_COLUMNS,
};

/// Reads the columns of one row, turning anything unreadable (a type that
/// is not the column's, an instant `DateTime` cannot hold such as
/// `infinity`) into `StoreError::Corrupt` naming the table, column and row.
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

    pub(super) fn get<T: for<'r> FromSql<'r>>(&self, col: &str) -> Result<T> {
        self.row.try_get(col).map_err(|e| {
            // The driver's own text only names the column; the cause says why.
            let why = std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_else(|| e.to_string());
            self.corrupt(col, &why)
        })
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
        self.get(col)
    }

    fn instant(&self, col: &str) -> Result<DateTime<Utc>> {
        self.get(col)
    }

    fn opt_instant(&self, col: &str) -> Result<Option<DateTime<Utc>>> {
        self.get(col)
    }
}

pub(super) fn request_from_row(row: &Row) -> Result<RestoreRequest> {
    shared::request(&Cols::new(row, "requests", "id")?)
}

pub(super) fn event_from_row(row: &Row) -> Result<RequestEvent> {
    shared::event(&Cols::new(row, "request_events", "request_id")?)
}

pub(super) fn job_from_row(row: &Row) -> Result<Job> {
    shared::job(&Cols::new(row, "jobs", "id")?)
}

pub(super) fn step_from_row(row: &Row) -> Result<StepRecord> {
    shared::step(&Cols::new(row, "job_steps", "job_id")?)
}

pub(super) fn history_from_row(row: &Row) -> Result<EnvironmentEvent> {
    shared::history(&Cols::new(row, "environment_history", "environment")?)
}

pub(super) fn lease_from_row(row: &Row) -> Result<Lease> {
    shared::lease(&Cols::new(row, "leases", "job_id")?)
}
