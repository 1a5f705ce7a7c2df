//! Sign-in with Entra ID (OpenID Connect authorization code flow with
//! PKCE), the server-side session and sign-out.
//!
//! `/auth/login` makes a sign-in in progress (a random, short-lived
//! `pitr_login` cookie from which its `state`, `nonce` and PKCE verifier
//! are derived; the store keeps only their hashes, under the cookie's hash)
//! and redirects to the tenant's authorize endpoint.
//! `/auth/callback` takes that sign-in once, checks `state`, redeems the
//! code at the token endpoint (with the verifier and, for a confidential
//! app, the client secret), checks the ID token like an API token (RS256,
//! the tenant's keys, issuer, audience = the web app's client id, expiry,
//! tenant) and its `nonce`, then opens a session: a random `pitr_session`
//! cookie (`HttpOnly`, `SameSite=Lax`, `Secure` and `__Host-` prefixed
//! unless on loopback, expiring) whose SHA-256 keys the session row, which holds who signed in,
//! their roles and groups, and the hash of the CSRF token of their forms
//! (the token is derived from the cookie). Sign-out
//! deletes the row: the cookie is worthless from then on, on every runner.
use super::view::{self, Message};
use super::WebState;
use super::{html, see_other, Web};
use cookies::*;

mod cookies;
use crate::service::roles::{Actor, Role};
use crate::store::{WebLogin, WebSession};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use chrono::Duration;
use serde::Deserialize;
use std::sync::Arc;

pub const SESSION_COOKIE: &str = "pitr_session";
const LOGIN_COOKIE: &str = "pitr_login";
/// How long a session lasts (then the person signs in again).
pub const SESSION_HOURS: i64 = 8;
/// How long a sign-in may take at Entra ID.
const LOGIN_MINUTES: i64 = 10;

/// The signed-in person of a page request: their session and, as the
/// service names callers, who they are.
pub struct Session {
    pub record: WebSession,
    pub actor: Actor,
    /// The token every form of this session carries (derived from the
    /// cookie; the store keeps its hash).
    pub csrf: String,
}

impl Session {
    pub fn principal(&self) -> &Actor {
        &self.actor
    }

    /// True when a form's `csrf` field is this session's token.
    pub fn csrf_ok(&self, form: &[(String, String)]) -> bool {
        form.iter()
            .find(|(k, _)| k == "csrf")
            .is_some_and(|(_, v)| same(v, &self.csrf))
    }
}

fn principal_of(s: &WebSession) -> Actor {
    Actor {
        actor: s.actor.clone(),
        roles: s.roles.iter().filter_map(|r| Role::from_claim(r)).collect(),
        groups: s.groups.clone(),
    }
}

/// A page for someone who is not signed in: a page view goes to the
/// sign-in and comes back; anything else is refused (401).
fn not_signed_in(parts: &Parts) -> Response {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    if parts.method == Method::GET && !parts.uri.path().ends_with("/events") {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", path)
            .finish();
        return see_other(&format!("/auth/login?{q}"));
    }
    html(
        StatusCode::UNAUTHORIZED,
        view::message(
            None,
            "Not signed in",
            "You are not signed in, or your session has ended (signed out or expired). Nothing was changed.",
            Some(("/auth/login", "Sign in")),
        ),
    )
}

impl FromRequestParts<Arc<WebState>> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &Arc<WebState>,
    ) -> Result<Self, Self::Rejection> {
        let Some(id) = cookie(&parts.headers, &cookie_name(&st.web, SESSION_COOKIE)) else {
            return Err(not_signed_in(parts));
        };
        match st.store.web_session(&hash(id), st.clock.now()).await {
            Ok(Some(s)) => Ok(Session {
                actor: principal_of(&s),
                record: s,
                csrf: csrf_of(id),
            }),
            Ok(None) => Err(not_signed_in(parts)),
            Err(e) => {
                tracing::warn!(error = %e, "web: reading the session failed");
                Err(html(
                    StatusCode::SERVICE_UNAVAILABLE,
                    view::message(
                        None,
                        "The store cannot be read",
                        &format!("pitr could not read your session: {e}. Try again in a moment."),
                        None,
                    ),
                ))
            }
        }
    }
}

fn failure(status: StatusCode, title: &str, text: &str) -> Response {
    html(
        status,
        view::message(None, title, text, Some(("/auth/login", "Sign in again"))),
    )
}

