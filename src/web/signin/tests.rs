use super::*;

fn web(public_url: &str) -> Web {
    let c: crate::config::Config = toml::from_str(&format!(
        "[serve]\npublic_url = \"{public_url}\"\n[auth]\nclient_id = \"c\"\n"
    ))
    .unwrap();
    Web::from_config(&c).unwrap()
}

/// Off loopback the cookies are `Secure` and `__Host-` prefixed (the
/// browser then takes them only from this host over HTTPS, with
/// `Path=/`: a sibling subdomain cannot plant one); on loopback, plain.
#[test]
fn cookies_off_loopback_are_host_only() {
    let w = web("https://pitr.contoso.com");
    assert_eq!(
        set_cookie(&w, SESSION_COOKIE, "v", "/", 10),
        "__Host-pitr_session=v; Path=/; Max-Age=10; HttpOnly; SameSite=Lax; Secure"
    );
    assert_eq!(
        set_cookie(&w, LOGIN_COOKIE, "v", "/auth", 10),
        "__Host-pitr_login=v; Path=/; Max-Age=10; HttpOnly; SameSite=Lax; Secure"
    );
    let mut h = HeaderMap::new();
    h.insert(
        header::COOKIE,
        "pitr_session=planted; __Host-pitr_session=real"
            .parse()
            .unwrap(),
    );
    assert_eq!(cookie(&h, &cookie_name(&w, SESSION_COOKIE)), Some("real"));
    let local = web("http://127.0.0.1:8080");
    assert_eq!(
        set_cookie(&local, LOGIN_COOKIE, "v", "/auth", 10),
        "pitr_login=v; Path=/auth; Max-Age=10; HttpOnly; SameSite=Lax"
    );
    assert_eq!(
        cookie(&h, &cookie_name(&local, SESSION_COOKIE)),
        Some("planted")
    );
}

#[test]
fn cookies_paths_and_comparisons() {
    let mut h = HeaderMap::new();
    h.insert(
        header::COOKIE,
        "a=1; pitr_session=xyz; b=2".parse().unwrap(),
    );
    assert_eq!(cookie(&h, "pitr_session"), Some("xyz"));
    assert_eq!(cookie(&h, "pitr"), None);
    assert_eq!(local_path(Some("/requests/1")), "/requests/1");
    assert_eq!(local_path(Some("//evil.example/")), "/");
    assert_eq!(local_path(Some("https://evil.example/")), "/");
    assert_eq!(local_path(None), "/");
    for trick in [
        "/\t/evil.example",
        "/\n/x",
        "/\r\n/x",
        "/\\/x",
        "/ /x",
        "/\u{0}",
    ] {
        assert_eq!(local_path(Some(trick)), "/", "{trick:?}");
    }
    assert_eq!(local_path(Some("/?status=a&page=2")), "/?status=a&page=2");
    assert!(same("abc", "abc"));
    assert!(!same("abc", "abd"));
    assert!(!same("abc", "ab"));
    let a = random_token(32).unwrap();
    assert_eq!(a.len(), 43);
    assert_ne!(a, random_token(32).unwrap());
    assert_eq!(hash("x").len(), 64);
    // Derived secrets: fixed per cookie, distinct per purpose and per
    // cookie, and a PKCE verifier of the length RFC 7636 asks (43-128).
    let s = LoginSecrets::of(&a);
    assert_eq!(s.state, LoginSecrets::of(&a).state);
    assert_ne!(s.state, s.nonce);
    assert_ne!(s.nonce, s.verifier);
    assert_ne!(csrf_of(&a), s.state);
    assert_ne!(s.state, LoginSecrets::of(&random_token(32).unwrap()).state);
    assert_eq!(s.verifier.len(), 43);
    // RFC 7636, appendix B.
    assert_eq!(
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}
