//! The mock's stand-in for Entra ID's sign-in of people (OpenID Connect
//! authorization code flow with PKCE), so that `pitr serve`'s web page is
//! signed in through the real flow in tests and dry runs:
//!
//! - `GET /{tenant}/oauth2/v2.0/authorize`: signs in the scenario user named
//!   by `login_hint` (their `preferred_username`, or their `name`) without a
//!   password prompt and redirects to `redirect_uri` with `code` and
//!   `state`. Without a `login_hint` it shows a page to choose a user (the
//!   local demo). PKCE is required (`code_challenge_method=S256`), as Entra
//!   requires it of single-page apps and recommends it for every client.
//! - `POST /{tenant}/oauth2/v2.0/token` with `grant_type=authorization_code`
//!   ([`redeem`]): the code once, for the same client and `redirect_uri`,
//!   with the `code_verifier` whose SHA-256 is the challenge; answers an ID
//!   token (audience: the client; with the `nonce`) signed like the access
//!   tokens.
//! - `GET /{tenant}/oauth2/v2.0/logout` (end session): redirects to
//!   `post_logout_redirect_uri`.
//!
//! Errors are Entra's: before the redirect URI is known, a page; after, a
//! redirect with `error` and `error_description`; at the token endpoint, the
//! JSON error with its AADSTS code.
use super::arm::Ctx;
use super::entra::{AuthCode, UserSpec};
use super::http::{Reply, Req};
use super::state::State;
use base64::Engine as _;
use chrono::Duration;
use serde_json::json;

/// How long a code may wait to be redeemed (Entra: about 10 minutes).
const CODE_LIFETIME_SECS: i64 = 600;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title></head><body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    )
}

/// `redirect_uri` with `params` added to its query.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => uri.to_string(),
    }
}

/// The S256 PKCE challenge of a verifier.
pub(crate) fn challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

pub(crate) fn authorize(st: &mut State, req: &Req, ctx: &Ctx) -> Reply {
    let tenant = req.segments.first().cloned().unwrap_or_default();
    let param = |n: &str| req.param(n).filter(|v| !v.is_empty());
    // Until the redirect URI is known to be usable, errors are a page.
    let Some(redirect_uri) = param("redirect_uri") else {
        return Reply::html(
            400,
            page(
                "Sign-in error",
                "<p>AADSTS900144: The request must contain the parameter 'redirect_uri'.</p>",
            ),
        );
    };
    let usable = url::Url::parse(redirect_uri)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.fragment().is_none());
    if usable.is_none() {
        return Reply::html(
            400,
            page(
                "Sign-in error",
                &format!(
                    "<p>AADSTS50011: The redirect URI '{}' is not a valid http(s) URL.</p>",
                    escape(redirect_uri)
                ),
            ),
        );
    }
    let state = param("state").unwrap_or("");
    let fail = |error: &str, description: &str| {
        let mut p = vec![("error", error), ("error_description", description)];
        if !state.is_empty() {
            p.push(("state", state));
        }
        Reply::redirect(with_query(redirect_uri, &p))
    };
    let Some(client_id) = param("client_id") else {
        return fail(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        );
    };
    if param("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            "AADSTS700054: response_type must be 'code' (the authorization code flow).",
        );
    }
    let scopes: Vec<&str> = param("scope").unwrap_or("").split_whitespace().collect();
    if !scopes.contains(&"openid") {
        return fail(
            "invalid_request",
            "AADSTS900144: The scope must contain 'openid' to sign in.",
        );
    }
    let Some(code_challenge) = param("code_challenge") else {
        return fail(
            "invalid_request",
            "AADSTS9002325: Proof Key for Code Exchange is required: send code_challenge.",
        );
    };
    if param("code_challenge_method") != Some("S256") {
        return fail(
            "invalid_request",
            "AADSTS501491: code_challenge_method must be S256.",
        );
    }
    let people: Vec<&UserSpec> = st.users.iter().filter(|u| u.app_id.is_none()).collect();
    let hint = param("login_hint");
    let user = hint.and_then(|h| {
        people
            .iter()
            .find(|u| u.preferred_username.as_deref() == Some(h) || u.name == h)
            .map(|u| (*u).clone())
    });
    let Some(user) = user else {
        // No (known) hint: the person chooses who they are.
        let mut list = String::from("<ul>");
        for u in &people {
            let who = u
                .preferred_username
                .clone()
                .unwrap_or_else(|| u.name.clone());
            let mut link = url::Url::parse(&format!("{}{}", ctx.base, req.path))
                .map(|mut l| {
                    l.set_query(Some(&req.query));
                    l
                })
                .ok();
            if let Some(l) = link.as_mut() {
                let kept: Vec<(String, String)> = l
                    .query_pairs()
                    .filter(|(k, _)| k != "login_hint")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                l.query_pairs_mut()
                    .clear()
                    .extend_pairs(kept)
                    .append_pair("login_hint", &who);
            }
            let href = link.map(|l| l.to_string()).unwrap_or_default();
            list.push_str(&format!(
                "<li><a href=\"{}\">{}</a> ({})</li>",
                escape(&href),
                escape(&who),
                escape(&u.roles.join(", "))
            ));
        }
        list.push_str("</ul>");
        let note = match hint {
            Some(h) => format!(
                "<p>AADSTS50034: The user account '{}' does not exist in this tenant.</p>",
                escape(h)
            ),
            None => String::new(),
        };
        return Reply::html(
            if hint.is_some() { 400 } else { 200 },
            page(
                "Mock Azure: choose who signs in",
                &format!("{note}<p>No password is asked: this is the mock Azure.</p>{list}"),
            ),
        );
    };
    let code = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    st.auth_codes.retain(|_, c| c.expires_at > ctx.now);
    st.auth_codes.insert(
        code.clone(),
        AuthCode {
            user,
            tenant,
            client_id: client_id.to_string(),
            redirect_uri: redirect_uri.to_string(),
            challenge: code_challenge.to_string(),
            nonce: param("nonce").map(str::to_string),
            expires_at: ctx.now + Duration::seconds(CODE_LIFETIME_SECS),
        },
    );
    let mut p = vec![("code", code.as_str())];
    if !state.is_empty() {
        p.push(("state", state));
    }
    Reply::redirect(with_query(redirect_uri, &p))
}

