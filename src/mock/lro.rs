//! Long-running operations as ARM serves them: status bodies, polls (which
//! let operations complete), the 202 of an operation still running.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::arm::{eq, NOT_FOUND_HINT};
use super::http::Reply;
use super::state::{ts, OpKind, OpStatus, State};

fn parse_op_id(id: &str) -> Option<Uuid> {
    Uuid::parse_str(id).ok()
}

pub(crate) fn op_not_found(kind: &str, id: &str) -> Reply {
    Reply::arm_error(
        404,
        "ResourceNotFound",
        format!("The operation '{kind}/{id}' was not found. {NOT_FOUND_HINT}"),
    )
}

/// A client that lost an operation's URL (it crashed before saving it) can
/// only watch the resource: a GET of a database being restored, or a run
/// command refused because the VM is busy. Such an observation counts as a
/// poll of the operation on that resource, so that polls-based completion
/// stays deterministic and the operation still ends, as it would on Azure.
pub(crate) fn observe(st: &mut State, target: &str, now: DateTime<Utc>) {
    let mut seen = false;
    for o in st.operations.iter_mut() {
        if o.status == OpStatus::InProgress
            && matches!(o.kind, OpKind::Restore | OpKind::RunCommand)
            && eq(&o.target, target)
        {
            o.polls = o.polls.saturating_add(1);
            seen = true;
        }
    }
    if seen {
        st.tick(now);
    }
}

/// Counts a poll and lets the operation complete if it is now due.
pub(crate) fn poll(
    st: &mut State,
    sub: &str,
    id: &str,
    kinds: &[OpKind],
    now: DateTime<Utc>,
) -> Option<usize> {
    let uuid = parse_op_id(id)?;
    let i = st.find_op(uuid).filter(|&i| {
        kinds.contains(&st.operations[i].kind) && eq(&st.operations[i].subscription_id, sub)
    })?;
    st.operations[i].polls = st.operations[i].polls.saturating_add(1);
    st.tick(now);
    Some(i)
}

pub(crate) fn status_json(st: &State, i: usize) -> Value {
    let o = &st.operations[i];
    let mut v = json!({
        "name": o.id.to_string(),
        "status": o.status.as_str(),
        "startTime": ts(o.start),
    });
    if let Some(end) = o.end {
        v["endTime"] = json!(ts(end));
    }
    if let Some(e) = &o.error {
        v["error"] = json!({"code": e.code, "message": e.message});
    }
    v
}

pub(crate) fn failed_reply(st: &State, i: usize) -> Reply {
    match &st.operations[i].error {
        Some(e) => Reply::arm_error(e.status, &e.code, e.message.clone()),
        None => Reply::arm_error(500, "InternalServerError", "The operation failed."),
    }
}

pub(crate) fn still_running(st: &State, location: String) -> Reply {
    Reply::empty(202)
        .header("Location", location)
        .header("Retry-After", st.settings.retry_after_secs.to_string())
}
