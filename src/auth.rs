//! Who is calling: Entra ID bearer tokens checked against the tenant's keys,
//! or (`auth.mode = "none"`, loopback only) the local operator.
//!
//! A token is accepted only when: its header says `alg: RS256` (`none` and
//! HMAC are refused before any key is looked at) with a `kid` found in the
//! tenant's JWKS; the signature verifies; `iss` is
//! `{authority_host}/{tenant_id}/v2.0`; `aud` is the API's audience; `exp`
//! and `nbf` hold with at most 5 minutes of clock skew; and `tid` is the
//! tenant. The JWKS comes from the `jwks_uri` of the tenant's OpenID
//! configuration, is cached, and is fetched again when a token names an
//! unknown `kid` (at most once a second) or when it is an hour old. A
//! refusal is logged with its reason, never with the token.
use crate::config::{AuthMode, Config};
use crate::service::roles::{Actor as Principal, Role};
use axum::http::{header, HeaderMap};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 300;
/// Fewest seconds between two JWKS fetches caused by unknown `kid`s.
const REFRESH_MIN: Duration = Duration::from_secs(1);
/// Age after which the JWKS is fetched again on the next call.
const MAX_AGE: Duration = Duration::from_secs(3600);

/// Why a caller is not authenticated (a 401), in words for logs and the
/// caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unauthenticated(pub String);

pub struct Authenticator {
    mode: Mode,
}

enum Mode {
    /// Every call is the local operator of this name.
    Local(String),
    Entra(Box<Entra>),
}

struct Entra {
    tenant: String,
    audience: String,
    issuer: String,
    discovery: String,
    http: reqwest::Client,
    keys: tokio::sync::Mutex<KeyCache>,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
    tried: Option<Instant>,
}

/// The claims pitr reads (Entra v2.0 access tokens).
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    upn: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    appid: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    /// ID tokens: the sign-in's nonce, and the person's display name.
    #[serde(default)]
    nonce: Option<String>,
    /// A string or an array of strings (checked by the validation; an ID
    /// token must name only the web app).
    #[serde(default)]
    aud: serde_json::Value,
    #[serde(default)]
    name: Option<String>,
}

/// The endpoints of the tenant's OpenID configuration the web page's
/// sign-in uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// A person signed in with an ID token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub principal: Principal,
    /// The `name` claim.
    pub name: Option<String>,
}

impl Authenticator {
    /// From `[auth]` (checked by `Config::check_serve`); `actor` is the
    /// local operator's name in mode `none`.
    pub fn new(config: &Config, actor: &str) -> Result<Authenticator, String> {
        let a = &config.auth;
        if a.mode == AuthMode::None {
            return Ok(Authenticator {
                mode: Mode::Local(actor.to_string()),
            });
        }
        let (Some(tenant), Some(audience)) = (&a.tenant_id, &a.audience) else {
            return Err("[auth] mode = \"entra\" needs tenant_id and audience".into());
        };
        let authority = config.auth_authority();
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5));
        for (key, path) in [
            ("[auth] ca_file", &a.ca_file),
            ("[azure] ca_file", &config.azure.ca_file),
        ] {
            let Some(path) = path else { continue };
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read {key} {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| format!("{key} {} holds no PEM certificate", path.display()))?;
            for c in certs {
                http = http.add_root_certificate(c);
            }
        }
        let http = http.build().map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Authenticator {
            mode: Mode::Entra(Box::new(Entra {
                issuer: format!("{authority}/{tenant}/v2.0"),
                discovery: format!("{authority}/{tenant}/v2.0/.well-known/openid-configuration"),
                tenant: tenant.clone(),
                audience: audience.clone(),
                http,
                keys: tokio::sync::Mutex::new(KeyCache::default()),
            })),
        })
    }

    /// The caller of a request with these headers.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, Unauthenticated> {
        let entra = match &self.mode {
            Mode::Local(actor) => return Ok(Principal::local_operator(actor)),
            Mode::Entra(e) => e,
        };
        let token = bearer(headers)?;
        entra.check(token, &entra.audience, None).await
    }

    /// The local operator's name in mode `none` (the web page signs them
    /// in without Entra ID).
    pub fn local_actor(&self) -> Option<&str> {
        match &self.mode {
            Mode::Local(a) => Some(a),
            Mode::Entra(_) => None,
        }
    }

    /// The tenant's sign-in endpoints (fetched from its OpenID
    /// configuration).
    pub async fn discovery(&self) -> Result<Discovery, String> {
        let Mode::Entra(e) = &self.mode else {
            return Err("[auth] mode = \"none\" signs nobody in with Entra ID".into());
        };
        let bytes = e.get(e.discovery.clone()).await?;
        serde_json::from_slice(&bytes).map_err(|err| {
            format!(
                "the OpenID configuration at {} lacks the sign-in endpoints: {err}",
                e.discovery
            )
        })
    }

    /// The HTTP client that reaches the tenant (its CAs trusted).
    pub fn http(&self) -> Option<&reqwest::Client> {
        match &self.mode {
            Mode::Entra(e) => Some(&e.http),
            Mode::Local(_) => None,
        }
    }

    /// Checks an ID token of the web page's sign-in exactly like an access
    /// token (RS256 only, the tenant's keys, `iss`, `exp`/`nbf`, `tid`), with
    /// the web app's client id as its audience and the sign-in's `nonce`.
    pub async fn check_id_token(
        &self,
        token: &str,
        client_id: &str,
        nonce: &str,
    ) -> Result<SignedIn, Unauthenticated> {
        let Mode::Entra(e) = &self.mode else {
            return Err(Unauthenticated(
                "no ID tokens in [auth] mode \"none\"".into(),
            ));
        };
        let (principal, name) = e.check_claims(token, client_id, Some(nonce)).await?;
        Ok(SignedIn { principal, name })
    }
}

