//! An adversarial review of the sign-in and the pages: each finding is a
//! test that failed before its fix.
use super::sessions::*;
use super::*;

/// `return_to` leads only to a path of this site: browsers drop tabs and
/// newlines from a `Location` (`/\t/evil.example` is `//evil.example`, a
/// link to another site), and a control character must not break the
/// redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_to_never_leaves_the_site() {
    let local = Service::start_with(Backend::Sqlite, "", "mode = \"none\"", "", &[]).await;
    let entra = web_service(Backend::Sqlite).await;
    let http = client(&entra);
    let tricks = [
        "/%09/evil.example",
        "/%0a/evil.example",
        "/%0d%0a/evil.example",
        "/%5c/evil.example",
        "//evil.example",
        "/%20/evil.example",
        "https://evil.example/",
        "/%00",
    ];
    for trick in tricks {
        let r = http
            .get(local.url(&format!("/auth/login?return_to={trick}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            (r.status().as_u16(), location(&r)),
            (303, "/".to_string()),
            "mode none, return_to={trick}"
        );
    }
    // With Entra ID, the place is kept through the sign-in.
    for trick in tricks {
        let r = http
            .get(format!(
                "{}/auth/login?login_hint=rita@contoso.com&return_to={trick}",
                entra.base
            ))
            .send()
            .await
            .unwrap();
        let login = cookie_value(&set_cookie(&r, "pitr_login"));
        let auth = url::Url::parse(&location(&r)).unwrap();
        let cb = authorize(&http, &auth).await;
        let r = callback(&http, &entra.base, &cb, Some(&login)).await;
        assert_eq!(
            (r.status().as_u16(), location(&r)),
            (303, "/".to_string()),
            "entra, return_to={trick}"
        );
    }
    // A local path with a query still works.
    let r = http
        .get(local.url("/auth/login?return_to=%2F%3Fstatus%3Dsubmitted%26page%3D2"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/?status=submitted&page=2");
}

/// base64url(SHA-256(x)): the S256 PKCE challenge of a verifier.
fn s256(x: &str) -> String {
    use base64::Engine as _;
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, x.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// A copy of the store (a backup, a read-only account) gives nothing to
/// act with: a sign-in in progress keeps neither its `state`, its `nonce`
/// nor its PKCE verifier, and a session not its CSRF token (with the token
/// a page elsewhere could post as the person, whose browser sends the
/// cookie).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_holds_no_state_nonce_verifier_or_csrf_token() {
    let svc = web_service(Backend::Sqlite).await;
    let http = client(&svc);
    let (login, auth) = start(&http, &svc.base, "rita@contoso.com").await;
    let db = rusqlite::Connection::open(svc.env.dir.path().join("pitr.db")).unwrap();
    let row: Vec<String> = db
        .query_row(
            "SELECT id_hash, state, nonce, verifier, return_to FROM web_logins",
            [],
            |r| Ok((0..5).map(|i| r.get::<_, String>(i).unwrap()).collect()),
        )
        .unwrap();
    let (state, nonce, challenge) = (
        param(&auth, "state"),
        param(&auth, "nonce"),
        param(&auth, "code_challenge"),
    );
    for v in &row {
        assert!(
            !v.contains(&state) && !v.contains(&nonce) && !v.contains(&login),
            "the login row holds a secret: {row:?}"
        );
        assert_ne!(s256(v), challenge, "the login row holds the PKCE verifier");
    }
    // The sign-in still works, and the page's CSRF token is not stored.
    let cb = authorize(&http, &auth).await;
    let r = callback(&http, &svc.base, &cb, Some(&login)).await;
    assert_eq!(r.status(), 303);
    let session = cookie_value(&set_cookie(&r, "pitr_session"));
    let (_, _, page) = get_page(&svc, "/", Some(&session)).await;
    let csrf = csrf_of(&page);
    let stored: String = db
        .query_row("SELECT csrf FROM web_sessions", [], |r| r.get(0))
        .unwrap();
    assert_ne!(stored, csrf, "the session row holds the CSRF token");
    assert!(!stored.contains(&csrf));
    // And the token works for this session.
    let (s, _) = post_form(&svc, "/auth/logout", Some(&session), &[("csrf", &csrf)]).await;
    assert_eq!(s, 303);
}

/// The CSRF token in a page.
pub fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the CSRF token in the page")
        .to_string()
}

/// Signs `who` in through the whole flow without a browser: the session
/// cookie's value.
pub async fn session_for(svc: &Service, who: &str) -> String {
    let http = client(svc);
    let (login, auth) = start(&http, &svc.base, who).await;
    let cb = authorize(&http, &auth).await;
    let r = callback(&http, &svc.base, &cb, Some(&login)).await;
    assert_eq!(r.status(), 303, "{who} signs in");
    cookie_value(&set_cookie(&r, "pitr_session"))
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Bad input to every form and query (and a path the page does not have)
/// gets a page that says what was wrong, with its status and the page's
/// security headers: never axum's bare text, never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_page_with_its_status_and_the_headers() {
    let svc = web_service(Backend::Sqlite).await;
    let http = client(&svc);
    let session = session_for(&svc, "olga@contoso.com").await;
    let cookie = format!("pitr_session={session}");
    let big = format!("csrf=x&reason={}", "x".repeat(70 * 1024));
    // (method, path, (content type, body), status, what the page says)
    type Case<'a> = (&'a str, &'a str, Option<(&'a str, String)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("GET", "/?page=abc", None, 400, "page"),
        ("GET", "/?page=-1", None, 400, "page"),
        ("GET", "/auth/callback?state=a&state=b", None, 400, "state"),
        ("GET", "/requests/%FF%FE", None, 400, "UTF-8"),
        ("GET", "/auth/logout", None, 405, "POST"),
        ("GET", "/static/nope.js", None, 404, "nope.js"),
        (
            "GET",
            "/no/such/page",
            None,
            404,
            "no page at /no/such/page",
        ),
        (
            "POST",
            "/requests/new",
            Some(("text/plain", "csrf=x".into())),
            415,
            "application/x-www-form-urlencoded",
        ),
        (
            "POST",
            "/requests/new",
            Some(("application/x-www-form-urlencoded", big.clone())),
            413,
            "65536",
        ),
        (
            "POST",
            "/requests/x/accept",
            Some(("application/x-www-form-urlencoded", big)),
            413,
            "65536",
        ),
    ];
    for (method, path, body, status, says) in cases {
        let mut rb = http
            .request(method.parse().unwrap(), svc.url(path))
            .header("cookie", &cookie);
        if let Some((ct, b)) = body {
            rb = rb.header("content-type", ct).body(b);
        }
        let r = rb.send().await.unwrap();
        let what = format!("{method} {path}");
        assert_eq!(r.status().as_u16(), status, "{what}");
        assert!(
            header(&r, "content-type").starts_with("text/html"),
            "{what}: {:?}",
            r.headers()
        );
        for (h, v) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("cache-control", "no-store"),
            ("referrer-policy", "same-origin"),
        ] {
            assert_eq!(header(&r, h), v, "{what}: {h}");
        }
        assert!(
            header(&r, "content-security-policy").contains("frame-ancestors 'none'"),
            "{what}"
        );
        let page = r.text().await.unwrap();
        assert!(page.contains("<h1>"), "{what}: {page}");
        assert!(page.contains(says), "{what} should say {says}: {page}");
    }
}

