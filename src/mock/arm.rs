//! Routing of the Azure-facing endpoints, and what every ARM request goes
//! through: bearer token check, api-version check, the ARM error envelope and
//! the long-running operation polling rules shared by Microsoft.Sql and
//! Microsoft.Compute. Shapes and codes follow `docs/arm-contracts.md`.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::api_versions::{self, ApiType};
use super::backup;
use super::compute;
use super::http::{Reply, Req};
use super::identity;
use super::lro::observe;
use super::run_commands;
use super::sql;
use super::state::{ts, State};
use super::throttle::Verdict;

/// The api-versions pitr's client sends (the mock accepts every version in
/// `api_versions.rs`).
pub(crate) const SQL_API: &str = "2023-08-01";
pub(crate) const COMPUTE_API: &str = "2024-07-01";
pub(crate) const NOT_FOUND_HINT: &str =
    "For more details please go to https://aka.ms/ARMResourceNotFoundFix";

pub(crate) struct Ctx<'a> {
    pub base: &'a str,
    pub now: DateTime<Utc>,
    /// Journal sequence number of this request.
    pub seq: u64,
}

/// What a handler needs besides the state: the context and the request's
/// (accepted) api-version.
pub(crate) struct Call<'a> {
    pub ctx: &'a Ctx<'a>,
    pub req: &'a Req,
    pub api_version: String,
}

enum Route<'a> {
    Token,
    Authorize,
    Logout,
    OpenId {
        tenant: &'a str,
    },
    Keys,
    InstanceDiscovery,
    DbList {
        sub: &'a str,
        rg: &'a str,
        server: &'a str,
    },
    Db {
        sub: &'a str,
        rg: &'a str,
        server: &'a str,
        db: &'a str,
    },
    DbMove {
        sub: &'a str,
        rg: &'a str,
        server: &'a str,
        db: &'a str,
    },
    DbLinks {
        sub: &'a str,
        rg: &'a str,
        server: &'a str,
        db: &'a str,
    },
    DbAtp {
        sub: &'a str,
        rg: &'a str,
        server: &'a str,
        db: &'a str,
        name: &'a str,
    },
    DbAuditing {
        sub: &'a str,
        rg: &'a str,
        server: &'a str,
        db: &'a str,
        name: &'a str,
    },
    DbRetention {
        sub: &'a str,
        rg: &'a str,
        server: &'a str,
        db: &'a str,
        kind: backup::Policy,
        policy: &'a str,
    },
    SqlAsyncOp {
        sub: &'a str,
        loc: &'a str,
        id: &'a str,
    },
    SqlOpResult {
        sub: &'a str,
        loc: &'a str,
        id: &'a str,
    },
    Vm {
        sub: &'a str,
        rg: &'a str,
        vm: &'a str,
    },
    RunCommand {
        sub: &'a str,
        rg: &'a str,
        vm: &'a str,
    },
    RunCommands {
        sub: &'a str,
        rg: &'a str,
        vm: &'a str,
        name: &'a str,
    },
    ComputeOp {
        sub: &'a str,
        loc: &'a str,
        id: &'a str,
    },
    UnknownArm,
    Unknown,
}

