//! `GET /environments` and `GET /environments/{name}`.
use super::*;

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
pub async fn environments(State(st): State<Arc<WebState>>, s: Session) -> Response {
    if let Some(r) = refused_read(&s) {
        return r;
    }
    let who = s.principal();
    let all = match st.service.requests(who, &Default::default()).await {
        Ok(a) => a,
        Err(e) => return store_failed(&s, e),
    };
    let envs = match st.service.environments(who) {
        Ok(e) => e,
        Err(e) => return store_failed(&s, e),
    };
    let rows = envs
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
    State(st): State<Arc<WebState>>,
    s: Session,
    Path(name): Path<String>,
) -> Response {
    if let Some(r) = refused_read(&s) {
        return r;
    }
    let who = s.principal();
    let d = match st.service.environment_detail(who, &name).await {
        Ok(d) => d,
        Err(e) if e.kind == Kind::NotFound => {
            return problem_page(
                &s,
                StatusCode::NOT_FOUND,
                "No such environment",
                &format!("Environment '{name}' is not configured; the environments page lists those that are."),
            )
        }
        Err(e) => return store_failed(&s, e),
    };
    let all = match st.service.requests(who, &Default::default()).await {
        Ok(a) => a,
        Err(e) => return store_failed(&s, e),
    };
    let env = &d.environment;
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
