//! The Entra ID side: client-credentials token endpoint and the discovery
//! documents MSAL-style clients read first.

use serde_json::json;

use super::arm::Ctx;
use super::http::{enc, Reply, Req};
use super::state::State;

pub(crate) fn token(st: &mut State, req: &Req, ctx: &Ctx) -> Reply {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let missing = |name: &str| {
        Reply::entra_error(
            400,
            "invalid_request",
            900144,
            &format!(
                "AADSTS900144: The request body must contain the following parameter: '{name}'."
            ),
            ctx.now,
        )
    };
    let Some(grant) = field("grant_type") else {
        return missing("grant_type");
    };
    if grant == "authorization_code" {
        return super::signin::redeem(st, &form, ctx);
    }
    // Tokens for the service's API (people and applications of the
    // scenario), signed like Entra's; ARM tokens stay opaque.
    let tenant = req.segments.first().map(String::as_str).unwrap_or("");
    let api_scope = field("scope").filter(|s| !s.starts_with("http"));
    let issued = match (grant, api_scope) {
        ("password", Some(scope)) => field("username").and_then(|u| {
            st.users
                .iter()
                .find(|x| x.preferred_username.as_deref() == Some(u) && x.app_id.is_none())
                .cloned()
                .map(|user| (user, scope))
        }),
        ("client_credentials", Some(scope)) => field("client_id").and_then(|c| {
            st.users
                .iter()
                .find(|x| x.app_id.as_deref() == Some(c))
                .cloned()
                .map(|user| (user, scope))
        }),
        _ => None,
    };
    if let Some((user, scope)) = issued {
        let audience = scope.split_whitespace().next().unwrap_or(scope);
        let audience = audience.strip_suffix("/.default").unwrap_or(audience);
        let expires = i64::try_from(st.settings.token_expires_in_secs).unwrap_or(3600);
        let claims = super::entra::claims(ctx.base, &user, audience, tenant, ctx.now, expires, 0);
        return match st.signing.sign(&claims) {
            Ok(token) => Reply::json(
                200,
                json!({"token_type": "Bearer", "expires_in": expires, "ext_expires_in": expires, "access_token": token}),
            ),
            Err(e) => Reply::entra_error(500, "server_error", 0, &e, ctx.now),
        };
    }
    if grant == "password" {
        return Reply::entra_error(
            400,
            "invalid_grant",
            50126,
            "AADSTS50126: Error validating credentials due to invalid username or password.",
            ctx.now,
        );
    }
    if grant != "client_credentials" {
        return Reply::entra_error(
            400,
            "unsupported_grant_type",
            70003,
            &format!("AADSTS70003: The app requested an unsupported grant type '{grant}'. The mock Azure supports client_credentials, password and authorization_code."),
            ctx.now,
        );
    }
    if field("client_id").is_none() {
        return missing("client_id");
    }
    // A secret or a federated assertion (workload identity): any non-empty
    // value is accepted, it's a mock.
    if field("client_secret").is_none() && field("client_assertion").is_none() {
        return missing("client_secret or client_assertion");
    }
    if field("scope").is_none() {
        return missing("scope");
    }
    let expires = st.settings.token_expires_in_secs;
    let client = field("client_id").unwrap_or_default().to_string();
    let access_token = st.issue_token(ctx.now, &client);
    Reply::json(
        200,
        json!({
            "token_type": "Bearer",
            "expires_in": expires,
            "ext_expires_in": expires,
            "access_token": access_token,
        }),
    )
}

pub(crate) fn openid(base: &str, tenant: &str) -> Reply {
    let t = enc(tenant);
    Reply::json(
        200,
        json!({
            "issuer": format!("{base}/{t}/v2.0"),
            "token_endpoint": format!("{base}/{t}/oauth2/v2.0/token"),
            "authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/devicecode"),
            "end_session_endpoint": format!("{base}/{t}/oauth2/v2.0/logout"),
            "jwks_uri": format!("{base}/{t}/discovery/v2.0/keys"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid"],
            "request_uri_parameter_supported": false,
            "tenant_region_scope": null,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }),
    )
}
