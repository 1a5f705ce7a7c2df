//! `GET/POST /requests/new`: the form, its typed times, and a broken rule
//! shown beside its field.
use super::*;

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
    if let Some(refused) = refused_submit(&s) {
        return refused;
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
pub(super) fn rule_of(p: &Problem) -> (Option<String>, String) {
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
    if let Some(refused) = refused_submit(&s) {
        return refused;
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
