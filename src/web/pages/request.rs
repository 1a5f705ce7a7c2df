//! `GET /requests/{id}` (with its live timeline) and its actions.
use super::new::rule_of;
use super::*;

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
    st: &WebState,
    s: &Session,
    id: &RequestId,
    error: Option<(StatusCode, String)>,
) -> Response {
    if let Some(r) = refused_read(s) {
        return r;
    }
    let d = match st.service.request_detail(s.principal(), id).await {
        Ok(d) => d,
        Err(e) if e.kind == Kind::NotFound => {
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
    State(st): State<Arc<WebState>>,
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
    State(st): State<Arc<WebState>>,
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
    match st
        .service
        .events(s.principal(), RequestId::from(id), ended)
        .await
    {
        Ok(events) => {
            use futures_util::StreamExt;
            let events = events.map(|e| {
                Ok::<_, std::convert::Infallible>(
                    axum::response::sse::Event::default()
                        .event(e.name)
                        .data(e.data.to_string()),
                )
            });
            axum::response::sse::Sse::new(events)
                .keep_alive(axum::response::sse::KeepAlive::default())
                .into_response()
        }
        Err(e) => (status_of(&e), e.to_string()).into_response(),
    }
}

/// `POST /requests/{id}/{action}`: accept, reject, cancel, reschedule, run
/// (or a dry run), resume, rollback. The destructive ones (reject, cancel,
/// run, rollback) first show a confirmation that names the consequence.
pub async fn action(
    State(st): State<Arc<WebState>>,
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
    // refused (the service decides it again when it acts).
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
    let reason = || Some(text(&form, "reason")).filter(|r| !r.trim().is_empty());
    let who = s.principal();
    let done: Result<(), ServiceError> = match action.as_str() {
        "accept" => st.service.accept(who, &id).await.map(drop),
        "reject" => st.service.reject(who, &id, reason()).await.map(drop),
        "cancel" => st.service.cancel(who, &id, reason()).await.map(drop),
        "reschedule" => {
            let mut change = crate::service::Reschedule {
                ack_version_mismatch: ticked(&form, "ack_version_mismatch"),
                emergency: Some(text(&form, "emergency_reason")),
                ..Default::default()
            };
            let mut bad = None;
            for (name, slot) in [
                ("window_start", &mut change.window_start),
                ("window_end", &mut change.window_end),
                ("restore_point", &mut change.restore_point),
            ] {
                let v = text(&form, name);
                if v.trim().is_empty() {
                    continue;
                }
                match parse_input(&v) {
                    Ok(t) => *slot = Some(t),
                    Err(e) => bad = Some(format!("{}: {e}", name.replace('_', " "))),
                }
            }
            match bad {
                Some(e) => Err(ServiceError::new(Kind::Invalid, e)),
                None => st.service.reschedule(who, &id, change).await.map(drop),
            }
        }
        "run" => st.service.run(who, &id, dry).await.map(drop),
        "resume" => st.service.resume(who, &id).await.map(drop),
        _ => st.service.rollback(who, &id, reason()).await.map(drop),
    };
    match done {
        Ok(()) => see_other(&format!("/requests/{id}")),
        Err(e) => {
            let status = status_of(&e);
            let (rule, text) = rule_of(&e);
            let text = match rule {
                Some(r) => format!("{r}: {text}"),
                None => text,
            };
            request_page(&st, &s, &id, Some((status, format!("Not done: {text}")))).await
        }
    }
}
