//! The command line. Exit codes: 0 success, 1 the operation failed, 2 bad
//! input (arguments, config, request rules); bad input changes nothing.
/// `println!` that ignores a closed stdout (`pitr request list | head`):
/// Rust ignores SIGPIPE (sockets need that), so `println!` would panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod bench;
mod bench_scale;
mod commands;
mod console;
mod demo;
pub mod dry_run;
mod output;
mod serve;
mod store_cmd;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The footer of `pitr --help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the operation failed (a step failed, Azure refused, the store is unreachable)
  2  bad input (arguments, config, request rules); bad input changes nothing";

#[derive(Debug, Parser)]
#[command(
    name = "pitr",
    version,
    about = "Point-in-time restores of Azure SQL databases for Dynamics 365 F&O non-production environments",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// Config file (default: config/pitr.toml).
    #[arg(long, global = true, env = "PITR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Who acts, for the audit trail (default: $USER, else the OS account).
    #[arg(long, global = true, env = "PITR_ACTOR")]
    pub actor: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Self-contained rehearsal: a temporary store, the embedded mock Azure, a
    /// demo environment; submits, accepts and runs a restore.
    Demo {
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the mock Azure (an ARM look-alike over HTTPS) until interrupted.
    MockAzure {
        /// Address to listen on (port 0: any free port; the URL is printed).
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: std::net::SocketAddr,
        /// Scenario file (TOML); default: seeded from the configured environments.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Where to write the CA certificate (PEM) clients must trust.
        #[arg(long, default_value = "var/mock-ca.pem")]
        ca_out: PathBuf,
    },
    /// Submit and manage restore requests.
    #[command(subcommand)]
    Request(RequestCommand),
    /// Run an accepted request now.
    Run {
        /// The request's id (as printed by `pitr request submit`).
        id: String,
        /// Rehearse against an embedded mock Azure seeded from the config;
        /// the request's status is not changed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Continue an interrupted run where it stopped.
    Resume {
        /// The request's id.
        id: String,
    },
    /// Undo a finished run: put the original database back under its name
    /// and bring the environment online.
    Rollback {
        /// The request's id.
        id: String,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Measure downtime and engine overhead against the mock Azure, default
    /// order against pre-staged restores.
    Bench {
        /// Restores per mode (1-1000).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
        runs: u64,
        /// How long the mock's restore operation takes.
        #[arg(long, default_value_t = 3000)]
        restore_ms: u64,
        /// How long each Run Command takes.
        #[arg(long, default_value_t = 500)]
        run_command_ms: u64,
        /// Poll floor of the client (1-60000 ms).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
        poll_ms: u64,
        /// Scale run: this many environments (1-5000), every window opening
        /// at the same instant, driven by `pitr serve` runner processes
        /// against a mock Azure that throttles like ARM.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=5000))]
        environments: Option<u64>,
        /// Scale run: subscriptions the environments are spread over (1-1000).
        #[arg(long, default_value_t = 1, requires = "environments", value_parser = clap::value_parser!(u64).range(1..=1000))]
        subscriptions: u64,
        /// Scale run: `pitr serve` processes sharing the store (1-16).
        #[arg(long, default_value_t = 1, requires = "environments", value_parser = clap::value_parser!(u64).range(1..=16))]
        runners: u64,
        /// Scale run: the store the runners share (default: a temporary
        /// SQLite file); give an empty PostgreSQL database for several runners.
        #[arg(long, requires = "environments")]
        store: Option<String>,
        /// Scale run: restores pre-staged ahead of the windows.
        #[arg(long, requires = "environments")]
        prestage: bool,
        /// Scale run: Azure SQL's cap on concurrent restores per subscription
        /// (0: none).
        #[arg(long, default_value_t = 30, requires = "environments")]
        restore_cap: u32,
        /// Scale run: fraction of ARM's bucket sizes and refill rates
        /// (0.01-10; 1 = reads 250 +25/s, writes and deletes 200 +10/s).
        #[arg(long, default_value_t = 1.0, requires = "environments", value_parser = bucket_scale)]
        bucket_scale: f64,
        /// Scale run: give up after this many seconds.
        #[arg(long, default_value_t = 3600, requires = "environments")]
        timeout_secs: u64,
        /// Print the figures as JSON (progress still goes to stderr).
        #[arg(long)]
        json: bool,
    },
    /// The service: runs accepted requests in their windows, unattended,
    /// serves the HTTP API ([serve] listen) and delivers notifications,
    /// until interrupted.
    Serve {
        /// Seconds between two looks at the schedule (default: [engine] scheduler_tick_secs).
        #[arg(long)]
        tick_secs: Option<u64>,
        /// Runs at once, counted over every runner sharing the store (default: [engine] max_concurrent_runs).
        #[arg(long)]
        max_concurrent: Option<usize>,
    },
    /// Configured environments.
    #[command(subcommand)]
    Env(EnvCommand),
    /// The store as a whole: create it (`init`), copy it into another (`copy`,
    /// e.g. SQLite to PostgreSQL).
    #[command(subcommand)]
    Store(StoreCommand),
    /// Runs (jobs) of requests.
    #[command(subcommand)]
    Job(JobCommand),
    /// Deliveries of the signed notifications (`[[notifications]]`).
    #[command(subcommand)]
    Notifications(NotificationsCommand),
}

#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Deliveries, newest first: receiver, event, request, delivery id,
    /// status, attempts, next attempt, last error.
    List {
        /// Only those given up (24 hours of retries).
        #[arg(long)]
        failed: bool,
        /// How many (1-10000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        limit: u64,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create the store named by [store] url on purpose (or migrate it to
    /// this pitr's schema): a SQLite file, or the tables in an existing
    /// PostgreSQL database.
    ///
    /// Other commands create only the default store, sqlite://var/pitr.db,
    /// on first use; any other SQLite path must exist already (a mistyped
    /// path is refused instead of becoming an empty store), and a PostgreSQL
    /// database must exist (its tables are created and migrated on first
    /// use).
    Init,
    /// Copy every request, audit event, job, step checkpoint and environment
    /// history row into a new, empty store (leases are not copied). The
    /// source is only read.
    Copy {
        /// The store to copy (sqlite://PATH or postgres://USER@HOST:PORT/DB).
        #[arg(long)]
        from: String,
        /// The empty store to copy into (created and migrated if needed).
        #[arg(long)]
        to: String,
        /// Print the counts copied as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Confirm that a step waiting for a person (a `manual` action, or a
    /// webhook whose callback did not come) was done, then continue the run.
    Confirm {
        /// The job id (or its request's id).
        id: String,
        /// The step that waits (offline, online, sync, mr_reset).
        #[arg(long)]
        step: String,
        /// It could not be done: the step fails and the run recovers.
        #[arg(long, requires = "reason")]
        failed: bool,
        /// Why it failed (with --failed).
        #[arg(long, requires = "failed")]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Validate a restore request against every rule (asking Azure for the
    /// database's earliest restore date and retention) and record it as
    /// submitted; prints its id.
    Submit(SubmitArgs),
    /// Accept a submitted request (operators): it runs in its window.
    Accept {
        /// The request's id.
        id: String,
        /// Print the request as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reject a submitted request, with the reason.
    Reject {
        /// The request's id.
        id: String,
        /// Why, for the requester and the audit trail.
        #[arg(long)]
        reason: String,
        /// Print the request as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a request that has not started.
    Cancel {
        /// The request's id.
        id: String,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
        /// Print the request as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change the window and/or the restore point before the run starts
    /// (every rule is checked again).
    Reschedule {
        /// The request's id.
        id: String,
        /// New window start, RFC 3339 with an offset (e.g. 2026-11-27T20:00:00Z).
        #[arg(long)]
        window_start: Option<String>,
        /// New window end, RFC 3339, at least 1 hour after the start.
        #[arg(long)]
        window_end: Option<String>,
        /// New restore point, RFC 3339, in the past and inside retention.
        #[arg(long)]
        restore_point: Option<String>,
        /// I understand the code version at the restore point differs from
        /// today's (rule code-version).
        #[arg(long)]
        ack_version_mismatch: bool,
        /// Operators only: allow a window less than 24 hours ahead, for this
        /// reason (recorded in the audit trail).
        #[arg(long)]
        emergency_reason: Option<String>,
        /// Print the request as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every request, newest first, with any warning.
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One request: its audit trail, its latest run with every step, the
    /// downtime, and the runner holding it while it runs.
    Show {
        /// The request's id.
        id: String,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The audit trail: every transition with who, when and why.
    History {
        /// The request's id.
        id: String,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The environment, as `pitr env list` names it.
    #[arg(long = "env")]
    pub env: String,
    /// The environment's F&O database (e.g. AxDB).
    #[arg(long)]
    pub database: String,
    /// RFC 3339 instant with an offset, e.g. 2026-11-20T08:30:00Z.
    #[arg(long)]
    pub restore_point: String,
    /// Start of the downtime window, RFC 3339, at least 24 hours ahead
    /// (unless --emergency-reason).
    #[arg(long)]
    pub window_start: String,
    /// End of the downtime window, RFC 3339, at least 1 hour after the start.
    #[arg(long)]
    pub window_end: String,
    /// I understand the current database is erased and replaced.
    #[arg(long)]
    pub ack_erase: bool,
    /// I understand the environment is unavailable during the window.
    #[arg(long)]
    pub ack_downtime: bool,
    /// I understand only the F&O database is restored (document blobs and the
    /// Management Reporter database keep their state; versions may differ).
    #[arg(long)]
    pub ack_scope: bool,
    /// Why the restore is needed, for the operator and the audit trail.
    #[arg(long)]
    pub reason: Option<String>,
    /// Restore ahead of the window so that the downtime is shorter.
    #[arg(long)]
    pub prestage: bool,
    /// I understand the code version at the restore point differs from
    /// today's (needed when the deployment history shows another major version).
    #[arg(long)]
    pub ack_version_mismatch: bool,
    /// Operators only: allow a window less than 24 hours ahead, for this reason
    /// (recorded in the audit trail).
    #[arg(long)]
    pub emergency_reason: Option<String>,
    /// Print the request as JSON instead of its id.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// The configured environments.
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One environment with its history of restores (restore and downtime
    /// durations), rollbacks and deployments.
    Show {
        /// The environment's name.
        name: String,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deployments of code versions (for the code-version rule).
    #[command(subcommand)]
    Deployment(DeploymentCommand),
}

#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// Record that VERSION was deployed to the environment at an instant.
    Add {
        /// The environment's name.
        #[arg(long = "env")]
        env: String,
        /// The code version deployed, e.g. 10.0.40 (its first component is
        /// the major version).
        #[arg(long)]
        version: String,
        /// When it was deployed, RFC 3339 with an offset.
        #[arg(long)]
        at: String,
    },
}

/// An error at the binary's edge, with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

/// A use case's error: its exit code from its kind, its message with what
/// to change said as the command line says it (the flag to pass).
impl From<crate::service::ServiceError> for Failure {
    fn from(e: crate::service::ServiceError) -> Self {
        use crate::domain::rules::Fix;
        use crate::service::Kind;
        let code = match e.kind {
            Kind::BadInput
            | Kind::Rule
            | Kind::Invalid
            | Kind::Conflict
            | Kind::NotFound
            | Kind::Forbidden
            | Kind::Setup => 2,
            Kind::Contended
            | Kind::Azure
            | Kind::Store
            | Kind::Unavailable
            | Kind::Stuck
            | Kind::Failed => 1,
        };
        let hint = match e.fix() {
            None => String::new(),
            Some(Fix::ChooseEnvironment) => {
                "; run `pitr env list` to see the configured environments".into()
            }
            Some(Fix::Acknowledge(which)) => {
                let flags: Vec<String> =
                    which.names().iter().map(|n| format!("--ack-{n}")).collect();
                let it = if flags.len() == 1 { "it" } else { "them" };
                format!("; read {it} and pass {}", flags.join(" "))
            }
            Some(Fix::LengthenWindow) => {
                "; set --window-end at least 1 hour after --window-start".into()
            }
            Some(Fix::EmergencyReason) => {
                ", or, as an operator in an emergency, pass --emergency-reason TEXT".into()
            }
            Some(Fix::AckVersionMismatch) => ", then pass --ack-version-mismatch".into(),
            Some(fix) => {
                let id = e.request().unwrap_or("ID");
                match fix {
                    Fix::AcceptFirst => format!("; accept it with `pitr request accept {id}`"),
                    Fix::RollBackAfterwards => {
                        format!("; `pitr rollback {id}` undoes it once it has finished")
                    }
                    Fix::SubmitNew => "; `pitr request submit` files a new one".into(),
                    Fix::StartRun => format!(
                        "; start it with `pitr run {id}` (an interrupted dry run is started \
                         again with `pitr run {id} --dry-run`)"
                    ),
                    Fix::RollBackOrSubmitNew => format!(
                        "; `pitr rollback {id}` undoes it, `pitr request submit` files a new \
                         request"
                    ),
                    _ => format!("; `pitr request show {id}` shows where it is"),
                }
            }
        };
        Self {
            code,
            message: format!("{e}{hint}"),
        }
    }
}

impl From<crate::engine::EngineError> for Failure {
    fn from(e: crate::engine::EngineError) -> Self {
        crate::service::ServiceError::from_engine(e, crate::service::Kind::Invalid).into()
    }
}

impl From<crate::app::AppError> for Failure {
    fn from(e: crate::app::AppError) -> Self {
        match e {
            crate::app::AppError::Store(e) => e.into(),
            // The client could not be set up from the config: nothing was sent.
            crate::app::AppError::Azure(e) => Self::bad_input(e.to_string()),
            crate::app::AppError::Mock(e) => Self::failed(e.to_string()),
            crate::app::AppError::Service(e) => e.into(),
            crate::app::AppError::Config(e) => Self::bad_input(e),
            crate::app::AppError::Listen(e) => Self::failed(e),
        }
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        crate::service::ServiceError::from(e).into()
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_logging();
    // The SQLite store runs each call on the blocking pool behind one
    // connection: a thousand runs at once would otherwise park hundreds of
    // threads on its lock (each with its stack and malloc arena).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(32)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", console::esc(&f.message));
            ExitCode::from(f.code)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PITR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// `--bucket-scale`: a fraction of ARM's bucket sizes, 0.01..=10.
fn bucket_scale(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number; give a fraction such as 0.5"))?;
    if (0.01..=10.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0.01..=10"))
    }
}
