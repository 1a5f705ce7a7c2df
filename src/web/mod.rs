//! The work-items web page of `pitr serve`: server-rendered HTML (askama
//! templates compiled into the binary, under `templates/`), the CSS and the
//! small live-timeline script embedded too, a strict Content-Security-Policy
//! (nothing inline, nothing from elsewhere), forms that work without
//! JavaScript.
//!
//! - `signin.rs`: Entra ID sign-in (OpenID Connect authorization code flow
//!   with PKCE, state and nonce), the server-side session (an opaque cookie,
//!   stored hashed in the store), sign-out.
//! - `pages/`: the pages. Every page reads and acts through the use cases of
//!   [`crate::service`] (which decide the roles, for the API too) and shows
//!   their views ([`crate::service::views`]); it asks
//!   [`crate::service::roles::decide`] only to offer what the person may do.
//!
//! Every POST carries the session's CSRF token; every action asks the roles
//! first (deny by default).
mod assets;
mod pages;
mod signin;
mod view;

pub use signin::Session;

use crate::auth::Authenticator;
use crate::clock::SharedClock;
use crate::config::{AuthMode, Config};
use crate::http::limits::{BODY_LIMIT, CALL_TIMEOUT};
use crate::service::Service;
use crate::store::SharedStore;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// What every page shares: the service, the sign-in, the page's settings.
pub struct WebState {
    pub service: Arc<Service>,
    pub auth: Arc<Authenticator>,
    pub web: Web,
    pub config: Arc<Config>,
    pub store: SharedStore,
    pub clock: SharedClock,
}

impl WebState {
    pub fn new(service: Arc<Service>, auth: Arc<Authenticator>, web: Web) -> WebState {
        WebState {
            config: service.config.clone(),
            store: service.store.clone(),
            clock: service.clock.clone(),
            service,
            auth,
            web,
        }
    }
}

/// The web page's settings (sign-in, URL, Content-Security-Policy).
#[derive(Clone)]
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

/// Without the client secret (said `set` or `none`).
impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "(set)"),
            )
            .field("public_url", &self.public_url())
            .field("csp", &self.csp)
            .finish()
    }
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
        !crate::config::is_loopback_url(&self.public_url())
    }

    /// The Content-Security-Policy of every response of the service.
    pub fn csp(&self) -> &str {
        &self.csp
    }

    /// `{public_url}/auth/callback`, the redirect URI registered in Entra ID.
    pub fn redirect_uri(&self) -> String {
        format!("{}/auth/callback", self.public_url())
    }
}

/// The page routes (mounted beside the API's by [`crate::http`]).
pub fn router(state: Arc<WebState>) -> Router {
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
            CALL_TIMEOUT,
        ));
    // The live timeline's stream lives longer than a call.
    let streams = Router::new().route("/requests/{id}/events", get(pages::events));
    pages
        .merge(streams)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(error_page))
        .with_state(state)
}

/// A page's error that is bare text or empty (axum's answer to a query,
/// path or form it cannot read, a body over the limit, a method the
/// address does not take, a timeout) becomes a page that says what
/// happened, with the same status.
async fn error_page(method: axum::http::Method, uri: axum::http::Uri, r: Response) -> Response {
    let status = r.status();
    let plain = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return r;
    }
    let (mut parts, body) = r.into_parts();
    let said = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let path = uri.path();
    let (title, text) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "Too large".to_string(),
            format!(
                "The form is larger than {} bytes, the most pitr accepts. Nothing was changed; shorten what you typed.",
                BODY_LIMIT
            ),
        ),
        StatusCode::METHOD_NOT_ALLOWED if method == axum::http::Method::GET => (
            "Not this way".to_string(),
            format!("{path} takes only a POST, from the page's buttons and forms. Nothing was changed."),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "Not this way".to_string(),
            format!("{path} is a page to open (GET), not a form to send a {method} to. Nothing was changed."),
        ),
        StatusCode::NOT_FOUND => (
            "Not found".to_string(),
            format!("There is no page at {path}. The work items list every request."),
        ),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => (
            "Try again".to_string(),
            "pitr took too long to answer. Nothing may have been changed; reload the page to see."
                .to_string(),
        ),
        s if s.is_server_error() => (
            "Something went wrong".to_string(),
            format!("pitr could not answer ({said}). Reload the page to see what was done."),
        ),
        _ => (
            "The request could not be read".to_string(),
            format!(
                "{}. Nothing was changed; go back to the page and use its links and forms.",
                if said.is_empty() { status.to_string() } else { said }
            ),
        ),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let body = view::message(None, &title, &text, Some(("/", "Back to the work items")));
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// `404` for a path that is neither a page nor the API's.
pub fn not_found_page(uri: &axum::http::Uri) -> Response {
    html(
        StatusCode::NOT_FOUND,
        view::message(
            None,
            "Not found",
            &format!(
                "There is no page at {}. The work items list every request.",
                uri.path()
            ),
            Some(("/", "Back to the work items")),
        ),
    )
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

    /// The client secret is never in a debug print (a log line, a panic).
    #[test]
    fn the_client_secret_is_not_in_debug_output() {
        std::env::set_var("PITR_TEST_WEB_DEBUG_SECRET", "s3cr3t-value-xyz");
        let w = Web::from_config(&config(
            "",
            "mode = \"entra\"\nclient_id = \"c\"\nclient_secret_env = \"PITR_TEST_WEB_DEBUG_SECRET\"",
        ))
        .unwrap();
        assert_eq!(w.client_secret.as_deref(), Some("s3cr3t-value-xyz"));
        let shown = format!("{w:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("client_id"), "{shown}");
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
