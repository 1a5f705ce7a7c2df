//! `GET /`: the work items, filtered and paged.
use super::*;

#[derive(Debug, Deserialize)]
pub struct ItemsQuery {
    status: Option<String>,
    environment: Option<String>,
    page: Option<usize>,
}

/// `GET /`: every request, newest first, filtered and paged.
pub async fn items(
    State(st): State<Arc<WebState>>,
    s: Session,
    Query(q): Query<ItemsQuery>,
) -> Response {
    if let Some(r) = refused_read(&s) {
        return r;
    }
    let status = q.status.filter(|v| !v.is_empty());
    let environment = q.environment.filter(|v| !v.is_empty());
    let all = match st
        .service
        .requests(s.principal(), &Default::default())
        .await
    {
        Ok(a) => a,
        Err(e) => return store_failed(&s, e),
    };
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
