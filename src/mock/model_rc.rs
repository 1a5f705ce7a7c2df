//! VMs and what runs on them: the records of action run commands
//! (`POST {VM}/runCommand`) and the managed run command resources
//! (`{VM}/runCommands/{name}`), with their ARM JSON.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::model::ts;
use super::scenario::AosSpec;
use super::script::ScriptKind;

/// One action run command, for `/_mock/state`.
#[derive(Debug, Clone)]
pub(crate) struct RunCommandRecord {
    pub seq: u64,
    pub operation_id: Uuid,
    pub status: &'static str,
    pub completed_seq: Option<u64>,
    pub kind: ScriptKind,
    pub services: Vec<String>,
    /// As received on the wire.
    pub parameters: Vec<(String, String)>,
    pub exit_code: Option<i32>,
    pub synced_database_id: Option<Uuid>,
}

#[derive(Debug, Clone)]
pub(crate) struct Vm {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    /// `properties.vmId`: stable for the mock's lifetime.
    pub vm_id: Uuid,
    /// (name, "Running" | "Stopped"), in scenario order.
    pub services: Vec<(String, String)>,
    pub aos: Option<AosSpec>,
    pub run_commands: Vec<RunCommandRecord>,
    /// Managed run commands, oldest first, including replaced and deleted
    /// ones (for `/_mock/state`); the live one of a name is the last
    /// `Present` one.
    pub managed: Vec<ManagedRunCommand>,
    /// The action run command in progress: one at a time per VM, like Azure.
    pub busy: Option<Uuid>,
    /// Deleted at run time (`POST /_mock/remove-vm`): ARM no longer finds
    /// it. Kept in the list so that operations keep their VM's index.
    pub removed: bool,
}

impl Vm {
    pub fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }

    /// The ARM representation of the VM (`GET {VM}`), abridged.
    pub fn to_arm(&self) -> Value {
        json!({
            "id": self.id(),
            "name": self.name,
            "type": "Microsoft.Compute/virtualMachines",
            "location": self.location,
            "properties": {
                "provisioningState": "Succeeded",
                "vmId": self.vm_id.to_string(),
            }
        })
    }

    /// Index of the live managed run command of that name.
    pub fn find_managed(&self, name: &str) -> Option<usize> {
        self.managed
            .iter()
            .rposition(|m| m.resource == Resource::Present && m.name.eq_ignore_ascii_case(name))
    }
}

/// Whether a managed run command record is still an ARM resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Present,
    /// A later PUT of the same name replaced it.
    Replaced,
    Deleted,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Present => "present",
            Resource::Replaced => "replaced",
            Resource::Deleted => "deleted",
        }
    }
}

/// One managed run command (one execution of it).
#[derive(Debug, Clone)]
pub(crate) struct ManagedRunCommand {
    /// Journal number of the PUT.
    pub seq: u64,
    pub name: String,
    pub location: String,
    pub script: String,
    /// As received on the wire.
    pub parameters: Vec<(String, String)>,
    /// As received on the wire; never returned by ARM.
    pub protected: Vec<(String, String)>,
    /// As given (0 when absent).
    pub timeout_in_seconds: i64,
    pub async_execution: bool,
    pub treat_failure_as_deployment_failure: bool,
    /// Creating, Updating, Succeeded, Failed.
    pub provisioning_state: &'static str,
    /// Pending, Running, Succeeded, Failed, TimedOut, Canceled.
    pub execution_state: &'static str,
    pub execution_message: String,
    pub exit_code: Option<i32>,
    pub output: String,
    pub error: String,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    /// The operation running the script.
    pub exec_op: Uuid,
    /// The operation the PUT's URLs point at (`exec_op`, or an `Ack` one
    /// with `asyncExecution`).
    pub arm_op: Uuid,
    pub resource: Resource,
    pub kind: ScriptKind,
    pub services: Vec<String>,
    pub synced_database_id: Option<Uuid>,
    /// The script's simulated duration (`[settings.script_seconds]`).
    pub simulated_seconds: Option<u64>,
}

/// Azure's default when `timeoutInSeconds` is 0 or absent: 90 minutes.
pub(crate) const DEFAULT_TIMEOUT_SECS: i64 = 5400;

impl ManagedRunCommand {
    /// The timeout that applies.
    pub fn effective_timeout(&self) -> i64 {
        if self.timeout_in_seconds <= 0 {
            DEFAULT_TIMEOUT_SECS
        } else {
            self.timeout_in_seconds
        }
    }

    /// The ARM resource; `protectedParameters` are never returned.
    pub fn to_arm(&self, vm: &Vm, instance_view: bool) -> Value {
        let mut v = json!({
            "id": format!("{}/runCommands/{}", vm.id(), self.name),
            "name": self.name,
            "type": "Microsoft.Compute/virtualMachines/runCommands",
            "location": self.location,
            "properties": {
                "source": {"script": self.script},
                "parameters": params_json(&self.parameters),
                "timeoutInSeconds": self.timeout_in_seconds,
                "asyncExecution": self.async_execution,
                "treatFailureAsDeploymentFailure": self.treat_failure_as_deployment_failure,
                "provisioningState": self.provisioning_state,
            }
        });
        if instance_view {
            v["properties"]["instanceView"] = json!({
                "executionState": self.execution_state,
                "executionMessage": self.execution_message,
                "exitCode": self.exit_code,
                "output": self.output,
                "error": self.error,
                "startTime": ts(self.start_time),
                "endTime": self.end_time.map(ts),
                "statuses": [],
            });
        }
        v
    }

    /// What `/_mock/state` shows (parameters as received, protected ones too).
    pub fn state_json(&self) -> Value {
        json!({
            "seq": self.seq,
            "name": self.name,
            "resource": self.resource.as_str(),
            "provisioning_state": self.provisioning_state,
            "execution_state": self.execution_state,
            "execution_message": self.execution_message,
            "exit_code": self.exit_code,
            "kind": self.kind.as_str(),
            "services": self.services,
            "parameters": params_json(&self.parameters),
            "protected_parameters": params_json(&self.protected),
            "timeout_in_seconds": self.timeout_in_seconds,
            "async_execution": self.async_execution,
            "simulated_seconds": self.simulated_seconds,
            "synced_database_id": self.synced_database_id.map(|u| u.to_string()),
            "operation_id": self.exec_op.to_string(),
        })
    }
}

pub(crate) fn params_json(params: &[(String, String)]) -> Value {
    Value::Array(
        params
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect(),
    )
}
