//! The stories, in order, in one browser: a requester submits (a
//! rule error first), an operator accepts and rehearses it live, a viewer
//! sees no action and cannot act; CSRF and sign-out hold; screenshots.
use super::*;
use chrono::{Duration as Days, Utc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_work_items_page_in_chromium() {
    let svc = web_service(Backend::Sqlite).await;
    let b = Browser::start().await;

    // The page's answers carry a strict policy and nothing else loads.
    let (s, loc, _) = get_page(&svc, "/", None).await;
    assert_eq!((s, loc.as_str()), (303, "/auth/login?return_to=%2F"));
    let css = reqwest::get(svc.url("/static/app.css")).await.unwrap();
    assert!(css.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'; script-src 'self'; style-src 'self'"));

    // --- A requester: a window 2 hours ahead breaks notice-24h. ---
    b.sign_in(&svc, "rita@contoso.com", "/requests/new").await;
    assert_eq!(b.text("h1").await, "Request a point-in-time restore");
    assert_eq!(b.text("#database").await, "AxDB", "the F&O database, fixed");
    let now = Utc::now();
    let point = typed(now - Days::hours(3));
    b.fill("#restore_point", &point).await;
    b.fill("#window_start", &typed(now + Days::hours(2))).await;
    b.fill("#window_end", &typed(now + Days::hours(4))).await;
    for ack in ["#ack_erase", "#ack_downtime", "#ack_scope"] {
        b.click(ack).await;
    }
    b.fill("#reason", "retest after the fixes of sprint 12")
        .await;
    b.click("form.request button[type=submit]").await;
    let error = b.wait_for("#window-error", |t| !t.is_empty()).await;
    assert_eq!(
        b.attr("#window-error", "data-rule").await.as_deref(),
        Some("notice-24h")
    );
    assert!(
        error.starts_with("notice-24h:") && error.contains("or later"),
        "the rule and the earliest allowed start: {error}"
    );
    // What was typed is kept.
    assert_eq!(b.value("#restore_point").await, point);
    assert_eq!(
        b.value("#reason").await,
        "retest after the fixes of sprint 12"
    );
    for ack in ["#ack_erase", "#ack_downtime", "#ack_scope"] {
        assert!(b.is_checked(ack).await, "{ack} stays ticked");
    }
    assert!(b.text("#restore_point-error").await.is_empty());
    b.screenshot("new-request-rule-error", 1920).await;
    b.screenshot("new-request-rule-error", 360).await;

    // Fixed: two days ahead.
    let start = now + Days::days(2);
    b.fill("#window_start", &typed(start)).await;
    b.fill("#window_end", &typed(start + Days::hours(2))).await;
    b.click("form.request button[type=submit]").await;
    b.wait_for("#status", |t| t == "submitted").await;
    let url = b.c.current_url().await.unwrap();
    let id = url
        .path()
        .strip_prefix("/requests/")
        .expect("on the request page")
        .to_string();
    let api = svc.token("operator").await;
    let (_, shown) = svc
        .call("GET", &format!("/api/v1/requests/{id}"), Some(&api), None)
        .await;
    assert_eq!(shown["requester"], "rita@contoso.com");
    assert_eq!(shown["reason"], "retest after the fixes of sprint 12");
    // A requester may cancel their own request, not accept it.
    assert!(b.attr("#do-cancel", "id").await.is_some());
    assert!(b.attr("#do-accept", "id").await.is_none());
    // ... and reschedule it: the window's end an hour later.
    b.click("details.reschedule summary").await;
    let new_end = typed(start + Days::hours(3));
    b.fill("#rs-end", &new_end).await;
    b.click("details.reschedule button[type=submit]").await;
    b.wait_for("#status", |t| t == "submitted").await;
    let (_, moved) = svc
        .call("GET", &format!("/api/v1/requests/{id}"), Some(&api), None)
        .await;
    assert_eq!(
        moved["window_end"].as_str().unwrap(),
        format!("{}:00Z", new_end.replace(' ', "T")),
        "{moved}"
    );
    b.sign_out().await;

    // --- An operator accepts and rehearses it from the request page. ---
    b.sign_in(&svc, "olga@contoso.com", &format!("/requests/{id}"))
        .await;
    let olga = b.cookie("pitr_session").await;
    let olga_csrf = b
        .attr("header input[name=csrf]", "value")
        .await
        .expect("the CSRF token of the session");
    // A POST without the CSRF token is refused, and changes nothing.
    let (s, body) = post_form(&svc, &format!("/requests/{id}/accept"), Some(&olga), &[]).await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("csrf"), "{body}");
    let (s, _) = post_form(
        &svc,
        &format!("/requests/{id}/accept"),
        Some(&olga),
        &[("csrf", "forged-token")],
    )
    .await;
    assert_eq!(s, 403);
    let (_, now_shown) = svc
        .call("GET", &format!("/api/v1/requests/{id}"), Some(&api), None)
        .await;
    assert_eq!(now_shown["status"], "submitted", "nothing changed");

    b.click("#do-accept").await;
    b.wait_for("#status", |t| t == "accepted").await;
    // The page is not reloaded from here on: a mark set now survives.
    b.c.execute("window.pitrMark = 'same page'; return true", vec![])
        .await
        .unwrap();
    b.click("#do-dry-run").await;
    b.wait_for("#job", |t| t.starts_with("Dry run succeeded"))
        .await;
    let mark =
        b.c.execute("return window.pitrMark || null", vec![])
            .await
            .unwrap();
    assert_eq!(
        mark,
        json!("same page"),
        "the timeline advanced without a reload"
    );
    let live: u64 =
        b.c.execute("return document.body.dataset.liveUpdates || '0'", vec![])
            .await
            .unwrap()
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    assert!(live >= 3, "steps changed live on the page: {live} updates");
    let steps = b
        .c
        .execute(
            "return Array.from(document.querySelectorAll('#timeline li.step')).map(li => [li.dataset.step, li.dataset.status])",
            vec![],
        )
        .await
        .unwrap();
    let steps = steps.as_array().unwrap();
    assert!(steps.len() >= 5, "{steps:?}");
    assert!(
        steps.iter().all(|s| s[1] == "succeeded"),
        "every step succeeded: {steps:?}"
    );
    // The audit trail names both people.
    b.c.refresh().await.unwrap();
    let audit = b.text("table.audit").await;
    assert!(
        audit.contains("rita@contoso.com") && audit.contains("olga@contoso.com"),
        "{audit}"
    );

    // A destructive action asks first, naming the consequence.
    b.click("#do-cancel").await;
    let consequence = b.wait_for("#consequence", |t| !t.is_empty()).await;
    assert!(consequence.contains("will not run"), "{consequence}");
    b.c.back().await.unwrap();
    let (_, still) = svc
        .call("GET", &format!("/api/v1/requests/{id}"), Some(&api), None)
        .await;
    assert_eq!(still["status"], "accepted", "asking changed nothing");

    // Run for real (against the mock Azure), confirmed, followed live.
    b.click("#do-run").await;
    let consequence = b.wait_for("#consequence", |t| !t.is_empty()).await;
    assert!(consequence.contains("erased"), "{consequence}");
    b.click("#confirm").await;
    b.wait_for("#status", |t| t == "succeeded").await;
    b.wait_for("#job", |t| t.starts_with("Run succeeded")).await;
    b.c.refresh().await.unwrap();
    assert!(b.text("#downtime").await.ends_with(" s") || b.text("#downtime").await.contains("min"));
    b.screenshot("finished-request", 1920).await;
    b.screenshot("finished-request", 360).await;
    b.sign_out().await;

    // The operator's session cookie from before the sign-out is dead.
    let (s, loc, _) = get_page(&svc, "/", Some(&olga)).await;
    assert_eq!((s, loc.as_str()), (303, "/auth/login?return_to=%2F"));
    let (s, _) = post_form(
        &svc,
        &format!("/requests/{id}/cancel"),
        Some(&olga),
        &[("csrf", &olga_csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(s, 401);

    // --- A viewer: no action buttons, and a forged POST is refused. ---
    b.sign_in(&svc, "vera@contoso.com", &format!("/requests/{id}"))
        .await;
    assert_eq!(b.text("#status").await, "succeeded");
    let buttons =
        b.c.execute(
            "return document.querySelectorAll('main form button, main details').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(buttons, json!(0), "a viewer sees no action");
    assert!(b.attr("a[href='/requests/new']", "href").await.is_none());
    let (_, before) = svc
        .call("GET", &format!("/api/v1/requests/{id}"), Some(&api), None)
        .await;
    let vera = b.cookie("pitr_session").await;
    let vera_csrf = b.attr("header input[name=csrf]", "value").await.unwrap();
    for action in ["cancel", "accept", "reject", "rollback", "run"] {
        let (s, body) = post_form(
            &svc,
            &format!("/requests/{id}/{action}"),
            Some(&vera),
            &[("csrf", &vera_csrf), ("confirm", "yes"), ("reason", "x")],
        )
        .await;
        assert_eq!(s, 403, "{action}: {body}");
        assert!(body.contains("Pitr."), "names the role needed: {body}");
    }
    let (_, after) = svc
        .call("GET", &format!("/api/v1/requests/{id}"), Some(&api), None)
        .await;
    assert_eq!(
        after["status"], "succeeded",
        "the forged POSTs changed nothing"
    );
    assert_eq!(after["events"], before["events"]);

    // The work items, filtered and not.
    b.c.goto(&svc.url("/")).await.unwrap();
    let first = b.text("table.items tbody tr").await;
    assert!(
        first.contains("uat") && first.contains("succeeded"),
        "{first}"
    );
    // Keyboard: the first Tab reaches the skip link, with a visible focus.
    b.c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("\u{E004}")
        .await
        .unwrap();
    let focus = b
        .c
        .execute(
            "const e = document.activeElement; const s = getComputedStyle(e); return [e.textContent, s.outlineStyle, s.outlineWidth];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(focus, json!(["Skip to the content", "solid", "3px"]));
    b.c.execute("document.activeElement.blur(); return true", vec![])
        .await
        .unwrap();
    b.screenshot("work-items", 1920).await;
    b.screenshot("work-items", 360).await;
    b.c.goto(&svc.url("/?status=cancelled")).await.unwrap();
    assert!(b.text(".empty").await.contains("No work item matches"));
    b.c.goto(&svc.url("/environments/uat")).await.unwrap();
    let env = b.text("main").await;
    assert!(env.contains("Restores") && env.contains("AxDB"), "{env}");
    assert_eq!(
        b.c.execute(
            "return document.querySelectorAll('section table.items tbody tr').length",
            vec![]
        )
        .await
        .unwrap(),
        json!(1),
        "the restore in the environment's history"
    );
    b.screenshot("environment", 1920).await;
    // A viewer may not open the form either.
    let (s, _, body) = get_page(&svc, "/requests/new", Some(&vera)).await;
    assert_eq!(s, 403, "{body}");

    b.c.clone().close().await.unwrap();
}