pub(crate) fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn route(segs: &[String]) -> Route<'_> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        [_, a, b, c] if eq(a, "oauth2") && eq(b, "v2.0") && eq(c, "token") => Route::Token,
        [_, a, b, c] if eq(a, "oauth2") && eq(b, "v2.0") && eq(c, "authorize") => Route::Authorize,
        [_, a, b, c] if eq(a, "oauth2") && eq(b, "v2.0") && eq(c, "logout") => Route::Logout,
        [tenant, a, b, c]
            if eq(a, "v2.0") && eq(b, ".well-known") && eq(c, "openid-configuration") =>
        {
            Route::OpenId { tenant }
        }
        [_, a, b, c] if eq(a, "discovery") && eq(b, "v2.0") && eq(c, "keys") => Route::Keys,
        [a, b, c] if eq(a, "common") && eq(b, "discovery") && eq(c, "instance") => {
            Route::InstanceDiscovery
        }
        [su, sub, rgs, rg, p, ms, srvs, server, dbs, rest @ ..]
            if eq(su, "subscriptions")
                && eq(rgs, "resourcegroups")
                && eq(p, "providers")
                && eq(ms, "microsoft.sql")
                && eq(srvs, "servers")
                && eq(dbs, "databases") =>
        {
            match rest {
                [] => Route::DbList { sub, rg, server },
                [db] => Route::Db {
                    sub,
                    rg,
                    server,
                    db,
                },
                [db, m] if eq(m, "move") => Route::DbMove {
                    sub,
                    rg,
                    server,
                    db,
                },
                [db, a, name] if eq(a, "advancedthreatprotectionsettings") => Route::DbAtp {
                    sub,
                    rg,
                    server,
                    db,
                    name,
                },
                [db, a, name] if eq(a, "auditingsettings") => Route::DbAuditing {
                    sub,
                    rg,
                    server,
                    db,
                    name,
                },
                [db, l] if eq(l, "replicationlinks") => Route::DbLinks {
                    sub,
                    rg,
                    server,
                    db,
                },
                [db, p, policy] if eq(p, "backupshorttermretentionpolicies") => {
                    Route::DbRetention {
                        sub,
                        rg,
                        server,
                        db,
                        kind: backup::Policy::ShortTerm,
                        policy,
                    }
                }
                [db, p, policy] if eq(p, "backuplongtermretentionpolicies") => Route::DbRetention {
                    sub,
                    rg,
                    server,
                    db,
                    kind: backup::Policy::LongTerm,
                    policy,
                },
                _ => Route::UnknownArm,
            }
        }
        [su, sub, p, ms, l, loc, kind, id]
            if eq(su, "subscriptions")
                && eq(p, "providers")
                && eq(ms, "microsoft.sql")
                && eq(l, "locations") =>
        {
            if eq(kind, "databaseazureasyncoperation") {
                Route::SqlAsyncOp { sub, loc, id }
            } else if eq(kind, "databaseoperationresults") {
                Route::SqlOpResult { sub, loc, id }
            } else {
                Route::UnknownArm
            }
        }
        [su, sub, rgs, rg, p, mc, vms, vm, rest @ ..]
            if eq(su, "subscriptions")
                && eq(rgs, "resourcegroups")
                && eq(p, "providers")
                && eq(mc, "microsoft.compute")
                && eq(vms, "virtualmachines") =>
        {
            match rest {
                [] => Route::Vm { sub, rg, vm },
                [rc] if eq(rc, "runcommand") => Route::RunCommand { sub, rg, vm },
                [rcs, name] if eq(rcs, "runcommands") => Route::RunCommands { sub, rg, vm, name },
                _ => Route::UnknownArm,
            }
        }
        [su, sub, p, mc, l, loc, ops, id]
            if eq(su, "subscriptions")
                && eq(p, "providers")
                && eq(mc, "microsoft.compute")
                && eq(l, "locations")
                && eq(ops, "operations") =>
        {
            Route::ComputeOp { sub, loc, id }
        }
        [su, ..] if eq(su, "subscriptions") => Route::UnknownArm,
        _ => Route::Unknown,
    }
}

pub(crate) fn is_token_endpoint(segs: &[String]) -> bool {
    matches!(route(segs), Route::Token)
}

fn method_not_allowed(req: &Req) -> Reply {
    Reply::arm_error(
        405,
        "MethodNotAllowed",
        format!(
            "The requested resource does not support http method '{}'.",
            req.method
        ),
    )
}

