//! The lease a runner holds on each job it drives: taken before the first
//! step (refused while another live runner holds it, taken over when it
//! expired or its owner's process is gone), renewed in the background,
//! checked before every change in Azure, and released at the end. Every
//! checkpoint is written under it, so a stale owner's writes are refused.
use super::progress::ProgressEvent;
use super::{Engine, EngineError, Outcome};
use crate::domain::request::{note, Takeover};
use crate::domain::{Job, JobId, RequestId, StepRecord};
use crate::store::{Lease, StoreError};
use std::future::Future;
use std::path::Path;

impl Engine {
    fn lease_of(&self, job_id: &JobId) -> Option<Lease> {
        self.leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(job_id)
            .cloned()
    }

    pub(super) fn set_lease(&self, lease: Lease) {
        self.leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(lease.job_id.clone(), lease);
    }

    pub(super) fn take_lease(&self, job_id: &JobId) -> Option<Lease> {
        self.leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(job_id)
    }

    /// Gives up this engine's lease on a job it does not go on driving.
    pub(super) async fn release_lease_of(&self, job_id: &JobId) {
        if let Some(lease) = self.take_lease(job_id) {
            if let Err(e) = self.store.release_lease(&lease).await {
                tracing::warn!(job = %job_id, error = %e, "could not release the lease; it expires by itself");
            }
        }
    }

    /// No live runner holds the job: no lease, an expired one, or one whose
    /// owner's process is gone.
    pub async fn lease_is_free(&self, job: &Job) -> Result<bool, StoreError> {
        Ok(self.live_lease(job).await?.is_none())
    }

    /// The live lease someone else holds on the job (a lease whose holder's
    /// process is seen gone is not live).
    pub async fn live_lease(&self, job: &Job) -> Result<Option<Lease>, StoreError> {
        Ok(self
            .store
            .get_lease(&job.id)
            .await?
            .filter(|l| l.expires_at > self.clock.now() && !owner_is_dead(&l.owner)))
    }

    /// Whether the runner `owner` is seen gone (on this host only).
    pub fn holder_is_gone(owner: &str) -> bool {
        owner_is_dead(owner)
    }

