//! The mock's stand-in for Entra ID as an issuer of access tokens for
//! people and applications: an RSA signing key (made on first use, with a
//! `kid`), the JWKS that publishes it (and the previous key after a
//! rotation), and RS256 access tokens for the scenario's `[[users]]`.
//! `pitr serve` checks these tokens with the same code as Entra's.
//!
//! Test-only: `POST /_mock/token` mints a token for a named user without
//! any credential. The standard token endpoint also issues them: the
//! password grant for a user (by `preferred_username`), client credentials
//! for an application user (by `app_id`) with a non-ARM scope.
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A person or application the mock issues tokens for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserSpec {
    /// How tests name it (`POST /_mock/token {"user": NAME}`).
    pub name: String,
    /// The object id (`oid`); default: a fresh UUID.
    pub oid: Option<String>,
    /// `preferred_username` (a person's sign-in name); none for an app.
    pub preferred_username: Option<String>,
    /// Entra app roles (`roles`), e.g. `Pitr.Operator`.
    pub roles: Vec<String>,
    /// Group object ids (`groups`).
    pub groups: Vec<String>,
    /// Set for an application (app-only tokens: `azp`, `idtyp = app`).
    pub app_id: Option<String>,
}

/// An authorization code of the sign-in, waiting to be redeemed once.
#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub user: UserSpec,
    pub tenant: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub challenge: String,
    pub nonce: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// One signing key.
struct Key {
    kid: String,
    encoding: EncodingKey,
    /// The public half as a JWK (`kty`, `n`, `e`).
    jwk: Value,
}

/// The signing keys: the current one first, then the previous one (still
/// published after a rotation, so tokens it signed stay valid a while).
#[derive(Default)]
pub(crate) struct Keys {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("Keys").field("kids", &kids).finish()
    }
}

fn new_key() -> Result<Key, String> {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
        .map_err(|e| format!("generating an RSA key: {e}"))?;
    let encoding = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes())
        .map_err(|e| format!("loading the RSA key: {e}"))?;
    let kid = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, Algorithm::RS256)
        .map_err(|e| format!("the public key as a JWK: {e}"))?;
    let mut jwk = serde_json::to_value(jwk).map_err(|e| e.to_string())?;
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    Ok(Key { kid, encoding, jwk })
}

impl Keys {
    fn ensure(&mut self) -> Result<&Key, String> {
        if self.keys.is_empty() {
            self.keys.push(new_key()?);
        }
        self.keys
            .first()
            .ok_or_else(|| "no signing key".to_string())
    }

    /// A new current key; the previous one stays published, older ones go.
    pub fn rotate(&mut self) -> Result<String, String> {
        self.ensure()?;
        self.keys.insert(0, new_key()?);
        self.keys.truncate(2);
        Ok(self.keys[0].kid.clone())
    }

    /// The JWKS document.
    pub fn jwks(&mut self) -> Result<Value, String> {
        self.ensure()?;
        Ok(json!({"keys": self.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}))
    }

    /// Signs `claims` with the current key (RS256, with its `kid`).
    pub fn sign(&mut self, claims: &Value) -> Result<String, String> {
        let key = self.ensure()?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| e.to_string())
    }
}

/// What a test asks `POST /_mock/token` for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MintRequest {
    pub user: String,
    pub audience: String,
    #[serde(default)]
    pub tenant: Option<String>,
    /// Seconds until `exp` (negative: already expired); default 3600.
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// Seconds until `nbf` (default 0: valid now).
    #[serde(default)]
    pub not_before_in: Option<i64>,
}

/// The tenant a token is issued by when none is named.
pub const DEFAULT_TENANT: &str = "mock-tenant";

/// The claims of an access token for `user`, as Entra's v2.0 tokens carry
/// them.
pub(crate) fn claims(
    base: &str,
    user: &UserSpec,
    audience: &str,
    tenant: &str,
    now: DateTime<Utc>,
    expires_in: i64,
    not_before_in: i64,
) -> Value {
    let now_s = now.timestamp();
    let oid = user.oid.clone().unwrap_or_default();
    let mut c = json!({
        "iss": format!("{base}/{tenant}/v2.0"),
        "aud": audience,
        "iat": now_s,
        "nbf": now_s + not_before_in,
        "exp": now_s + expires_in,
        "tid": tenant,
        "oid": oid,
        "sub": oid,
        "ver": "2.0",
        "roles": user.roles,
    });
    if !user.groups.is_empty() {
        c["groups"] = json!(user.groups);
    }
    match &user.app_id {
        Some(app) => {
            c["azp"] = json!(app);
            c["appid"] = json!(app);
            c["idtyp"] = json!("app");
        }
        None => {
            c["azp"] = json!("mock-client");
            c["name"] = json!(user.name);
            if let Some(u) = &user.preferred_username {
                c["preferred_username"] = json!(u);
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_against_the_published_key_and_rotation_keeps_the_previous_one() {
        let mut keys = Keys::default();
        let user = UserSpec {
            name: "ana".into(),
            preferred_username: Some("ana@contoso.com".into()),
            roles: vec!["Pitr.Viewer".into()],
            ..Default::default()
        };
        let c = claims("https://h", &user, "api://pitr", "t", Utc::now(), 60, 0);
        let token = keys.sign(&c).unwrap();
        let jwks = keys.jwks().unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.set_audience(&["api://pitr"]);
        let decoded = jsonwebtoken::decode::<Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
            &v,
        )
        .unwrap();
        assert_eq!(decoded.claims["preferred_username"], "ana@contoso.com");
        let first = jwks["keys"][0]["kid"].clone();
        keys.rotate().unwrap();
        let after = keys.jwks().unwrap();
        assert_eq!(after["keys"].as_array().unwrap().len(), 2);
        assert_eq!(after["keys"][1]["kid"], first);
        keys.rotate().unwrap();
        let kids: Vec<Value> = keys.jwks().unwrap()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].clone())
            .collect();
        assert!(
            !kids.contains(&first),
            "the oldest key is no longer published"
        );
    }
}