pub(crate) fn dispatch(st: &mut State, req: &Req, ctx: &Ctx) -> Reply {
    let m = req.method.as_str();
    let r = route(&req.segments);
    // Identity endpoints are anonymous, like Entra's.
    match r {
        Route::Token => {
            return if m == "POST" {
                identity::token(st, req, ctx)
            } else {
                Reply::entra_error(
                    405,
                    "invalid_request",
                    900561,
                    "The endpoint only accepts POST requests.",
                    ctx.now,
                )
            };
        }
        Route::Authorize if m == "GET" => return super::signin::authorize(st, req, ctx),
        Route::Logout if m == "GET" => return super::signin::logout(req),
        Route::Authorize | Route::Logout => return method_not_allowed(req),
        Route::OpenId { tenant } => return identity::openid(ctx.base, tenant),
        Route::Keys => {
            return match st.signing.jwks() {
                Ok(jwks) => Reply::json(200, jwks),
                Err(e) => Reply::arm_error(500, "InternalServerError", e),
            }
        }
        Route::InstanceDiscovery => {
            return Reply::json(
                200,
                json!({
                    "tenant_discovery_endpoint": format!("{}/common/v2.0/.well-known/openid-configuration", ctx.base),
                    "api-version": "1.1",
                    "metadata": [],
                }),
            )
        }
        Route::Unknown => {
            return Reply::arm_error(
                404,
                "NotFound",
                format!("The mock Azure does not serve '{}'.", req.path),
            )
        }
        _ => {}
    }
    let client = match check_auth(st, req, ctx) {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    let mut budget = None;
    if st.settings.throttle.enabled {
        if let Some(sub) = subscription_of(&r) {
            match st
                .throttle
                .take(&st.settings.throttle, sub, &client, m, ctx.now)
            {
                Verdict::Pass(header, left) => budget = Some((header, left)),
                Verdict::Throttled(reply) => return reply,
            }
        }
    }
    let reply = dispatch_arm(st, req, ctx, r);
    match budget {
        Some((header, left)) => reply.header(header, left),
        None => reply,
    }
}

/// The subscription an ARM route is in.
fn subscription_of<'a>(r: &Route<'a>) -> Option<&'a str> {
    match r {
        Route::DbList { sub, .. }
        | Route::Db { sub, .. }
        | Route::DbMove { sub, .. }
        | Route::DbRetention { sub, .. }
        | Route::DbLinks { sub, .. }
        | Route::DbAuditing { sub, .. }
        | Route::DbAtp { sub, .. }
        | Route::SqlAsyncOp { sub, .. }
        | Route::SqlOpResult { sub, .. }
        | Route::Vm { sub, .. }
        | Route::RunCommand { sub, .. }
        | Route::RunCommands { sub, .. }
        | Route::ComputeOp { sub, .. } => Some(sub),
        _ => None,
    }
}

