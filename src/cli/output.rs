//! How results are printed: a readable form, or JSON with `--json`.
use super::console::esc;
use crate::domain::{Environment, EnvironmentEvent, Job, RequestEvent, RestoreRequest, StepRecord};
use serde_json::{json, Value};

pub fn print_json(v: &Value) {
    out!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

fn ts(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn status_changed(r: &RestoreRequest, json: bool) {
    if json {
        print_json(&json!({"id": r.id, "status": r.status}));
    } else {
        out!("request {} is {}", r.id, r.status);
    }
}

pub fn request_list(all: &[RestoreRequest], json: bool) {
    if json {
        print_json(&Value::Array(all.iter().map(request_json).collect()));
        return;
    }
    if all.is_empty() {
        out!("no requests; submit one with `pitr request submit`");
        return;
    }
    out!(
        "{:<12}  {:<11}  {:<16}  {:<10}  {:<20}  WINDOW START",
        "ID",
        "STATUS",
        "ENVIRONMENT",
        "DATABASE",
        "RESTORE POINT"
    );
    for r in all {
        out!(
            "{:<12}  {:<11}  {:<16}  {:<10}  {:<20}  {}",
            r.id,
            r.status.as_str(),
            esc(&r.spec.environment),
            esc(&r.spec.database),
            ts(&r.spec.restore_point),
            ts(&r.spec.window.start)
        );
        if let Some(w) = &r.warning {
            out!("{:<12}  warning: {}", "", esc(w));
        }
    }
}

fn request_json(r: &RestoreRequest) -> Value {
    json!({
        "id": r.id,
        "status": r.status,
        "environment": r.spec.environment,
        "database": r.spec.database,
        "restore_point": ts(&r.spec.restore_point),
        "window_start": ts(&r.spec.window.start),
        "window_end": ts(&r.spec.window.end),
        "acknowledgements": r.spec.acks,
        "requester": r.spec.requester,
        "reason": r.spec.reason,
        "prestage": r.spec.prestage,
        "emergency": r.spec.emergency,
        "warning": r.warning,
        "submitted_at": ts(&r.submitted_at),
        "updated_at": ts(&r.updated_at),
    })
}

fn step_json(s: &StepRecord) -> Value {
    json!({
        "name": s.step.as_str(),
        "status": s.status.as_str(),
        "attempts": s.attempts,
        "error": s.error,
        "started_at": s.started_at.as_ref().map(ts),
        "finished_at": s.finished_at.as_ref().map(ts),
        "detail": s.detail,
    })
}

fn job_json(j: &Job) -> Value {
    json!({
        "id": j.id,
        "status": j.status.as_str(),
        "dry_run": j.dry_run,
        "plan": j.plan.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "created_at": ts(&j.created_at),
        "finished_at": j.finished_at.as_ref().map(ts),
        "error": j.error,
        "original_database_id": j.facts.original_database_id,
        "restored_database_id": j.facts.restored_database_id,
        "offline_at": j.facts.offline_at.as_ref().map(ts),
        "online_at": j.facts.online_at.as_ref().map(ts),
        "rollback_of": j.facts.rollback.as_ref().map(|of| json!({
            "job": of.job, "by": of.by, "reason": of.reason,
        })),
    })
}

/// What `request show` adds to the stored facts.
pub struct Extra {
    pub estimate: Option<crate::domain::schedule::Estimates>,
    pub waiting: Option<String>,
}

pub fn request_show(
    r: &RestoreRequest,
    events: &[RequestEvent],
    jobs: &[Job],
    steps: &[StepRecord],
    extra: Extra,
    json: bool,
) {
    let prestage = r.spec.prestage || jobs.last().is_some_and(|j| j.is_prestaged());
    // A rollback has its own, short plan: the run's estimate says nothing of it.
    let estimated_downtime = extra
        .estimate
        .filter(|_| !jobs.last().is_some_and(|j| j.is_rollback()))
        .map(|e| e.downtime(prestage).num_seconds());
    let downtime = jobs.last().and_then(Job::downtime_secs);
    if json {
        let mut v = request_json(r);
        v["events"] = Value::Array(events.iter().map(event_json).collect());
        v["jobs"] = Value::Array(jobs.iter().map(job_json).collect());
        v["job"] = jobs.last().map(job_json).unwrap_or(Value::Null);
        v["steps"] = Value::Array(steps.iter().map(step_json).collect());
        v["downtime_secs"] = json!(downtime);
        v["estimated_downtime_secs"] = json!(estimated_downtime);
        v["waiting"] = json!(extra.waiting);
        print_json(&v);
        return;
    }
    out!("request     {}", r.id);
    out!("status      {}", r.status);
    if let Some(w) = &r.warning {
        out!("warning     {}", esc(w));
    }
    out!(
        "environment {} (database {})",
        esc(&r.spec.environment),
        esc(&r.spec.database)
    );
    out!("restore to  {}", ts(&r.spec.restore_point));
    out!(
        "window      {} .. {}",
        ts(&r.spec.window.start),
        ts(&r.spec.window.end)
    );
    out!(
        "requester   {}{}",
        esc(&r.spec.requester),
        r.spec
            .reason
            .as_deref()
            .map(|x| format!(" ({})", esc(x)))
            .unwrap_or_default()
    );
    if let Some(e) = &r.spec.emergency {
        out!("emergency   {}", esc(e));
    }
    if let Some(j) = jobs.last() {
        out!(
            "job         {} {}{}",
            j.id,
            j.status.as_str(),
            if j.dry_run { " [dry run]" } else { "" }
        );
        if let (Some(off), Some(on)) = (j.facts.offline_at, j.facts.online_at) {
            out!(
                "downtime    {:.1}s ({} .. {}); estimated {}",
                (on - off).num_milliseconds() as f64 / 1000.0,
                ts(&off),
                ts(&on),
                estimated_downtime
                    .map(|s| format!("{s}s"))
                    .unwrap_or_else(|| "-".into())
            );
        } else if let Some(s) = estimated_downtime {
            out!("downtime    estimated {s}s");
        }
        if let Some(of) = &j.facts.rollback {
            out!(
                "rollback    of job {} by {}{}",
                of.job,
                esc(&of.by),
                of.reason
                    .as_deref()
                    .map(|r| format!(": {}", esc(r)))
                    .unwrap_or_default()
            );
            if let Some(undone) = jobs.iter().find(|x| x.id == of.job) {
                let down = match (undone.facts.offline_at, undone.facts.online_at) {
                    (Some(off), Some(on)) => format!(
                        "; its downtime {:.1}s ({} .. {})",
                        (on - off).num_milliseconds() as f64 / 1000.0,
                        ts(&off),
                        ts(&on)
                    ),
                    _ => String::new(),
                };
                out!(
                    "restore     job {} {}{down}",
                    undone.id,
                    undone.status.as_str()
                );
            }
        }
        if let Some(w) = &extra.waiting {
            out!("waiting     {}", esc(w));
        }
        if let Some(e) = &j.error {
            out!("error       {}", esc(e));
        }
        for s in steps {
            let when = match (s.started_at, s.finished_at) {
                (Some(a), Some(b)) => format!("  {} .. {}", ts(&a), ts(&b)),
                (Some(a), None) => format!("  {} ..", ts(&a)),
                _ => String::new(),
            };
            out!(
                "  {:<9} {:<9} attempts {}{when}{}",
                s.step.as_str(),
                s.status.as_str(),
                s.attempts,
                s.error
                    .as_deref()
                    .map(|e| format!("  {}", esc(e)))
                    .unwrap_or_default()
            );
        }
    }
    out!("history:");
    for e in events {
        out!("  {}", event_line(e));
    }
}

fn event_line(e: &RequestEvent) -> String {
    format!(
        "{}  {:<10} -> {:<11} by {}{}",
        ts(&e.at),
        e.from.map(|f| f.as_str()).unwrap_or("-"),
        e.to.as_str(),
        esc(&e.actor),
        e.note
            .as_deref()
            .map(|n| format!(": {}", esc(n)))
            .unwrap_or_default()
    )
}

fn event_json(e: &RequestEvent) -> Value {
    json!({"at": ts(&e.at), "actor": e.actor, "from": e.from, "to": e.to, "note": e.note})
}

pub fn env_list(envs: &[Environment], json: bool) {
    if json {
        print_json(&serde_json::to_value(envs).unwrap_or(Value::Null));
        return;
    }
    // The names the config and the JSON use, in columns as wide as needed.
    let rows: Vec<[String; 6]> = envs
        .iter()
        .map(|e| {
            [
                esc(&e.name).into_owned(),
                config_name(&e.tier),
                config_name(&e.database_kind),
                config_name(&e.actions),
                esc(&e.server).into_owned(),
                esc(&e.database).into_owned(),
            ]
        })
        .collect();
    let header = ["NAME", "TIER", "KIND", "ACTIONS", "SERVER", "DATABASE"];
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    out!("{}", line(header.to_vec()));
    for r in &rows {
        out!("{}", line(r.iter().map(String::as_str).collect()));
    }
}

/// The name a unit enum value has in the config and the JSON.
fn config_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn env_show(e: &Environment, history: &[EnvironmentEvent], json: bool) {
    let restores: Vec<Value> = history
        .iter()
        .filter_map(|h| h.restore().map(|r| (h, r)))
        .map(|(h, r)| {
            json!({
                "started_at": ts(&h.at),
                "finished_at": r.finished_at.as_ref().map(ts),
                "job": r.job,
                "request": r.request,
                "restore_point": r.restore_point,
                "restore_secs": r.restore_secs,
                "downtime_secs": r.downtime_secs,
                "prestaged": r.prestaged,
                "rolled_back_by": history
                    .iter()
                    .filter_map(|h| h.rollback())
                    .find(|b| b.rolled_back == r.job)
                    .map(|b| &b.job),
            })
        })
        .collect();
    let rollbacks: Vec<Value> = history
        .iter()
        .filter_map(|h| h.rollback().map(|r| (h, r)))
        .map(|(h, r)| {
            json!({
                "started_at": ts(&h.at),
                "finished_at": r.finished_at.as_ref().map(ts),
                "job": r.job,
                "rolled_back": r.rolled_back,
                "request": r.request,
                "downtime_secs": r.downtime_secs,
                "reason": r.reason,
            })
        })
        .collect();
    let deployments: Vec<Value> = history
        .iter()
        .filter_map(|h| h.version().map(|v| json!({"at": ts(&h.at), "version": v})))
        .collect();
    if json {
        let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
        v["restores"] = Value::Array(restores);
        v["rollbacks"] = Value::Array(rollbacks);
        v["deployments"] = Value::Array(deployments);
        print_json(&v);
        return;
    }
    match toml::to_string_pretty(e) {
        Ok(t) => out!("{}", t.trim_end()),
        Err(_) => out!("{e:?}"),
    }
    out!();
    out!("restores:");
    if restores.is_empty() {
        out!("  none recorded");
    }
    for r in &restores {
        out!(
            "  {}  job {}  restore point {}  restore {}  downtime {}{}{}",
            r["started_at"].as_str().unwrap_or("?"),
            r["job"]
                .as_str()
                .map(|j| j.get(..8).unwrap_or(j))
                .unwrap_or("?"),
            r["restore_point"].as_str().unwrap_or("?"),
            secs(&r["restore_secs"]),
            secs(&r["downtime_secs"]),
            if r["prestaged"] == true {
                "  (pre-staged)"
            } else {
                ""
            },
            if r["rolled_back_by"].is_null() {
                ""
            } else {
                "  (rolled back)"
            }
        );
    }
    out!("rollbacks:");
    if rollbacks.is_empty() {
        out!("  none recorded");
    }
    let tag = |v: &Value| {
        v.as_str()
            .map(|j| j.get(..8).unwrap_or(j).to_string())
            .unwrap_or_else(|| "?".into())
    };
    for r in &rollbacks {
        out!(
            "  {}  job {}  rolled back job {}  downtime {}{}",
            r["started_at"].as_str().unwrap_or("?"),
            tag(&r["job"]),
            tag(&r["rolled_back"]),
            secs(&r["downtime_secs"]),
            r["reason"]
                .as_str()
                .map(|x| format!("  ({})", esc(x)))
                .unwrap_or_default()
        );
    }
    out!("deployments:");
    if deployments.is_empty() {
        out!("  none recorded");
    }
    for d in &deployments {
        out!(
            "  {}  {}",
            d["at"].as_str().unwrap_or("?"),
            esc(d["version"].as_str().unwrap_or("?"))
        );
    }
}

fn secs(v: &Value) -> String {
    v.as_f64()
        .map(|s| format!("{s:.1}s"))
        .unwrap_or_else(|| "-".into())
}

pub fn history(events: &[RequestEvent], json: bool) {
    if json {
        print_json(&Value::Array(events.iter().map(event_json).collect()));
        return;
    }
    for e in events {
        out!("{}", event_line(e));
    }
}
