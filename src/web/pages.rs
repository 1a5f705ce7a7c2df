//! The pages: work items, new request, a request (with its live timeline
//! and actions), environments. They read through the store and
//! [`crate::views`], and act through the API's own operations (the `*_as`
//! functions of `api::routes`), which ask [`decide`] first: the rules and
//! roles are the API's, written once.
use super::signin::Session;
use super::view::{self, *};
use super::{html, see_other};
use crate::api::problem::Problem;
use crate::api::roles::{decide, Action, Role};
use crate::api::routes::{
    accept_as, cancel_as, reject_as, reschedule_as, resume_as, rollback_as, run_as, submit_as,
    AcknowledgementsBody, NewRequest as NewBody, ReasonBody, RescheduleBody, RunBody,
};
use crate::api::ApiState;
use crate::domain::{RequestId, RequestStatus};
use crate::views::{EnvironmentDetail, RequestDetail, StatusView};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use std::sync::Arc;

/// Work items per page.
pub const PAGE_SIZE: usize = 50;

type Fields = Vec<(String, String)>;

fn field<'a>(form: &'a Fields, name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn text(form: &Fields, name: &str) -> String {
    field(form, name).unwrap_or("").to_string()
}

fn ticked(form: &Fields, name: &str) -> bool {
    field(form, name).is_some_and(|v| !v.is_empty())
}

fn user_bar(s: &Session) -> UserBar {
    let p = s.principal();
    let mut roles: Vec<&str> = p.roles.iter().map(|r| r.claim()).collect();
    if roles.is_empty() {
        roles.push("no pitr role");
    }
    UserBar {
        display: p.actor.clone(),
        roles: roles.join(", "),
        csrf: s.csrf.clone(),
        may_submit: may_submit(s),
    }
}

fn may_submit(s: &Session) -> bool {
    decide(
        s.principal(),
        &Action::Submit {
            environment_groups: &[],
            emergency: false,
        },
    )
    .is_ok()
}

fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

fn status_str(s: StatusView) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A page that says what happened, with the status of the problem.
fn problem_page(s: &Session, status: StatusCode, title: &str, text: &str) -> Response {
    html(
        status,
        view::message(
            Some(user_bar(s)),
            title,
            text,
            Some(("/", "Back to the work items")),
        ),
    )
}

/// A POST whose form lacks this session's CSRF token.
pub(crate) fn csrf_refused(s: &Session) -> Response {
    tracing::warn!(actor = %s.record.actor, "web: a form without this session's CSRF token was refused");
    problem_page(
        s,
        StatusCode::FORBIDDEN,
        "Refused: the form is not from this session",
        "The form did not carry this session's security token (csrf), so nothing was done. Reload the page and try again.",
    )
}

/// A 403 page unless the person may read.
fn refused_read(s: &Session) -> Option<Response> {
    decide(s.principal(), &Action::Read)
        .err()
        .map(|d| problem_page(s, StatusCode::FORBIDDEN, "Not allowed", &d.0))
}

fn store_failed(s: &Session, e: impl std::fmt::Display) -> Response {
    problem_page(
        s,
        StatusCode::SERVICE_UNAVAILABLE,
        "The store cannot be read",
        &format!("{e}. Try again in a moment."),
    )
}

#[derive(Debug, Deserialize)]
pub struct ItemsQuery {
    status: Option<String>,
    environment: Option<String>,
    page: Option<usize>,
}

