//! A request's events as they happen, for the API's Server-Sent Events
//! (`GET /requests/{id}/events`) and the page's live timeline.
//!
//! The stream starts with where the request stands (`status`, then the
//! latest run's `job` and each of its `step`s), then sends every change:
//! `status` when the request moves, `job` when a run starts or ends,
//! `step` when a step's status or attempt changes, and `progress` lines of
//! runs in this process. Changes are found by reading the store every
//! 500 ms while someone listens (so runs of other processes sharing the
//! store are followed too), and at once after a progress line.
//!
//! It ends (`end`) when the request reaches a terminal status, or when a
//! run it saw running ends and the request is not running (a dry run, a
//! run that gave the request back), or after an hour (clients reconnect),
//! or when the service stops.
use super::hub::ProgressLine;
use super::{may, Actor, Permission, Service, ServiceError};
use crate::domain::{RequestId, RequestStatus};
use crate::service::views::{JobView, StepView};
use futures_util::Stream;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// One event of a request's stream: its name (`status`, `job`, `step`,
/// `progress` or `end`) and its JSON.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: &'static str,
    pub data: serde_json::Value,
}

const POLL: Duration = Duration::from_millis(500);
const MAX_LIFETIME: Duration = Duration::from_secs(3600);

impl Service {
    /// The events of request `id` for `who`, as they happen, until the
    /// stream ends by itself or `ended` resolves (the page's session ended).
    pub async fn events(
        self: &Arc<Self>,
        who: &Actor,
        id: RequestId,
        ended: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<impl Stream<Item = Event> + Send + 'static, ServiceError> {
        may(who, &Permission::Read)?;
        self.load(&id).await?;
        let (tx, rx) = mpsc::channel::<Event>(64);
        tokio::spawn(follow(self.clone(), id, tx));
        let stream =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|e| (e, rx)) },
            );
        Ok(futures_util::StreamExt::take_until(stream, Box::pin(ended)))
    }
}

fn event(name: &'static str, data: serde_json::Value) -> Event {
    Event { name, data }
}

/// What the stream has told so far.
#[derive(Default)]
struct Seen {
    status: Option<RequestStatus>,
    jobs: HashMap<String, String>,
    steps: HashMap<(String, String), (String, u32)>,
    /// A run seen running during this stream.
    followed: Option<String>,
}

/// Reads the store and sends what changed; true when the stream should end.
async fn poll(
    st: &Service,
    id: &RequestId,
    seen: &mut Seen,
    tx: &mpsc::Sender<Event>,
) -> Result<bool, ()> {
    let Ok(Some(req)) = st.store.get_request(id).await else {
        return Ok(false);
    };
    let send = |e: Event| async { tx.send(e).await.map_err(|_| ()) };
    if seen.status != Some(req.status) {
        seen.status = Some(req.status);
        send(event(
            "status",
            json!({"request_id": id, "status": req.status}),
        ))
        .await?;
    }
    let jobs = st.store.jobs_for_request(id).await.unwrap_or_default();
    if let Some(job) = jobs.last() {
        let key = job.id.to_string();
        let status = job.status.as_str().to_string();
        // Steps before the job, so a finished job comes after its last step.
        let steps = st.store.steps(&job.id).await.unwrap_or_default();
        for s in &steps {
            let now = (s.status.as_str().to_string(), s.attempts);
            let k = (key.clone(), s.step.as_str().to_string());
            if seen.steps.get(&k) != Some(&now) {
                seen.steps.insert(k, now);
                let mut v = serde_json::to_value(StepView::from(s)).unwrap_or_default();
                v["job_id"] = json!(key);
                v["dry_run"] = json!(job.dry_run);
                send(event("step", v)).await?;
            }
        }
        if seen.jobs.get(&key) != Some(&status) {
            seen.jobs.insert(key.clone(), status.clone());
            send(event(
                "job",
                serde_json::to_value(JobView::from(job)).unwrap_or_default(),
            ))
            .await?;
        }
        if status == "running" {
            seen.followed = Some(key.clone());
        } else if seen.followed.as_deref() == Some(key.as_str())
            && req.status != RequestStatus::Running
        {
            return Ok(true);
        }
    }
    Ok(req.status.is_terminal())
}

async fn follow(st: Arc<Service>, id: RequestId, tx: mpsc::Sender<Event>) {
    let mut progress = st.hub().subscribe(&id);
    let mut stop = st.stop_signal();
    let deadline = tokio::time::sleep(MAX_LIFETIME);
    tokio::pin!(deadline);
    let mut seen = Seen::default();
    loop {
        match poll(&st, &id, &mut seen, &tx).await {
            Ok(false) => {}
            Ok(true) => {
                let _ = tx
                    .send(event(
                        "end",
                        json!({"request_id": id, "status": seen.status}),
                    ))
                    .await;
                return;
            }
            Err(()) => return,
        }
        tokio::select! {
            line = progress.recv() => match line {
                Ok(line) => {
                    let line: ProgressLine = line;
                    if tx.send(event("progress", json!(line))).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    let note = json!({"kind": "note", "step": null, "message": format!("{n} progress lines were skipped")});
                    if tx.send(event("progress", note)).await.is_err() {
                        return;
                    }
                }
                Err(_) => tokio::time::sleep(POLL).await,
            },
            _ = tokio::time::sleep(POLL) => {}
            _ = tx.closed() => return,
            _ = super::stopped(&mut stop) => return,
            _ = &mut deadline => return,
        }
    }
}
