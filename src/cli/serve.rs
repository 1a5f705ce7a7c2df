//! `pitr serve`: the scheduler, the HTTP API and the notification worker in
//! one process, all stopped by the same signal (SIGINT/SIGTERM) at a safe
//! point.
use super::commands::{effective_settings, load_config, on_signal};
use super::console::Console;
use super::Failure;
use crate::app::App;
use std::path::Path;
use std::sync::Arc;

/// Runs the service; every log line it writes carries this runner's id
/// (`runner=HOST:PID.START`, the span of the whole process).
pub async fn run(
    config: Option<&Path>,
    actor: &str,
    tick_secs: Option<u64>,
    max_concurrent: Option<usize>,
) -> Result<(), Failure> {
    let runner = crate::engine::runner_id();
    let span = tracing::info_span!("runner", runner = %runner);
    tracing::Instrument::instrument(
        serve(config, actor, tick_secs, max_concurrent, &runner),
        span,
    )
    .await
}

async fn serve(
    config: Option<&Path>,
    actor: &str,
    tick_secs: Option<u64>,
    max_concurrent: Option<usize>,
    runner: &str,
) -> Result<(), Failure> {
    let config = load_config(config)?;
    // Refused before anything listens, runs or is created: exit 2.
    let parts = crate::app::ServeParts::from_config(&config, actor)?;
    let stop = on_signal();
    let default_store = config.store.url == crate::config::StoreConfig::default().url;
    let listen = config.serve.listen.clone();
    let app = App::builder(config)
        .actor(actor)
        .create_store(default_store)
        .progress(Arc::new(Console::default()))
        .shutdown(stop)
        .build()
        .await?;
    let every = std::time::Duration::from_secs(
        tick_secs
            .unwrap_or(app.config.engine.scheduler_tick_secs)
            .max(1),
    );
    let limit = max_concurrent.unwrap_or(app.config.engine.max_concurrent_runs);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| Failure::failed(format!("cannot listen on {listen}: {e}")))?;
    let running = app
        .serve(
            listener,
            parts,
            crate::app::ServeOptions {
                every,
                max_concurrent: limit,
            },
        )
        .await?;
    let auth_line = match app.config.auth.mode {
        crate::config::AuthMode::None => {
            format!("none (every call acts as the local operator '{actor}')")
        }
        crate::config::AuthMode::Entra => format!(
            "entra (tenant {}, audience {})",
            app.config.auth.tenant_id.as_deref().unwrap_or("-"),
            app.config.auth.audience.as_deref().unwrap_or("-")
        ),
    };
    eprintln!("pitr serve: runner {runner} (host:pid.start; `request show` names the runner holding a run)");
    eprintln!(
        "pitr serve: API listening on {}; auth {auth_line}",
        running.url
    );
    eprintln!(
        "pitr serve: the work-items page is at {0}/ (sign-in redirect URI {0}/auth/callback)",
        running.public_url
    );
    eprintln!(
        "pitr serve: looking for due windows every {}s, at most {limit} runs at once across all runners sharing the store; Ctrl-C stops at a safe point",
        every.as_secs()
    );
    eprintln!("{}", effective_settings(&app.config));
    running.stopped().await?;
    eprintln!("pitr serve: stopped; runs in progress continue with the next `pitr serve` or `pitr resume ID`");
    Ok(())
}
