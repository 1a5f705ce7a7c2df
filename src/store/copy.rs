//! `pitr store copy --from URL --to URL`: moves a whole store to another
//! (SQLite to PostgreSQL when pitr outgrows one machine, or back).
//!
//! - Every request, audit event, job, step checkpoint and environment
//!   history row is copied, with its ids and instants, each table in the
//!   order it was written (so lists, audit trails and step orders read the
//!   same). PostgreSQL keeps instants to the microsecond: copying a SQLite
//!   store there drops sub-microsecond digits (SQLite keeps nanoseconds).
//! - Leases are not copied: the copy starts lease-free, and a run in
//!   progress is continued from the new store with `pitr resume`. A source
//!   whose lease is still live (a runner is writing to it) is refused, so
//!   that nothing written after the snapshot is lost.
//! - The source is opened read-only and not migrated
//!   ([`super::open_read_only`]): it is left exactly as it was.
//! - The target must be empty; it is migrated like any store, written in
//!   one transaction, and the counts are read back and compared.
use super::{Lease, Store, StoreError};
use crate::domain::{EnvironmentEvent, Job, JobId, RequestEvent, RestoreRequest, StepRecord};
use chrono::{DateTime, Utc};

/// Every row of a store, each table in the order it was written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreRows {
    pub requests: Vec<RestoreRequest>,
    /// The audit events of every request, in the order they were written.
    pub events: Vec<RequestEvent>,
    pub jobs: Vec<Job>,
    /// By job, each job's steps in first-saved order.
    pub steps: Vec<StepRow>,
    pub history: Vec<EnvironmentEvent>,
    /// Read to refuse a source still in use; never imported.
    pub leases: Vec<Lease>,
}

/// A step checkpoint with its job and its place among the job's steps.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub job_id: JobId,
    pub seq: i64,
    pub record: StepRecord,
}

/// How many rows of each kind a store holds (leases aside).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RowCounts {
    pub requests: u64,
    pub events: u64,
    pub jobs: u64,
    pub steps: u64,
    pub history: u64,
}

impl RowCounts {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl std::fmt::Display for RowCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests, {} audit events, {} jobs, {} step checkpoints, {} environment history rows",
            self.requests, self.events, self.jobs, self.steps, self.history
        )
    }
}

impl StoreRows {
    pub fn counts(&self) -> RowCounts {
        let n = |len: usize| len as u64;
        RowCounts {
            requests: n(self.requests.len()),
            events: n(self.events.len()),
            jobs: n(self.jobs.len()),
            steps: n(self.steps.len()),
            history: n(self.history.len()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("job {job} of the source is leased to {owner} until {expires_at}: a runner is still writing to it; stop it (or wait for the lease to expire) and copy again")]
    SourceInUse {
        job: JobId,
        owner: String,
        expires_at: DateTime<Utc>,
    },
    #[error("the copy is incomplete: the source has {expected}, the target {found}; do not use the target, drop it and copy again")]
    Mismatch {
        expected: RowCounts,
        found: RowCounts,
    },
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    pub copied: RowCounts,
    /// Leases of the source not copied (all expired or released).
    pub leases_not_copied: u64,
    /// The requests whose run was in progress when its runner stopped: each
    /// continues from the new store with `resume` (a lease is not needed,
    /// the next runner takes one).
    pub runs_to_resume: Vec<String>,
}

/// A source may be copied only when no runner holds a live lease on it.
pub fn source_idle(leases: &[Lease], now: DateTime<Utc>) -> Result<(), CopyError> {
    match leases.iter().find(|l| l.expires_at > now) {
        Some(l) => Err(CopyError::SourceInUse {
            job: l.job_id.clone(),
            owner: l.owner.clone(),
            expires_at: l.expires_at,
        }),
        None => Ok(()),
    }
}

/// Copies the store at `from_url` into the store at `to_url` (created and
/// migrated if needed, refused unless empty), then checks the counts. The
/// source is read (and checked idle: `now` decides which leases are live)
/// before the target is opened, so a refused copy creates nothing.
pub async fn copy(
    from_url: &str,
    to_url: &str,
    now: DateTime<Utc>,
) -> Result<CopyReport, CopyError> {
    super::check_url(from_url)?;
    super::check_url(to_url)?;
    let rows = super::open_read_only(from_url).await?.export().await?;
    source_idle(&rows.leases, now)?;
    let target = super::open(to_url).await?;
    copy_rows(&rows, target.as_ref()).await
}

/// Writes `rows` into the empty store `to` and checks the counts.
pub async fn copy_rows(rows: &StoreRows, to: &dyn Store) -> Result<CopyReport, CopyError> {
    to.import(rows).await?;
    let expected = rows.counts();
    let found = to.export().await?.counts();
    if found != expected {
        return Err(CopyError::Mismatch { expected, found });
    }
    let mut runs_to_resume: Vec<String> = rows
        .jobs
        .iter()
        .filter(|j| j.status == crate::domain::JobStatus::Running && !j.dry_run)
        .map(|j| j.request_id.to_string())
        .collect();
    runs_to_resume.sort();
    runs_to_resume.dedup();
    Ok(CopyReport {
        copied: expected,
        leases_not_copied: rows.leases.len() as u64,
        runs_to_resume,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_live_lease_keeps_the_source_from_being_copied() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let lease = |expires_at| Lease {
            job_id: "j".into(),
            owner: "host:1:a".into(),
            expires_at,
            fencing: 3,
        };
        assert!(source_idle(&[], now).is_ok());
        assert!(source_idle(&[lease(now), lease(super::super::rules::RELEASED_AT)], now).is_ok());
        match source_idle(&[lease(now + chrono::Duration::seconds(1))], now) {
            Err(e @ CopyError::SourceInUse { .. }) => {
                assert!(e.to_string().contains("host:1:a"), "{e}")
            }
            other => panic!("expected SourceInUse, got {other:?}"),
        }
        assert!(RowCounts::default().is_empty());
        let one = RowCounts {
            history: 1,
            ..RowCounts::default()
        };
        assert!(!one.is_empty());
        assert_eq!(
            one.to_string(),
            "0 requests, 0 audit events, 0 jobs, 0 step checkpoints, 1 environment history rows"
        );
    }
}
