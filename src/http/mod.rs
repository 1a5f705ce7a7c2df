//! `pitr serve`'s HTTP side: the listener (plain or TLS), its limits and
//! timeouts, the security headers on every response, and the graceful
//! shutdown on the service's stop signal; it mounts the API's router
//! ([`crate::api`]) and the page's ([`crate::web`]) side by side, each with
//! its own state over the same [`crate::service::Service`]. `api` and `web`
//! never import each other.
pub mod limits;
mod server;

pub use server::{serve, Listening};

use axum::http::{header, HeaderValue, Uri};
use axum::response::Response;
use axum::Router;

/// A path nobody serves: a problem under `/api`, else the page's 404.
async fn not_found(uri: Uri) -> Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        crate::api::routes::not_found().await
    } else {
        crate::web::not_found_page(&uri)
    }
}

/// The security headers on every response of the service (pages, their
/// redirects and errors, the API, and paths nobody serves): the pages'
/// Content-Security-Policy (a JSON answer loads nothing either), no
/// framing, no sniffing, no referrer to other sites, and nothing cached
/// unless the response says otherwise (the embedded assets).
fn with_security_headers(router: Router, csp: String) -> Router {
    router.layer(axum::middleware::map_response(move |mut r: Response| {
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
}