/// A valid new-request form for `environment`, with the session's token.
fn new_request<'a>(
    csrf: &'a str,
    environment: &'a str,
    times: &'a [String; 3],
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("environment", environment),
        ("restore_point", &times[0]),
        ("window_start", &times[1]),
        ("window_end", &times[2]),
        ("ack_erase", "yes"),
        ("ack_downtime", "yes"),
        ("ack_scope", "yes"),
    ]
}

/// Every page action asks the roles as the API does, before it shows or
/// does anything: a viewer, a requester outside the environment's groups,
/// a requester with someone else's request; CSRF tokens are per session;
/// sign-out needs the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_actions_ask_the_roles_like_the_api() {
    let svc = web_service(Backend::Sqlite).await;
    let now = chrono::Utc::now();
    let times = [
        typed(now - chrono::Duration::hours(3)),
        typed(now + chrono::Duration::hours(30)),
        typed(now + chrono::Duration::hours(32)),
    ];
    let mut csrf = std::collections::HashMap::new();
    let mut session = std::collections::HashMap::new();
    for who in ["rita", "omar", "vera", "olga"] {
        let s = session_for(&svc, &format!("{who}@contoso.com")).await;
        let (status, _, page) = get_page(&svc, "/", Some(&s)).await;
        assert_eq!(status, 200);
        csrf.insert(who, csrf_of(&page));
        session.insert(who, s);
    }
    let post = |who: &'static str, path: String, form: Vec<(&'static str, String)>| {
        let svc = &svc;
        let s = session[who].clone();
        async move {
            let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(svc, &path, Some(&s), &f).await
        }
    };
    // rita submits for uat (her group).
    let (s, body) = post_form(
        &svc,
        "/requests/new",
        Some(&session["rita"]),
        &new_request(&csrf["rita"], "uat", &times),
    )
    .await;
    assert_eq!(s, 303, "{body}");
    let id = {
        let db = rusqlite::Connection::open(svc.env.dir.path().join("pitr.db")).unwrap();
        db.query_row("SELECT id FROM requests", [], |r| r.get::<_, String>(0))
            .unwrap()
    };
    // A requester outside uat's groups: uat is not offered, and refused.
    let (_, _, page) = get_page(&svc, "/requests/new", Some(&session["omar"])).await;
    assert!(!page.contains("value=\"uat\""), "{page}");
    let (s, body) = post_form(
        &svc,
        "/requests/new",
        Some(&session["omar"]),
        &new_request(&csrf["omar"], "uat", &times),
    )
    .await;
    assert_eq!(s, 403, "{body}");
    // An emergency reason is the operators'.
    let mut f = new_request(&csrf["rita"], "uat", &times);
    f.push(("emergency_reason", "it is urgent"));
    let (s, body) = post_form(&svc, "/requests/new", Some(&session["rita"]), &f).await;
    assert_eq!(s, 403, "{body}");
    // A viewer: no form, no submission, no action.
    let (s, _, _) = get_page(&svc, "/requests/new", Some(&session["vera"])).await;
    assert_eq!(s, 403);
    let (s, _) = post_form(
        &svc,
        "/requests/new",
        Some(&session["vera"]),
        &new_request(&csrf["vera"], "uat", &times),
    )
    .await;
    assert_eq!(s, 403);
    // Someone else's request: no confirmation of an action that would be
    // refused, and no action.
    for action in ["cancel", "reschedule"] {
        for confirm in ["", "yes"] {
            let (s, body) = post(
                "omar",
                format!("/requests/{id}/{action}"),
                vec![
                    ("csrf", csrf["omar"].clone()),
                    ("confirm", confirm.into()),
                    ("window_start", times[1].clone()),
                ],
            )
            .await;
            assert_eq!(s, 403, "omar {action} confirm={confirm}: {body}");
            assert!(!body.contains("id=\"confirm\""), "{body}");
        }
    }
    for action in ["accept", "reject", "run", "resume", "rollback"] {
        for who in ["rita", "vera"] {
            let (s, body) = post(
                who,
                format!("/requests/{id}/{action}"),
                vec![("csrf", csrf[who].clone())],
            )
            .await;
            assert_eq!(s, 403, "{who} {action}: {body}");
        }
    }
    // Another session's token is refused, everywhere.
    let (s, _) = post(
        "olga",
        format!("/requests/{id}/accept"),
        vec![("csrf", csrf["rita"].clone())],
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = post(
        "olga",
        "/auth/logout".into(),
        vec![("csrf", csrf["rita"].clone())],
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = post("olga", "/auth/logout".into(), vec![]).await;
    assert_eq!(s, 403);
    let (s, _, _) = get_page(&svc, "/", Some(&session["olga"])).await;
    assert_eq!(s, 200, "still signed in");
    // Nothing was done to the request.
    let (_, _, page) = get_page(&svc, &format!("/requests/{id}"), Some(&session["olga"])).await;
    assert!(page.contains("data-status=\"submitted\""), "{page}");
    // Without a session: a page view goes to the sign-in, the rest is 401.
    let (s, loc, _) = get_page(&svc, &format!("/requests/{id}"), None).await;
    assert_eq!(
        (s, loc.as_str()),
        (
            303,
            format!("/auth/login?return_to=%2Frequests%2F{id}").as_str()
        )
    );
    let (s, _, _) = get_page(&svc, &format!("/requests/{id}/events"), None).await;
    assert_eq!(s, 401);
    let (s, _) = post_form(
        &svc,
        &format!("/requests/{id}/accept"),
        None,
        &[("csrf", &csrf["olga"])],
    )
    .await;
    assert_eq!(s, 401);
}

/// A sign-in replaces the browser's session: the one it had before (a
/// copy left on a shared computer, one planted by someone else) ends on
/// the server, and the new one has a new id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_ends_the_session_the_browser_had() {
    let svc = web_service(Backend::Sqlite).await;
    let http = client(&svc);
    let before = session_for(&svc, "olga@contoso.com").await;
    let (login, auth) = start(&http, &svc.base, "rita@contoso.com").await;
    let cb = authorize(&http, &auth).await;
    let r = http
        .get(format!(
            "{}/auth/callback?{}",
            svc.base,
            cb.query().unwrap()
        ))
        .header(
            "cookie",
            format!("pitr_session={before}; pitr_login={login}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let after = cookie_value(&set_cookie(&r, "pitr_session"));
    assert_ne!(after, before);
    let (s, _, _) = get_page(&svc, "/", Some(&before)).await;
    assert_eq!(s, 303, "the session from before the sign-in has ended");
    let (s, _, page) = get_page(&svc, "/", Some(&after)).await;
    assert_eq!(s, 200);
    assert!(page.contains("rita@contoso.com"));
    // The same without Entra ID.
    let local = Service::start_with(Backend::Sqlite, "", "mode = \"none\"", "", &[]).await;
    let first = cookie_value(&set_cookie(
        &http.get(local.url("/auth/login")).send().await.unwrap(),
        "pitr_session",
    ));
    let r = http
        .get(local.url("/auth/login"))
        .header("cookie", format!("pitr_session={first}"))
        .send()
        .await
        .unwrap();
    let second = cookie_value(&set_cookie(&r, "pitr_session"));
    assert_ne!(first, second);
    assert_eq!(get_page(&local, "/", Some(&first)).await.0, 303);
    assert_eq!(get_page(&local, "/", Some(&second)).await.0, 200);
}

/// The page's reschedule takes what the API's takes: an operator's
/// emergency reason (a window sooner than 24 hours) and the code-version
/// acknowledgement; a requester's emergency reason is refused as by the
/// API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reschedule_on_the_page_takes_what_the_api_takes() {
    let svc = web_service(Backend::Sqlite).await;
    let now = chrono::Utc::now();
    let times = [
        typed(now - chrono::Duration::hours(3)),
        typed(now + chrono::Duration::hours(30)),
        typed(now + chrono::Duration::hours(32)),
    ];
    let rita = session_for(&svc, "rita@contoso.com").await;
    let olga = session_for(&svc, "olga@contoso.com").await;
    let token = |s: &str| {
        let s = s.to_string();
        let svc = &svc;
        async move { csrf_of(&get_page(svc, "/", Some(&s)).await.2) }
    };
    let (rita_csrf, olga_csrf) = (token(&rita).await, token(&olga).await);
    let (s, body) = post_form(
        &svc,
        "/requests/new",
        Some(&rita),
        &new_request(&rita_csrf, "uat", &times),
    )
    .await;
    assert_eq!(s, 303, "{body}");
    let id: String = rusqlite::Connection::open(svc.env.dir.path().join("pitr.db"))
        .unwrap()
        .query_row("SELECT id FROM requests", [], |r| r.get(0))
        .unwrap();
    let soon = [
        typed(now + chrono::Duration::hours(2)),
        typed(now + chrono::Duration::hours(4)),
    ];
    // The operator's page offers the emergency reason; the requester's not.
    let (_, _, page) = get_page(&svc, &format!("/requests/{id}"), Some(&olga)).await;
    assert!(page.contains("name=\"emergency_reason\""), "{page}");
    assert!(page.contains("name=\"ack_version_mismatch\""), "{page}");
    let (_, _, page) = get_page(&svc, &format!("/requests/{id}"), Some(&rita)).await;
    assert!(!page.contains("name=\"emergency_reason\""), "{page}");
    let path = format!("/requests/{id}/reschedule");
    let form = |csrf: &str, reason: &str| {
        vec![
            ("csrf".to_string(), csrf.to_string()),
            ("window_start".into(), soon[0].clone()),
            ("window_end".into(), soon[1].clone()),
            ("emergency_reason".into(), reason.to_string()),
        ]
    };
    let send = |session: &str, f: Vec<(String, String)>| {
        let svc = &svc;
        let session = session.to_string();
        let path = path.clone();
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            post_form(svc, &path, Some(&session), &f).await
        }
    };
    let (s, body) = send(&rita, form(&rita_csrf, "we need it today")).await;
    assert_eq!(s, 403, "a requester's emergency: {body}");
    let (s, body) = send(&olga, form(&olga_csrf, "")).await;
    assert_eq!(s, 422, "{body}");
    assert!(body.contains("notice-24h"), "{body}");
    let (s, body) = send(&olga, form(&olga_csrf, "month-end close is broken")).await;
    assert_eq!(s, 303, "the operator's emergency: {body}");
    let (_, _, page) = get_page(&svc, &format!("/requests/{id}"), Some(&olga)).await;
    assert!(page.contains("month-end close is broken"), "{page}");
}

