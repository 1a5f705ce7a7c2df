//! Microsoft.Compute: `GET {VM}`, the action run command
//! (`POST {VM}/runCommand`, RunPowerShellScript) and the operation URLs of
//! run commands (action and managed).

use serde_json::{json, Value};
use uuid::Uuid;

use super::arm::{eq, parse_json_body, Call, Ctx, NOT_FOUND_HINT};
use super::http::{enc, Reply, Req};
use super::lro::{failed_reply, op_not_found, poll, status_json, still_running};
use super::state::{OpDetail, OpKind, OpStatus, State};

/// `{base}/subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/operations/{id}`
/// with `monitor=true` (the Location form) or without (Azure-AsyncOperation).
pub(crate) fn compute_op_url(
    base: &str,
    sub: &str,
    loc: &str,
    id: Uuid,
    monitor: bool,
    api: &str,
) -> String {
    format!(
        "{base}/subscriptions/{}/providers/Microsoft.Compute/locations/{}/operations/{id}?{}api-version={}",
        enc(sub),
        enc(loc),
        if monitor { "monitor=true&" } else { "" },
        enc(api)
    )
}

pub(crate) fn find_vm(st: &State, sub: &str, rg: &str, vm: &str) -> Option<usize> {
    st.vms.iter().position(|v| {
        !v.removed && eq(&v.subscription_id, sub) && eq(&v.resource_group, rg) && eq(&v.name, vm)
    })
}

pub(crate) fn vm_not_found(rg: &str, vm: &str) -> Reply {
    Reply::arm_error(
        404,
        "ResourceNotFound",
        format!("The Resource 'Microsoft.Compute/virtualMachines/{vm}' under resource group '{rg}' was not found. {NOT_FOUND_HINT}"),
    )
}

pub(crate) fn get_vm(st: &State, sub: &str, rg: &str, vm: &str) -> Reply {
    match find_vm(st, sub, rg, vm) {
        Some(vi) => Reply::json(200, st.vms[vi].to_arm()),
        None => vm_not_found(rg, vm),
    }
}

/// `[{name, value}]` as received; a non-string value is kept as its JSON text.
pub(crate) fn parse_params(body: &Value, field: &str) -> Result<Vec<(String, String)>, Reply> {
    let mut parameters = Vec::new();
    let Some(ps) = body.get(field).filter(|v| !v.is_null()) else {
        return Ok(parameters);
    };
    let Some(arr) = ps.as_array() else {
        return Err(Reply::arm_error(
            400,
            "InvalidParameter",
            format!("The parameter '{field}' must be an array of {{name, value}}."),
        ));
    };
    for p in arr {
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            return Err(Reply::arm_error(
                400,
                "InvalidParameter",
                format!("Every run command parameter in '{field}' needs a 'name'."),
            ));
        };
        let value = match p.get("value") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        parameters.push((name.to_string(), value));
    }
    Ok(parameters)
}