/// Opens a session for `who` and answers with its cookie and a redirect.
/// The session the browser had (`headers`' cookie) ends: a sign-in always
/// gets a new id, and no copy of the old cookie outlives it.
async fn open_session(
    st: &WebState,
    headers: &HeaderMap,
    principal: Actor,
    name: Option<String>,
    return_to: &str,
) -> Response {
    let Ok(id) = random_token(32) else {
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in failed",
            "no random numbers could be made for the session; try again",
        );
    };
    let now = st.clock.now();
    let session = WebSession {
        id_hash: hash(&id),
        actor: principal.actor.clone(),
        name,
        roles: principal
            .roles
            .iter()
            .map(|r| r.claim().to_string())
            .collect(),
        groups: principal.groups.clone(),
        csrf: hash(&csrf_of(&id)),
        created_at: now,
        expires_at: now + Duration::hours(SESSION_HOURS),
    };
    if let Some(old) = cookie(headers, &cookie_name(&st.web, SESSION_COOKIE)) {
        if let Err(e) = st.store.delete_web_session(&hash(old)).await {
            return failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in failed",
                &format!("the previous session could not be ended: {e}"),
            );
        }
    }
    if let Err(e) = st.store.insert_web_session(&session, now).await {
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in failed",
            &format!("the session could not be stored: {e}"),
        );
    }
    tracing::info!(actor = %principal.actor, "web: signed in");
    let web = &st.web;
    let mut r = see_other(return_to);
    for c in [
        set_cookie(web, SESSION_COOKIE, &id, "/", SESSION_HOURS * 3600),
        set_cookie(web, LOGIN_COOKIE, "", "/auth", 0),
    ] {
        if let Ok(v) = c.parse() {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    /// Passed on to Entra ID (who is signing in).
    login_hint: Option<String>,
}

/// `GET /auth/login`: to the tenant's sign-in.
pub async fn login(
    State(st): State<Arc<WebState>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let return_to = local_path(q.return_to.as_deref());
    if let Some(actor) = st.auth.local_actor() {
        // [auth] mode = "none" (loopback only): the local operator.
        return open_session(
            &st,
            &headers,
            Actor::local_operator(actor),
            None,
            &return_to,
        )
        .await;
    }
    let Some(client_id) = st.web.client_id.clone() else {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            view::message(
                None,
                "Sign-in is not set up",
                "This pitr has no web app registered: set [auth] client_id (and client_secret_env for a confidential app) and register the redirect URI shown in the README.",
                None,
            ),
        );
    };
    let endpoints = match st.auth.discovery().await {
        Ok(d) => d,
        Err(e) => {
            return failure(
                StatusCode::BAD_GATEWAY,
                "Entra ID cannot be reached",
                &format!(
                    "the tenant's sign-in endpoints could not be read ({e}); try again in a moment"
                ),
            )
        }
    };
    let Ok(id) = random_token(32) else {
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in failed",
            "no random numbers could be made; try again",
        );
    };
    let secrets = LoginSecrets::of(&id);
    let now = st.clock.now();
    let login = WebLogin {
        id_hash: hash(&id),
        state: hash(&secrets.state),
        nonce: hash(&secrets.nonce),
        verifier: hash(&secrets.verifier),
        return_to,
        expires_at: now + Duration::minutes(LOGIN_MINUTES),
    };
    if let Err(e) = st.store.insert_web_login(&login, now).await {
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in failed",
            &format!("the sign-in could not be stored: {e}"),
        );
    }
    let mut url = match url::Url::parse(&endpoints.authorization_endpoint) {
        Ok(u) => u,
        Err(e) => {
            return failure(
                StatusCode::BAD_GATEWAY,
                "Sign-in failed",
                &format!("the tenant's authorization endpoint is not a URL: {e}"),
            )
        }
    };
    {
        let mut qp = url.query_pairs_mut();
        qp.append_pair("client_id", &client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &st.web.redirect_uri())
            .append_pair("response_mode", "query")
            .append_pair("scope", "openid profile")
            .append_pair("state", &secrets.state)
            .append_pair("nonce", &secrets.nonce)
            .append_pair("code_challenge", &pkce_challenge(&secrets.verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(h) = q.login_hint.as_deref().filter(|h| !h.is_empty()) {
            qp.append_pair("login_hint", h);
        }
    }
    let mut r = see_other(url.as_str());
    if let Ok(v) = set_cookie(&st.web, LOGIN_COOKIE, &id, "/auth", LOGIN_MINUTES * 60).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/callback`: back from Entra ID with a code.
pub async fn callback(
    State(st): State<Arc<WebState>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let now = st.clock.now();
    let cookie_id = cookie(&headers, &cookie_name(&st.web, LOGIN_COOKIE));
    let login = match cookie_id {
        Some(id) => st.store.take_web_login(&hash(id), now).await,
        None => Ok(None),
    };
    let (login, secrets) = match (login, cookie_id) {
        (Ok(Some(l)), Some(id)) => (l, LoginSecrets::of(id)),
        (Ok(_), _) => {
            return failure(
                StatusCode::BAD_REQUEST,
                "Sign-in not recognised",
                "This sign-in was not started here, was already used, or took longer than 10 minutes. Start again.",
            )
        }
        (Err(e), _) => {
            return failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in failed",
                &format!("the sign-in could not be read: {e}"),
            )
        }
    };
    let state_ok = q
        .state
        .as_deref()
        .is_some_and(|s| same(s, &secrets.state) && same(&hash(s), &login.state));
    if !state_ok {
        tracing::warn!("web: a sign-in came back with a state that is not its own");
        return failure(
            StatusCode::BAD_REQUEST,
            "Sign-in refused",
            "The answer from Entra ID does not belong to this sign-in (state mismatch). Start again.",
        );
    }
    if let Some(err) = q.error {
        return failure(
            StatusCode::UNAUTHORIZED,
            "Entra ID did not sign you in",
            &format!(
                "{err}: {}",
                q.error_description
                    .unwrap_or_else(|| "no description".into())
            ),
        );
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return failure(
            StatusCode::BAD_REQUEST,
            "Sign-in refused",
            "Entra ID sent no authorization code.",
        );
    };
    let (Some(client_id), Some(http)) = (st.web.client_id.clone(), st.auth.http()) else {
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is not set up",
            "set [auth] client_id",
        );
    };
    let endpoints = match st.auth.discovery().await {
        Ok(d) => d,
        Err(e) => return failure(StatusCode::BAD_GATEWAY, "Entra ID cannot be reached", &e),
    };
    let redirect_uri = st.web.redirect_uri();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", client_id.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", secrets.verifier.as_str()),
        ("scope", "openid profile"),
    ];
    if let Some(secret) = st.web.client_secret.as_deref() {
        form.push(("client_secret", secret));
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let answer = http
        .post(&endpoints.token_endpoint)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await;
    let answer: TokenAnswer = match answer {
        Ok(r) => match r.json().await {
            Ok(a) => a,
            Err(e) => {
                return failure(
                    StatusCode::BAD_GATEWAY,
                    "Sign-in failed",
                    &format!("the token endpoint's answer is not readable: {e}"),
                )
            }
        },
        Err(e) => {
            return failure(
                StatusCode::BAD_GATEWAY,
                "Entra ID cannot be reached",
                &format!("the token endpoint did not answer: {e}"),
            )
        }
    };
    let Some(id_token) = answer.id_token else {
        return failure(
            StatusCode::UNAUTHORIZED,
            "Entra ID did not sign you in",
            &format!(
                "{}: {}",
                answer.error.unwrap_or_else(|| "no ID token".into()),
                answer.error_description.unwrap_or_default()
            ),
        );
    };
    match st
        .auth
        .check_id_token(&id_token, &client_id, &secrets.nonce)
        .await
    {
        Ok(who) => open_session(&st, &headers, who.principal, who.name, &login.return_to).await,
        Err(e) => {
            tracing::warn!(reason = %e, "web: sign-in refused");
            failure(StatusCode::UNAUTHORIZED, "Sign-in refused", &e.to_string())
        }
    }
}

/// `POST /auth/logout`: ends the session here (the row is deleted, on
/// every runner), then at Entra ID.
pub async fn logout(
    State(st): State<Arc<WebState>>,
    session: Session,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if !session.csrf_ok(&form) {
        return super::pages::csrf_refused(&session);
    }
    if let Err(e) = st.store.delete_web_session(&session.record.id_hash).await {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            view::message(
                None,
                "Sign-out failed",
                &format!("the session could not be ended: {e}; try again"),
                None,
            ),
        );
    }
    tracing::info!(actor = %session.record.actor, "web: signed out");
    let back = format!("{}/auth/signed-out", st.web.public_url());
    let to = match (st.auth.local_actor(), st.auth.discovery().await) {
        (None, Ok(d)) => d.end_session_endpoint.and_then(|e| {
            let mut u = url::Url::parse(&e).ok()?;
            let mut q = u.query_pairs_mut();
            q.append_pair("post_logout_redirect_uri", &back);
            if let Some(c) = &st.web.client_id {
                q.append_pair("client_id", c);
            }
            drop(q);
            Some(u.to_string())
        }),
        _ => None,
    }
    .unwrap_or_else(|| "/auth/signed-out".into());
    let mut r = see_other(&to);
    if let Ok(v) = set_cookie(&st.web, SESSION_COOKIE, "", "/", 0).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `GET /auth/signed-out`.
pub async fn signed_out() -> Response {
    Message::page(
        None,
        "Signed out",
        "You have signed out of pitr. Your session has ended on the server.",
        Some(("/auth/login", "Sign in again")),
    )
    .into_response()
}

#[cfg(test)]
mod tests;
