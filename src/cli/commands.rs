//! What each command does: load config, open the store, call the engine.
use super::console::Console;
use super::{
    dry_run, output, Cli, Command, DeploymentCommand, EnvCommand, Failure, JobCommand,
    RequestCommand, SubmitArgs,
};
use crate::app::{App, Azure};
use crate::config::Config;
use crate::domain::{Acknowledgements, RequestId, Window};
use crate::engine::{Engine, Outcome};
use crate::service::{Actor, NewRequest, RequestFilter, Reschedule};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DEFAULT_CONFIG: &str = "config/pitr.toml";

pub async fn dispatch(cli: Cli) -> Result<(), Failure> {
    let actor = cli
        .actor
        .clone()
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .or_else(os_account)
        .unwrap_or_else(|| "unknown".into());
    match cli.command {
        Command::Demo { json } => super::demo::run(json).await,
        Command::Store(cmd) => super::store_cmd::run(cmd, cli.config.as_deref()).await,
        Command::Bench {
            environments: Some(environments),
            subscriptions,
            runners,
            store,
            prestage,
            restore_cap,
            bucket_scale,
            timeout_secs,
            restore_ms,
            run_command_ms,
            poll_ms,
            json,
            ..
        } => {
            if subscriptions > environments {
                return Err(Failure::bad_input(format!(
                    "--subscriptions {subscriptions} is more than --environments {environments}: every subscription needs an environment"
                )));
            }
            let exe = std::env::current_exe().map_err(|e| {
                Failure::failed(format!("bench: cannot find the pitr executable: {e}"))
            })?;
            super::bench_scale::run(
                super::bench_scale::ScaleArgs {
                    environments,
                    subscriptions,
                    runners,
                    store,
                    prestage,
                    restore_ms,
                    run_command_ms,
                    poll_ms,
                    restore_cap,
                    bucket_scale,
                    timeout_secs,
                    exe,
                },
                json,
            )
            .await
        }
        Command::Bench {
            runs,
            restore_ms,
            run_command_ms,
            poll_ms,
            json,
            ..
        } => {
            super::bench::run(
                super::bench::BenchArgs {
                    runs,
                    restore_ms,
                    run_command_ms,
                    poll_ms,
                },
                json,
            )
            .await
        }
        Command::MockAzure {
            listen,
            scenario,
            ca_out,
        } => dry_run::serve_mock(cli.config.as_deref(), listen, scenario.as_deref(), &ca_out).await,
        Command::Request(rc) => {
            // Arguments are checked before the store is opened (or created).
            if let RequestCommand::Submit(a) = &rc {
                new_request(a)?;
            }
            let app = open(cli.config.as_deref(), &actor, Azure::Real, None).await?;
            request(&app, &Actor::local_operator(&actor), rc).await
        }
        Command::Run { id, dry_run } => {
            let id = RequestId::from(id);
            if dry_run {
                let app = live(cli.config.as_deref(), &actor).await?;
                dry_run::run(&app, &Actor::local_operator(&actor), &id).await
            } else {
                let app = live(cli.config.as_deref(), &actor).await?;
                let who = Actor::local_operator(&actor);
                let outcome = app.service.run(&who, &id, false).await?.outcome().await?;
                report_run(&outcome)
            }
        }
        Command::Resume { id } => {
            let app = live(cli.config.as_deref(), &actor).await?;
            let who = Actor::local_operator(&actor);
            let outcome = app
                .service
                .resume(&who, &RequestId::from(id))
                .await?
                .outcome()
                .await?;
            if outcome.job().is_rollback() {
                report_rollback(&outcome)
            } else {
                report_run(&outcome)
            }
        }
        Command::Rollback { id, reason } => {
            let app = live(cli.config.as_deref(), &actor).await?;
            let who = Actor::local_operator(&actor);
            let outcome = app
                .service
                .rollback(&who, &RequestId::from(id), reason)
                .await?
                .outcome()
                .await?;
            report_rollback(&outcome)
        }
        Command::Serve {
            tick_secs,
            max_concurrent,
        } => super::serve::run(cli.config.as_deref(), &actor, tick_secs, max_concurrent).await,
        Command::Job(JobCommand::Confirm {
            id,
            step,
            failed: _,
            reason,
        }) => {
            let step = crate::domain::StepName::parse(&step).ok_or_else(|| {
                Failure::bad_input(format!(
                    "--step '{step}' is not a step; use offline, online, sync or mr_reset"
                ))
            })?;
            let app = live(cli.config.as_deref(), &actor).await?;
            let who = Actor::local_operator(&actor);
            let outcome = app
                .service
                .confirm(&who, &id, step, reason)
                .await?
                .outcome()
                .await?;
            report_run(&outcome)
        }
        Command::Notifications(super::NotificationsCommand::List {
            failed,
            limit,
            json,
        }) => {
            let app = open(cli.config.as_deref(), &actor, Azure::Real, None).await?;
            let list = app
                .service
                .deliveries(
                    &Actor::local_operator(&actor),
                    failed,
                    usize::try_from(limit).unwrap_or(100),
                )
                .await?;
            output::deliveries(&list, json);
            Ok(())
        }
        Command::Env(ec) => {
            let app = open(cli.config.as_deref(), &actor, Azure::Real, None).await?;
            env_command(&app, &Actor::local_operator(&actor), ec).await
        }
    }
}