/// What people type (a reason, an emergency reason, a rejected form's
/// values) and what the IdP sends back (`error_description`) is escaped
/// in text and in attributes; the policy allows no inline script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_people_and_the_idp_send_is_escaped() {
    let svc = web_service(Backend::Sqlite).await;
    let http = client(&svc);
    let evil = "\"><script>alert(1)</script><img src=x onerror=alert(2)>'";
    let rita = session_for(&svc, "rita@contoso.com").await;
    let (_, _, page) = get_page(&svc, "/", Some(&rita)).await;
    let csrf = csrf_of(&page);
    let now = chrono::Utc::now();
    let times = [
        typed(now - chrono::Duration::hours(3)),
        typed(now + chrono::Duration::hours(30)),
        typed(now + chrono::Duration::hours(32)),
    ];
    let mut f = new_request(&csrf, "uat", &times);
    f.push(("reason", evil));
    // Refused (a time that is not one), the typed values come back in
    // attributes and in the textarea.
    let mut bad = f.clone();
    bad[2] = ("restore_point", evil);
    let (s, page) = post_form(&svc, "/requests/new", Some(&rita), &bad).await;
    assert_eq!(s, 422);
    assert!(
        !page.contains("<script>alert") && !page.contains("<img src=x"),
        "{page}"
    );
    assert!(page.contains("&#60;script&#62;alert(1)"), "{page}");
    let (s, _) = post_form(&svc, "/requests/new", Some(&rita), &f).await;
    assert_eq!(s, 303);
    let id: String = rusqlite::Connection::open(svc.env.dir.path().join("pitr.db"))
        .unwrap()
        .query_row("SELECT id FROM requests", [], |r| r.get(0))
        .unwrap();
    let (_, _, page) = get_page(&svc, &format!("/requests/{id}"), Some(&rita)).await;
    assert!(
        !page.contains("<script>alert") && !page.contains("<img src=x"),
        "{page}"
    );
    assert!(page.contains("&#60;script&#62;alert(1)"), "{page}");
    // The IdP's error, shown on the callback's page.
    let (login, auth) = start(&http, &svc.base, "rita@contoso.com").await;
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("state", &param(&auth, "state"))
        .append_pair("error", "access_denied")
        .append_pair("error_description", evil)
        .finish();
    let r = http
        .get(format!("{}/auth/callback?{q}", svc.base))
        .header("cookie", format!("pitr_login={login}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let csp = header(&r, "content-security-policy");
    assert!(
        !csp.contains("unsafe") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("access_denied"), "{page}");
    assert!(
        !page.contains("<script>alert") && !page.contains("<img src=x"),
        "{page}"
    );
    // No template marks anything safe.
    for f in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/templates")).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        assert!(!text.contains("|safe") && !text.contains("| safe") && !text.contains("<script>"));
    }
}