fn dispatch_arm(st: &mut State, req: &Req, ctx: &Ctx, r: Route<'_>) -> Reply {
    let m = req.method.as_str();
    let (api, sub, rg, loc) = match r {
        Route::DbList { sub, rg, .. } | Route::Db { sub, rg, .. } | Route::DbMove { sub, rg, .. } => {
            (ApiType::SqlDatabases, sub, Some(rg), None)
        }
        Route::DbRetention {
            sub,
            rg,
            kind: backup::Policy::ShortTerm,
            ..
        } => (ApiType::SqlRetention, sub, Some(rg), None),
        Route::DbLinks { sub, rg, .. } => (ApiType::SqlReplicationLinks, sub, Some(rg), None),
        Route::DbAuditing { sub, rg, .. } => (ApiType::SqlAuditing, sub, Some(rg), None),
        Route::DbAtp { sub, rg, .. } => (ApiType::SqlThreatProtection, sub, Some(rg), None),
        Route::DbRetention {
            sub,
            rg,
            kind: backup::Policy::LongTerm,
            ..
        } => (ApiType::SqlLongTermRetention, sub, Some(rg), None),
        Route::SqlAsyncOp { sub, loc, .. } => (ApiType::SqlAsyncOperation, sub, None, Some(loc)),
        Route::SqlOpResult { sub, loc, .. } => (ApiType::SqlOperationResults, sub, None, Some(loc)),
        Route::Vm { sub, rg, .. } | Route::RunCommand { sub, rg, .. } => {
            (ApiType::ComputeVm, sub, Some(rg), None)
        }
        Route::RunCommands { sub, rg, .. } => (ApiType::ComputeRunCommands, sub, Some(rg), None),
        Route::ComputeOp { sub, loc, .. } => (ApiType::ComputeOperations, sub, None, Some(loc)),
        _ => {
            return Reply::arm_error(
                404,
                "InvalidResourceType",
                format!(
                    "The resource type at '{}' is not served by the mock Azure (it serves Microsoft.Sql databases their backup retention policies, replication links, auditing and threat protection settings, and Microsoft.Compute virtual machines and their run commands).",
                    req.path
                ),
            )
        }
    };
    let location = match loc {
        Some(l) => l.to_string(),
        None => st.location_hint(sub, rg.unwrap_or("")),
    };
    let api_version = match api_versions::check(req, api, &location, || st.locations()) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    let call = Call {
        ctx,
        req,
        api_version,
    };
    let vm_id = |sub: &str, rg: &str, vm: &str| {
        format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{vm}")
    };
    match (m, r) {
        ("GET", Route::DbList { sub, rg, server }) => sql::list_dbs(st, ctx, sub, rg, server),
        (
            "GET",
            Route::Db {
                sub,
                rg,
                server,
                db,
            },
        ) => {
            observe(st, &format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Sql/servers/{server}/databases/{db}"), ctx.now);
            sql::get_db(st, ctx, sub, rg, server, db)
        }
        (
            "PUT",
            Route::Db {
                sub,
                rg,
                server,
                db,
            },
        ) => sql::put_db(st, &call, sub, rg, server, db),
        (
            "DELETE",
            Route::Db {
                sub,
                rg,
                server,
                db,
            },
        ) => sql::delete_db(st, &call, sub, rg, server, db),
        (
            "POST",
            Route::DbMove {
                sub,
                rg,
                server,
                db,
            },
        ) => sql::move_db(st, req, sub, rg, server, db),
        (
            "GET",
            Route::DbLinks {
                sub,
                rg,
                server,
                db,
            },
        ) => sql::list_replication_links(st, (sub, rg, server, db)),
        (
            m @ ("GET" | "PUT"),
            Route::DbAtp {
                sub,
                rg,
                server,
                db,
                name,
            },
        ) => sql::threat_protection(st, m, (sub, rg, server, db), name, &req.body),
        (
            "PATCH",
            Route::Db {
                sub,
                rg,
                server,
                db,
            },
        ) => sql::patch_db(st, ctx.now, (sub, rg, server, db), req),
        (
            "GET",
            Route::DbAuditing {
                sub,
                rg,
                server,
                db,
                name,
            },
        ) => sql::get_auditing(st, (sub, rg, server, db), name),
        (
            "GET",
            Route::DbRetention {
                sub,
                rg,
                server,
                db,
                kind,
                policy,
            },
        ) => backup::get_policy(st, (sub, rg, server, db), kind, policy),
        (
            "PUT",
            Route::DbRetention {
                sub,
                rg,
                server,
                db,
                kind,
                policy,
            },
        )
        | (
            "PATCH",
            Route::DbRetention {
                sub,
                rg,
                server,
                db,
                kind: kind @ backup::Policy::ShortTerm,
                policy,
            },
        ) => backup::put_policy(st, (sub, rg, server, db), kind, policy, &req.body, ctx.now),
        ("GET", Route::SqlAsyncOp { sub, id, .. }) => sql::sql_async_status(st, ctx, sub, id),
        ("GET", Route::SqlOpResult { sub, id, .. }) => sql::sql_op_result(st, ctx, sub, id),
        ("GET", Route::Vm { sub, rg, vm }) => compute::get_vm(st, sub, rg, vm),
        ("POST", Route::RunCommand { sub, rg, vm }) => {
            observe(st, &vm_id(sub, rg, vm), ctx.now);
            compute::run_command(st, &call, sub, rg, vm)
        }
        ("PUT", Route::RunCommands { sub, rg, vm, name }) => {
            run_commands::put(st, &call, sub, rg, vm, name)
        }
        ("GET", Route::RunCommands { sub, rg, vm, name }) => {
            observe(
                st,
                &format!("{}/runCommands/{name}", vm_id(sub, rg, vm)),
                ctx.now,
            );
            run_commands::get(st, &call, sub, rg, vm, name)
        }
        ("DELETE", Route::RunCommands { sub, rg, vm, name }) => {
            run_commands::delete(st, &call, sub, rg, vm, name)
        }
        ("GET", Route::ComputeOp { sub, id, .. }) => compute::compute_op(st, req, ctx, sub, id),
        _ => method_not_allowed(req),
    }
}

fn www_authenticate(ctx: &Ctx, description: &str) -> String {
    format!(
        "Bearer authorization_uri=\"{}/\", error=\"invalid_token\", error_description=\"{}\"",
        ctx.base, description
    )
}

/// The client the bearer token was issued to, or ARM's 401.
fn check_auth(st: &State, req: &Req, ctx: &Ctx) -> Result<String, Reply> {
    let unauthorized = |code: &str, message: String, description: &str| {
        Reply::arm_error(401, code, message)
            .header("WWW-Authenticate", www_authenticate(ctx, description))
    };
    let Some(value) = req.header("authorization") else {
        // ARM's code for a missing header.
        return Err(unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".into(),
            "The authentication failed because of missing 'Authorization' header.",
        ));
    };
    let token = match value.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
            t.trim()
        }
        _ => return Err(unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format."
                .into(),
            "The authentication failed because of an invalid 'Authorization' header.",
        )),
    };
    match st.tokens.get(token) {
        None => Err(unauthorized(
            "InvalidAuthenticationToken",
            "The access token is invalid.".into(),
            "The access token is invalid.",
        )),
        Some(exp) if *exp <= ctx.now => Err(unauthorized(
            "ExpiredAuthenticationToken",
            format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                ts(*exp),
                ts(ctx.now)
            ),
            "The access token has expired.",
        )),
        Some(_) => Ok(st.token_clients.get(token).cloned().unwrap_or_default()),
    }
}

