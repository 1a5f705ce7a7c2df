//! `GET/POST /requests/new`: the form, its typed times, and a broken rule
//! shown beside its field.
use super::*;

/// The environments `s` may request a restore for (the others are not
/// offered: every submit would be refused).
fn requestable(st: &WebState, s: &Session, selected: &str) -> Vec<EnvOption> {
    st.service
        .requestable_environments(s.principal())
        .into_iter()
        .map(|e| EnvOption {
            name: e.name.clone(),
            tier: format!("{:?}", e.tier).to_lowercase(),
            database: e.database.clone(),
            selected: e.name == selected,
        })
        .collect()
}

fn new_page(
    st: &WebState,
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
    State(st): State<Arc<WebState>>,
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

pub(super) use super::rule_of;

/// `POST /requests/new`.
pub async fn submit(
    State(st): State<Arc<WebState>>,
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
    let new = crate::service::NewRequest {
        environment: f.environment.clone(),
        database,
        restore_point: point,
        window: crate::domain::Window { start, end },
        acks: crate::domain::Acknowledgements {
            erase: f.ack_erase,
            downtime: f.ack_downtime,
            scope: f.ack_scope,
            version_mismatch: f.ack_version_mismatch,
        },
        reason: Some(f.reason.clone()).filter(|r| !r.trim().is_empty()),
        prestage: f.prestage,
        emergency: Some(f.emergency_reason.clone()).filter(|r| !r.trim().is_empty()),
    };
    match st.service.submit(s.principal(), new).await {
        Ok((r, _)) => see_other(&format!("/requests/{}", r.id)),
        Err(e) => {
            let status = status_of(&e);
            let (rule, text) = rule_of(&e);
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
        let now = Utc::now();
        let e = ServiceError::from(crate::domain::RuleViolation::WindowTooSoon {
            start: now,
            now,
            earliest: now,
        });
        let (rule, text) = rule_of(&e);
        assert_eq!(rule.as_deref(), Some("notice-24h"));
        assert!(text.starts_with("the window starts at"), "{text}");
        assert!(text.ends_with("give an emergency reason"), "{text}");
        assert!(!text.contains("--"), "{text}");
        let c = ServiceError::from(crate::store::StoreError::ActiveRequestExists {
            environment: "uat".into(),
            existing: "x".into(),
        });
        let (rule, text) = rule_of(&c);
        assert_eq!(rule.as_deref(), Some("one-active-request"));
        assert!(!text.starts_with("rule "), "{text}");
        let plain = ServiceError::forbidden("no");
        assert_eq!(rule_of(&plain), (None, "no".to_string()));
    }
}
