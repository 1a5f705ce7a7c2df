//! `pitr store ...`: the store as a whole: `init` creates the configured
//! store; `copy` (see [`crate::store::copy`]) needs no config, its URLs are
//! given.
use super::output::print_json;
use super::{Failure, StoreCommand};
use crate::store::copy::{self, CopyError};
use crate::store::{redact_url, StoreError};
use serde_json::json;

pub async fn run(cmd: StoreCommand, config: Option<&std::path::Path>) -> Result<(), Failure> {
    match cmd {
        StoreCommand::Init => {
            let config = super::commands::load_config(config)?;
            let url = &config.store.url;
            crate::store::open(url).await?;
            out!("store {} is ready", redact_url(url));
            Ok(())
        }
        StoreCommand::Copy { from, to, json } => copy_store(&from, &to, json).await,
    }
}

async fn copy_store(from: &str, to: &str, json: bool) -> Result<(), Failure> {
    let (shown_from, shown_to) = (redact_url(from), redact_url(to));
    if from == to {
        return Err(Failure::bad_input(format!(
            "--from and --to name the same store ({shown_from}); copy into a new, empty store"
        )));
    }
    let report = copy::copy(from, to, chrono::Utc::now())
        .await
        .map_err(failure)?;
    if json {
        print_json(&json!({
            "from": shown_from,
            "to": shown_to,
            "copied": report.copied,
            "leases_not_copied": report.leases_not_copied,
            "runs_to_resume": report.runs_to_resume,
        }));
    } else {
        out!("copied {} from {shown_from} to {shown_to}", report.copied);
        if !report.runs_to_resume.is_empty() {
            out!(
                "{} run(s) stopped mid-way continue from the new store with `pitr resume ID`: {}",
                report.runs_to_resume.len(),
                report.runs_to_resume.join(", ")
            );
        }
        out!("point [store] url (or PITR_STORE_URL) at {shown_to}");
    }
    Ok(())
}

/// 2 when the copy was refused before anything was written (bad URL, a
/// target that is not empty, a schema of another version), 1 when it
/// failed.
fn failure(e: CopyError) -> Failure {
    match e {
        CopyError::Store(
            e @ (StoreError::UnsupportedUrl(_)
            | StoreError::BadUrl { .. }
            | StoreError::TargetNotEmpty { .. }
            | StoreError::SchemaTooNew { .. }
            | StoreError::SchemaTooOld { .. }),
        ) => Failure::bad_input(e.to_string()),
        e => Failure::failed(e.to_string()),
    }
}
