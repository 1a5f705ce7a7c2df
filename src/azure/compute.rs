//! The Microsoft.Compute operations pitr uses (api-version 2024-07-01):
//! managed Run Commands (`{VM}/runCommands/{name}`), found again by their
//! name after a crash, with the script's outcome in their instance view.
use super::client::{last_segment, parse_json, ArmClient, Retry};
use super::error::AzureError;
use super::lro::Operation;
use super::models::{RunCommand, RunCommandSpec, VirtualMachine, COMPUTE_API_VERSION};
use azure_core::http::Method;

impl ArmClient {
    /// `None` when the VM does not exist.
    pub async fn get_vm(&self, vm_id: &str) -> Result<Option<VirtualMachine>, AzureError> {
        let op = format!("GET VM {}", last_segment(vm_id));
        let url = self.url(vm_id, COMPUTE_API_VERSION)?;
        match self.send(&op, Method::Get, &url, None).await {
            Ok(r) => parse_json(&op, &r.body).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the named Run Command, which runs its script. Sent at most
    /// once per decision: a lost answer may hide a started script, so only a
    /// 429 (which Azure did not act on) is retried here; the caller looks
    /// the command up by name before sending again. `None`: Azure answered
    /// without an operation to follow (the command is followed by name).
    pub async fn put_run_command(
        &self,
        vm_id: &str,
        name: &str,
        spec: &RunCommandSpec,
    ) -> Result<Option<Operation>, AzureError> {
        let op = format!("PUT run command {name} on {}", last_segment(vm_id));
        let begun = self
            .begin(
                &op,
                Method::Put,
                &format!("{vm_id}/runCommands/{name}"),
                COMPUTE_API_VERSION,
                Some(&spec.body()),
                Retry::ThrottledOnly,
            )
            .await?;
        Ok(begun.into_operation())
    }

    /// The named Run Command with its instance view; `None` when absent.
    pub async fn get_run_command(
        &self,
        vm_id: &str,
        name: &str,
    ) -> Result<Option<RunCommand>, AzureError> {
        let op = format!("GET run command {name} on {}", last_segment(vm_id));
        let mut url = self.url(&format!("{vm_id}/runCommands/{name}"), COMPUTE_API_VERSION)?;
        url.query_pairs_mut().append_pair("$expand", "instanceView");
        match self.send(&op, Method::Get, &url, None).await {
            Ok(r) => parse_json(&op, &r.body).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes the named Run Command (absent is success). `Some` when Azure
    /// deletes it in the background.
    pub async fn delete_run_command(
        &self,
        vm_id: &str,
        name: &str,
    ) -> Result<Option<Operation>, AzureError> {
        let op = format!("DELETE run command {name} on {}", last_segment(vm_id));
        let path = format!("{vm_id}/runCommands/{name}");
        match self
            .begin(
                &op,
                Method::Delete,
                &path,
                COMPUTE_API_VERSION,
                None,
                Retry::Transient,
            )
            .await
        {
            Ok(begun) => Ok(begun.into_operation()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}
