//! `pitr serve`: the scheduler, the HTTP API and the notification worker in
//! one process, all stopped by the same signal (SIGINT/SIGTERM) at a safe
//! point.
use super::commands::{effective_settings, load_config, on_signal};
use super::console::Console;
use super::Failure;
use crate::api::{ApiState, Hub};
use crate::app::App;
use std::path::Path;
use std::sync::{Arc, Mutex};

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
    // Refused before anything listens or runs: exit 2.
    config.check_serve().map_err(Failure::bad_input)?;
    let secrets =
        crate::notify::Receivers::from_config(&config.notifications).map_err(Failure::bad_input)?;
    let auth = crate::api::auth::Authenticator::new(&config, actor).map_err(Failure::bad_input)?;
    let web = crate::web::Web::from_config(&config).map_err(Failure::bad_input)?;
    let stop = on_signal();
    let hub = Hub::new(Arc::new(Console::default()));
    let default_store = config.store.url == crate::config::StoreConfig::default().url;
    let app = App::builder(config)
        .actor(actor)
        .create_store(default_store)
        .progress(Arc::new(hub.clone()))
        .shutdown(stop.clone())
        .build()
        .await?;
    let engine = super::commands::engine(&app)?;
    let every = std::time::Duration::from_secs(
        tick_secs
            .unwrap_or(app.config.engine.scheduler_tick_secs)
            .max(1),
    );
    let limit = max_concurrent.unwrap_or(app.config.engine.max_concurrent_runs);
    let outbox = Arc::new(tokio::sync::Notify::new());
    let state = Arc::new(ApiState {
        config: Arc::new(app.config.clone()),
        store: app.store.clone(),
        clock: app.clock.clone(),
        engine: engine.clone(),
        auth,
        hub,
        stop: stop.clone(),
        runs: Mutex::new(Vec::new()),
        outbox: outbox.clone(),
        web,
    });
    let listening = crate::api::serve(state.clone())
        .await
        .map_err(Failure::failed)?;
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
        listening.url()
    );
    eprintln!(
        "pitr serve: the work-items page is at {}/ (sign-in redirect URI {})",
        state.web.public_url(),
        state.web.redirect_uri()
    );
    eprintln!(
        "pitr serve: looking for due windows every {}s, at most {limit} runs at once across all runners sharing the store; Ctrl-C stops at a safe point",
        every.as_secs()
    );
    eprintln!("{}", effective_settings(&app.config));
    let worker = tokio::spawn(tracing::Instrument::in_current_span(
        crate::notify::Worker::new(app.store.clone(), app.clock.clone(), secrets, outbox)
            .run(stop.clone()),
    ));
    let scheduled = crate::engine::scheduler::Scheduler::new(engine, limit)
        .serve(every, stop)
        .await;
    state.wait_runs().await;
    listening.stopped().await;
    let _ = worker.await;
    scheduled?;
    eprintln!("pitr serve: stopped; runs in progress continue with the next `pitr serve` or `pitr resume ID`");
    Ok(())
}
