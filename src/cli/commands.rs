//! What each command does: load config, open the store, call the engine.
use super::{
    dry_run, output, Cli, Command, DeploymentCommand, EnvCommand, Failure, RequestCommand,
    SubmitArgs,
};
use crate::azure::ArmClient;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::domain::lifecycle::LifecycleEvent;
use crate::domain::{Acknowledgements, NewRequest, Window};
use crate::engine::progress::{Console, Progress};
use crate::engine::Engine;
use crate::store::{self, SharedStore};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DEFAULT_CONFIG: &str = "config/pitr.toml";

pub async fn dispatch(cli: Cli) -> Result<(), Failure> {
    let actor = cli
        .actor
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    match cli.command {
        Command::Demo { json } => super::demo::run(json).await,
        Command::Bench {
            runs,
            restore_ms,
            run_command_ms,
            poll_ms,
            json,
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
                new_request(a, &actor)?;
            }
            let ctx = Ctx::load(cli.config.as_deref(), actor).await?;
            request(ctx, rc).await
        }
        Command::Run { id, dry_run } => {
            let ctx = Ctx::load(cli.config.as_deref(), actor).await?;
            if dry_run {
                dry_run::run(&ctx.config, ctx.store.clone(), &ctx.actor, &id).await
            } else {
                let engine = ctx
                    .engine(Arc::new(Console::default()))?
                    .with_shutdown(on_signal());
                let job = engine.run(&id, false).await?;
                report_job(&job);
                Ok(())
            }
        }
        Command::Resume { id } => {
            let ctx = Ctx::load(cli.config.as_deref(), actor).await?;
            let engine = ctx
                .engine(Arc::new(Console::default()))?
                .with_shutdown(on_signal());
            let job = engine.resume(&id).await?;
            report_job(&job);
            Ok(())
        }
        Command::Rollback { id, reason } => {
            let ctx = Ctx::load(cli.config.as_deref(), actor).await?;
            let engine = ctx
                .engine(Arc::new(Console::default()))?
                .with_shutdown(on_signal());
            match engine.rollback(&id, reason).await {
                Err(crate::engine::EngineError::RunFailed {
                    status: "rolled_back",
                    job,
                    ..
                }) => {
                    out!("job {job} rolled back");
                    Ok(())
                }
                Err(e) => Err(e.into()),
                Ok(job) => {
                    out!("job {} {}", job.id, job.status.as_str());
                    Ok(())
                }
            }
        }
        Command::Serve {
            tick_secs,
            max_concurrent,
        } => {
            let ctx = Ctx::load(cli.config.as_deref(), actor).await?;
            let stop = on_signal();
            let engine = Arc::new(
                ctx.engine(Arc::new(Console::default()))?
                    .with_shutdown(stop.clone()),
            );
            let every = std::time::Duration::from_secs(
                tick_secs
                    .unwrap_or(ctx.config.engine.scheduler_tick_secs)
                    .max(1),
            );
            let limit = max_concurrent.unwrap_or(ctx.config.engine.max_concurrent_runs);
            eprintln!(
                "pitr serve: looking for due windows every {}s, at most {limit} runs at once; Ctrl-C stops at a safe point",
                every.as_secs()
            );
            crate::engine::scheduler::Scheduler::new(engine, limit)
                .serve(every, stop)
                .await?;
            eprintln!("pitr serve: stopped; runs in progress continue with the next `pitr serve` or `pitr resume ID`");
            Ok(())
        }
        Command::Env(ec) => {
            let ctx = Ctx::load(cli.config.as_deref(), actor).await?;
            env_command(&ctx, ec).await
        }
    }
}

fn report_job(job: &crate::domain::Job) {
    match job.status {
        crate::domain::JobStatus::Running => out!(
            "job {} staged: the restore is done; the downtime steps wait for the window",
            job.id
        ),
        s => out!("job {} {}", job.id, s.as_str()),
    }
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

pub(crate) struct Ctx {
    pub config: Config,
    pub store: SharedStore,
    pub actor: String,
    pub clock: SharedClock,
}

impl Ctx {
    async fn load(path: Option<&Path>, actor: String) -> Result<Self, Failure> {
        let config = load_config(path)?;
        let store = store::open(&config.store.url).await?;
        Ok(Self {
            config,
            store,
            actor,
            clock: Arc::new(SystemClock),
        })
    }

    fn engine(&self, progress: Arc<dyn Progress>) -> Result<Engine, Failure> {
        let azure = ArmClient::new(&self.config.azure, None)
            .map_err(|e| Failure::bad_input(e.to_string()))?;
        Ok(Engine::new(
            &self.config,
            self.store.clone(),
            azure,
            self.clock.clone(),
            progress,
            self.actor.clone(),
        ))
    }
}

pub(crate) fn load_config(path: Option<&Path>) -> Result<Config, Failure> {
    let path: PathBuf = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    Config::load(&path, std::env::vars()).map_err(|e| Failure::bad_input(e.to_string()))
}

fn parse_instant(flag: &str, s: &str) -> Result<DateTime<Utc>, Failure> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| {
            Failure::bad_input(format!(
                "{flag} '{s}' is not an RFC 3339 instant ({e}); write it like 2026-11-20T08:30:00Z or 2026-11-20T09:30:00+01:00"
            ))
        })
}