    pub(super) fn lease_ttl(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.config.lease_ttl_secs.max(3) as i64)
    }

    /// Runs the job's steps under its lease.
    pub(super) async fn drive(&self, job: Job) -> Result<Outcome, EngineError> {
        let (id, request) = (job.id.clone(), job.request_id.clone());
        self.with_lease(&id, &request, true, async {
            tracing::Instrument::instrument(
                self.drive_leased(job),
                tracing::info_span!("job", job = %id, request = %request),
            )
            .await
        })
        .await
        .inspect_err(|e| {
            if let EngineError::Interrupted { request } = e {
                self.progress.event(ProgressEvent::Note(format!(
                    "stopped by a signal; every checkpoint is written; continue with `pitr resume {request}`"
                )));
            }
        })
    }

    /// Runs `work` holding the job's lease: refused while another live
    /// runner holds it (taken over at once when that runner's process is
    /// gone), renewed in the background, released at the end. `work` stops
    /// when the lease is lost and, if `interruptible`, on a signal.
    pub(super) async fn with_lease<T>(
        &self,
        job_id: &JobId,
        request_id: &RequestId,
        interruptible: bool,
        work: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        let ttl = self.lease_ttl();
        // Who held it before, to tell a takeover of an expired lease from a
        // lease released at a safe point (or never taken).
        let before = self.store.get_lease(job_id).await?;
        let now = self.clock.now();
        let (lease, takeover) = match self
            .store
            .acquire_lease(job_id, &self.owner, now, ttl)
            .await
        {
            Err(StoreError::LeaseHeld { owner, .. }) if owner_is_dead(&owner) => {
                let lease = self
                    .store
                    .take_over_lease(job_id, &owner, &self.owner, self.clock.now(), ttl)
                    .await?;
                (lease, Some((owner, Takeover::OwnerGone)))
            }
            Ok(lease) => {
                let expired = before.filter(|l| {
                    l.owner != self.owner
                        && l.expires_at > crate::store::rules::RELEASED_AT
                        && l.expires_at <= now
                });
                (lease, expired.map(|l| (l.owner, Takeover::LeaseExpired)))
            }
            Err(e) => return Err(e.into()),
        };
        self.set_lease(lease);
        if let Some((from, why)) = takeover {
            if let Err(e) = self.record_takeover(request_id, job_id, &from, why).await {
                self.release_lease_of(job_id).await;
                return Err(e);
            }
        }
        let running = self.azure.metrics();
        running.jobs_running.inc();
        let mut shutdown = self.shutdown.clone();
        let outcome = tokio::select! {
            r = work => r,
            lost = self.heartbeat(job_id, ttl) => Err(lost),
            _ = async {
                // A dropped sender means nobody will ever ask to stop.
                if !interruptible || shutdown.wait_for(|stop| *stop).await.is_err() {
                    std::future::pending::<()>().await;
                }
            } => Err(EngineError::Interrupted {
                request: request_id.clone(),
            }),
        };
        running.jobs_running.dec();
        if let Some(lease) = self.take_lease(job_id) {
            // Best effort: an unreleased lease only delays a takeover until it expires.
            let _ = self.store.release_lease(&lease).await;
        }
        outcome
    }

    /// Says why the run was taken over: a progress line, a log line, the
    /// `lease_takeovers` metric by reason, and the request's audit trail.
    async fn record_takeover(
        &self,
        request_id: &RequestId,
        job_id: &JobId,
        from: &str,
        why: Takeover,
    ) -> Result<(), EngineError> {
        self.progress.event(ProgressEvent::Note(format!(
            "taking over job {job_id} from runner {from}: {}",
            why.words()
        )));
        tracing::warn!(job = %job_id, request = %request_id, from = %from, reason = %why.label(), "lease taken over");
        self.azure.metrics().lease_taken_over(why.label());
        let req = self.request(request_id).await?;
        let note = format!(
            "{} ({}): job {job_id} from runner {from}, {}",
            note::TAKEN_OVER,
            why.label(),
            why.words()
        );
        self.store
            .transition_request(&self.event(&req, req.status, Some(note)))
            .await?;
        Ok(())
    }

    /// Renews the lease every third of its lifetime; returns only when it is lost.
    pub(super) async fn heartbeat(&self, job_id: &JobId, ttl: chrono::Duration) -> EngineError {
        let every = std::time::Duration::from_millis((ttl.num_milliseconds() / 3).max(100) as u64);
        loop {
            tokio::time::sleep(every).await;
            let Some(current) = self.lease_of(job_id) else {
                continue;
            };
            match self
                .store
                .renew_lease(&current, self.clock.now(), ttl)
                .await
            {
                Ok(renewed) => {
                    self.set_lease(renewed);
                }
                Err(e @ StoreError::LeaseLost { .. }) => return e.into(),
                Err(e) => tracing::warn!(error = %e, "lease renewal failed; will retry"),
            }
        }
    }

    /// Renews the lease before a change in Azure, so that a runner that lost
    /// its lease (paused, partitioned) stops before acting, not only before
    /// its next checkpoint.
    pub(crate) async fn confirm_lease(&self, job_id: &JobId) -> Result<(), StoreError> {
        if let Some(lease) = self.lease_of(job_id) {
            let ttl = self.lease_ttl();
            let renewed = self
                .store
                .renew_lease(&lease, self.clock.now(), ttl)
                .await?;
            self.set_lease(renewed);
        }
        Ok(())
    }

    pub(crate) async fn checkpoint(
        &self,
        job_id: &JobId,
        rec: &StepRecord,
    ) -> Result<(), StoreError> {
        self.store
            .save_step(job_id, rec, self.lease_of(job_id).as_ref())
            .await
    }

    pub(crate) async fn save_job(&self, job: &mut Job) -> Result<(), StoreError> {
        job.updated_at = self.clock.now();
        let lease = self.lease_of(&job.id);
        self.store.update_job(job, lease.as_ref()).await
    }
}

/// True only when the owner ran on this host and its process is gone (or a
/// zombie): then its lease need not be waited out. Anything uncertain
/// (another host, no /proc) counts as alive.
fn owner_is_dead(owner: &str) -> bool {
    let mut parts = owner.rsplitn(3, ':');
    let (_, process, host) = (parts.next(), parts.next(), parts.next());
    let (Some(process), Some(host)) = (process, host) else {
        return false;
    };
    // "PID.START": START tells a reused PID from the owner's process.
    let (pid, start) = process.split_once('.').unwrap_or((process, ""));
    if host != hostname() || pid.parse::<u32>().is_err() {
        return false;
    }
    if !Path::new("/proc/self").exists() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let fields = stat_fields(&stat);
            let zombie = fields.first().is_some_and(|s| *s == "Z" || *s == "X");
            let reused = !start.is_empty() && fields.get(19).is_some_and(|s| *s != start);
            zombie || reused
        }
    }
}

/// The fields of /proc/PID/stat after the parenthesised command name:
/// state is the first, start time (field 22 of the file) the twentieth.
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

/// `PID.START` of this process (START from /proc where there is one).
pub(super) fn process_tag() -> String {
    let pid = std::process::id();
    let start = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| stat_fields(&s).get(19).map(|x| x.to_string()));
    match start {
        Some(start) => format!("{pid}.{start}"),
        None => pid.to_string(),
    }
}

pub(super) fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_unknown_ones_are_not_judged() {
        let me = format!("{}:{}:abc", hostname(), process_tag());
        assert!(!owner_is_dead(&me));
        // Same PID, another start time: the PID was reused, the owner is gone.
        let reused = format!("{}:{}.1:abc", hostname(), std::process::id());
        assert_eq!(owner_is_dead(&reused), Path::new("/proc/self").exists());
        // Another host, or a malformed owner: never taken over early.
        assert!(!owner_is_dead("elsewhere:1:abc"));
        assert!(!owner_is_dead("garbage"));
    }
}
