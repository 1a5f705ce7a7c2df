//! The web page's sign-ins in progress and sessions, as the store keeps
//! them: keyed by the SHA-256 of the opaque cookie value (a stolen copy of
//! the store holds no usable cookie), with an expiry. Shared by every
//! runner of a PostgreSQL store, so a sign-in may start on one runner and
//! finish on another. `pitr store copy` does not carry them over: after a
//! move, people sign in again.
use chrono::{DateTime, Utc};

/// An OpenID Connect sign-in between the redirect to Entra ID and the
/// callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebLogin {
    pub id_hash: String,
    /// The SHA-256 (hex) of the `state` sent to Entra ID. The `state`, the
    /// `nonce` and the PKCE verifier are derived from the login cookie,
    /// which only the browser holds: the store keeps only their hashes.
    pub state: String,
    /// The SHA-256 (hex) of the `nonce` the ID token must carry.
    pub nonce: String,
    /// The SHA-256 (hex) of the PKCE code verifier.
    pub verifier: String,
    /// The page to land on after the sign-in (a local path).
    pub return_to: String,
    pub expires_at: DateTime<Utc>,
}

/// A signed-in person's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub id_hash: String,
    /// As the API names a caller (`preferred_username`, ...).
    pub actor: String,
    /// The display name (`name` claim), if any.
    pub name: Option<String>,
    /// App role values (`Pitr.Operator`, ...), as the ID token carried them.
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    /// The SHA-256 (hex) of the token every form of this session carries
    /// (the token is derived from the session cookie).
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A JSON array of strings, as stored.
pub(crate) fn list_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Reads a stored JSON array of strings.
pub(crate) fn list_from_json(table: &str, s: &str) -> super::Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| super::StoreError::Corrupt(format!("{table}: {e}")))
}