async fn request(ctx: Ctx, cmd: RequestCommand) -> Result<(), Failure> {
    match cmd {
        RequestCommand::Submit(args) => submit(&ctx, args).await,
        RequestCommand::Accept { id, json } => {
            let engine = ctx.engine(Arc::new(crate::engine::progress::Silent))?;
            let r = engine.transition(&id, LifecycleEvent::Accept, None).await?;
            output::status_changed(&r, json);
            Ok(())
        }
        RequestCommand::Reject { id, reason, json } => {
            let engine = ctx.engine(Arc::new(crate::engine::progress::Silent))?;
            let r = engine
                .transition(&id, LifecycleEvent::Reject, Some(reason))
                .await?;
            output::status_changed(&r, json);
            Ok(())
        }
        RequestCommand::Cancel { id, reason, json } => {
            let engine = ctx.engine(Arc::new(crate::engine::progress::Silent))?;
            let r = engine
                .transition(&id, LifecycleEvent::Cancel, reason)
                .await?;
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
            let change = crate::engine::requests::Reschedule {
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
            let engine = ctx.engine(Arc::new(crate::engine::progress::Silent))?;
            let (r, warnings) = engine.reschedule(&id, change).await?;
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            output::status_changed(&r, json);
            Ok(())
        }
        RequestCommand::History { id, json } => {
            ctx.store
                .get_request(&id)
                .await?
                .ok_or_else(|| Failure::from(store::StoreError::RequestNotFound(id.clone())))?;
            let events = ctx.store.request_events(&id).await?;
            output::history(&events, json);
            Ok(())
        }
        RequestCommand::List { json } => {
            let all = ctx.store.list_requests().await?;
            output::request_list(&all, json);
            Ok(())
        }
        RequestCommand::Show { id, json } => {
            let req = ctx
                .store
                .get_request(&id)
                .await?
                .ok_or_else(|| Failure::from(store::StoreError::RequestNotFound(id.clone())))?;
            let events = ctx.store.request_events(&id).await?;
            let jobs = ctx.store.jobs_for_request(&id).await?;
            let steps = match jobs.last() {
                Some(j) => ctx.store.steps(&j.id).await?,
                None => Vec::new(),
            };
            let estimate = match ctx.config.environment(&req.environment) {
                Some(env) => {
                    Some(crate::engine::estimates(&ctx.store, &ctx.config.engine, env).await?)
                }
                None => None,
            };
            let waiting = jobs.last().and_then(|j| {
                crate::domain::schedule::waiting_reason(&req, j, &steps, ctx.clock.now())
            });
            output::request_show(
                &req,
                &events,
                &jobs,
                &steps,
                output::Extra { estimate, waiting },
                json,
            );
            Ok(())
        }
    }
}

fn new_request(a: &SubmitArgs, actor: &str) -> Result<NewRequest, Failure> {
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
        requester: actor.to_string(),
        reason: a.reason.clone(),
        prestage: a.prestage,
        emergency: a.emergency_reason.clone(),
    })
}

async fn submit(ctx: &Ctx, a: SubmitArgs) -> Result<(), Failure> {
    let new = new_request(&a, &ctx.actor)?;
    let engine = ctx.engine(Arc::new(crate::engine::progress::Silent))?;
    let (req, warnings) = engine.submit(new).await?;
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

async fn env_command(ctx: &Ctx, cmd: EnvCommand) -> Result<(), Failure> {
    let unknown = |name: &str| {
        Failure::bad_input(
            crate::domain::RuleViolation::UnknownEnvironment(name.to_string()).to_string(),
        )
    };
    match cmd {
        EnvCommand::List { json } => {
            output::env_list(&ctx.config.environments, json);
            Ok(())
        }
        EnvCommand::Show { name, json } => {
            let env = ctx
                .config
                .environment(&name)
                .ok_or_else(|| unknown(&name))?;
            let history = ctx.store.environment_events(&name).await?;
            output::env_show(env, &history, json);
            Ok(())
        }
        EnvCommand::Deployment(DeploymentCommand::Add { env, version, at }) => {
            let at = parse_instant("--at", &at)?;
            ctx.config.environment(&env).ok_or_else(|| unknown(&env))?;
            let engine = ctx.engine(Arc::new(crate::engine::progress::Silent))?;
            engine.add_deployment(&env, &version, at).await?;
            out!("recorded: {env} runs {version} since {}", at.to_rfc3339());
            Ok(())
        }
    }
}