pub(crate) fn parse_json_body(req: &Req) -> Result<Value, Reply> {
    let v: Value = serde_json::from_slice(&req.body).map_err(|e| {
        Reply::arm_error(
            400,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: '{e}'."),
        )
    })?;
    if !v.is_object() {
        return Err(Reply::arm_error(
            400,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: the body must be a JSON object.",
        ));
    }
    Ok(v)
}

/// The ARM resource type a request path addresses, as role actions name it
/// (`Microsoft.Sql/servers/databases`, `.../databases/move` for an action
/// POST, `Microsoft.Sql/locations/databaseAzureAsyncOperation` for an
/// operation poll): the provider namespace after the last `providers/`, then
/// every other segment (types; the ones between are names), and a trailing
/// segment without a name (an action). `None` for what is not ARM (the token
/// and discovery endpoints of the mock Entra ID).
pub(crate) fn resource_type(path_and_query: &str) -> Option<String> {
    let path = path_and_query.split('?').next().unwrap_or(path_and_query);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = segments
        .iter()
        .rposition(|s| s.eq_ignore_ascii_case("providers"))?;
    let (namespace, rest) = segments[at + 1..].split_first()?;
    let mut parts = vec![namespace.to_string()];
    parts.extend(rest.iter().step_by(2).map(|s| s.to_string()));
    (parts.len() > 1).then(|| parts.join("/"))
}

#[cfg(test)]
mod resource_type_tests {
    use super::resource_type;

    #[test]
    fn paths_give_their_resource_types() {
        let db =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/sv/databases/AxDB";
        for (path, ty) in [
            (format!("{db}?api-version=2023-08-01"), Some("Microsoft.Sql/servers/databases")),
            ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/sv/databases".into(), Some("Microsoft.Sql/servers/databases")),
            (format!("{db}/move?api-version=1"), Some("Microsoft.Sql/servers/databases/move")),
            (format!("{db}/backupShortTermRetentionPolicies/default"), Some("Microsoft.Sql/servers/databases/backupShortTermRetentionPolicies")),
            ("/subscriptions/s/providers/Microsoft.Sql/locations/westeurope/databaseAzureAsyncOperation/x?api-version=1".into(), Some("Microsoft.Sql/locations/databaseAzureAsyncOperation")),
            ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm/runCommands/pitr-1".into(), Some("Microsoft.Compute/virtualMachines/runCommands")),
            ("/subscriptions/s/providers/Microsoft.Compute/locations/westeurope/operations/x".into(), Some("Microsoft.Compute/locations/operations")),
            ("/test-tenant/oauth2/v2.0/token".into(), None),
            ("/subscriptions/s/providers".into(), None),
        ] {
            assert_eq!(resource_type(&path).as_deref(), ty, "{path}");
        }
    }
}
