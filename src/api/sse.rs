//! `GET /requests/{id}/events`: a request's events as Server-Sent Events.
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
use super::problem::Problem;
use super::roles::Action;
use super::routes::path;
use super::{ApiState, Caller};
use crate::domain::{RequestId, RequestStatus};
use crate::views::{JobView, StepView};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::json;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// One Server-Sent Event of the stream.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StreamEvent {
    /// `status`, `job`, `step`, `progress` or `end`.
    pub event: String,
    /// The event's JSON: `status`/`end` {request_id, status}; `job` a
    /// JobView; `step` a StepView with job_id and dry_run; `progress`
    /// {kind, step, message}.
    pub data: String,
}

const POLL: Duration = Duration::from_millis(500);
const MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// The request's events as they happen.
#[utoipa::path(get, path = "/api/v1/requests/{id}/events", tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "Server-Sent Events: status, job, step, progress, end", content_type = "text/event-stream", body = StreamEvent),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No role allows it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn events(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let id = RequestId::from(path(id)?);
    stream(st, &caller, id, futures_util::future::pending()).await
}

/// The events of request `id` for `caller` (the API's stream, and the web
/// page's live timeline), until `ended` (the page's: its session ended).
pub(crate) async fn stream(
    st: Arc<ApiState>,
    caller: &Caller,
    id: RequestId,
    ended: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    caller.may(&Action::Read)?;
    st.store
        .get_request(&id)
        .await
        .map_err(Problem::from_store)?
        .ok_or_else(|| {
            Problem::from_store(crate::store::StoreError::RequestNotFound(id.clone()))
        })?;
    let (tx, rx) = mpsc::channel::<Event>(64);
    tokio::spawn(follow(st, id, tx));
    let stream =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    let stream = futures_util::StreamExt::take_until(stream, Box::pin(ended));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn event(name: &str, data: serde_json::Value) -> Event {
    Event::default().event(name).data(data.to_string())
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
    st: &ApiState,
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

async fn follow(st: Arc<ApiState>, id: RequestId, tx: mpsc::Sender<Event>) {
    let mut progress = st.hub.subscribe(&id);
    let mut stop = st.stop.clone();
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
