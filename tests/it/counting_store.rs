//! A [`Store`] that hands every call to another one and counts the calls
//! by operation, so that a benchmark can say how many store queries a piece
//! of work made (one trait call is one query, however many SQL statements
//! the backend runs inside it).
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use pitr::domain::{
    EnvironmentEvent, Job, JobId, RequestEvent, RequestId, RestoreRequest, StepRecord,
};
use pitr::store::{
    Delivery, DeliveryOutcome, DeliveryRecord, Lease, OutboxEvent, ReceiverSpec, Result,
    SharedStore, Store, StoreRows, WebLogin, WebSession, WorkInPlay,
};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug)]
pub struct CountingStore {
    inner: SharedStore,
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl CountingStore {
    pub fn new(inner: SharedStore) -> Self {
        Self {
            inner,
            calls: Mutex::new(BTreeMap::new()),
        }
    }

    fn count(&self, op: &'static str) {
        *self
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(op)
            .or_default() += 1;
    }

    /// The calls counted since the last `take`, by operation, and forgets them.
    pub fn take(&self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn insert_request(&self, req: &RestoreRequest, event: &RequestEvent) -> Result<()> {
        self.count("insert_request");
        self.inner.insert_request(req, event).await
    }
    async fn get_request(&self, id: &RequestId) -> Result<Option<RestoreRequest>> {
        self.count("get_request");
        self.inner.get_request(id).await
    }
    async fn list_requests(&self) -> Result<Vec<RestoreRequest>> {
        self.count("list_requests");
        self.inner.list_requests().await
    }
    async fn transition_request(&self, event: &RequestEvent) -> Result<()> {
        self.count("transition_request");
        self.inner.transition_request(event).await
    }
    async fn update_request(&self, req: &RestoreRequest, event: &RequestEvent) -> Result<()> {
        self.count("update_request");
        self.inner.update_request(req, event).await
    }
    async fn request_events(&self, id: &RequestId) -> Result<Vec<RequestEvent>> {
        self.count("request_events");
        self.inner.request_events(id).await
    }
    async fn set_warning(&self, id: &RequestId, warning: Option<&str>) -> Result<bool> {
        self.count("set_warning");
        self.inner.set_warning(id, warning).await
    }
    async fn claim_run(
        &self,
        job: &Job,
        start: Option<&RequestEvent>,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
        limit: Option<usize>,
    ) -> Result<Lease> {
        self.count("claim_run");
        self.inner
            .claim_run(job, start, owner, now, ttl, limit)
            .await
    }
    async fn get_job(&self, id: &JobId) -> Result<Option<Job>> {
        self.count("get_job");
        self.inner.get_job(id).await
    }
    async fn jobs_for_request(&self, request_id: &RequestId) -> Result<Vec<Job>> {
        self.count("jobs_for_request");
        self.inner.jobs_for_request(request_id).await
    }
    async fn update_job(&self, job: &Job, fence: Option<&Lease>) -> Result<()> {
        self.count("update_job");
        self.inner.update_job(job, fence).await
    }
    async fn save_step(
        &self,
        job_id: &JobId,
        step: &StepRecord,
        fence: Option<&Lease>,
    ) -> Result<()> {
        self.count("save_step");
        self.inner.save_step(job_id, step, fence).await
    }
    async fn steps(&self, job_id: &JobId) -> Result<Vec<StepRecord>> {
        self.count("steps");
        self.inner.steps(job_id).await
    }
    async fn work_in_play(&self) -> Result<WorkInPlay> {
        self.count("work_in_play");
        self.inner.work_in_play().await
    }
    async fn acquire_lease(
        &self,
        job_id: &JobId,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Lease> {
        self.count("acquire_lease");
        self.inner.acquire_lease(job_id, owner, now, ttl).await
    }
    async fn take_over_lease(
        &self,
        job_id: &JobId,
        from_owner: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Lease> {
        self.count("take_over_lease");
        self.inner
            .take_over_lease(job_id, from_owner, owner, now, ttl)
            .await
    }
    async fn renew_lease(&self, lease: &Lease, now: DateTime<Utc>, ttl: Duration) -> Result<Lease> {
        self.count("renew_lease");
        self.inner.renew_lease(lease, now, ttl).await
    }
    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        self.count("release_lease");
        self.inner.release_lease(lease).await
    }
    async fn get_lease(&self, job_id: &JobId) -> Result<Option<Lease>> {
        self.count("get_lease");
        self.inner.get_lease(job_id).await
    }
    async fn add_environment_event(&self, ev: &EnvironmentEvent) -> Result<()> {
        self.count("add_environment_event");
        self.inner.add_environment_event(ev).await
    }
    async fn environment_events(&self, environment: &str) -> Result<Vec<EnvironmentEvent>> {
        self.count("environment_events");
        self.inner.environment_events(environment).await
    }
    async fn outbox(&self, request_id: Option<&RequestId>) -> Result<Vec<OutboxEvent>> {
        self.count("outbox");
        self.inner.outbox(request_id).await
    }
    async fn claim_deliveries(
        &self,
        receivers: &[ReceiverSpec],
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        self.count("claim_deliveries");
        self.inner
            .claim_deliveries(receivers, owner, now, ttl, since, limit)
            .await
    }
    async fn finish_delivery(
        &self,
        delivery: &Delivery,
        owner: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<()> {
        self.count("finish_delivery");
        self.inner.finish_delivery(delivery, owner, outcome).await
    }
    async fn deliveries(&self, failed_only: bool, limit: usize) -> Result<Vec<DeliveryRecord>> {
        self.count("deliveries");
        self.inner.deliveries(failed_only, limit).await
    }
    async fn insert_web_login(&self, login: &WebLogin, now: DateTime<Utc>) -> Result<()> {
        self.count("insert_web_login");
        self.inner.insert_web_login(login, now).await
    }
    async fn take_web_login(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<WebLogin>> {
        self.count("take_web_login");
        self.inner.take_web_login(id_hash, now).await
    }
    async fn insert_web_session(&self, session: &WebSession, now: DateTime<Utc>) -> Result<()> {
        self.count("insert_web_session");
        self.inner.insert_web_session(session, now).await
    }
    async fn web_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<WebSession>> {
        self.count("web_session");
        self.inner.web_session(id_hash, now).await
    }
    async fn delete_web_session(&self, id_hash: &str) -> Result<bool> {
        self.count("delete_web_session");
        self.inner.delete_web_session(id_hash).await
    }
    async fn schema_version(&self) -> Result<i64> {
        self.count("schema_version");
        self.inner.schema_version().await
    }
    async fn export(&self) -> Result<StoreRows> {
        self.count("export");
        self.inner.export().await
    }
    async fn import(&self, rows: &StoreRows) -> Result<()> {
        self.count("import");
        self.inner.import(rows).await
    }
}