/// The token of an `Authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Result<&str, Unauthenticated> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            Unauthenticated(
                "no bearer token: send Authorization: Bearer <access token for the API's audience>"
                    .into(),
            )
        })?
        .to_str()
        .map_err(|_| Unauthenticated("the Authorization header is not text".into()))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        Unauthenticated("the Authorization header is not 'Bearer <token>'".into())
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Unauthenticated(
            "the Authorization header is not 'Bearer <token>'".into(),
        ));
    }
    Ok(token.trim())
}

impl Entra {
    async fn check(
        &self,
        token: &str,
        audience: &str,
        nonce: Option<&str>,
    ) -> Result<Principal, Unauthenticated> {
        self.check_claims(token, audience, nonce)
            .await
            .map(|(p, _)| p)
    }

    async fn get(&self, url: String) -> Result<Vec<u8>, String> {
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", r.status()));
        }
        r.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| format!("GET {url}: {e}"))
    }

    async fn check_claims(
        &self,
        token: &str,
        audience: &str,
        nonce: Option<&str>,
    ) -> Result<(Principal, Option<String>), Unauthenticated> {
        let bad = |why: String| Unauthenticated(format!("invalid token: {why}"));
        let head = jsonwebtoken::decode_header(token).map_err(|e| {
            bad(format!(
                "unreadable header ({e}); only RS256 tokens are accepted"
            ))
        })?;
        if head.alg != Algorithm::RS256 {
            return Err(bad(format!(
                "alg {:?} is refused; only RS256 tokens are accepted",
                head.alg
            )));
        }
        let kid = head.kid.ok_or_else(|| bad("no kid in the header".into()))?;
        let key = self.key(&kid).await?;
        let mut v = Validation::new(Algorithm::RS256);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.set_audience(&[audience]);
        v.set_issuer(&[&self.issuer]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            bad(match e.kind() {
                K::ExpiredSignature => "expired".into(),
                K::ImmatureSignature => "not valid yet (nbf)".into(),
                K::InvalidAudience => format!("wrong audience; expected {audience}"),
                K::InvalidIssuer => format!("wrong issuer; expected {}", self.issuer),
                K::InvalidSignature => "the signature does not verify".into(),
                K::MissingRequiredClaim(c) => format!("claim {c} is missing"),
                other => format!("{other:?}"),
            })
        })?;
        let c = data.claims;
        if c.tid.as_deref() != Some(self.tenant.as_str()) {
            return Err(bad(format!("tid is not the tenant {}", self.tenant)));
        }
        if let Some(n) = nonce {
            // OpenID Connect Core 3.1.3.7: an ID token that lists audiences
            // the client does not trust is refused.
            let only_us = match &c.aud {
                serde_json::Value::String(a) => a == audience,
                serde_json::Value::Array(all) => {
                    all.len() == 1 && all[0].as_str() == Some(audience)
                }
                _ => false,
            };
            if !only_us {
                return Err(bad(format!(
                    "an ID token's audience must be only {audience}; it names others too"
                )));
            }
            if c.nonce.as_deref() != Some(n) {
                return Err(bad(
                    "its nonce is not the one of this sign-in (a replayed token?)".into(),
                ));
            }
        }
        let name = c.name.clone();
        let actor = c
            .preferred_username
            .or(c.upn)
            .or(c.oid)
            .or(c.azp)
            .or(c.appid)
            .filter(|a| !a.trim().is_empty())
            .ok_or_else(|| bad("no preferred_username, upn, oid or application id".into()))?;
        Ok((
            Principal {
                actor,
                roles: c.roles.iter().filter_map(|r| Role::from_claim(r)).collect(),
                groups: c.groups,
            },
            name,
        ))
    }

    /// The key named `kid`, fetching the JWKS when it is unknown (rate
    /// limited) or old.
    async fn key(&self, kid: &str) -> Result<DecodingKey, Unauthenticated> {
        let mut cache = self.keys.lock().await;
        let stale = cache.fetched.is_none_or(|t| t.elapsed() > MAX_AGE);
        let may_try = cache.tried.is_none_or(|t| t.elapsed() >= REFRESH_MIN);
        if (stale || !cache.keys.contains_key(kid)) && may_try {
            cache.tried = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.fetched = Some(Instant::now());
                }
                Err(e) => tracing::warn!(error = %e, "fetching the tenant's signing keys failed"),
            }
        }
        cache.keys.get(kid).cloned().ok_or_else(|| {
            Unauthenticated(format!(
                "invalid token: its key (kid {kid}) is not among the tenant's signing keys"
            ))
        })
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, String> {
        #[derive(Deserialize)]
        struct OpenId {
            jwks_uri: String,
        }
        let doc: OpenId = serde_json::from_slice(&self.get(self.discovery.clone()).await?)
            .map_err(|e| format!("the OpenID configuration has no jwks_uri: {e}"))?;
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&self.get(doc.jwks_uri).await?)
            .map_err(|e| format!("the JWKS is not readable: {e}"))?;
        Ok(set
            .keys
            .iter()
            .filter(|k| matches!(k.algorithm, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)))
            .filter_map(|k| Some((k.common.key_id.clone()?, DecodingKey::from_jwk(k).ok()?)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `Entra` that knows the signing key of `keys` (nothing fetched).
    fn entra_with(keys: &mut crate::mock::SigningKeys) -> Entra {
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(keys.jwks().unwrap()).unwrap();
        let k = &jwks.keys[0];
        let mut cache = KeyCache::default();
        cache.keys.insert(
            k.common.key_id.clone().unwrap(),
            DecodingKey::from_jwk(k).unwrap(),
        );
        cache.fetched = Some(Instant::now());
        cache.tried = Some(Instant::now());
        Entra {
            tenant: "t".into(),
            audience: "api://pitr".into(),
            issuer: "https://login.example/t/v2.0".into(),
            discovery: "https://login.example/t/v2.0/.well-known/openid-configuration".into(),
            http: reqwest::Client::new(),
            keys: tokio::sync::Mutex::new(cache),
        }
    }

    /// An ID token is for this client alone (OpenID Connect Core 3.1.3.7:
    /// refused when it lists audiences the client does not trust), carries
    /// the sign-in's nonce, the tenant, and is RS256 within its times.
    #[tokio::test]
    async fn id_tokens_name_only_this_client_as_audience() {
        let mut keys = crate::mock::SigningKeys::default();
        let e = entra_with(&mut keys);
        let now = chrono::Utc::now().timestamp();
        let claims = |aud: serde_json::Value| {
            serde_json::json!({
                "iss": "https://login.example/t/v2.0", "aud": aud, "tid": "t",
                "iat": now, "nbf": now, "exp": now + 600, "nonce": "n1",
                "preferred_username": "rita@contoso.com", "roles": ["Pitr.Requester"],
            })
        };
        let ok = keys.sign(&claims("web-client".into())).unwrap();
        let (p, _) = e.check_claims(&ok, "web-client", Some("n1")).await.unwrap();
        assert_eq!(p.actor, "rita@contoso.com");
        assert!(e.check_claims(&ok, "web-client", Some("n2")).await.is_err());
        assert!(e
            .check_claims(&ok, "other-client", Some("n1"))
            .await
            .is_err());
        let single = keys
            .sign(&claims(serde_json::json!(["web-client"])))
            .unwrap();
        assert!(e
            .check_claims(&single, "web-client", Some("n1"))
            .await
            .is_ok());
        let shared = keys
            .sign(&claims(serde_json::json!(["web-client", "someone-else"])))
            .unwrap();
        let err = e
            .check_claims(&shared, "web-client", Some("n1"))
            .await
            .unwrap_err();
        assert!(err.0.contains("audience"), "{err}");
        let mut late = claims("web-client".into());
        late["exp"] = serde_json::json!(now - 3600);
        let late = keys.sign(&late).unwrap();
        assert!(e
            .check_claims(&late, "web-client", Some("n1"))
            .await
            .is_err());
        let mut other_tenant = claims("web-client".into());
        other_tenant["tid"] = serde_json::json!("t2");
        let other_tenant = keys.sign(&other_tenant).unwrap();
        assert!(e
            .check_claims(&other_tenant, "web-client", Some("n1"))
            .await
            .is_err());
    }

    #[test]
    fn bearer_headers() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, "bearer abc.def".parse().unwrap());
        assert_eq!(bearer(&h).unwrap(), "abc.def");
    }
}
