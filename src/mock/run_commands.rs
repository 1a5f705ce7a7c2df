//! Managed run commands: `PUT/GET/DELETE {VM}/runCommands/{name}`
//! (Microsoft.Compute), written from docs/arm-contracts.md ("Managed run
//! command"). The script runs as an operation of kind `run_command` (the
//! same completion rules, holds and faults as the action run command); the
//! PUT's `Azure-AsyncOperation` / `Location` URLs point at it, or, with
//! `asyncExecution`, at an operation that is complete at once.

use serde_json::Value;

use super::arm::{parse_json_body, Call, NOT_FOUND_HINT};
use super::compute::{compute_op_url, find_vm, parse_params, vm_not_found};
use super::http::Reply;
use super::model_rc::{ManagedRunCommand, Resource};
use super::script::ScriptKind;
use super::state::{norm_location, OpDetail, OpKind, OpStatus, State};

/// Azure's upper bound for `timeoutInSeconds` as the mock enforces it.
const MAX_TIMEOUT_SECS: i64 = 86_400;

fn invalid(message: impl Into<String>) -> Reply {
    Reply::arm_error(400, "InvalidParameter", message)
}

fn valid_name(name: &str) -> bool {
    (1..=80).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn not_found(rg: &str, vm: &str, name: &str) -> Reply {
    Reply::arm_error(
        404,
        "ResourceNotFound",
        format!("The Resource 'Microsoft.Compute/virtualMachines/{vm}/runCommands/{name}' under resource group '{rg}' was not found. {NOT_FOUND_HINT}"),
    )
}

/// An optional boolean property.
fn flag(props: &Value, key: &str) -> Result<bool, Reply> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(invalid(format!(
            "The value {other} of parameter '{key}' is invalid: it must be true or false."
        ))),
    }
}

struct PutBody {
    location: String,
    script: String,
    parameters: Vec<(String, String)>,
    protected: Vec<(String, String)>,
    timeout: i64,
    async_execution: bool,
    treat_failure: bool,
}

fn parse_put(body: &Value, vm_location: &str) -> Result<PutBody, Reply> {
    let location = match body.get("location").and_then(Value::as_str) {
        None => {
            return Err(Reply::arm_error(
                400,
                "LocationRequired",
                "The location property is required for this definition.",
            ))
        }
        Some(l) if norm_location(l) != norm_location(vm_location) => {
            return Err(invalid(format!(
                "The location '{l}' of the run command does not match the location '{vm_location}' of its virtual machine."
            )))
        }
        Some(l) => l.to_string(),
    };
    let props = body.get("properties").cloned().unwrap_or(Value::Null);
    if !(props.is_object() || props.is_null()) {
        return Err(invalid("The parameter 'properties' must be an object."));
    }
    let source = props.get("source").cloned().unwrap_or(Value::Null);
    for other in ["scriptUri", "commandId"] {
        if source.get(other).is_some_and(|v| !v.is_null()) {
            return Err(invalid(format!(
                "The parameter 'source.{other}' is not supported by the mock Azure: give the script inline in 'source.script'."
            )));
        }
    }
    let script = match source.get("script") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(invalid(
                "Required parameter 'source.script' is missing (null): give the script as one string.",
            ))
        }
        Some(_) => {
            return Err(invalid(
                "The parameter 'source.script' must be a string (the whole script, lines joined with newlines).",
            ))
        }
    };
    let parameters = parse_params(&props, "parameters")?;
    let protected = parse_params(&props, "protectedParameters")?;
    let timeout = match props.get("timeoutInSeconds") {
        None | Some(Value::Null) => 0,
        Some(v) => match v.as_i64() {
            Some(t) if (0..=MAX_TIMEOUT_SECS).contains(&t) => t,
            _ => {
                return Err(invalid(format!(
                    "The value {v} of parameter 'timeoutInSeconds' is invalid: give whole seconds from 0 (the default, 90 minutes) to {MAX_TIMEOUT_SECS}."
                )))
            }
        },
    };
    Ok(PutBody {
        location,
        script,
        parameters,
        protected,
        timeout,
        async_execution: flag(&props, "asyncExecution")?,
        treat_failure: flag(&props, "treatFailureAsDeploymentFailure")?,
    })
}

