//! The store's rules, written once for every backend: functions of the
//! current rows (read inside the backend's transaction) and the inputs. A
//! backend reads, asks a rule, and writes what it returns; it never decides.
use super::{Lease, Result, RowCounts, StoreError};
use crate::domain::{Job, JobId, RequestEvent, RequestId, RequestStatus, RestoreRequest};
use chrono::{DateTime, Duration, Utc};

/// The event must be about the request being written, or the audit trail
/// would tell another story than the rows.
pub fn event_matches(op: &str, req: &RestoreRequest, event: &RequestEvent) -> Result<()> {
    if event.request_id != req.id {
        return Err(StoreError::Database(format!(
            "{op}: the event is for request {}, not {}",
            event.request_id, req.id
        )));
    }
    Ok(())
}

/// A run's start event must be about the job's request.
pub fn start_matches(op: &str, job: &Job, start: Option<&RequestEvent>) -> Result<()> {
    match start {
        Some(e) if e.request_id != job.request_id => Err(StoreError::Database(format!(
            "{op}: the event is for request {}, not {}",
            e.request_id, job.request_id
        ))),
        _ => Ok(()),
    }
}

/// One active request per environment: `others` are the environment's
/// requests, oldest first, so the message names the one that has held it
/// longest (there is at most one anyway).
pub fn one_active(
    environment: &str,
    others: impl IntoIterator<Item = (RequestId, RequestStatus)>,
) -> Result<()> {
    match others.into_iter().find(|(_, s)| s.is_active()) {
        Some((existing, _)) => Err(StoreError::ActiveRequestExists {
            environment: environment.to_string(),
            existing,
        }),
        None => Ok(()),
    }
}

/// The compare-and-set of every status change: the request must exist and
/// be in the status the caller expects (`None` skips the comparison).
pub fn status_is(
    id: &RequestId,
    expected: Option<RequestStatus>,
    actual: Option<RequestStatus>,
) -> Result<()> {
    let actual = actual.ok_or_else(|| StoreError::RequestNotFound(id.clone()))?;
    match expected {
        Some(expected) if expected != actual => Err(StoreError::StatusConflict {
            id: id.clone(),
            expected,
            actual,
        }),
        _ => Ok(()),
    }
}

/// One run at a time per request: `running` is a real job of the request
/// still running, if there is one.
pub fn no_run_in_progress(request: &RequestId, running: Option<JobId>) -> Result<()> {
    match running {
        Some(job) => Err(StoreError::RunInProgress {
            request: request.clone(),
            job,
        }),
        None => Ok(()),
    }
}

/// The limit on runs at once across every runner sharing the store:
/// `running` real runs are driven now (running jobs whose lease is live).
pub fn under_limit(running: i64, limit: Option<usize>) -> Result<()> {
    match limit {
        Some(limit) if running >= limit as i64 => Err(StoreError::LimitReached {
            running: running as usize,
            limit,
        }),
        _ => Ok(()),
    }
}

pub fn request_exists(id: &RequestId, exists: bool) -> Result<()> {
    if exists {
        Ok(())
    } else {
        Err(StoreError::RequestNotFound(id.clone()))
    }
}

pub fn job_exists(id: &JobId, exists: bool) -> Result<()> {
    if exists {
        Ok(())
    } else {
        Err(StoreError::JobNotFound(id.clone()))
    }
}

