//! How results are printed: a readable form, or JSON with `--json`.
use super::console::esc;
use crate::domain::{Environment, EnvironmentEvent, RequestEvent, RestoreRequest};
use crate::service::views::{EnvironmentDetail, EventView, RequestDetail, RequestView};
use serde_json::{json, Value};

/// A view as JSON, through a `Value` (keys in the order they always had).
pub fn print_view<T: serde::Serialize>(view: &T) {
    print_json(&serde_json::to_value(view).unwrap_or(Value::Null));
}

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
        let views: Vec<RequestView> = all.iter().map(Into::into).collect();
        print_view(&views);
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

/// `request show`: the one representation ([`RequestDetail`]), as JSON or
/// read out line by line (the same whether it came from the local store or
/// from the service).
pub fn request_show(d: &RequestDetail, json: bool) {
    if json {
        print_view(d);
        return;
    }
    let r = &d.request;
    out!("request     {}", r.id);
    out!("status      {}", status_str(r.status));
    if let Some(w) = &r.warning {
        out!("warning     {}", esc(w));
    }
    out!(
        "environment {} (database {})",
        esc(&r.environment),
        esc(&r.database)
    );
    out!("restore to  {}", r.restore_point);
    out!("window      {} .. {}", r.window_start, r.window_end);
    out!(
        "requester   {}{}",
        esc(&r.requester),
        r.reason
            .as_deref()
            .map(|x| format!(" ({})", esc(x)))
            .unwrap_or_default()
    );
    if let Some(e) = &r.emergency {
        out!("emergency   {}", esc(e));
    }
    if let Some(j) = &d.job {
        out!(
            "job         {} {}{}",
            j.id,
            j.status,
            if j.dry_run { " [dry run]" } else { "" }
        );
        if let (Some(off), Some(on), Some(down)) = (&j.offline_at, &j.online_at, d.downtime_secs) {
            out!(
                "downtime    {down:.1}s ({off} .. {on}); estimated {}",
                d.estimated_downtime_secs
                    .map(|s| format!("{s}s"))
                    .unwrap_or_else(|| "-".into())
            );
        } else if let Some(s) = d.estimated_downtime_secs {
            out!("downtime    estimated {s}s");
        }
        for what in &j.not_carried {
            out!("not carried {}", esc(what));
        }
        if let Some(of) = &j.rollback_of {
            out!(
                "rollback    of job {} by {}{}",
                of.job,
                esc(&of.by),
                of.reason
                    .as_deref()
                    .map(|r| format!(": {}", esc(r)))
                    .unwrap_or_default()
            );
            if let Some(undone) = d.jobs.iter().find(|x| x.id == of.job) {
                let down = match (&undone.offline_at, &undone.online_at) {
                    (Some(off), Some(on)) => format!(
                        "; its downtime {:.1}s ({off} .. {on})",
                        undone.downtime_secs.unwrap_or_default()
                    ),
                    _ => String::new(),
                };
                out!("restore     job {} {}{down}", undone.id, undone.status);
            }
        }
        if let (Some(runner), Some(until)) = (&d.runner, &d.runner_lease_until) {
            out!("runner      {} (lease until {until})", esc(runner));
        }
        if let Some(w) = &d.waiting {
            out!("waiting     {}", esc(w));
        }
        if let Some(e) = &j.error {
            out!("error       {}", esc(e));
        }
        for s in &d.steps {
            let when = match (&s.started_at, &s.finished_at) {
                (Some(a), Some(b)) => format!("  {a} .. {b}"),
                (Some(a), None) => format!("  {a} .."),
                _ => String::new(),
            };
            out!(
                "  {:<9} {:<9} attempts {}{when}{}",
                s.name,
                s.status,
                s.attempts,
                s.error
                    .as_deref()
                    .map(|e| format!("  {}", esc(e)))
                    .unwrap_or_default()
            );
        }
    }
    out!("history:");
    for e in &d.events {
        out!("  {}", event_view_line(e));
    }
}

fn status_str(s: crate::service::views::StatusView) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn event_view_line(e: &EventView) -> String {
    format!(
        "{}  {:<10} -> {:<11} by {}{}",
        e.at,
        e.from.map(status_str).unwrap_or_else(|| "-".into()),
        status_str(e.to),
        esc(&e.actor),
        e.note
            .as_deref()
            .map(|n| format!(": {}", esc(n)))
            .unwrap_or_default()
    )
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
    let detail = EnvironmentDetail::new(e, history);
    if json {
        print_view(&detail);
        return;
    }
    match toml::to_string_pretty(e) {
        Ok(t) => out!("{}", t.trim_end()),
        Err(_) => out!("{e:?}"),
    }
    out!();
    out!("restores:");
    if detail.restores.is_empty() {
        out!("  none recorded");
    }
    for r in &detail.restores {
        out!(
            "  {}  job {}  restore point {}  restore {}  downtime {}{}{}",
            r.started_at,
            r.job.get(..8).unwrap_or(&r.job),
            r.restore_point
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            secs(r.restore_secs),
            secs(r.downtime_secs),
            if r.prestaged { "  (pre-staged)" } else { "" },
            if r.rolled_back_by.is_some() {
                "  (rolled back)"
            } else {
                ""
            }
        );
    }
    out!("rollbacks:");
    if detail.rollbacks.is_empty() {
        out!("  none recorded");
    }
    for r in &detail.rollbacks {
        out!(
            "  {}  job {}  rolled back job {}  downtime {}{}",
            r.started_at,
            r.job.get(..8).unwrap_or(&r.job),
            r.rolled_back.get(..8).unwrap_or(&r.rolled_back),
            secs(r.downtime_secs),
            r.reason
                .as_deref()
                .map(|x| format!("  ({})", esc(x)))
                .unwrap_or_default()
        );
    }
    out!("deployments:");
    if detail.deployments.is_empty() {
        out!("  none recorded");
    }
    for d in &detail.deployments {
        out!("  {}  {}", d.at, esc(&d.version));
    }
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.1}s")).unwrap_or_else(|| "-".into())
}

pub fn history(events: &[RequestEvent], json: bool) {
    if json {
        let views: Vec<EventView> = events.iter().map(Into::into).collect();
        print_view(&views);
        return;
    }
    for e in events {
        out!("{}", event_line(e));
    }
}

pub fn deliveries(list: &[crate::store::DeliveryRecord], json: bool) {
    if json {
        print_view(&list);
        return;
    }
    if list.is_empty() {
        out!("no deliveries");
        return;
    }
    out!(
        "{:<20}  {:<12}  {:<12}  {:<36}  {:<9}  {:>8}  {:<20}  RECEIVER / LAST ERROR",
        "AT",
        "EVENT",
        "REQUEST",
        "DELIVERY",
        "STATUS",
        "ATTEMPTS",
        "NEXT ATTEMPT"
    );
    for d in list {
        out!(
            "{:<20}  {:<12}  {:<12}  {:<36}  {:<9}  {:>8}  {:<20}  {}{}",
            ts(&d.created_at),
            d.event,
            esc(&d.request_id),
            d.delivery_id,
            d.status,
            d.attempts,
            d.next_attempt_at
                .as_ref()
                .map(ts)
                .unwrap_or_else(|| "-".into()),
            esc(&d.receiver),
            d.last_error
                .as_deref()
                .map(|e| format!("  ({})", esc(e)))
                .unwrap_or_default()
        );
    }
}