/// `grant_type=authorization_code` at the token endpoint.
pub(crate) fn redeem(st: &mut State, form: &[(String, String)], ctx: &Ctx) -> Reply {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let err = |status: u16, error: &str, code: i32, text: &str| {
        Reply::entra_error(status, error, code, text, ctx.now)
    };
    for name in ["code", "client_id", "redirect_uri"] {
        if field(name).is_none() {
            return err(
                400,
                "invalid_request",
                900144,
                &format!("AADSTS900144: The request body must contain the following parameter: '{name}'."),
            );
        }
    }
    let code = field("code").unwrap_or_default();
    // A code is redeemed once, whatever the outcome.
    let Some(grant) = st.auth_codes.remove(code) else {
        return err(
            400,
            "invalid_grant",
            70008,
            "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity, or was already redeemed.",
        );
    };
    if grant.expires_at <= ctx.now {
        return err(
            400,
            "invalid_grant",
            70008,
            "AADSTS70008: The provided authorization code has expired.",
        );
    }
    if field("client_id") != Some(grant.client_id.as_str()) {
        return err(
            400,
            "invalid_grant",
            70000,
            "AADSTS70000: The provided authorization code was issued to another client.",
        );
    }
    if field("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return err(
            400,
            "invalid_grant",
            70000,
            "AADSTS70000: The redirect_uri does not match the one the authorization code was issued for.",
        );
    }
    let Some(verifier) = field("code_verifier") else {
        return err(
            400,
            "invalid_request",
            900144,
            "AADSTS900144: The request body must contain the following parameter: 'code_verifier'.",
        );
    };
    if challenge(verifier) != grant.challenge {
        return err(
            400,
            "invalid_grant",
            501481,
            "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        );
    }
    let expires = i64::try_from(st.settings.token_expires_in_secs).unwrap_or(3600);
    let mut claims = super::entra::claims(
        ctx.base,
        &grant.user,
        &grant.client_id,
        &grant.tenant,
        ctx.now,
        expires,
        0,
    );
    claims["azp"] = json!(grant.client_id);
    if let Some(n) = &grant.nonce {
        claims["nonce"] = json!(n);
    }
    match st.signing.sign(&claims) {
        Ok(id_token) => Reply::json(
            200,
            json!({
                "token_type": "Bearer",
                "scope": "openid profile",
                "expires_in": expires,
                "ext_expires_in": expires,
                "id_token": id_token,
            }),
        ),
        Err(e) => err(500, "server_error", 0, &e),
    }
}

/// End session: back to `post_logout_redirect_uri`, or a page.
pub(crate) fn logout(req: &Req) -> Reply {
    let back = req
        .param("post_logout_redirect_uri")
        .filter(|u| url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")));
    match back {
        Some(u) => Reply::redirect(u.to_string()),
        None => Reply::html(
            200,
            page(
                "Signed out",
                "<p>You have signed out of the mock Azure.</p>",
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636, appendix B.
    #[test]
    fn the_s256_challenge_of_the_rfc_example() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