/// The settings `pitr serve` runs with, after the file and the
/// environment: what an operator checks first when something surprises.
pub(crate) fn effective_settings(c: &Config) -> String {
    let (a, e) = (&c.azure, &c.engine);
    let store = match url::Url::parse(&c.store.url) {
        // Never a password in a banner.
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => c.store.url.clone(),
    };
    let estimates: Vec<String> = crate::engine::steps::all()
        .map(|d| {
            format!(
                "{}={}s",
                d.name,
                e.estimates.secs(d.name).unwrap_or(d.estimate_secs)
            )
        })
        .collect();
    let timeouts: Vec<String> = crate::engine::steps::all()
        .map(|d| format!("{}={}s", d.name, d.timeout.of(d.name, e).as_secs()))
        .collect();
    format!(
        "  store {store}\n  azure arm_endpoint={} authority_host={} credential={:?} ca_file={} poll={}..{}ms request_timeout={}s retries={} ({}..{}ms)\n  engine lease_ttl={}s keep_original={}h\n  timeouts {}\n  estimates {}\n  environments {}",
        a.arm_endpoint,
        a.authority_host,
        a.credential,
        a.ca_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "-".into()),
        a.min_poll_interval_ms,
        a.max_poll_interval_ms,
        a.request_timeout_secs,
        a.retry_max_times,
        a.retry_min_delay_ms,
        a.retry_max_delay_ms,
        e.lease_ttl_secs,
        e.keep_original_hours,
        timeouts.join(" "),
        estimates.join(" "),
        c.environments
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The name of the account this process runs as, from the system's user
/// database (when `$USER` is not set: services, containers, cron).
fn os_account() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let (name, _, id) = (f.next()?, f.next()?, f.next()?);
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

/// How a rollback (or its resume) ended: 0 when the original is back with
/// nothing left undone, 1 otherwise.
fn report_rollback(outcome: &Outcome) -> Result<(), Failure> {
    match outcome {
        Outcome::Succeeded(job) => {
            let undone = job
                .facts
                .rollback
                .as_ref()
                .map(|of| of.job.to_string())
                .unwrap_or_default();
            let downtime = job
                .downtime_secs()
                .map(|d| format!("; downtime {d:.1}s"))
                .unwrap_or_default();
            out!(
                "job {undone} rolled back by job {}: the original database is live again and the environment is online{downtime}",
                job.id
            );
            Ok(())
        }
        o => Err(Failure::failed(o.describe())),
    }
}

/// How a run or a resume ended: 0 when it succeeded or is staged, 1 otherwise.
fn report_run(outcome: &Outcome) -> Result<(), Failure> {
    if outcome.is_success() {
        out!("{}", outcome.describe());
        Ok(())
    } else {
        Err(Failure::failed(outcome.describe()))
    }
}

/// The app of a command that runs jobs against Azure.
async fn live(path: Option<&Path>, actor: &str) -> Result<App, Failure> {
    open(path, actor, Azure::Real, Some(on_signal())).await
}

/// Loads the config and builds the app. A command that runs jobs (`stop`
/// given) shows progress on the console and stops at a safe point when
/// `stop` becomes true (SIGINT/SIGTERM).
async fn open(
    path: Option<&Path>,
    actor: &str,
    azure: Azure,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
) -> Result<App, Failure> {
    build(load_config(path)?, actor, azure, stop).await
}

async fn build(
    config: Config,
    actor: &str,
    azure: Azure,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
) -> Result<App, Failure> {
    // The default store is made on first use; any other must exist (a
    // mistyped path would otherwise become a new, empty store).
    let default_store = config.store.url == crate::config::StoreConfig::default().url;
    let mut builder = App::builder(config)
        .actor(actor)
        .azure(azure)
        .create_store(default_store);
    if let Some(stop) = stop {
        builder = builder
            .progress(Arc::new(Console::default()))
            .shutdown(stop);
    }
    Ok(builder.build().await?)
}

pub(crate) fn engine(app: &App) -> Result<Arc<Engine>, Failure> {
    Ok(app.engine()?)
}

/// Becomes true on SIGINT or SIGTERM, so that a run stops at a safe point.
pub(crate) fn on_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("signal received: stopping at a safe point");
        let _ = tx.send(true);
        // Keep the sender alive so receivers see `true`, not a closed channel.
        std::future::pending::<()>().await;
    });
    rx
}