/// A lease for `owner`: granted when the job has none, when it expired, or
/// when `owner` already holds it; every grant increments the fencing token.
pub fn acquire(
    job_id: &JobId,
    current: Option<Lease>,
    owner: &str,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<Lease> {
    let fencing = match current {
        Some(l) if l.owner != owner && l.expires_at > now => {
            return Err(StoreError::LeaseHeld {
                job: job_id.clone(),
                owner: l.owner,
                expires_at: l.expires_at,
            })
        }
        Some(l) => l.fencing + 1,
        None => 1,
    };
    Ok(grant(job_id, owner, now + ttl, fencing))
}

/// Takes a lease from `from_owner` before it expires (the caller knows that
/// owner is dead): a compare-and-swap on the owner.
pub fn take_over(
    job_id: &JobId,
    current: Option<Lease>,
    from_owner: &str,
    owner: &str,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<Lease> {
    let fencing = match current {
        Some(l) if l.owner == from_owner || l.expires_at <= now => l.fencing + 1,
        Some(l) => {
            return Err(StoreError::LeaseHeld {
                job: job_id.clone(),
                owner: l.owner,
                expires_at: l.expires_at,
            })
        }
        None => 1,
    };
    Ok(grant(job_id, owner, now + ttl, fencing))
}

fn grant(job_id: &JobId, owner: &str, expires_at: DateTime<Utc>, fencing: i64) -> Lease {
    Lease {
        job_id: job_id.clone(),
        owner: owner.to_string(),
        expires_at,
        fencing,
    }
}

/// A write under `fence` is allowed only while its token is the job's
/// current one: a runner whose lease was taken over is refused.
pub fn fence(fence: Option<&Lease>, current_fencing: Option<i64>) -> Result<()> {
    let Some(lease) = fence else {
        return Ok(());
    };
    match current_fencing {
        Some(c) if c == lease.fencing => Ok(()),
        other => Err(StoreError::LeaseLost {
            job: lease.job_id.clone(),
            ours: lease.fencing,
            current: other.unwrap_or(0),
        }),
    }
}

/// The lease extended from `now` (the caller checked the fence).
pub fn renewed(lease: &Lease, now: DateTime<Utc>, ttl: Duration) -> Lease {
    Lease {
        expires_at: now + ttl,
        ..lease.clone()
    }
}

/// A copy goes only into an empty store, so that two stores' rows are never
/// mixed (`path` names the target).
pub fn empty_target(path: &str, found: RowCounts) -> Result<()> {
    if found.is_empty() {
        Ok(())
    } else {
        Err(StoreError::TargetNotEmpty {
            path: path.to_string(),
            found,
        })
    }
}

/// The notification a request event makes, if any: every transition but
/// the ones that tell nobody anything new (a confirmed step of a running
/// run, a run that gave the request back unchanged). An event that leaves
/// the status as it was is told by its note (see [`crate::domain::request::note`]).
pub fn notification_event(
    from: Option<RequestStatus>,
    to: RequestStatus,
    note: Option<&str>,
) -> Option<&'static str> {
    use crate::domain::request::note as n;
    use RequestStatus as S;
    let says = |prefix: &str| note.is_some_and(|x| x.starts_with(prefix));
    Some(match (from, to) {
        (None, S::Submitted) => "submitted",
        (Some(f), t) if f == t => match t {
            S::Submitted | S::Accepted if says(n::RESCHEDULED) => "rescheduled",
            S::Accepted if says(n::FLAGGED) => "flagged",
            S::Succeeded | S::Failed if says(n::ROLLBACK_STARTED) => "rollback_started",
            S::Succeeded | S::Failed if says(n::ROLLBACK_FAILED) => "rollback_failed",
            _ => return None,
        },
        (Some(S::Submitted), S::Accepted) => "accepted",
        (Some(_), S::Rejected) => "rejected",
        (Some(_), S::Cancelled) => "cancelled",
        (Some(S::Accepted), S::Running) => "started",
        (Some(_), S::Succeeded) => "succeeded",
        (Some(_), S::Failed) => "failed",
        (Some(_), S::RolledBack) => "rolled_back",
        (Some(_), S::Missed) => "missed",
        _ => return None,
    })
}

/// A step checkpoint makes a `step_failed` notification when the step of
/// a real run (not a rehearsal) becomes failed.
pub fn step_failed(
    previous: Option<crate::domain::StepStatus>,
    new: crate::domain::StepStatus,
    dry_run: bool,
) -> bool {
    use crate::domain::StepStatus as S;
    !dry_run && new == S::Failed && previous != Some(S::Failed)
}

/// How long a receiver is retried before a delivery is given up.
pub const DELIVERY_HORIZON: Duration = Duration::hours(24);

/// The wait before attempt `attempts + 1`: 1 s, 2 s, 4 s, ... up to 5 minutes.
pub fn backoff(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(9);
    Duration::seconds((1i64 << exp).min(300))
}

/// What a failed attempt leads to: another one after [`backoff`], or
/// giving up once the delivery has been due for [`DELIVERY_HORIZON`].
pub fn after_failure(
    attempts: u32,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
    error: String,
) -> super::outbox::DeliveryOutcome {
    use super::outbox::DeliveryOutcome as O;
    if now - created_at >= DELIVERY_HORIZON {
        O::Failed { at: now, error }
    } else {
        O::Retry {
            at: now,
            next: (now + backoff(attempts)).min(created_at + DELIVERY_HORIZON),
            error,
        }
    }
}

/// A released lease is expired, not deleted: the fencing token must keep
/// growing, or a stale owner's token could become valid again.
pub const RELEASED_AT: DateTime<Utc> = DateTime::<Utc>::UNIX_EPOCH;

#[cfg(test)]
mod tests;
