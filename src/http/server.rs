//! The listener: HTTP/1.1, plain or TLS (`[serve] tls_cert`/`tls_key`),
//! each API call bounded in time and body size, and a graceful shutdown:
//! on `stop`, no new connection is accepted, requests in flight finish,
//! event streams end, and connections close (at most 10 s later).
use crate::api::ApiState;
use crate::auth::Authenticator;
use crate::service::Service;
use crate::web::{Web, WebState};
use axum::body::Body;
use axum::http::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt as _;

/// How long connections may take to finish after the stop signal.
const DRAIN: Duration = Duration::from_secs(10);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listening service.
pub struct Listening {
    pub addr: SocketAddr,
    pub tls: bool,
    /// Where people reach the pages (`[serve] public_url`, else the
    /// address bound).
    pub public_url: String,
    task: JoinHandle<()>,
}

impl Listening {
    /// `http(s)://ADDR`.
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// Waits until the server has stopped (after the stop signal).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("[serve] tls_cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("[serve] tls_cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "[serve] tls_cert {} holds no PEM certificate",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("[serve] tls_key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("[serve] tls_cert/tls_key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves the API and the pages side by side on `listener` (bound to
/// `[serve] listen`, or to port 0 by a test) until the service's stop
/// signal.
pub async fn serve(
    listener: TcpListener,
    service: Arc<Service>,
    auth: Arc<Authenticator>,
    web: Web,
) -> Result<Listening, String> {
    let serve_cfg = service.config.serve.clone();
    let tls = match (&serve_cfg.tls_cert, &serve_cfg.tls_key) {
        (Some(c), Some(k)) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(c, k)?))),
        _ => None,
    };
    let engine = service.engine().map_err(|e| e.to_string())?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", serve_cfg.listen))?;
    web.set_bound_url(format!(
        "{}://{addr}",
        if tls.is_some() { "https" } else { "http" }
    ));
    let csp = web.csp().to_string();
    let public_url = web.public_url();
    let stop = service.stop_signal();
    let api = Arc::new(ApiState::new(service.clone(), auth.clone(), engine));
    let pages = Arc::new(WebState::new(service, auth, web));
    let router = super::with_security_headers(
        crate::web::router(pages)
            .merge(crate::api::router(api))
            .fallback(super::not_found),
        csp,
    );
    let is_tls = tls.is_some();
    let task = tokio::spawn(tracing::Instrument::in_current_span(accept_loop(
        listener, tls, router, stop,
    )));
    Ok(Listening {
        addr,
        tls: is_tls,
        public_url,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = crate::service::stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    conns.spawn(tracing::Instrument::in_current_span(connection(tcp, peer, tls.clone(), router.clone(), stop.clone())));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "serve: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let drained =
        tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        conns.abort_all();
    }
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    match tls {
        None => http1(TokioIo::new(tcp), peer, router, stop).await,
        Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
        {
            Ok(Ok(s)) => http1(TokioIo::new(s), peer, router, stop).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "API: TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "API: TLS handshake timed out"),
        },
    }
}

async fn http1<I>(
    io: I,
    peer: SocketAddr,
    router: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        router.clone().oneshot(req.map(Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(20))
        .serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = crate::service::stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "API: connection ended");
    }
}