pub(crate) fn run_command(st: &mut State, call: &Call, sub: &str, rg: &str, vm: &str) -> Reply {
    let ctx = call.ctx;
    let Some(vi) = find_vm(st, sub, rg, vm) else {
        return vm_not_found(rg, vm);
    };
    let body = match parse_json_body(call.req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let command_id = body.get("commandId").and_then(Value::as_str).unwrap_or("");
    if !command_id.eq_ignore_ascii_case("RunPowerShellScript") {
        return Reply::arm_error(
            400,
            "InvalidParameter",
            format!("The value '{command_id}' of parameter 'commandId' is not supported by the mock Azure: use 'RunPowerShellScript'."),
        );
    }
    let lines: Option<Vec<String>> = body.get("script").and_then(Value::as_array).map(|a| {
        a.iter()
            .map(|l| {
                l.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| l.to_string())
            })
            .collect()
    });
    let Some(lines) = lines.filter(|l| !l.is_empty()) else {
        return Reply::arm_error(
            400,
            "InvalidParameter",
            "The parameter 'script' is required for commandId 'RunPowerShellScript' and must be a non-empty array of lines.",
        );
    };
    let parameters = match parse_params(&body, "parameters") {
        Ok(p) => p,
        Err(r) => return r,
    };
    if st.vms[vi].busy.is_some() {
        return Reply::arm_error(
            409,
            "Conflict",
            "Run command extension execution is in progress. Please wait for completion before invoking a run command.",
        );
    }
    let script = lines.join("\n");
    let planned = st.take_operation_fault(OpKind::RunCommand, Some(&script));
    let v = &st.vms[vi];
    let (subscription, location, target) = (v.subscription_id.clone(), v.location.clone(), v.id());
    let op = st.new_operation(
        &subscription,
        &location,
        target,
        planned,
        OpDetail::RunCommand {
            vm: vi,
            script,
            parameters: parameters.clone(),
            protected: Vec::new(),
            managed: None,
            stdout: String::new(),
            stderr: String::new(),
        },
        &call.api_version,
        ctx.now,
    );
    st.start_run_command_record(vi, ctx.seq, op, &parameters);
    Reply::empty(202)
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

fn run_command_output(st: &State, i: usize) -> Value {
    let (out, err) = match &st.operations[i].detail {
        OpDetail::RunCommand { stdout, stderr, .. } => (stdout.as_str(), stderr.as_str()),
        _ => ("", ""),
    };
    json!({"value": [
        {"code": "ComponentStatus/StdOut/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "message": out},
        {"code": "ComponentStatus/StdErr/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "message": err},
    ]})
}

/// The managed run command resource an operation belongs to, if any.
fn managed_resource(st: &State, i: usize) -> Option<Value> {
    let (vm, name) = match &st.operations[i].detail {
        OpDetail::RunCommand {
            vm,
            managed: Some(name),
            ..
        } => (*vm, name),
        OpDetail::Ack { vm, name } => (*vm, name),
        _ => return None,
    };
    let id = st.operations[i].id;
    let v = st.vms.get(vm)?;
    let m = v
        .managed
        .iter()
        .rev()
        .find(|m| m.name.eq_ignore_ascii_case(name) && m.arm_op == id)?;
    Some(m.to_arm(v, false))
}

pub(crate) fn compute_op(st: &mut State, req: &Req, ctx: &Ctx, sub: &str, id: &str) -> Reply {
    let Some(i) = poll(st, sub, id, &[OpKind::RunCommand], ctx.now) else {
        return op_not_found("Microsoft.Compute/operations", id);
    };
    let monitor = req
        .param("monitor")
        .is_some_and(|m| m.eq_ignore_ascii_case("true"));
    let o = &st.operations[i];
    let managed = matches!(
        &o.detail,
        OpDetail::Ack { .. }
            | OpDetail::RunCommand {
                managed: Some(_),
                ..
            }
    );
    if !monitor {
        // Without monitor=true the URL is an Azure-AsyncOperation-style status.
        let mut v = status_json(st, i);
        if o.status == OpStatus::Succeeded && !managed {
            v["properties"] = json!({"output": run_command_output(st, i)});
        }
        return Reply::json(200, v);
    }
    match o.status {
        OpStatus::InProgress => {
            let url = compute_op_url(
                ctx.base,
                &o.subscription_id,
                &o.location,
                o.id,
                true,
                &o.api_version,
            );
            still_running(st, url)
        }
        // The Location of a PUT ends with the resource (no final GET).
        OpStatus::Succeeded if managed => match managed_resource(st, i) {
            Some(v) => Reply::json(200, v),
            None => Reply::empty(200),
        },
        OpStatus::Succeeded => Reply::json(200, run_command_output(st, i)),
        OpStatus::Failed | OpStatus::Canceled => failed_reply(st, i),
    }
}
