//! The work-items web page of `pitr serve`: server-rendered HTML (askama
//! templates compiled into the binary, under `templates/`), the CSS and the
//! small live-timeline script embedded too, a strict Content-Security-Policy
//! (nothing inline, nothing from elsewhere), forms that work without
//! JavaScript.
//!
//! - `signin.rs`: Entra ID sign-in (OpenID Connect authorization code flow
//!   with PKCE, state and nonce), the server-side session (an opaque cookie,
//!   stored hashed in the store), sign-out.
//! - `pages.rs`: the pages. Every page reads and acts through the API's own
//!   functions ([`crate::api::roles::decide`], the `*_as` operations of the
//!   routes, [`crate::views`]), so the rules and roles are the API's, once.
//!
//! Every POST carries the session's CSRF token; every action asks the roles
//! first (deny by default).
mod assets;
mod pages;
mod signin;
mod view;

pub use signin::Session;

use crate::api::ApiState;
use crate::config::{AuthMode, Config};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// What the web page needs beyond the API's state.
#[derive(Debug, Clone)]
pub struct Web {
    /// The web app's client id (`[auth] client_id`); without it (in mode
    /// `entra`), nobody can sign in and the pages say so.
    pub client_id: Option<String>,
    /// The client secret of a confidential web app (from
    /// `[auth] client_secret_env`); never logged.
    client_secret: Option<String>,
    /// `[serve] public_url`, without a trailing slash.
    configured_url: Option<String>,
    /// Else the address the server is bound to (`listen` may say port 0).
    bound_url: std::sync::OnceLock<String>,
    /// Else `http(s)://{listen}`.
    fallback_url: String,
    /// The Content-Security-Policy of every page.
    csp: String,
}

impl Web {
    /// From `[serve]` and `[auth]`; the client secret is read from its
    /// variable now (a named but unset variable is refused).
    pub fn from_config(config: &Config) -> Result<Web, String> {
        let client_secret = match &config.auth.client_secret_env {
            Some(var) if config.auth.mode == AuthMode::Entra => {
                let v = std::env::var(var).unwrap_or_default();
                if v.is_empty() {
                    return Err(format!(
                        "[auth] client_secret_env names {var}, which is not set; set it to the web app's client secret, or remove client_secret_env"
                    ));
                }
                Some(v)
            }
            _ => None,
        };
        let trim = |u: String| u.trim_end_matches('/').to_string();
        // The sign-out form ends at the tenant's end-session endpoint: a
        // form's redirects are bound by form-action too.
        let authority = url::Url::parse(&config.auth_authority())
            .ok()
            .map(|u| u.origin().ascii_serialization())
            .filter(|o| o != "null")
            .unwrap_or_default();
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self' {authority}; frame-ancestors 'none'; \
             base-uri 'none'"
        );
        Ok(Web {
            client_id: config.auth.client_id.clone(),
            client_secret,
            configured_url: config.serve.public_url.clone().map(trim),
            bound_url: std::sync::OnceLock::new(),
            fallback_url: trim(config.serve.public_url()),
            csp,
        })
    }

    /// The URL people reach the page at (without a trailing slash).
    pub fn public_url(&self) -> String {
        self.configured_url
            .clone()
            .or_else(|| self.bound_url.get().cloned())
            .unwrap_or_else(|| self.fallback_url.clone())
    }

    /// Without `[serve] public_url`: the server's actual address.
    pub fn set_bound_url(&self, url: String) {
        let _ = self.bound_url.set(url);
    }

    /// Cookies are `Secure` unless the page is served on a loopback address.
    pub fn secure_cookies(&self) -> bool {
        let loopback = url::Url::parse(&self.public_url())
            .ok()
            .and_then(|u| {
                u.host().map(|h| match h {
                    url::Host::Domain(d) => d == "localhost",
                    url::Host::Ipv4(a) => a.is_loopback(),
                    url::Host::Ipv6(a) => a.is_loopback(),
                })
            })
            .unwrap_or(false);
        !loopback
    }

    /// `{public_url}/auth/callback`, the redirect URI registered in Entra ID.
    pub fn redirect_uri(&self) -> String {
        format!("{}/auth/callback", self.public_url())
    }
}

/// The page routes (merged into the API's router by the server).
pub fn router(state: Arc<ApiState>) -> Router {
    let pages = Router::new()
        .route("/", get(pages::items))
        .route("/requests/new", get(pages::new_form).post(pages::submit))
        .route("/requests/{id}", get(pages::request))
        .route("/requests/{id}/{action}", post(pages::action))
        .route("/environments", get(pages::environments))
        .route("/environments/{name}", get(pages::environment))
        .route("/auth/login", get(signin::login))
        .route("/auth/callback", get(signin::callback))
        .route("/auth/logout", post(signin::logout))
        .route("/auth/signed-out", get(signin::signed_out))
        .route("/static/{file}", get(assets::asset))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::api::CALL_TIMEOUT,
        ));
    // The live timeline's stream lives longer than a call.
    let streams = Router::new().route("/requests/{id}/events", get(pages::events));
    let csp = state.web.csp.clone();
    pages
        .merge(streams)
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::api::routes::BODY_LIMIT,
        ))
        .layer(axum::middleware::map_response(move |mut r: Response| {
            let csp = csp.clone();
            async move {
                let h = r.headers_mut();
                if let Ok(v) = HeaderValue::from_str(&csp) {
                    h.insert(header::CONTENT_SECURITY_POLICY, v);
                }
                h.insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
                h.insert(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("same-origin"),
                );
                if !h.contains_key(header::CACHE_CONTROL) {
                    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                }
                r
            }
        }))
        .with_state(state)
}

/// An HTML page with a status.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A `303 See Other` to a local path.
pub(crate) fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(serve: &str, auth: &str) -> Config {
        toml::from_str(&format!("[serve]\n{serve}\n[auth]\n{auth}\n")).unwrap()
    }

    #[test]
    fn secure_cookies_off_loopback_and_the_redirect_uri() {
        let w = Web::from_config(&config(
            "public_url = \"https://pitr.contoso.com/\"",
            "client_id = \"c\"",
        ))
        .unwrap();
        assert!(w.secure_cookies());
        assert_eq!(w.redirect_uri(), "https://pitr.contoso.com/auth/callback");
        assert!(w
            .csp
            .contains("form-action 'self' https://login.microsoftonline.com"));
        let local = Web::from_config(&config("listen = \"127.0.0.1:0\"", "")).unwrap();
        local.set_bound_url("http://127.0.0.1:4711".into());
        assert!(!local.secure_cookies());
        assert_eq!(local.redirect_uri(), "http://127.0.0.1:4711/auth/callback");
    }

    #[test]
    fn a_named_secret_variable_must_be_set() {
        let e = Web::from_config(&config(
            "",
            "client_id = \"c\"\nclient_secret_env = \"PITR_TEST_SURELY_UNSET_WEB_SECRET\"",
        ))
        .unwrap_err();
        assert!(e.contains("PITR_TEST_SURELY_UNSET_WEB_SECRET"), "{e}");
    }
}