pub(crate) fn put(st: &mut State, call: &Call, sub: &str, rg: &str, vm: &str, name: &str) -> Reply {
    let ctx = call.ctx;
    let Some(vi) = find_vm(st, sub, rg, vm) else {
        return vm_not_found(rg, vm);
    };
    if !valid_name(name) {
        return Reply::arm_error(
            400,
            "InvalidResourceName",
            format!("The resource name '{name}' is invalid. A run command name is 1 to 80 characters: letters, digits, '-', '_' and '.'."),
        );
    }
    let body = match parse_json_body(call.req).and_then(|b| parse_put(&b, &st.vms[vi].location)) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let replacing = st.vms[vi].find_managed(name);
    if let Some(idx) = replacing {
        let exec = st.vms[vi].managed[idx].exec_op;
        let running = st
            .find_op(exec)
            .is_some_and(|i| st.operations[i].status == OpStatus::InProgress);
        if running {
            return Reply::arm_error(
                409,
                "Conflict",
                format!("Run command extension execution is in progress for run command '{name}'. Please wait for completion before updating it."),
            );
        }
        st.vms[vi].managed[idx].resource = Resource::Replaced;
    }
    let planned = st.take_operation_fault(OpKind::RunCommand, Some(&body.script));
    let v = &st.vms[vi];
    let (subscription, location) = (v.subscription_id.clone(), v.location.clone());
    let target = format!("{}/runCommands/{name}", v.id());
    let exec_op = st.new_operation(
        &subscription,
        &location,
        target.clone(),
        planned,
        OpDetail::RunCommand {
            vm: vi,
            script: body.script.clone(),
            parameters: body.parameters.clone(),
            protected: body.protected.clone(),
            managed: Some(name.to_string()),
            stdout: String::new(),
            stderr: String::new(),
        },
        &call.api_version,
        ctx.now,
    );
    let arm_op = if body.async_execution {
        st.new_operation(
            &subscription,
            &location,
            target,
            None,
            OpDetail::Ack {
                vm: vi,
                name: name.to_string(),
            },
            &call.api_version,
            ctx.now,
        )
    } else {
        exec_op
    };
    let answered_state = if replacing.is_some() {
        "Updating"
    } else {
        "Creating"
    };
    let record = ManagedRunCommand {
        seq: ctx.seq,
        name: name.to_string(),
        location: body.location,
        script: body.script,
        parameters: body.parameters,
        protected: body.protected,
        timeout_in_seconds: body.timeout,
        async_execution: body.async_execution,
        treat_failure_as_deployment_failure: body.treat_failure,
        // With asyncExecution the deployment is done at once.
        provisioning_state: if body.async_execution {
            "Succeeded"
        } else {
            answered_state
        },
        execution_state: "Running",
        execution_message: String::new(),
        exit_code: None,
        output: String::new(),
        error: String::new(),
        start_time: ctx.now,
        end_time: None,
        exec_op,
        arm_op,
        resource: Resource::Present,
        kind: ScriptKind::Other,
        services: Vec::new(),
        synced_database_id: None,
        simulated_seconds: None,
    };
    let mut answer = record.to_arm(&st.vms[vi], false);
    answer["properties"]["provisioningState"] = Value::from(answered_state);
    st.vms[vi].managed.push(record);
    // A script with nothing to wait for may already be done.
    st.tick(ctx.now);
    Reply::json(if replacing.is_some() { 200 } else { 201 }, answer)
        .header(
            "Azure-AsyncOperation",
            compute_op_url(
                ctx.base,
                &subscription,
                &location,
                arm_op,
                false,
                &call.api_version,
            ),
        )
        .header(
            "Location",
            compute_op_url(
                ctx.base,
                &subscription,
                &location,
                arm_op,
                true,
                &call.api_version,
            ),
        )
        .header("Retry-After", st.settings.retry_after_secs.to_string())
}

pub(crate) fn get(st: &mut State, call: &Call, sub: &str, rg: &str, vm: &str, name: &str) -> Reply {
    let Some(vi) = find_vm(st, sub, rg, vm) else {
        return vm_not_found(rg, vm);
    };
    let Some(idx) = st.vms[vi].find_managed(name) else {
        return not_found(rg, vm, name);
    };
    let expand = call.req.param("$expand").is_some_and(|e| {
        e.split(',')
            .any(|p| p.trim().eq_ignore_ascii_case("instanceView"))
    });
    let v = &st.vms[vi];
    Reply::json(200, v.managed[idx].to_arm(v, expand))
}

pub(crate) fn delete(
    st: &mut State,
    call: &Call,
    sub: &str,
    rg: &str,
    vm: &str,
    name: &str,
) -> Reply {
    let Some(vi) = find_vm(st, sub, rg, vm) else {
        return vm_not_found(rg, vm);
    };
    let Some(idx) = st.vms[vi].find_managed(name) else {
        return Reply::empty(204);
    };
    st.cancel_managed(vi, idx, call.ctx.now);
    // As Azure does (a long-running delete): 202 with the operation to
    // follow, here already done.
    let ctx = call.ctx;
    let (subscription, location) = (
        st.vms[vi].subscription_id.clone(),
        st.vms[vi].location.clone(),
    );
    let target = format!("{}/runCommands/{name}", st.vms[vi].id());
    let op = st.new_operation(
        &subscription,
        &location,
        target,
        None,
        OpDetail::Ack {
            vm: vi,
            name: name.to_string(),
        },
        &call.api_version,
        ctx.now,
    );
    Reply::empty(202)
        .header(
            "Azure-AsyncOperation",
            compute_op_url(
                ctx.base,
                &subscription,
                &location,
                op,
                false,
                &call.api_version,
            ),
        )
        .header(
            "Location",
            compute_op_url(
                ctx.base,
                &subscription,
                &location,
                op,
                true,
                &call.api_version,
            ),
        )
        .header("Retry-After", st.settings.retry_after_secs.to_string())
}