/// The live timeline's stream ends when its session does: signed out (or
/// expired), a stream opened before goes quiet, it does not follow the
/// request for another hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_ends_with_its_session() {
    use futures_util::StreamExt as _;
    let svc = web_service(Backend::Sqlite).await;
    let rita = session_for(&svc, "rita@contoso.com").await;
    let (_, _, page) = get_page(&svc, "/", Some(&rita)).await;
    let csrf = csrf_of(&page);
    let now = chrono::Utc::now();
    let times = [
        typed(now - chrono::Duration::hours(3)),
        typed(now + chrono::Duration::hours(30)),
        typed(now + chrono::Duration::hours(32)),
    ];
    let (s, _) = post_form(
        &svc,
        "/requests/new",
        Some(&rita),
        &new_request(&csrf, "uat", &times),
    )
    .await;
    assert_eq!(s, 303);
    let id: String = rusqlite::Connection::open(svc.env.dir.path().join("pitr.db"))
        .unwrap()
        .query_row("SELECT id FROM requests", [], |r| r.get(0))
        .unwrap();
    let r = reqwest::Client::new()
        .get(svc.url(&format!("/requests/{id}/events")))
        .header("cookie", format!("pitr_session={rita}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: status"));
    let (s, _) = post_form(&svc, "/auth/logout", Some(&rita), &[("csrf", &csrf)]).await;
    assert_eq!(s, 303);
    // The stream ends (a bound well above the 2 s check, far below the
    // stream's hour).
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its session");
}
