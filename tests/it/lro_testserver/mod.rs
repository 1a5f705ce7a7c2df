//! pitr's ARM poller against the long-running-operation scenarios every
//! official Azure SDK generator is validated with, served by the Azure SDK
//! test server (`@microsoft.azure/autorest.testserver`, npm), with the
//! outcome the official SDKs' acceptance tests expect for each.
//!
//! The server is a Node program: `.ci/run` installs it from
//! `tests/lro/package-lock.json` into `target/lro-testserver` (or set
//! `PITR_LRO_TESTSERVER_DIR` to a directory where
//! `npm ci` was run with that lock). Like the PostgreSQL tests, these fail
//! rather than skip when it is missing. The real `ArmClient` talks HTTPS to
//! a front in this process ([`front`]) that forwards to the server.
mod front;
mod scenarios;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The test server, started on a free port; killed with the guard.
pub struct TestServer {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli() -> PathBuf {
    let dir = std::env::var_os("PITR_LRO_TESTSERVER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/lro-testserver"));
    let cli = dir.join("node_modules/@microsoft.azure/autorest.testserver/dist/cli/cli.js");
    assert!(
        cli.is_file(),
        "the Azure SDK test server is not installed at {}: run .ci/run, or \
         `mkdir -p target/lro-testserver && cp tests/lro/package*.json target/lro-testserver/ \
         && npm ci --prefix target/lro-testserver` (Node.js 18 or later), or point \
         PITR_LRO_TESTSERVER_DIR at such a directory",
        cli.display()
    );
    cli
}

impl TestServer {
    pub async fn start() -> TestServer {
        let cli = cli();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(dir.path().join("server.log")).expect("server log");
        let child = Command::new("node")
            .arg(&cli)
            .args(["run", "--port", &port.to_string(), "--coverageDirectory"])
            .arg(dir.path().join("coverage"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting `node {}`: {e}; is Node.js installed?",
                    cli.display()
                )
            });
        let mut server = TestServer {
            port,
            child,
            dir,
            http: reqwest::Client::new(),
        };
        // Node starts in about a second; a loaded machine gets a minute.
        for _ in 0..600 {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the test server exited ({status}): {}", server.log());
            }
            if server.coverage().await.is_some() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the test server did not answer within a minute: {}",
            server.log()
        );
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        text.chars()
            .rev()
            .take(2000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
    }

    /// The server's coverage counters: how often each scenario's counted
    /// step was reached.
    pub async fn coverage(&self) -> Option<serde_json::Value> {
        let r = self
            .http
            .get(format!("http://127.0.0.1:{}/report/azure", self.port))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        r.json().await.ok()
    }

    pub async fn counter(&self, name: &str) -> u64 {
        self.coverage()
            .await
            .and_then(|c| c[name].as_u64())
            .unwrap_or_else(|| panic!("no coverage counter {name}"))
    }
}
