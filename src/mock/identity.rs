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
    if grant != "client_credentials" {
        return Reply::entra_error(
            400,
            "unsupported_grant_type",
            70003,
            &format!("AADSTS70003: The app requested an unsupported grant type '{grant}'. The mock Azure supports client_credentials."),
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
    let access_token = st.issue_token(ctx.now);
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
