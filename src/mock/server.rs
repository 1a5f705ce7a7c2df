//! The HTTPS listener: accepts TLS connections, serves HTTP/1.1 with hyper,
//! applies request faults, hands requests to the handlers and keeps the
//! journal.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response};
use chrono::{DateTime, Utc};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::admin;
use super::arm::{self, Ctx};
use super::http::{Reply, Req};
use super::state::{JournalEntry, State};
use crate::clock::SharedClock;

const MAX_BODY: usize = 4 * 1024 * 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Shared {
    state: Mutex<State>,
    pub base: String,
    /// The scenario's clock: token expiry, throttling buckets, journal times.
    pub clock: SharedClock,
}

impl Shared {
    pub fn new(state: State, base: String, clock: SharedClock) -> Shared {
        Shared {
            state: Mutex::new(state),
            base,
            clock,
        }
    }

    /// A panic elsewhere must not take the mock down with a poisoned lock;
    /// the state is still consistent between handler calls.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Returned by the service to make hyper close the connection without
/// answering (the `drop_connection` fault).
#[derive(Debug)]
struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by a mock fault")
    }
}

impl std::error::Error for DropConnection {}

pub(crate) async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let acceptor = acceptor.clone();
                    let shared = shared.clone();
                    conns.spawn(async move {
                        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "mock azure: TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "mock azure: TLS handshake timed out");
                                return;
                            }
                        };
                        let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
                        let result = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "mock azure: connection ended");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "mock azure: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let started = Instant::now();
    let arrived = shared.clock.now();
    let (parts, body) = req.into_parts();
    let body_timeout = Duration::from_millis(shared.lock().settings.body_timeout_ms);
    let bytes = match tokio::time::timeout(
        body_timeout,
        axum::body::to_bytes(Body::new(body), MAX_BODY),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return Ok(Reply::arm_error(
                413,
                "RequestEntityTooLarge",
                format!("The request body is larger than {MAX_BODY} bytes or could not be read."),
            )
            .header("Connection", "close".to_string())
            .into_response())
        }
        Err(_) => {
            return Ok(Reply::arm_error(
                408,
                "RequestTimeout",
                format!(
                    "The request body did not arrive within {} ms.",
                    body_timeout.as_millis()
                ),
            )
            .header("Connection", "close".to_string())
            .into_response())
        }
    };
    let req = Req::new(
        parts.method,
        parts.uri.path(),
        parts.uri.query(),
        parts.headers,
        bytes,
    );
    if admin::is_admin_path(&req.path) {
        let reply = admin::handle(&mut shared.lock(), &req, &shared.base, shared.clock.now());
        tracing::debug!(method = %req.method, path = %req.path, status = reply.status, "mock azure admin request");
        return Ok(reply.into_response());
    }
    let path = req.path_and_query();
    let (seq, fault) = {
        let mut st = shared.lock();
        st.tick(arrived);
        let seq = st.next_seq();
        (seq, st.take_request_fault(req.method.as_str(), &path))
    };
    let journal = |status: u16| JournalEntry {
        seq,
        at: arrived,
        method: req.method.to_string(),
        path: path.clone(),
        status,
        body: journal_body(&req),
    };
    let log = |status: u16, note: &str| {
        tracing::debug!(
            seq,
            method = %req.method,
            path = %req.path,
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "mock azure request{note}"
        );
    };
    let lost_answer = fault
        .as_ref()
        .filter(|f| f.after_processing == Some(true))
        .cloned();
    let fault = fault.filter(|f| f.after_processing != Some(true));
    if let Some(f) = fault {
        if let Some(ms) = f.delay_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if f.drop_connection == Some(true) {
            // Status 0 in the journal: no answer was sent.
            shared.lock().record(journal(0));
            log(0, " (fault: connection dropped)");
            return Err(DropConnection);
        }
        if f.status.is_some() {
            let reply = fault_reply(&f, &req, shared.clock.now());
            shared.lock().record(journal(reply.status));
            log(reply.status, " (fault)");
            return Ok(with_request_ids(reply, &req).into_response());
        }
    }
    let reply = {
        let now = shared.clock.now();
        let mut st = shared.lock();
        let held = Instant::now();
        st.tick(now);
        let ctx = Ctx {
            base: &shared.base,
            now,
            seq,
        };
        let reply = arm::dispatch(&mut st, &req, &ctx);
        st.record(journal(reply.status));
        st.throttle.served_in(held.elapsed());
        reply
    };
    log(reply.status, "");
    if let Some(f) = lost_answer {
        // Done, but the answer is late or never arrives.
        if let Some(ms) = f.delay_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if f.drop_connection == Some(true) {
            log(0, " (fault: answer dropped after processing)");
            return Err(DropConnection);
        }
    }
    Ok(with_request_ids(reply, &req).into_response())
}

/// ARM's request ids, so that client logs look like they do against Azure.
fn with_request_ids(reply: Reply, req: &Req) -> Reply {
    let id = uuid::Uuid::new_v4().to_string();
    let mut reply = reply
        .header("x-ms-request-id", id.clone())
        .header("x-ms-correlation-request-id", id);
    if let Some(client) = req.header("x-ms-client-request-id") {
        reply = reply.header("x-ms-client-request-id", client.to_string());
    }
    reply
}

/// What the journal keeps of a request body: exactly what was sent, as JSON
/// (a form body as an object of its fields), so that tests can check which
/// secret went where. Nothing is hidden.
pub(crate) fn journal_body(req: &Req) -> Value {
    if req.body.is_empty() {
        return Value::Null;
    }
    if let Ok(v) = serde_json::from_slice::<Value>(&req.body) {
        return v;
    }
    let is_form = req.header("content-type").is_some_and(|c| {
        c.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    if is_form || arm::is_token_endpoint(&req.segments) {
        let form: serde_json::Map<String, Value> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        return Value::Object(form);
    }
    Value::String(String::from_utf8_lossy(&req.body).into_owned())
}

/// The answer to a request fault (ARM's envelope, or Entra's on the token
/// endpoint).
pub(crate) fn fault_reply(
    spec: &super::scenario::FaultSpec,
    req: &Req,
    now: DateTime<Utc>,
) -> Reply {
    let status = spec.status.unwrap_or(500);
    let default_code = match status {
        408 => "RequestTimeout",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "InjectedFault",
    };
    let code = spec.error_code.as_deref().unwrap_or(default_code);
    let message = spec.message.clone().unwrap_or_else(|| {
        format!("The request failed with {status} (fault injected by the mock scenario).")
    });
    let mut r = if arm::is_token_endpoint(&req.segments) {
        Reply::entra_error(status, code, 0, &message, now)
    } else {
        Reply::arm_error(status, code, message)
    };
    if let Some(ra) = spec.retry_after {
        r = r.header("Retry-After", ra.to_string());
    }
    if let Some(location) = &spec.location {
        r = r.header("Location", location.clone());
    }
    r
}