pub(crate) fn load_config(path: Option<&Path>) -> Result<Config, Failure> {
    let path: PathBuf = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let vars = crate::config::env_overrides().map_err(|e| Failure::bad_input(e.to_string()))?;
    let from_env = vars.iter().any(|(k, _)| k == "PITR_STORE_URL");
    let config = Config::load(&path, vars).map_err(|e| Failure::bad_input(e.to_string()))?;
    // Checked without connecting, before anything is opened or created.
    crate::store::check_url(&config.store.url).map_err(|e| {
        let origin = if from_env {
            "[store] url (from PITR_STORE_URL)".to_string()
        } else {
            format!("[store] url in {}", path.display())
        };
        Failure::bad_input(format!("{origin}: {e}"))
    })?;
    Ok(config)
}

fn parse_instant(flag: &str, s: &str) -> Result<DateTime<Utc>, Failure> {
    crate::domain::time::parse_instant(s).map_err(|e| Failure::bad_input(format!("{flag} {e}")))
}

async fn request(app: &App, who: &Actor, cmd: RequestCommand) -> Result<(), Failure> {
    let service = &app.service;
    match cmd {
        RequestCommand::Submit(args) => submit(app, who, args).await,
        RequestCommand::Accept { id, json } => {
            let r = service.accept(who, &id.into()).await?;
            output::status_changed(&r, json);
            Ok(())
        }
        RequestCommand::Reject { id, reason, json } => {
            let r = service.reject(who, &id.into(), Some(reason)).await?;
            output::status_changed(&r, json);
            Ok(())
        }
        RequestCommand::Cancel { id, reason, json } => {
            let r = service.cancel(who, &id.into(), reason).await?;
            output::status_changed(&r, json);
            Ok(())
        }
        RequestCommand::Reschedule {
            id,
            window_start,
            window_end,
            restore_point,
            ack_version_mismatch,
            emergency_reason,
            json,
        } => {
            let parse = |flag: &str, v: Option<String>| -> Result<Option<DateTime<Utc>>, Failure> {
                v.map(|s| parse_instant(flag, &s)).transpose()
            };
            let change = Reschedule {
                window_start: parse("--window-start", window_start)?,
                window_end: parse("--window-end", window_end)?,
                restore_point: parse("--restore-point", restore_point)?,
                ack_version_mismatch,
                emergency: emergency_reason,
            };
            if change.window_start.is_none()
                && change.window_end.is_none()
                && change.restore_point.is_none()
            {
                return Err(Failure::bad_input(
                    "nothing to reschedule: give --window-start, --window-end and/or --restore-point",
                ));
            }
            let (r, warnings) = service.reschedule(who, &id.into(), change).await?;
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            output::status_changed(&r, json);
            Ok(())
        }
        RequestCommand::History { id, json } => {
            let events = service.history(who, &RequestId::from(id)).await?;
            output::history(&events, json);
            Ok(())
        }
        RequestCommand::List { json } => {
            let all = service.requests(who, &RequestFilter::default()).await?;
            output::request_list(&all, json);
            Ok(())
        }
        RequestCommand::Show { id, json } => {
            let detail = service.request_detail(who, &RequestId::from(id)).await?;
            output::request_show(&detail, json);
            Ok(())
        }
    }
}

fn new_request(a: &SubmitArgs) -> Result<NewRequest, Failure> {
    Ok(NewRequest {
        environment: a.env.clone(),
        database: a.database.clone(),
        restore_point: parse_instant("--restore-point", &a.restore_point)?,
        window: Window {
            start: parse_instant("--window-start", &a.window_start)?,
            end: parse_instant("--window-end", &a.window_end)?,
        },
        acks: Acknowledgements {
            erase: a.ack_erase,
            downtime: a.ack_downtime,
            scope: a.ack_scope,
            version_mismatch: a.ack_version_mismatch,
        },
        reason: a.reason.clone(),
        prestage: a.prestage,
        emergency: a.emergency_reason.clone(),
    })
}

async fn submit(app: &App, who: &Actor, a: SubmitArgs) -> Result<(), Failure> {
    let new = new_request(&a)?;
    let (req, warnings) = app.service.submit(who, new).await?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if a.json {
        output::print_json(&serde_json::json!({"id": req.id, "status": req.status}));
    } else {
        out!("{}", req.id);
    }
    Ok(())
}

async fn env_command(app: &App, who: &Actor, cmd: EnvCommand) -> Result<(), Failure> {
    match cmd {
        EnvCommand::List { json } => {
            output::env_list(app.service.environments(who)?, json);
            Ok(())
        }
        EnvCommand::Show { name, json } => {
            let (env, history) = app.service.environment_history(who, &name).await?;
            output::env_show(env, &history, json);
            Ok(())
        }
        EnvCommand::Deployment(DeploymentCommand::Add { env, version, at }) => {
            let at = parse_instant("--at", &at)?;
            app.service.add_deployment(who, &env, &version, at).await?;
            out!("recorded: {env} runs {version} since {}", at.to_rfc3339());
            Ok(())
        }
    }
}
