//! The sign-in protocol without a browser, step by step (each redirect
//! looked at): state, nonce and PKCE are checked, a sign-in is used once,
//! cookies carry their attributes, the store keeps only hashes; and on
//! PostgreSQL, runners share sign-ins and sessions (sign-out on one ends
//! the session on all).
use super::*;
use crate::helpers::PgDatabase;

/// An HTTP client that trusts the mock Azure's CA and follows no redirect.
pub(super) fn client(svc: &Service) -> reqwest::Client {
    let ca = std::fs::read(svc.env.dir.path().join("ca.pem")).expect("the mock's CA");
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap()
}

pub(super) fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub(super) fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The `Set-Cookie` header that sets `name`.
pub(super) fn set_cookie(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie for {name}"))
        .to_string()
}

pub(super) fn cookie_value(set: &str) -> String {
    set.split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

/// A sign-in started at `base`: (login cookie value, authorize URL).
pub(super) async fn start(http: &reqwest::Client, base: &str, who: &str) -> (String, url::Url) {
    let r = http
        .get(format!(
            "{base}/auth/login?login_hint={who}&return_to=/environments"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let login = set_cookie(&r, "pitr_login");
    assert!(
        login.contains("HttpOnly") && login.contains("SameSite=Lax"),
        "{login}"
    );
    assert!(!login.contains("Secure"), "no Secure on loopback: {login}");
    (
        cookie_value(&login),
        url::Url::parse(&location(&r)).unwrap(),
    )
}

pub(super) fn param(u: &url::Url, name: &str) -> String {
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn with_param(u: &url::Url, name: &str, value: &str) -> url::Url {
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    let mut out = u.clone();
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out
}

/// The mock signs the person in: the callback URL with code and state.
pub(super) async fn authorize(http: &reqwest::Client, u: &url::Url) -> url::Url {
    let r = http.get(u.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    url::Url::parse(&location(&r)).unwrap()
}

pub(super) async fn callback(
    http: &reqwest::Client,
    base: &str,
    cb: &url::Url,
    login: Option<&str>,
) -> reqwest::Response {
    let mut rb = http.get(format!("{base}/auth/callback?{}", cb.query().unwrap_or("")));
    if let Some(l) = login {
        rb = rb.header("cookie", format!("pitr_login={l}"));
    }
    rb.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_nonce_and_pkce_are_checked_and_only_hashes_are_stored() {
    let svc = web_service(Backend::Sqlite).await;
    let http = client(&svc);

    // What is asked of Entra ID.
    let (login, auth) = start(&http, &svc.base, "rita@contoso.com").await;
    assert!(
        auth.path().ends_with("/test-tenant/oauth2/v2.0/authorize"),
        "{auth}"
    );
    assert_eq!(param(&auth, "client_id"), CLIENT_ID);
    assert_eq!(
        param(&auth, "redirect_uri"),
        format!("{}/auth/callback", svc.base)
    );
    assert_eq!(param(&auth, "response_type"), "code");
    assert_eq!(param(&auth, "code_challenge_method"), "S256");
    assert_eq!(param(&auth, "login_hint"), "rita@contoso.com");
    for p in ["state", "nonce", "code_challenge"] {
        assert!(param(&auth, p).len() >= 43, "{p} is long and random");
    }

    // A state that is not the sign-in's is refused, and the sign-in is
    // then spent: the right state no longer helps.
    let cb = authorize(&http, &auth).await;
    let forged = with_param(&cb, "state", "not-the-state");
    let r = callback(&http, &svc.base, &forged, Some(&login)).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("state mismatch"));
    let r = callback(&http, &svc.base, &cb, Some(&login)).await;
    assert_eq!(r.status(), 400, "a sign-in is used once");

    // No login cookie (a callback from someone else's sign-in): refused.
    let (_, auth) = start(&http, &svc.base, "rita@contoso.com").await;
    let cb = authorize(&http, &auth).await;
    assert_eq!(callback(&http, &svc.base, &cb, None).await.status(), 400);

    // An ID token for another nonce is refused.
    let (login, auth) = start(&http, &svc.base, "rita@contoso.com").await;
    let cb = authorize(&http, &with_param(&auth, "nonce", "another-nonce")).await;
    let r = callback(&http, &svc.base, &cb, Some(&login)).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("nonce"));

    // A code issued for another PKCE challenge cannot be redeemed.
    let (login, auth) = start(&http, &svc.base, "rita@contoso.com").await;
    let cb = authorize(
        &http,
        &with_param(
            &auth,
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeUdtkXIvr5P7pqHPYVw",
        ),
    )
    .await;
    let r = callback(&http, &svc.base, &cb, Some(&login)).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("AADSTS501481"));

    // The real thing: a session cookie with its attributes.
    let (login, auth) = start(&http, &svc.base, "rita@contoso.com").await;
    let cb = authorize(&http, &auth).await;
    let r = callback(&http, &svc.base, &cb, Some(&login)).await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/environments".into())
    );
    let set = set_cookie(&r, "pitr_session");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=28800"] {
        assert!(set.contains(attr), "{attr}: {set}");
    }
    let session = cookie_value(&set);
    let (s, _, page) = get_page(&svc, "/environments", Some(&session)).await;
    assert_eq!(s, 200);
    assert!(page.contains("rita@contoso.com"));
    // A code is redeemed once: replaying the callback's code fails at Entra.
    let token = http
        .post(format!("{}/test-tenant/oauth2/v2.0/token", svc.env.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("code", &param(&cb, "code")),
            ("redirect_uri", &format!("{}/auth/callback", svc.base)),
            ("code_verifier", "whatever"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 400);
    assert!(token.text().await.unwrap().contains("AADSTS70008"));

    // The store holds the session's hash, never the cookie.
    let db = rusqlite::Connection::open(svc.env.dir.path().join("pitr.db")).unwrap();
    let hashes: Vec<String> = db
        .prepare("SELECT id_hash FROM web_sessions")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(hashes.len(), 1);
    assert_ne!(hashes[0], session);
    assert_eq!(hashes[0].len(), 64);
    let dump: String = db
        .query_row(
            "SELECT group_concat(id_hash || actor || roles || csrf) FROM web_sessions",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!dump.contains(&session));

    // The client secret went only to the token endpoint, in the body; the
    // service's log holds neither it nor the session cookie.
    let journal = svc.env.journal().await;
    let holders = crate::helpers::wire_holders(&journal, "web-secret-test-only");
    assert!(
        !holders.is_empty() && holders.iter().all(|p| p.ends_with("/oauth2/v2.0/token")),
        "{holders:?}"
    );
    assert!(journal.iter().all(|e| {
        let mut e = e.clone();
        e["body"] = Value::Null;
        !e.to_string().contains("web-secret-test-only")
    }));
    let log = svc.log().join("\n");
    assert!(
        log.contains("nonce is not the one of this sign-in"),
        "{log}"
    );
    assert!(!log.contains("web-secret-test-only") && !log.contains(&session));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_sharing_postgres_share_sign_ins_and_sessions() {
    // Both runners behind one address (a load balancer's): the redirect URI
    // registered in Entra ID is the same for both.
    let svc = web_service_at(
        Backend::Postgres(PgDatabase::create().await),
        "public_url = \"http://127.0.0.1:9\"",
    )
    .await;
    let other = svc.another_runner(&[(SECRET_ENV, "web-secret-test-only")]);
    let http = client(&svc);

    // Started on one runner, finished on the other.
    let (login, auth) = start(&http, &svc.base, "olga@contoso.com").await;
    let cb = authorize(&http, &auth).await;
    let r = callback(&http, &other.base, &cb, Some(&login)).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let session = cookie_value(&set_cookie(&r, "pitr_session"));

    // The session works on both.
    for base in [&svc.base, &other.base] {
        let r = http
            .get(format!("{base}/environments"))
            .header("cookie", format!("pitr_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{base}");
    }
    // Signed out on one, it is dead on both.
    let (_, _, page) = get_page(&svc, "/environments", Some(&session)).await;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the CSRF token in the page")
        .to_string();
    let r = http
        .post(format!("{}/auth/logout", other.base))
        .header("cookie", format!("pitr_session={session}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("csrf", csrf.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        location(&r).contains("/oauth2/v2.0/logout"),
        "{}",
        location(&r)
    );
    for base in [&svc.base, &other.base] {
        let r = http
            .get(format!("{base}/environments"))
            .header("cookie", format!("pitr_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{base}: signed out everywhere");
    }
}

/// `[auth] mode = "none"` (loopback only): the page signs in the local
/// operator without Entra ID, with a session and CSRF like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_entra_the_local_operator_is_signed_in() {
    let svc = Service::start_with(Backend::Sqlite, "", "mode = \"none\"", "", &[]).await;
    let http = client(&svc);
    let r = http
        .get(svc.url("/auth/login?return_to=/environments"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/environments".into())
    );
    let session = cookie_value(&set_cookie(&r, "pitr_session"));
    let (s, _, page) = get_page(&svc, "/", Some(&session)).await;
    assert_eq!(s, 200);
    assert!(
        page.contains("tester") && page.contains("Pitr.Operator"),
        "{page}"
    );
    let (s, _, _) = get_page(&svc, "/", None).await;
    assert_eq!(s, 303, "still only with a session");
}
