//! The secrets of a sign-in and a session: random tokens, what is derived
//! from a cookie (state, nonce, PKCE verifier, CSRF token), how cookies are
//! named, set, read and stored (hashed), and where a sign-in may return to.
use super::Web;
use axum::http::{header, HeaderMap};
use base64::Engine as _;

/// `n` random bytes from the system's CSPRNG, base64url.
pub(crate) fn random_token(n: usize) -> Result<String, String> {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| "the system's random number generator failed".to_string())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// The S256 PKCE challenge of a verifier (RFC 7636).
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// A secret derived from a cookie's value for one `purpose` (HMAC-SHA-256
/// keyed by the value, base64url): the sign-in's `state`, `nonce` and PKCE
/// verifier from the login cookie, the CSRF token from the session cookie.
/// Only the browser holds the cookie, so the store holds only hashes and a
/// copy of it gives nothing to act with.
pub(crate) fn derive(cookie: &str, purpose: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, cookie.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, purpose.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
}

/// The secrets of the sign-in whose login cookie is `id`.
pub(super) struct LoginSecrets {
    pub(super) state: String,
    pub(super) nonce: String,
    pub(super) verifier: String,
}

impl LoginSecrets {
    pub(super) fn of(id: &str) -> LoginSecrets {
        LoginSecrets {
            state: derive(id, "pitr oidc state"),
            nonce: derive(id, "pitr oidc nonce"),
            verifier: derive(id, "pitr pkce verifier"),
        }
    }
}

/// The CSRF token of the session whose cookie is `id`.
pub(super) fn csrf_of(id: &str) -> String {
    derive(id, "pitr csrf")
}

/// SHA-256 in hex: how cookie values are stored.
pub(crate) fn hash(value: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares in time independent of where the values differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name`.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The name of cookie `base`: off loopback `__Host-{base}`, which browsers
/// take only when `Secure`, from this very host, with `Path=/` (no sibling
/// subdomain can plant one); on loopback (plain HTTP) `base` itself.
pub(super) fn cookie_name(web: &Web, base: &str) -> String {
    if web.secure_cookies() {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// A `Set-Cookie` value for cookie `base` (on `path` when on loopback; a
/// `__Host-` cookie is always on `/`).
pub(super) fn set_cookie(web: &Web, base: &str, value: &str, path: &str, max_age: i64) -> String {
    let secure = web.secure_cookies();
    format!(
        "{}={value}; Path={}; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        cookie_name(web, base),
        if secure { "/" } else { path },
        if secure { "; Secure" } else { "" }
    )
}

/// A local path to return to after the sign-in (anything else: `/`).
///
/// Only visible ASCII is kept: browsers drop tabs and newlines from a
/// `Location` (`/\t/evil.example` becomes `//evil.example`, another site)
/// and read `\` as `/`; a control character would break the header.
pub(super) fn local_path(p: Option<&str>) -> String {
    match p {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            p.to_string()
        }
        _ => "/".into(),
    }
}