/// `GET /`: every request, newest first, filtered and paged.
pub async fn items(
    State(st): State<Arc<ApiState>>,
    s: Session,
    Query(q): Query<ItemsQuery>,
) -> Response {
    if let Some(r) = refused_read(&s) {
        return r;
    }
    let all = match st.store.list_requests().await {
        Ok(a) => a,
        Err(e) => return store_failed(&s, e),
    };
    let status = q.status.filter(|v| !v.is_empty());
    let environment = q.environment.filter(|v| !v.is_empty());
    let matching: Vec<_> = all
        .iter()
        .filter(|r| status.as_deref().is_none_or(|f| r.status.as_str() == f))
        .filter(|r| {
            environment
                .as_deref()
                .is_none_or(|e| r.spec.environment == e)
        })
        .collect();
    let total = matching.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let mut rows = Vec::new();
    for r in matching.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE) {
        let jobs = st.store.jobs_for_request(&r.id).await.unwrap_or_default();
        let downtime = jobs
            .iter()
            .rev()
            .find(|j| !j.dry_run)
            .and_then(|j| j.downtime_secs())
            .map(duration)
            .unwrap_or_else(|| "—".into());
        rows.push(ItemRow {
            id: r.id.to_string(),
            short_id: short(r.id.as_str()),
            environment: r.spec.environment.clone(),
            restore_point: Instant::new(r.spec.restore_point),
            window_start: Instant::new(r.spec.window.start),
            window_end: Instant::new(r.spec.window.end),
            status: r.status.as_str().to_string(),
            requester: r.spec.requester.clone(),
            downtime,
        });
    }
    let link = |p: usize| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(v) = &status {
            q.append_pair("status", v);
        }
        if let Some(v) = &environment {
            q.append_pair("environment", v);
        }
        q.append_pair("page", &p.to_string());
        format!("/?{}", q.finish())
    };
    let mut env_names: Vec<String> = st
        .config
        .environments
        .iter()
        .map(|e| e.name.clone())
        .collect();
    for r in &all {
        if !env_names.contains(&r.spec.environment) {
            env_names.push(r.spec.environment.clone());
        }
    }
    page_of(
        StatusCode::OK,
        &Items {
            may_submit: may_submit(&s),
            user: Some(user_bar(&s)),
            rows,
            statuses: RequestStatus::ALL
                .iter()
                .map(|x| {
                    (
                        x.as_str().to_string(),
                        status.as_deref() == Some(x.as_str()),
                    )
                })
                .collect(),
            environments: env_names
                .into_iter()
                .map(|n| {
                    let sel = environment.as_deref() == Some(n.as_str());
                    (n, sel)
                })
                .collect(),
            filtered: status.is_some() || environment.is_some(),
            total,
            page,
            pages,
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
        },
    )
}

fn page_of(status: StatusCode, t: &impl askama::Template) -> Response {
    view::page(status, t)
}

/// The environments `s` may request a restore for.
fn requestable(st: &ApiState, s: &Session, selected: &str) -> Vec<EnvOption> {
    st.config
        .environments
        .iter()
        .filter(|e| {
            decide(
                s.principal(),
                &Action::Submit {
                    environment_groups: &e.requester_groups,
                    emergency: false,
                },
            )
            .is_ok()
        })
        .map(|e| EnvOption {
            name: e.name.clone(),
            tier: format!("{:?}", e.tier).to_lowercase(),
            database: e.database.clone(),
            selected: e.name == selected,
        })
        .collect()
}

