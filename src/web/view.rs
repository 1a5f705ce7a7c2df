//! The pages' templates (under `templates/`, compiled into the binary and
//! escaped by askama) and the values they show, already formatted.
use super::html;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

/// The signed-in person in the page's header.
pub struct UserBar {
    pub display: String,
    pub roles: String,
    pub csrf: String,
    pub may_submit: bool,
}

/// An instant: RFC 3339 for `<time datetime>`, text with its zone for
/// people, and the form fields' format.
pub struct Instant {
    pub iso: String,
    pub text: String,
    pub input: String,
}

impl Instant {
    pub fn new(t: DateTime<Utc>) -> Instant {
        Instant {
            iso: t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            text: t.format("%Y-%m-%d %H:%M UTC").to_string(),
            input: t.format("%Y-%m-%d %H:%M").to_string(),
        }
    }

    /// From a view's RFC 3339 text (shown as it is if it does not parse).
    pub fn parse(s: &str) -> Instant {
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Instant::new(t.with_timezone(&Utc)),
            Err(_) => Instant {
                iso: s.to_string(),
                text: s.to_string(),
                input: s.to_string(),
            },
        }
    }
}

/// Seconds as people read them: `42 s`, `12 min 5 s`, `2 h 3 min`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as i64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message<'a> {
    pub user: Option<UserBar>,
    pub title: &'a str,
    pub text: &'a str,
    pub link: Option<(&'a str, &'a str)>,
}

impl Message<'_> {
    pub fn page(
        user: Option<UserBar>,
        title: &str,
        text: &str,
        link: Option<(&str, &str)>,
    ) -> Response {
        html(StatusCode::OK, message(user, title, text, link))
    }
}

/// A page with a title and a message (errors, sign-in outcomes).
pub fn message(
    user: Option<UserBar>,
    title: &str,
    text: &str,
    link: Option<(&str, &str)>,
) -> String {
    render(&Message {
        user,
        title,
        text,
        link,
    })
}

/// A template's HTML (a template that cannot render is a bug: said plainly).
pub fn render(t: &impl Template) -> String {
    t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "web: a page could not be rendered");
        format!("<!doctype html><title>Error</title><p>This page could not be shown: {e}</p>")
    })
}

/// A rendered page as a response.
pub fn page(status: StatusCode, t: &impl Template) -> Response {
    html(status, render(t)).into_response()
}

pub struct ItemRow {
    pub id: String,
    pub short_id: String,
    pub environment: String,
    pub restore_point: Instant,
    pub window_start: Instant,
    pub window_end: Instant,
    pub status: String,
    pub requester: String,
    pub downtime: String,
}

#[derive(Template)]
#[template(path = "items.html")]
pub struct Items {
    pub user: Option<UserBar>,
    pub may_submit: bool,
    pub rows: Vec<ItemRow>,
    pub statuses: Vec<(String, bool)>,
    pub environments: Vec<(String, bool)>,
    pub filtered: bool,
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    pub prev: Option<String>,
    pub next: Option<String>,
}

pub struct EnvOption {
    pub name: String,
    pub tier: String,
    pub database: String,
    pub selected: bool,
}

/// What the person typed, kept across a refused submission.
#[derive(Default)]
pub struct FormValues {
    pub environment: String,
    pub restore_point: String,
    pub window_start: String,
    pub window_end: String,
    pub reason: String,
    pub emergency_reason: String,
    pub ack_erase: bool,
    pub ack_downtime: bool,
    pub ack_scope: bool,
    pub ack_version_mismatch: bool,
    pub prestage: bool,
}

/// A broken rule next to its field.
pub struct FieldError {
    pub rule: String,
    pub text: String,
}

#[derive(Default)]
pub struct FieldErrors {
    pub environment: Option<FieldError>,
    pub database: Option<FieldError>,
    pub restore_point: Option<FieldError>,
    pub window: Option<FieldError>,
    pub acks: Option<FieldError>,
    pub ack_version_mismatch: Option<FieldError>,
    /// Not about one field (a role, Azure unreachable).
    pub general: Option<String>,
}

