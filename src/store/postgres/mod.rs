//! The PostgreSQL store, for several runners on several machines
//! (`postgres://USER@HOST:5432/DATABASE`).
//!
//! Concurrency equals SQLite's `BEGIN IMMEDIATE`, with row locks instead of
//! one lock for the whole file: every read-check-write runs in one
//! READ COMMITTED transaction that first locks the rows its decision
//! depends on (`SELECT ... FOR UPDATE`), so a second writer waits for the
//! first to commit and then reads what it wrote:
//! - a status compare-and-set, reschedule and `claim_run` lock the request
//!   row (so exactly one of several racing claims starts the run);
//! - lease operations and fenced writes lock the job row, then its lease
//!   row (always in that order, so two of them cannot deadlock);
//! - a new request takes a transaction-scoped advisory lock on its
//!   environment (the row that would conflict does not exist yet), and the
//!   partial unique index on active requests stays the last line of defence.
//!
//! SERIALIZABLE is not used: it would turn the same races into
//! serialization failures to retry, where a row lock simply waits.
//!
//! tokio-postgres is asynchronous, so nothing runs on the blocking pool; a
//! small deadpool of connections serves the runners of one process.
mod copy;
mod in_play;
mod options;
mod outbox;
mod queries;
mod rows;
mod schema;
mod sql;
mod tls;
mod web;

pub use options::{ConnectOptions, RootCert, Secret, SslMode};

use super::{Result, StoreError, PASSWORD_ENV};
use deadpool_postgres::{
    HookError, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
    TimeoutType,
};
use std::sync::Arc;
use std::time::Duration;

/// Connections per process: a few concurrent runs, their lease heartbeats
/// and the scheduler.
const POOL_SIZE: usize = 8;
/// How long an operation waits for a free connection of the pool.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// Settings of every session: a lock held by a stuck process fails a write
/// after a while instead of blocking it forever, and a process frozen inside
/// a transaction loses it (and its locks) instead of holding them.
const SESSION_SETTINGS: &str =
    "SET lock_timeout = '10s'; SET idle_in_transaction_session_timeout = '60s'";

#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// `postgres://HOST:PORT/DATABASE`, what messages name.
    target: String,
    /// Redacted from any connection error text, whatever its source.
    password: Option<Secret>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.inner.target)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database named by `url` and migrates it to
    /// [`super::migrations::SCHEMA_VERSION`]. A database from a newer pitr
    /// is refused untouched. `password` (from [`PASSWORD_ENV`]) wins over a
    /// password in the URL.
    pub async fn open(url: &str, password: Option<String>) -> Result<PostgresStore> {
        let options = ConnectOptions::parse(url, password)?;
        let store = Self::connect(&options, false).await?;
        schema::migrate(&store).await?;
        Ok(store)
    }

    /// Connects without changing anything: no migration, and every session
    /// read-only. The schema must be exactly this binary's.
    pub async fn open_read_only(url: &str, password: Option<String>) -> Result<PostgresStore> {
        let options = ConnectOptions::parse(url, password)?;
        let store = Self::connect(&options, true).await?;
        schema::check_current(&store).await?;
        Ok(store)
    }

    async fn connect(options: &ConnectOptions, read_only: bool) -> Result<PostgresStore> {
        let target = options.target();
        let tls = tls::connector(options).map_err(|cause| StoreError::Open {
            path: target.clone(),
            cause,
        })?;
        let manager = Manager::from_config(
            options.pg_config(),
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let settings = if read_only {
            format!("{SESSION_SETTINGS}; SET default_transaction_read_only = on")
        } else {
            SESSION_SETTINGS.to_string()
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(options.connect_timeout + Duration::from_secs(5)))
            .post_create(deadpool_postgres::Hook::async_fn(move |client, _| {
                let settings = settings.clone();
                Box::pin(async move {
                    client
                        .batch_execute(&settings)
                        .await
                        .map_err(HookError::Backend)
                })
            }))
            .build()
            .map_err(|e| StoreError::Open {
                path: target.clone(),
                cause: format!("setting up the connection pool: {e}"),
            })?;
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                target,
                password: options.password.clone(),
            }),
        };
        // Connect now: a wrong URL, password or certificate fails at open,
        // with a message saying what to check.
        drop(store.conn("connecting").await?);
        Ok(store)
    }

    /// `postgres://HOST:PORT/DATABASE`.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// A connection of the pool. Failing to get one is reported as
    /// `StoreError::Open`: the database is unreachable, or refuses us.
    pub(super) async fn conn(&self, op: &str) -> Result<Object> {
        self.inner.pool.get().await.map_err(|e| StoreError::Open {
            path: self.inner.target.clone(),
            cause: format!("{op}: {}", self.explain(&e)),
        })
    }

    /// The cause of a connection failure and what to check, with the
    /// password (if any) removed from whatever the driver said.
    fn explain(&self, e: &PoolError) -> String {
        let (text, code) = match e {
            PoolError::Backend(e) | PoolError::PostCreateHook(HookError::Backend(e)) => {
                (describe(e), e.code().map(|c| c.code().to_string()))
            }
            PoolError::Timeout(TimeoutType::Wait) => {
                return format!(
                    "every connection of this process ({POOL_SIZE}) stayed busy for {}s; \
                     look for long-running statements or locks held on the server \
                     (pg_stat_activity)",
                    POOL_WAIT.as_secs()
                )
            }
            PoolError::Timeout(_) => ("the server did not answer in time".to_string(), None),
            other => (other.to_string(), None),
        };
        let hint = hint(&text, code.as_deref());
        let text = match &self.inner.password {
            Some(p) if !p.expose().is_empty() => text.replace(p.expose(), "***"),
            _ => text,
        };
        format!("{text}; {hint}")
    }
}

/// What to check after a failed connection, from the SQLSTATE or the text.
fn hint(text: &str, code: Option<&str>) -> String {
    let lower = text.to_ascii_lowercase();
    match code {
        Some("28P01" | "28000") => {
            format!("check the user and its password ({PASSWORD_ENV}, or the URL)")
        }
        Some("3D000") => {
            "create the database (CREATE DATABASE ...) or correct its name in the URL".into()
        }
        Some("42501") => "grant the user CONNECT on the database and CREATE on its schema, \
                          or make it the database's owner"
            .into(),
        Some("53300") => "the server has no connection left; retry later, or raise \
                          max_connections"
            .into(),
        _ if lower.contains("does not support tls") => {
            "the server does not offer TLS: enable ssl there, or use sslmode=disable on a \
             trusted network"
                .into()
        }
        _ if lower.contains("tls") || lower.contains("certificate") => {
            "check sslmode and sslrootcert (the PEM file of the CA that signed the server's \
             certificate; verify-full also needs the host name in the certificate)"
                .into()
        }
        _ => "check that PostgreSQL runs there and accepts TCP connections from this machine \
              (listen_addresses, pg_hba.conf, firewall), and the user, password and sslmode"
            .into(),
    }
}

/// Maps a driver error to `StoreError::Database`, naming the operation.
fn db(op: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
    move |e| StoreError::Database(format!("{op}: {}", describe(&e)))
}

/// The driver's error with its causes: its own text is only the kind
/// ("db error"); the server's message or the TLS failure is in the causes.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