fn new_page(
    st: &ApiState,
    s: &Session,
    f: FormValues,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let mut envs = requestable(st, s, &f.environment);
    if !envs.iter().any(|e| e.selected) {
        if let Some(first) = envs.first_mut() {
            first.selected = true;
        }
    }
    let database = envs
        .iter()
        .find(|e| e.selected)
        .map(|e| e.database.clone())
        .unwrap_or_default();
    let show_version_ack = f.ack_version_mismatch || errors.ack_version_mismatch.is_some();
    page_of(
        status,
        &view::NewRequest {
            user: Some(user_bar(s)),
            csrf: s.csrf.clone(),
            envs,
            database,
            has_errors: errors.any(),
            f,
            errors,
            show_version_ack,
            operator: s.principal().has(Role::Operator),
            now_utc: Instant::new(st.clock.now()).text,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct NewQuery {
    environment: Option<String>,
}

/// `GET /requests/new` (requesters and operators).
pub async fn new_form(
    State(st): State<Arc<ApiState>>,
    s: Session,
    Query(q): Query<NewQuery>,
) -> Response {
    if let Err(d) = decide(
        s.principal(),
        &Action::Submit {
            environment_groups: &[],
            emergency: false,
        },
    ) {
        return problem_page(&s, StatusCode::FORBIDDEN, "Not allowed", &d.0);
    }
    let f = FormValues {
        environment: q.environment.unwrap_or_default(),
        ..Default::default()
    };
    new_page(&st, &s, f, FieldErrors::default(), StatusCode::OK)
}

/// A time typed in a form: `YYYY-MM-DD HH:MM` (or with `T`, or with
/// seconds) in UTC, or RFC 3339 with an offset.
pub(crate) fn parse_input(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("it is empty: write a time as YYYY-MM-DD HH:MM (UTC)".into());
    }
    if let Ok(x) = DateTime::parse_from_rfc3339(t) {
        return Ok(x.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(n.and_utc());
        }
    }
    Err(format!(
        "'{t}' is not a time: write it as YYYY-MM-DD HH:MM (UTC), for example 2026-11-27 08:30"
    ))
}

/// The rule a problem names (`rule` or its detail's `rule NAME:` prefix),
/// and its text for people on the page (without the prefix, the CLI's flags
/// said as the form's fields).
fn rule_of(p: &Problem) -> (Option<String>, String) {
    let from_detail = p
        .detail
        .strip_prefix("rule ")
        .and_then(|r| r.split_once(':'))
        .map(|(name, rest)| (name.trim().to_string(), rest.trim().to_string()));
    let (rule, text) = match (&p.rule, from_detail) {
        (Some(r), Some((_, rest))) => (Some(r.clone()), rest),
        (None, Some((r, rest))) => (Some(r), rest),
        (r, None) => (r.clone(), p.detail.clone()),
    };
    let text = text
        .replace("set --window-end", "set the window's end")
        .replace("--window-start", "the window's start")
        .replace("--window-end", "the window's end")
        .replace(
            "pass --ack-version-mismatch",
            "tick the code-version acknowledgement",
        )
        .replace("pass --emergency-reason TEXT", "give an emergency reason")
        .replace("pass --ack-erase", "tick it")
        .replace("pass --ack-downtime", "tick it")
        .replace("pass --ack-scope", "tick it")
        .replace(
            "run `pitr env list` to see the configured environments",
            "choose one of the list",
        );
    (rule, text)
}

/// `POST /requests/new`.
pub async fn submit(
    State(st): State<Arc<ApiState>>,
    s: Session,
    Form(form): Form<Fields>,
) -> Response {
    if !s.csrf_ok(&form) {
        return csrf_refused(&s);
    }
    if let Err(d) = decide(
        s.principal(),
        &Action::Submit {
            environment_groups: &[],
            emergency: false,
        },
    ) {
        return problem_page(&s, StatusCode::FORBIDDEN, "Not allowed", &d.0);
    }
    let f = FormValues {
        environment: text(&form, "environment"),
        restore_point: text(&form, "restore_point"),
        window_start: text(&form, "window_start"),
        window_end: text(&form, "window_end"),
        reason: text(&form, "reason"),
        emergency_reason: text(&form, "emergency_reason"),
        ack_erase: ticked(&form, "ack_erase"),
        ack_downtime: ticked(&form, "ack_downtime"),
        ack_scope: ticked(&form, "ack_scope"),
        ack_version_mismatch: ticked(&form, "ack_version_mismatch"),
        prestage: ticked(&form, "prestage"),
    };
    let mut errors = FieldErrors::default();
    let format = |e: String| FieldError {
        rule: "time-format".into(),
        text: e,
    };
    let point = parse_input(&f.restore_point).map_err(|e| errors.restore_point = Some(format(e)));
    let start = parse_input(&f.window_start);
    let end = parse_input(&f.window_end);
    let (start, end) = match (start, end) {
        (Ok(a), Ok(b)) => (Some(a), Some(b)),
        (Err(e), _) | (_, Err(e)) => {
            errors.window = Some(format(e));
            (None, None)
        }
    };
    let (Ok(point), Some(start), Some(end)) = (point, start, end) else {
        return new_page(&st, &s, f, errors, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let database = st
        .config
        .environment(&f.environment)
        .map(|e| e.database.clone())
        .unwrap_or_default();
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = NewBody {
        environment: f.environment.clone(),
        database,
        restore_point: rfc(point),
        window_start: rfc(start),
        window_end: rfc(end),
        acknowledgements: AcknowledgementsBody {
            erase: f.ack_erase,
            downtime: f.ack_downtime,
            scope: f.ack_scope,
        },
        reason: Some(f.reason.clone()).filter(|r| !r.trim().is_empty()),
        prestage: f.prestage,
        ack_version_mismatch: f.ack_version_mismatch,
        emergency_reason: Some(f.emergency_reason.clone()).filter(|r| !r.trim().is_empty()),
    };
    match submit_as(&st, &s.caller, body).await {
        Ok(r) => see_other(&format!("/requests/{}", r.id)),
        Err(p) => {
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
            let (rule, text) = rule_of(&p);
            match rule {
                Some(rule) => {
                    let e = FieldError {
                        rule: rule.clone(),
                        text,
                    };
                    match rule.as_str() {
                        "fno-database-only" => errors.database = Some(e),
                        "restore-point-not-future"
                        | "retention"
                        | "earliest-restore-date"
                        | "after-last-restore" => errors.restore_point = Some(e),
                        "retention-at-window"
                        | "window-length"
                        | "window-in-past"
                        | "notice-24h" => errors.window = Some(e),
                        "acknowledgement" => errors.acks = Some(e),
                        "code-version" => errors.ack_version_mismatch = Some(e),
                        _ => errors.environment = Some(e),
                    }
                }
                None => errors.general = Some(text),
            }
            new_page(&st, &s, f, errors, status)
        }
    }
}

/// What `s` may do with a request in its state now.
fn actions_for(s: &Session, d: &RequestDetail) -> Actions {
    let p = s.principal();
    let own = d.request.requester == p.actor;
    let ok = |a: Action<'_>| decide(p, &a).is_ok();
    let status = status_str(d.request.status);
    let pre_start = status == "submitted" || status == "accepted";
    let job_running = d.job.as_ref().is_some_and(|j| j.status == "running");
    let last_is_rollback = d.job.as_ref().is_some_and(|j| j.rollback_of.is_some());
    Actions {
        accept: ok(Action::Accept) && status == "submitted",
        reject: ok(Action::Reject) && status == "submitted",
        cancel: ok(Action::Cancel { own }) && pre_start,
        reschedule: ok(Action::Reschedule {
            own,
            emergency: false,
        }) && pre_start,
        run: ok(Action::Run) && status == "accepted",
        dry_run: ok(Action::Run) && pre_start && !job_running,
        resume: ok(Action::Resume) && status == "running",
        rollback: ok(Action::Rollback)
            && (status == "succeeded" || status == "failed")
            && !last_is_rollback,
    }
}

async fn request_page(
    st: &ApiState,
    s: &Session,
    id: &RequestId,
    error: Option<(StatusCode, String)>,
) -> Response {
    if let Some(r) = refused_read(s) {
        return r;
    }
    let d = match RequestDetail::load(&st.store, &st.config, st.clock.now(), id).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return problem_page(
                s,
                StatusCode::NOT_FOUND,
                "No such request",
                &format!("There is no request {id}. The work items list every request."),
            )
        }
        Err(e) => return store_failed(s, e),
    };
    let now = st.clock.now();
    let steps = d
        .steps
        .iter()
        .map(|x| {
            let started = x
                .started_at
                .as_deref()
                .and_then(|t| t.parse::<DateTime<Utc>>().ok());
            let finished = x
                .finished_at
                .as_deref()
                .and_then(|t| t.parse::<DateTime<Utc>>().ok());
            let elapsed = match (started, finished) {
                (Some(a), Some(b)) => duration((b - a).num_milliseconds() as f64 / 1000.0),
                (Some(a), None) => format!(
                    "{} so far",
                    duration((now - a).num_milliseconds() as f64 / 1000.0)
                ),
                _ => String::new(),
            };
            StepRow {
                name: x.name.clone(),
                status: x.status.clone(),
                started_iso: x.started_at.clone().unwrap_or_default(),
                finished_iso: x.finished_at.clone().unwrap_or_default(),
                elapsed,
                detail: x
                    .error
                    .clone()
                    .or_else(|| x.detail.clone())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let (job_status, job_text) = match &d.job {
        Some(j) => (
            j.status.clone(),
            format!(
                "{} {}{}",
                if j.dry_run { "Dry run" } else { "Run" },
                j.status,
                j.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        ),
        None => ("none".into(), "No run yet.".into()),
    };
    let status = status_str(d.request.status);
    let terminal = RequestStatus::parse(&status).is_some_and(|x| x.is_terminal());
    let events = d
        .events
        .iter()
        .map(|e| EventRow {
            at: Instant::parse(&e.at),
            actor: e.actor.clone(),
            change: match e.from {
                Some(f) => format!("{} → {}", status_str(f), status_str(e.to)),
                None => status_str(e.to),
            },
            note: e.note.clone().unwrap_or_default(),
        })
        .collect();
    let (code, error) = match error {
        Some((c, e)) => (c, Some(e)),
        None => (StatusCode::OK, None),
    };
    let t = view::Request {
        user: Some(user_bar(s)),
        csrf: s.csrf.clone(),
        short_id: short(&d.request.id),
        status: status.clone(),
        restore_point: Instant::parse(&d.request.restore_point),
        window_start: Instant::parse(&d.request.window_start),
        window_end: Instant::parse(&d.request.window_end),
        submitted: Instant::parse(&d.request.submitted_at),
        downtime: match (d.downtime_secs, d.job.as_ref().is_some_and(|j| j.dry_run)) {
            (Some(x), true) => format!("{} (in the dry run)", duration(x)),
            (Some(x), false) => duration(x),
            (None, _) => "not yet measured".into(),
        },
        estimate: d
            .estimated_downtime_secs
            .map(|x| duration(x as f64))
            .unwrap_or_else(|| "none yet".into()),
        waiting: d.waiting.clone(),
        error,
        actions: actions_for(s, &d),
        operator: s.principal().has(Role::Operator),
        job_status,
        job_text,
        follow: !terminal || d.job.as_ref().is_some_and(|j| j.status == "running"),
        steps,
        events,
        r: d.request,
    };
    page_of(code, &t)
}

/// `GET /requests/{id}`.
pub async fn request(
    State(st): State<Arc<ApiState>>,
    s: Session,
    Path(id): Path<String>,
) -> Response {
    request_page(&st, &s, &RequestId::from(id), None).await
}

/// How often a live timeline's stream checks that its session still is.
const STREAM_SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /requests/{id}/events`: the API's event stream, for the page. It
/// ends soon after its session does (sign-out, expiry): the session is
/// checked while it lasts, not only when it starts.
pub async fn events(
    State(st): State<Arc<ApiState>>,
    s: Session,
    Path(id): Path<String>,
) -> Response {
    let (store, clock, hash) = (st.store.clone(), st.clock.clone(), s.record.id_hash.clone());
    let ended = async move {
        loop {
            tokio::time::sleep(STREAM_SESSION_CHECK).await;
            if let Ok(None) = store.web_session(&hash, clock.now()).await {
                return;
            }
        }
    };
    match crate::api::sse::stream(st, &s.caller, RequestId::from(id), ended).await {
        Ok(sse) => sse.into_response(),
        Err(p) => p.into_response(),
    }
}

/// `POST /requests/{id}/{action}`: accept, reject, cancel, reschedule, run
/// (or a dry run), resume, rollback. The destructive ones (reject, cancel,
/// run, rollback) first show a confirmation that names the consequence.
pub async fn action(
    State(st): State<Arc<ApiState>>,
    s: Session,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<Fields>,
) -> Response {
    if !s.csrf_ok(&form) {
        return csrf_refused(&s);
    }
    let id = RequestId::from(id);
    let dry = ticked(&form, "dry_run");
    let coarse = match action.as_str() {
        "accept" => Action::Accept,
        "reject" => Action::Reject,
        "cancel" => Action::Cancel { own: true },
        "reschedule" => Action::Reschedule {
            own: true,
            emergency: false,
        },
        "run" => Action::Run,
        "resume" => Action::Resume,
        "rollback" => Action::Rollback,
        _ => {
            return problem_page(
                &s,
                StatusCode::NOT_FOUND,
                "No such action",
                &format!("'{action}' is not an action on a request."),
            )
        }
    };
    // Deny by default, before anything is read or shown.
    if let Err(d) = decide(s.principal(), &coarse) {
        tracing::warn!(actor = %s.record.actor, action = coarse.verb(), reason = %d, "web: action refused: not allowed");
        return request_page(&st, &s, &id, Some((StatusCode::FORBIDDEN, d.0))).await;
    }
    // Cancel and reschedule depend on whose request it is: decided with the
    // request's requester before a confirmation offers what would be
    // refused (the API's `*_as` decide it again).
    if let Action::Cancel { .. } | Action::Reschedule { .. } = coarse {
        let req = match st.store.get_request(&id).await {
            Ok(Some(r)) => r,
            Ok(None) => return request_page(&st, &s, &id, None).await,
            Err(e) => return store_failed(&s, e),
        };
        let own = req.spec.requester == s.principal().actor;
        let precise = match coarse {
            Action::Cancel { .. } => Action::Cancel { own },
            _ => Action::Reschedule {
                own,
                emergency: !text(&form, "emergency_reason").trim().is_empty(),
            },
        };
        if let Err(d) = decide(s.principal(), &precise) {
            tracing::warn!(actor = %s.record.actor, action = precise.verb(), reason = %d, "web: action refused: not allowed");
            return request_page(&st, &s, &id, Some((StatusCode::FORBIDDEN, d.0))).await;
        }
    }
    let destructive =
        matches!(action.as_str(), "reject" | "cancel" | "rollback") || (action == "run" && !dry);
    if destructive && field(&form, "confirm") != Some("yes") {
        let req = match st.store.get_request(&id).await {
            Ok(Some(r)) => r,
            Ok(None) => return request_page(&st, &s, &id, None).await,
            Err(e) => return store_failed(&s, e),
        };
        let env = &req.spec.environment;
        let (title, consequence, button, reason, required) = match action.as_str() {
            "reject" => (
                "Reject this request",
                format!("The request for {env} is rejected and will not run. The requester ({}) sees your reason. This cannot be undone.", req.spec.requester),
                "Reject the request",
                true,
                true,
            ),
            "cancel" => (
                "Cancel this request",
                format!("The request for {env} is cancelled: it will not run and cannot be reopened; restoring {env} later needs a new request."),
                "Cancel the request",
                true,
                false,
            ),
            "run" => (
                "Run this restore now",
                format!(
                    "{env} goes offline now and its database {} is erased and replaced by its state at {}. The current database cannot be recovered once the restore is completed.",
                    req.spec.database,
                    Instant::new(req.spec.restore_point).text
                ),
                "Run the restore now",
                false,
                false,
            ),
            _ => (
                "Roll back this restore",
                format!("{env} goes offline while the original database is put back under its name. Everything written to the restored database since the restore is lost."),
                "Roll back",
                true,
                false,
            ),
        };
        return page_of(
            StatusCode::OK,
            &Confirm {
                user: Some(user_bar(&s)),
                csrf: s.csrf.clone(),
                id: id.to_string(),
                action: action.clone(),
                title: title.into(),
                consequence,
                button: button.into(),
                reason,
                reason_required: required,
            },
        );
    }
    let reason = || ReasonBody {
        reason: Some(text(&form, "reason")).filter(|r| !r.trim().is_empty()),
    };
    let caller = &s.caller;
    let done = match action.as_str() {
        "accept" => accept_as(&st, caller, &id).await,
        "reject" => reject_as(&st, caller, &id, reason()).await,
        "cancel" => cancel_as(&st, caller, &id, reason()).await,
        "reschedule" => {
            let mut b = RescheduleBody {
                ack_version_mismatch: ticked(&form, "ack_version_mismatch"),
                emergency_reason: Some(text(&form, "emergency_reason"))
                    .filter(|r| !r.trim().is_empty()),
                ..Default::default()
            };
            let mut bad = None;
            for (name, slot) in [
                ("window_start", &mut b.window_start),
                ("window_end", &mut b.window_end),
                ("restore_point", &mut b.restore_point),
            ] {
                let v = text(&form, name);
                if v.trim().is_empty() {
                    continue;
                }
                match parse_input(&v) {
                    Ok(t) => *slot = Some(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    Err(e) => bad = Some(format!("{}: {e}", name.replace('_', " "))),
                }
            }
            match bad {
                Some(e) => Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "time-format",
                    e,
                )),
                None => reschedule_as(&st, caller, &id, b).await,
            }
        }
        "run" => run_as(&st, caller, &id, RunBody { dry_run: dry }).await,
        "resume" => resume_as(&st, caller, &id).await,
        _ => rollback_as(&st, caller, &id, reason()).await,
    };
    match done {
        Ok(_) => see_other(&format!("/requests/{id}")),
        Err(p) => {
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::CONFLICT);
            let (rule, text) = rule_of(&p);
            let text = match rule {
                Some(r) => format!("{r}: {text}"),
                None => text,
            };
            request_page(&st, &s, &id, Some((status, format!("Not done: {text}")))).await
        }
    }
}

fn active_of(all: &[crate::domain::RestoreRequest], env: &str) -> Option<(String, String, String)> {
    all.iter()
        .find(|r| r.spec.environment == env && r.status.is_active())
        .map(|r| {
            (
                r.id.to_string(),
                short(r.id.as_str()),
                r.status.as_str().to_string(),
            )
        })
}

/// `GET /environments`.
pub async fn environments(State(st): State<Arc<ApiState>>, s: Session) -> Response {
    if let Some(r) = refused_read(&s) {
        return r;
    }
    let all = match st.store.list_requests().await {
        Ok(a) => a,
        Err(e) => return store_failed(&s, e),
    };
    let rows = st
        .config
        .environments
        .iter()
        .map(|e| EnvRow {
            name: e.name.clone(),
            tier: format!("{:?}", e.tier).to_lowercase(),
            database: e.database.clone(),
            server: e.server.clone(),
            retention: e.retention_days,
            active: active_of(&all, &e.name),
        })
        .collect();
    page_of(
        StatusCode::OK,
        &Environments {
            user: Some(user_bar(&s)),
            rows,
        },
    )
}

/// `GET /environments/{name}`.
pub async fn environment(
    State(st): State<Arc<ApiState>>,
    s: Session,
    Path(name): Path<String>,
) -> Response {
    if let Some(r) = refused_read(&s) {
        return r;
    }
    let Some(env) = st.config.environment(&name) else {
        return problem_page(
            &s,
            StatusCode::NOT_FOUND,
            "No such environment",
            &format!("Environment '{name}' is not configured; the environments page lists those that are."),
        );
    };
    let (history, all) = match (
        st.store.environment_events(&name).await,
        st.store.list_requests().await,
    ) {
        (Ok(h), Ok(a)) => (h, a),
        (Err(e), _) | (_, Err(e)) => return store_failed(&s, e),
    };
    let d = EnvironmentDetail::new(env, &history);
    let opt = |x: Option<f64>| x.map(duration).unwrap_or_else(|| "—".into());
    let t = view::Environment {
        user: Some(user_bar(&s)),
        name: env.name.clone(),
        tier: format!("{:?}", env.tier).to_lowercase(),
        database: env.database.clone(),
        server: env.server.clone(),
        location: env.location.clone(),
        retention: env.retention_days,
        active: active_of(&all, &env.name),
        restores: d
            .restores
            .iter()
            .rev()
            .map(|x| RestoreRow {
                started: Instant::parse(&x.started_at),
                point: Instant::new(x.restore_point).text,
                restore: opt(x.restore_secs),
                downtime: opt(x.downtime_secs),
                request: x.request.clone(),
                request_short: short(&x.request),
                notes: [
                    x.prestaged.then_some("pre-staged".to_string()),
                    x.rolled_back_by
                        .as_ref()
                        .map(|j| format!("rolled back (job {})", short(j))),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; "),
            })
            .collect(),
        rollbacks: d
            .rollbacks
            .iter()
            .rev()
            .map(|x| RollbackRow {
                started: Instant::parse(&x.started_at),
                downtime: opt(x.downtime_secs),
                request: x.request.clone(),
                request_short: short(&x.request),
                reason: x.reason.clone().unwrap_or_default(),
            })
            .collect(),
        deployments: d
            .deployments
            .iter()
            .rev()
            .map(|x| (Instant::parse(&x.at), x.version.clone()))
            .collect(),
    };
    page_of(StatusCode::OK, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_times() {
        let t = parse_input("2026-11-27 08:30").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-27T08:30:00+00:00");
        assert_eq!(parse_input("2026-11-27T08:30").unwrap(), t);
        assert_eq!(parse_input("2026-11-27T09:30:00+01:00").unwrap(), t);
        assert!(parse_input("").is_err());
        assert!(parse_input("tomorrow")
            .unwrap_err()
            .contains("YYYY-MM-DD HH:MM"));
    }

    #[test]
    fn rules_are_named_and_said_for_the_form() {
        let p = Problem::rule("rule notice-24h: the window starts at X; start it at Y or later, or, as an operator in an emergency, pass --emergency-reason TEXT".into());
        let (rule, text) = rule_of(&p);
        assert_eq!(rule.as_deref(), Some("notice-24h"));
        assert!(text.starts_with("the window starts at X"), "{text}");
        assert!(text.contains("give an emergency reason"), "{text}");
        let c = Problem::conflict(
            "rule one-active-request: environment 'uat' already has an active request (x)",
        );
        assert_eq!(rule_of(&c).0.as_deref(), Some("one-active-request"));
        let plain = Problem::forbidden("no");
        assert_eq!(rule_of(&plain), (None, "no".to_string()));
    }
}