impl FieldErrors {
    pub fn any(&self) -> bool {
        self.environment.is_some()
            || self.database.is_some()
            || self.restore_point.is_some()
            || self.window.is_some()
            || self.acks.is_some()
            || self.ack_version_mismatch.is_some()
    }
}

#[derive(Template)]
#[template(path = "new.html")]
pub struct NewRequest {
    pub user: Option<UserBar>,
    pub csrf: String,
    pub envs: Vec<EnvOption>,
    pub database: String,
    pub f: FormValues,
    pub errors: FieldErrors,
    pub has_errors: bool,
    pub show_version_ack: bool,
    pub operator: bool,
    pub now_utc: String,
}

pub struct StepRow {
    pub name: String,
    pub status: String,
    pub started_iso: String,
    pub finished_iso: String,
    pub elapsed: String,
    pub detail: String,
}

pub struct EventRow {
    pub at: Instant,
    pub actor: String,
    pub change: String,
    pub note: String,
}

/// What the signed-in person may do with the request now.
#[derive(Default)]
pub struct Actions {
    pub accept: bool,
    pub reject: bool,
    pub cancel: bool,
    pub reschedule: bool,
    pub run: bool,
    pub dry_run: bool,
    pub resume: bool,
    pub rollback: bool,
}

impl Actions {
    pub fn any(&self) -> bool {
        self.accept
            || self.reject
            || self.cancel
            || self.reschedule
            || self.run
            || self.dry_run
            || self.resume
            || self.rollback
    }
}

#[derive(Template)]
#[template(path = "request.html")]
pub struct Request {
    pub user: Option<UserBar>,
    pub csrf: String,
    pub r: crate::service::views::RequestView,
    pub short_id: String,
    pub status: String,
    pub restore_point: Instant,
    pub window_start: Instant,
    pub window_end: Instant,
    pub submitted: Instant,
    pub downtime: String,
    pub estimate: String,
    pub waiting: Option<String>,
    pub error: Option<String>,
    pub actions: Actions,
    /// Offers an emergency reason when rescheduling (operators only).
    pub operator: bool,
    pub job_status: String,
    pub job_text: String,
    pub follow: bool,
    pub steps: Vec<StepRow>,
    pub events: Vec<EventRow>,
}

#[derive(Template)]
#[template(path = "confirm.html")]
pub struct Confirm {
    pub user: Option<UserBar>,
    pub csrf: String,
    pub id: String,
    pub action: String,
    pub title: String,
    pub consequence: String,
    pub button: String,
    pub reason: bool,
    pub reason_required: bool,
}

pub struct EnvRow {
    pub name: String,
    pub tier: String,
    pub database: String,
    pub server: String,
    pub retention: u32,
    /// (id, short id, status)
    pub active: Option<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "environments.html")]
pub struct Environments {
    pub user: Option<UserBar>,
    pub rows: Vec<EnvRow>,
}

pub struct RestoreRow {
    pub started: Instant,
    pub point: String,
    pub restore: String,
    pub downtime: String,
    pub request: String,
    pub request_short: String,
    pub notes: String,
}

pub struct RollbackRow {
    pub started: Instant,
    pub downtime: String,
    pub request: String,
    pub request_short: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "environment.html")]
pub struct Environment {
    pub user: Option<UserBar>,
    pub name: String,
    pub tier: String,
    pub database: String,
    pub server: String,
    pub location: String,
    pub retention: u32,
    pub active: Option<(String, String, String)>,
    pub restores: Vec<RestoreRow>,
    pub rollbacks: Vec<RollbackRow>,
    pub deployments: Vec<(Instant, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_instants_read_well() {
        assert_eq!(duration(42.4), "42 s");
        assert_eq!(duration(725.0), "12 min 5 s");
        assert_eq!(duration(7380.0), "2 h 3 min");
        let t = Instant::parse("2026-11-27T10:00:00Z");
        assert_eq!(t.text, "2026-11-27 10:00 UTC");
        assert_eq!(t.input, "2026-11-27 10:00");
    }

    #[test]
    fn what_people_typed_is_escaped() {
        let html = message(None, "<b>t</b>", "<script>x</script>", None);
        assert!(!html.contains("<script>x"), "{html}");
        assert!(html.contains("&#60;script&#62;x"), "{html}");
    }
}
