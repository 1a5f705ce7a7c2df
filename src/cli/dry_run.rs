//! Dry runs and the mock Azure as a command. A dry run is the same engine
//! against an embedded mock Azure seeded from the configured environments
//! ([`crate::app::rehearsal_scenario`]), so any of them can be rehearsed
//! without writing a scenario. The rehearsal is recorded as a dry-run job;
//! the request keeps its status.
use super::Failure;
use crate::app::{rehearsal_scenario, App};
use crate::domain::RequestId;
use crate::mock::{MockAzure, Scenario};
use crate::service::Actor;
use std::path::Path;

/// `pitr run ID --dry-run`: the service's rehearsal, against a mock Azure
/// it starts seeded from the config (living as long as the run).
pub async fn run(app: &App, who: &Actor, id: &RequestId) -> Result<(), Failure> {
    let started = app.service.run(who, id, true).await?;
    if let Some(url) = &started.mock_url {
        eprintln!("dry run against an embedded mock Azure at {url}");
    }
    let outcome = started.outcome().await?;
    if !outcome.is_success() {
        return Err(Failure::failed(outcome.describe()));
    }
    let next = match app.store.get_request(id).await?.map(|r| r.status) {
        Some(crate::domain::RequestStatus::Accepted) => {
            format!("run it for real with `pitr run {id}`")
        }
        Some(crate::domain::RequestStatus::Submitted) => {
            format!("an operator accepts it (`pitr request accept {id}`), then it can run for real")
        }
        Some(other) => format!("it is {other}"),
        None => String::new(),
    };
    out!(
        "dry run succeeded (job {}); the request's status is unchanged: {next}",
        outcome.job().id
    );
    Ok(())
}

/// `pitr mock-azure`.
pub async fn serve_mock(
    config: Option<&Path>,
    listen: std::net::SocketAddr,
    scenario: Option<&Path>,
    ca_out: &Path,
) -> Result<(), Failure> {
    let scenario = match scenario {
        Some(p) => Scenario::from_file(p).map_err(|e| Failure::bad_input(e.to_string()))?,
        None => {
            let config = super::commands::load_config(config)?;
            rehearsal_scenario(&config.environments)
        }
    };
    if let Some(parent) = ca_out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Failure::bad_input(format!("cannot create {}: {e}", parent.display())))?;
    }
    if !listen.ip().is_loopback() {
        eprintln!(
            "warning: the mock Azure listens on {listen}, not a loopback address: anyone who can reach it can change its state through /_mock/ (it has no authentication)"
        );
    }
    let mock = MockAzure::start(scenario, listen, Some(ca_out))
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    let ca = mock
        .ca_path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    out!("mock Azure listening on {}", mock.url());
    out!("CA certificate: {ca}");
    out!(
        "point pitr at it with: PITR_AZURE_ARM_ENDPOINT={0} PITR_AZURE_AUTHORITY_HOST={0} PITR_AZURE_CA_FILE={ca}",
        mock.url()
    );
    out!(
        "inspect: {0}/_mock/state and {0}/_mock/requests",
        mock.url()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let mut stop = super::commands::on_signal();
    let _ = stop.wait_for(|s| *s).await;
    mock.shutdown().await;
    Ok(())
}
