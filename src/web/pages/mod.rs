//! The pages: work items, new request, a request (with its live timeline
//! and actions), environments. They read and act through the use cases of
//! [`crate::service`], which decide the roles and check the rules (the
//! API's, written once); [`decide`] tells a page what to offer.
use super::signin::Session;
use super::view::{self, *};
use super::{html, see_other};
use crate::domain::rules::Fix;
use crate::domain::{RequestId, RequestStatus};
use crate::service::roles::{decide, Permission as Action, Role};
use crate::service::views::{RequestDetail, StatusView};
use crate::service::{Kind, ServiceError};
use crate::web::WebState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use std::sync::Arc;

mod environments;
mod items;
mod new;
mod request;

pub use environments::{environment, environments};
pub use items::items;
pub(crate) use new::parse_input;
pub use new::{new_form, submit};
pub use request::{action, events, request};

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

/// Whether the person may submit at all (for some environment; the
/// environment's groups are asked on submit).
fn submit_decision(s: &Session) -> Result<(), crate::service::roles::Denied> {
    decide(
        s.principal(),
        &Action::Submit {
            environment_groups: &[],
            emergency: false,
        },
    )
}

fn may_submit(s: &Session) -> bool {
    submit_decision(s).is_ok()
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

/// A 403 page unless the person may submit requests.
fn refused_submit(s: &Session) -> Option<Response> {
    submit_decision(s)
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

/// The status a page answers a use case's error with (as the API does).
fn status_of(e: &ServiceError) -> StatusCode {
    StatusCode::from_u16(e.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The rule an error names, and its text for people on the page: without
/// the `rule NAME:` prefix, with what to change said as the form says it.
pub(super) fn rule_of(e: &ServiceError) -> (Option<String>, String) {
    let hint = match e.fix() {
        None => "",
        Some(Fix::ChooseEnvironment) => "; choose one of the list",
        Some(Fix::Acknowledge(which)) if which.names().len() > 1 => "; read them and tick them",
        Some(Fix::Acknowledge(_)) => "; read it and tick it",
        Some(Fix::LengthenWindow) => {
            "; set the window's end at least 1 hour after the window's start"
        }
        Some(Fix::EmergencyReason) => {
            ", or, as an operator in an emergency, give an emergency reason"
        }
        Some(Fix::AckVersionMismatch) => ", then tick the code-version acknowledgement",
        Some(Fix::SubmitNew) => "; \"New request\" files a new one",
        Some(Fix::LookAtStatus) => "; its page shows where it is",
        // The request's page offers the buttons that do it.
        Some(
            Fix::AcceptFirst | Fix::RollBackAfterwards | Fix::StartRun | Fix::RollBackOrSubmitNew,
        ) => "",
    };
    (e.rule().map(str::to_string), format!("{}{hint}", e.text()))
}

fn page_of(status: StatusCode, t: &impl askama::Template) -> Response {
    view::page(status, t)
}
