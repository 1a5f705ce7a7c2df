//! Mock Azure: an ARM look-alike over HTTPS on loopback that the real Azure
//! client talks to unchanged (`pitr mock-azure`, `--dry-run`, `pitr demo`).
//!
//! It serves the Entra token endpoint, the Microsoft.Sql database operations
//! (get, list, point-in-time restore, delete, rename, short-term retention
//! policy) and Microsoft.Compute virtual machines with their action and
//! managed run commands, with real ARM shapes, long-running operations that complete
//! over simulated time, and injected faults. `/_mock/*` exposes its state and
//! request journal. Its JSON is written from `docs/arm-contracts.md` and
//! shares no types with `crate::azure`, so a serialization mistake in the
//! client cannot hide behind the same mistake here.

mod admin;
mod alter;
mod api_versions;
mod arm;
mod backup;
mod compute;
mod db_body;
mod entra;
mod exec;
mod fault_spec;
mod http;
mod identity;
mod inspect;
mod lro;
mod model;
mod model_rc;
mod ops;
mod run_commands;
mod scenario;
mod script;
mod script_args;
mod server;
mod signin;
mod sql;
mod state;
mod throttle;
mod time_spec;
mod tls;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::{SharedClock, SystemClock};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[cfg(test)]
pub(crate) use entra::Keys as SigningKeys;
pub use entra::{UserSpec, DEFAULT_TENANT};
pub use scenario::{
    AosSpec, DatabaseSpec, FaultSpec, HistoryEntry, RestoreHeaders, Scenario, ScriptSeconds,
    ServerSpec, Settings, SkuSpec, TimeSpec, VmSpec,
};
pub use script_args::b64url_encode;
pub use throttle::{BucketSpec, ThrottleSpec};

/// The api-versions pitr's client sends; the mock accepts every version
/// Azure accepts for each operation (`src/mock/api_versions.rs`) and its LRO
/// URLs carry the api-version of the request that started them.
pub const SQL_API_VERSION: &str = arm::SQL_API;
pub const COMPUTE_API_VERSION: &str = arm::COMPUTE_API;

/// File name used when `ca_out` is a directory.
pub const CA_FILE_NAME: &str = "mock-azure-ca.pem";

#[derive(Debug, thiserror::Error)]
pub enum MockError {
    #[error("cannot read scenario file {}: {source}", path.display())]
    ReadScenario {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("scenario {origin}: {message}")]
    ParseScenario { origin: String, message: String },
    #[error("scenario {origin}: invalid {what}: {hint}")]
    InvalidScenario {
        origin: String,
        what: String,
        hint: String,
    },
    #[error(
        "mock Azure cannot listen on {addr}: {source} (pick another port, or 0 for any free port)"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("mock Azure cannot set up TLS: {0}")]
    Tls(String),
    #[error("mock Azure cannot write its CA certificate to {}: {source}", path.display())]
    WriteCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A running mock Azure. Dropping it stops the server.
pub struct MockAzure {
    shared: Arc<server::Shared>,
    url: String,
    ca_pem: String,
    ca_path: Option<PathBuf>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MockAzure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockAzure")
            .field("url", &self.url)
            .field("ca_path", &self.ca_path)
            .finish_non_exhaustive()
    }
}

impl MockAzure {
    /// Binds (port 0 allowed), generates a CA + leaf cert for
    /// 127.0.0.1/localhost/::1 at start, writes the CA PEM to `ca_out` if
    /// given (a file path, or a directory to hold `mock-azure-ca.pem`), and
    /// serves until shutdown/drop. Relative scenario times resolve against now.
    pub async fn start(
        scenario: Scenario,
        listen: SocketAddr,
        ca_out: Option<&Path>,
    ) -> Result<MockAzure, MockError> {
        Self::start_with_clock(scenario, listen, ca_out, Arc::new(SystemClock)).await
    }

    /// [`MockAzure::start`] on the scenario's own clock (tests move it):
    /// relative times, token expiry and the throttling buckets follow it.
    pub async fn start_with_clock(
        scenario: Scenario,
        listen: SocketAddr,
        ca_out: Option<&Path>,
        clock: SharedClock,
    ) -> Result<MockAzure, MockError> {
        let state = state::State::new(&scenario, clock.now())?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| MockError::Bind {
                addr: listen,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| MockError::Bind {
            addr: listen,
            source,
        })?;
        let (host, extra_ip) = match local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => (IpAddr::V4(Ipv4Addr::LOCALHOST), None),
            IpAddr::V6(ip) if ip.is_unspecified() => (IpAddr::V6(Ipv6Addr::LOCALHOST), None),
            ip if ip.is_loopback() => (ip, None),
            ip => (ip, Some(ip)),
        };
        let url = format!("https://{}", SocketAddr::new(host, local.port()));
        let tls = tls::generate(extra_ip)?;
        let ca_path = match ca_out {
            None => None,
            Some(p) => {
                let file = if p.is_dir() {
                    p.join(CA_FILE_NAME)
                } else {
                    p.to_path_buf()
                };
                write_ca(&file, &tls.ca_pem).map_err(|source| MockError::WriteCa {
                    path: file.clone(),
                    source,
                })?;
                Some(file)
            }
        };
        let shared = Arc::new(server::Shared::new(state, url.clone(), clock));
        let (tx, rx) = watch::channel(false);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
        let task = tokio::spawn(server::serve(listener, acceptor, shared.clone(), rx));
        tracing::info!(%url, ca = ?ca_path, "mock Azure listening");
        Ok(MockAzure {
            shared,
            url,
            ca_pem: tls.ca_pem,
            ca_path,
            shutdown: tx,
            task: Some(task),
        })
    }

    /// `https://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn ca_path(&self) -> Option<&Path> {
        self.ca_path.as_deref()
    }

    /// Stops accepting, closes open connections and waits for the server task.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Same JSON as `GET /_mock/state`.
    pub fn state_json(&self) -> serde_json::Value {
        let now = self.shared.clock.now();
        let mut st = self.shared.lock();
        st.tick(now);
        st.state_json(now)
    }

    /// Same JSON as `GET /_mock/throttle`: requests and 429s per
    /// subscription and class, when each 429 was sent, restore peaks.
    pub fn throttle_json(&self) -> serde_json::Value {
        self.shared.lock().throttle.to_json()
    }

    /// Same JSON as `GET /_mock/requests`.
    pub fn journal_json(&self) -> serde_json::Value {
        self.shared.lock().journal_json()
    }
}

/// Writes the CA without following a link at `path` (which could point at
/// any file the process may write): a new file beside it, renamed over it.
fn write_ca(path: &Path, pem: &str) -> std::io::Result<()> {
    use std::io::Write;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is a symbolic link; give the path of a regular file",
        ));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    f.write_all(pem.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

impl Drop for MockAzure {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
