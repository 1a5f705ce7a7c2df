//! Microsoft.Sql databases: get, list, point-in-time restore (PUT), delete,
//! rename (move) and their operation URLs.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::arm::{eq, parse_json_body, Call, Ctx, NOT_FOUND_HINT};
use super::db_body::{parse_db_id, parse_sku, DbExtras};
use super::http::{enc, Reply, Req};
use super::lro::{failed_reply, op_not_found, poll, status_json, still_running};
use super::scenario::RestoreHeaders;
use super::state::{
    content_as_of, norm_location, pool_sku, ts, Database, OpDetail, OpKind, OpStatus, State,
};

pub(crate) fn find_server(st: &State, sub: &str, rg: &str, server: &str) -> Option<usize> {
    st.servers.iter().position(|s| {
        eq(&s.subscription_id, sub) && eq(&s.resource_group, rg) && eq(&s.name, server)
    })
}

pub(crate) fn db_not_found(rg: &str, server: &str, db: &str) -> Reply {
    Reply::arm_error(
        404,
        "ResourceNotFound",
        format!("The Resource 'Microsoft.Sql/servers/{server}/databases/{db}' under resource group '{rg}' was not found. {NOT_FOUND_HINT}"),
    )
}

/// The server a `/_mock/...` control names (server names are unique in
/// the mock, as in Azure).
pub(crate) fn server_named<'a>(
    st: &'a mut State,
    name: &str,
) -> Result<&'a mut super::model::Server, Reply> {
    st.servers
        .iter_mut()
        .find(|s| s.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| Reply::arm_error(404, "NotFound", format!("no server '{name}' in the mock")))
}

/// The server and database a `{DB}/...` request addresses, or the 404 Azure
/// gives.
pub(crate) fn locate_db(
    st: &State,
    (sub, rg, server, db): (&str, &str, &str, &str),
) -> Result<(usize, usize), Reply> {
    let si = find_server(st, sub, rg, server).ok_or_else(|| db_not_found(rg, server, db))?;
    let di = st.servers[si]
        .find_db(db)
        .ok_or_else(|| db_not_found(rg, server, db))?;
    Ok((si, di))
}

/// A database's settings resource (`auditingSettings`, a retention policy,
/// ...) exists under one name only, `default`: the 404 for any other.
pub(crate) fn only_default(
    (_, rg, server, db): (&str, &str, &str, &str),
    collection: &str,
    name: &str,
) -> Result<(), Reply> {
    if eq(name, "default") {
        return Ok(());
    }
    Err(Reply::arm_error(
        404,
        "ResourceNotFound",
        format!("The Resource 'Microsoft.Sql/servers/{server}/databases/{db}/{collection}/{name}' under resource group '{rg}' was not found. {NOT_FOUND_HINT}"),
    ))
}

fn server_not_found(rg: &str, server: &str) -> Reply {
    Reply::arm_error(
        404,
        "ResourceNotFound",
        format!("The Resource 'Microsoft.Sql/servers/{server}' under resource group '{rg}' was not found. {NOT_FOUND_HINT}"),
    )
}

pub(crate) fn list_dbs(st: &State, ctx: &Ctx, sub: &str, rg: &str, server: &str) -> Reply {
    let Some(si) = find_server(st, sub, rg, server) else {
        return server_not_found(rg, server);
    };
    let srv = &st.servers[si];
    let value: Vec<Value> = srv
        .databases
        .iter()
        .map(|d| d.to_arm(srv, ctx.now))
        .collect();
    Reply::json(200, json!({ "value": value }))
}

pub(crate) fn get_db(st: &State, ctx: &Ctx, sub: &str, rg: &str, server: &str, db: &str) -> Reply {
    let Some(si) = find_server(st, sub, rg, server) else {
        return db_not_found(rg, server, db);
    };
    let srv = &st.servers[si];
    match srv.find_db(db) {
        Some(di) => Reply::json(200, srv.databases[di].to_arm(srv, ctx.now)),
        None => db_not_found(rg, server, db),
    }
}

fn sql_async_url(base: &str, sub: &str, loc: &str, id: Uuid, api: &str) -> String {
    format!(
        "{base}/subscriptions/{}/providers/Microsoft.Sql/locations/{}/databaseAzureAsyncOperation/{id}?api-version={}",
        enc(sub),
        enc(loc),
        enc(api)
    )
}

fn sql_result_url(base: &str, sub: &str, loc: &str, id: Uuid, api: &str) -> String {
    format!(
        "{base}/subscriptions/{}/providers/Microsoft.Sql/locations/{}/databaseOperationResults/{id}?api-version={}",
        enc(sub),
        enc(loc),
        enc(api)
    )
}

/// The 202 of a Microsoft.Sql long-running operation; its URLs carry the
/// api-version of the request that started it.
fn sql_lro_reply(
    st: &State,
    ctx: &Ctx,
    op: usize,
    headers: RestoreHeaders,
    body: Option<Value>,
) -> Reply {
    let o = &st.operations[op];
    let (sub, loc, id, api) = (&o.subscription_id, &o.location, o.id, &o.api_version);
    let mut r = match body {
        Some(b) => Reply::json(202, b),
        None => Reply::empty(202),
    };
    if headers != RestoreHeaders::LocationOnly {
        r = r.header(
            "Azure-AsyncOperation",
            sql_async_url(ctx.base, sub, loc, id, api),
        );
    }
    if headers != RestoreHeaders::AsyncOnly {
        r = r.header("Location", sql_result_url(ctx.base, sub, loc, id, api));
    }
    r.header("Retry-After", st.settings.retry_after_secs.to_string())
}

pub(crate) fn put_db(
    st: &mut State,
    call: &Call,
    sub: &str,
    rg: &str,
    server: &str,
    db: &str,
) -> Reply {
    let (req, ctx) = (call.req, call.ctx);
    let Some(si) = find_server(st, sub, rg, server) else {
        return server_not_found(rg, server);
    };
    let body = match parse_json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let props = body.get("properties").cloned().unwrap_or(Value::Null);
    let prop_str = |k: &str| {
        props
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let create_mode = prop_str("createMode").unwrap_or("Default");
    if !create_mode.eq_ignore_ascii_case("PointInTimeRestore") {
        return Reply::arm_error(
            400,
            "InvalidCreateMode",
            format!("The create mode '{create_mode}' is not supported by the mock Azure: it only performs createMode 'PointInTimeRestore'."),
        );
    }
    let srv = &st.servers[si];
    if let Some(di) = srv.find_db(db) {
        // Azure's exact answer to a PUT onto an existing name is not confirmed
        // (PUT is create-or-update); callers must never do it, so refuse loudly.
        return Reply::arm_error(
            400,
            "DatabaseAlreadyExists",
            format!(
                "Database '{}' already exists on server '{}'. A point-in-time restore needs a new database name.",
                srv.databases[di].name, srv.name
            ),
        );
    }
    match body.get("location").and_then(Value::as_str) {
        None => {
            return Reply::arm_error(
                400,
                "LocationRequired",
                "The location property is required for this definition.",
            )
        }
        Some(l) if norm_location(l) != norm_location(&srv.location) => {
            return Reply::arm_error(
                400,
                "InvalidResourceLocation",
                format!(
                    "The resource location '{l}' does not match the location '{}' of server '{}'.",
                    srv.location, srv.name
                ),
            )
        }
        Some(_) => {}
    }
    let req_sku = match parse_sku(body.get("sku").unwrap_or(&Value::Null)) {
        Ok(s) => s,
        Err(r) => return r,
    };
    // A restored database takes only what the PUT says (as in Azure): tags,
    // zone redundancy and backup redundancy are not inherited.
    let extras = match DbExtras::parse(&body) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let req_pool = prop_str("elasticPoolId").map(str::to_string);
    if req_pool.is_some()
        && (req_sku.is_some() || prop_str("requestedServiceObjectiveName").is_some())
    {
        return Reply::arm_error(
            400,
            "CannotSpecifyEditionOrSloWhenRestoringToPool",
            "Edition or service objective cannot be specified when restoring a database into an elastic pool.",
        );
    }
    let Some(source_id) = prop_str("sourceDatabaseId") else {
        return Reply::arm_error(
            400,
            "MissingSourceDatabaseId",
            "The sourceDatabaseId property is required for createMode 'PointInTimeRestore'.",
        );
    };
    let Some(point_text) = prop_str("restorePointInTime") else {
        return Reply::arm_error(
            400,
            "MissingRestorePointInTime",
            "The restorePointInTime property is required for createMode 'PointInTimeRestore'.",
        );
    };
    let Some(source) = parse_db_id(source_id) else {
        return Reply::arm_error(
            400,
            "InvalidSourceDatabaseId",
            format!("The sourceDatabaseId '{source_id}' is not a valid database resource id."),
        );
    };
    let same_server = eq(&source.sub, &srv.subscription_id)
        && eq(&source.rg, &srv.resource_group)
        && eq(&source.server, &srv.name);
    let Some(src_i) = srv.find_db(&source.db).filter(|_| same_server) else {
        return Reply::arm_error(
            404,
            "SourceDatabaseNotFound",
            format!(
                "The source database '{}/{}' does not exist on server '{}' (a point-in-time restore stays on the same server).",
                source.server, source.db, srv.name
            ),
        );
    };
    let src = &srv.databases[src_i];
    let Some(earliest) = src.earliest_restore(ctx.now) else {
        return Reply::arm_error(
            409,
            "ConflictingDatabaseOperation",
            format!("The source database '{}' is still being restored and has no backups to restore from yet.", src.name),
        );
    };
    let point = match DateTime::parse_from_rfc3339(point_text) {
        Ok(p) => p.with_timezone(&Utc),
        Err(_) => {
            return Reply::arm_error(
                400,
                "InvalidPointInTime",
                format!("The restore point in time '{point_text}' is not a valid ISO 8601 date and time (for example 2026-11-20T08:30:00Z)."),
            )
        }
    };
    if point < earliest || point > ctx.now {
        return Reply::arm_error(
            400,
            "InvalidPointInTime",
            format!(
                "The restore point in time '{}' is not valid: it must be between the earliest restore point '{}' and the current time '{}'.",
                ts(point),
                ts(earliest),
                ts(ctx.now)
            ),
        );
    }
    let content = content_as_of(&src.history, point);
    let (sku, pool) = match (req_sku, req_pool) {
        (_, Some(pool)) => (pool_sku(), Some(pool)),
        (Some(sku), None) => (sku, None),
        (None, None) => (src.sku.clone(), src.elastic_pool_id.clone()),
    };
    let max_size = extras
        .max_size_bytes
        .unwrap_or(super::db_body::DEFAULT_MAX_SIZE_BYTES);
    // A restored database gets Azure's defaults, not its source's: 7 days
    // of short-term retention, differentials every 12 hours, no long-term
    // retention. Whoever restores sets them again.
    let retention_days = super::state::DEFAULT_RETENTION_DAYS;
    let location = srv.location.clone();
    let subscription = srv.subscription_id.clone();
    let target = srv.db_id(db);
    let database_id = Uuid::new_v4();
    let running = st.running_restores(&subscription);
    if let Some(reply) = super::throttle::restore_cap_reply(
        st.settings
            .throttle
            .max_concurrent_restores_per_subscription,
        running,
        &subscription,
    ) {
        st.throttle.restore_cap_refusals += 1;
        return reply;
    }
    let peak = st
        .throttle
        .peak_restores
        .entry(subscription.to_ascii_lowercase())
        .or_default();
    *peak = (*peak).max(running + 1);
    let planned = st.take_operation_fault(OpKind::Restore, None);
    st.servers[si].databases.push(Database {
        name: db.to_string(),
        database_id,
        status: "Restoring".into(),
        history: Vec::new(),
        creation_date: ctx.now,
        earliest_fixed: None,
        backup_floor: None,
        retention_days,
        diff_backup_hours: super::backup::DEFAULT_DIFF_BACKUP_HOURS,
        ltr: Default::default(),
        replication_links: Vec::new(),
        failover_group_id: None,
        auditing: None,
        license_type: extras.license_type.clone(),
        maintenance_configuration_id: extras.maintenance_configuration_id.clone(),
        ha_replicas: extras.ha_replicas,
        encryption_protector: None,
        atp_state: "New".into(),
        read_scale: super::model::default_read_scale(&sku),
        sku,
        elastic_pool_id: pool,
        max_size_bytes: max_size,
        tags: extras.tags,
        zone_redundant: extras.zone_redundant,
        backup_redundancy: extras.backup_redundancy,
    });
    st.new_operation(
        &subscription,
        &location,
        target,
        planned,
        OpDetail::Restore {
            server: si,
            database_id,
            content,
        },
        &call.api_version,
        ctx.now,
    );
    let headers = st.settings.restore_headers;
    sql_lro_reply(
        st,
        ctx,
        st.operations.len() - 1,
        headers,
        Some(json!({"operation": "CreateLogicalDatabase", "startTime": ts(ctx.now)})),
    )
}

pub(crate) fn delete_db(
    st: &mut State,
    call: &Call,
    sub: &str,
    rg: &str,
    server: &str,
    db: &str,
) -> Reply {
    let ctx = call.ctx;
    let Some(si) = find_server(st, sub, rg, server) else {
        return server_not_found(rg, server);
    };
    let srv = &st.servers[si];
    let Some(di) = srv.find_db(db) else {
        return Reply::empty(204);
    };
    let d = &srv.databases[di];
    let (database_id, name) = (d.database_id, d.name.clone());
    let (location, subscription, target) = (
        srv.location.clone(),
        srv.subscription_id.clone(),
        srv.db_id(&name),
    );
    // A retried DELETE re-attaches to the delete already running.
    if let Some(oi) = st.pending_db_op(OpKind::Delete, database_id) {
        return sql_lro_reply(st, ctx, oi, RestoreHeaders::Both, None);
    }
    if let Some(oi) = st.pending_db_op(OpKind::Restore, database_id) {
        st.cancel(
            oi,
            format!("The operation was canceled because database '{name}' was deleted while it was being restored."),
            ctx.now,
        );
    }
    let planned = st.take_operation_fault(OpKind::Delete, None);
    st.new_operation(
        &subscription,
        &location,
        target,
        planned,
        OpDetail::Delete {
            server: si,
            database_id,
        },
        &call.api_version,
        ctx.now,
    );
    sql_lro_reply(st, ctx, st.operations.len() - 1, RestoreHeaders::Both, None)
}

pub(crate) fn move_db(
    st: &mut State,
    req: &Req,
    sub: &str,
    rg: &str,
    server: &str,
    db: &str,
) -> Reply {
    let Some(si) = find_server(st, sub, rg, server) else {
        return server_not_found(rg, server);
    };
    let body = match parse_json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let srv = &st.servers[si];
    let Some(di) = srv.find_db(db) else {
        return Reply::arm_error(
            404,
            "SourceDatabaseNotFound",
            format!("The source database '{}/{db}' does not exist.", srv.name),
        );
    };
    if srv.databases[di].is_replicated() {
        return Reply::arm_error(
            409,
            "InvalidOperationForDatabaseInReplicationRelationship",
            format!("The operation cannot be performed on database '{db}' because it is involved in a replication relationship (a geo-replication link or a failover group)."),
        );
    }
    let target_text = body.get("id").and_then(Value::as_str).unwrap_or("");
    let Some(target) = parse_db_id(target_text) else {
        return Reply::arm_error(
            400,
            "InvalidMoveTargetResourceId",
            format!("The target resource id '{target_text}' is not a valid database resource id."),
        );
    };
    if !(eq(&target.sub, &srv.subscription_id)
        && eq(&target.rg, &srv.resource_group)
        && eq(&target.server, &srv.name))
    {
        return Reply::arm_error(
            400,
            "MismatchingServerNameWithUrl",
            format!(
                "The target '{target_text}' is not on server '{}' in resource group '{}' of subscription '{}': a database can only be renamed within its server.",
                srv.name, srv.resource_group, srv.subscription_id
            ),
        );
    }
    if srv.find_db(&target.db).is_some() {
        return Reply::arm_error(
            400,
            "DatabaseNameInUse",
            format!(
                "Database '{}' already exists on server '{}'. Choose a different database name.",
                target.db, srv.name
            ),
        );
    }
    let d = &srv.databases[di];
    let busy = st.pending_db_op(OpKind::Delete, d.database_id).is_some()
        || st.pending_db_op(OpKind::Restore, d.database_id).is_some();
    if d.status != "Online" || busy {
        return Reply::arm_error(
            409,
            "ConflictingDatabaseOperation",
            format!(
                "An operation is in progress on database '{}' (status {}); it cannot be renamed until it completes.",
                d.name, d.status
            ),
        );
    }
    st.servers[si].databases[di].name = target.db;
    Reply::empty(200)
}

pub(crate) fn sql_async_status(st: &mut State, ctx: &Ctx, sub: &str, id: &str) -> Reply {
    match poll(st, sub, id, &[OpKind::Restore, OpKind::Delete], ctx.now) {
        Some(i) => Reply::json(200, status_json(st, i)),
        None => op_not_found("databaseAzureAsyncOperation", id),
    }
}

pub(crate) fn sql_op_result(st: &mut State, ctx: &Ctx, sub: &str, id: &str) -> Reply {
    let Some(i) = poll(st, sub, id, &[OpKind::Restore, OpKind::Delete], ctx.now) else {
        return op_not_found("databaseOperationResults", id);
    };
    let o = &st.operations[i];
    match o.status {
        OpStatus::InProgress => {
            let url = sql_result_url(
                ctx.base,
                &o.subscription_id,
                &o.location,
                o.id,
                &o.api_version,
            );
            still_running(st, url)
        }
        OpStatus::Succeeded => match &o.detail {
            OpDetail::Restore {
                server,
                database_id,
                ..
            } => {
                let found = st.servers.get(*server).and_then(|srv| {
                    srv.databases
                        .iter()
                        .find(|d| d.database_id == *database_id)
                        .map(|d| d.to_arm(srv, ctx.now))
                });
                match found {
                    Some(v) => Reply::json(200, v),
                    None => Reply::arm_error(
                        404,
                        "ResourceNotFound",
                        format!(
                            "The restored database '{}' no longer exists. {NOT_FOUND_HINT}",
                            o.target
                        ),
                    ),
                }
            }
            _ => Reply::empty(200),
        },
        OpStatus::Failed | OpStatus::Canceled => failed_reply(st, i),
    }
}

/// `GET {DB}/auditingSettings/{name}` (the one a database has is `default`).
pub(crate) fn get_auditing(st: &State, path: (&str, &str, &str, &str), name: &str) -> Reply {
    let found = locate_db(st, path).and_then(|at| {
        only_default(path, "auditingSettings", name)?;
        Ok(at)
    });
    match found {
        Ok((si, di)) => {
            let srv = &st.servers[si];
            Reply::json(200, srv.databases[di].auditing_arm(srv))
        }
        Err(reply) => reply,
    }
}

/// `GET {DB}/replicationLinks`.
pub(crate) fn list_replication_links(st: &State, path: (&str, &str, &str, &str)) -> Reply {
    match locate_db(st, path) {
        Ok((si, di)) => {
            let srv = &st.servers[si];
            Reply::json(200, srv.databases[di].replication_links_arm(srv))
        }
        Err(reply) => reply,
    }
}

/// `GET` / `PUT {DB}/advancedThreatProtectionSettings/Default`: Defender's
/// state for the database (`New`: never set on it).
pub(crate) fn threat_protection(
    st: &mut State,
    method: &str,
    path: (&str, &str, &str, &str),
    name: &str,
    body: &[u8],
) -> Reply {
    let (si, di) = match locate_db(st, path).and_then(|at| {
        only_default(path, "advancedThreatProtectionSettings", name)?;
        Ok(at)
    }) {
        Ok(at) => at,
        Err(reply) => return reply,
    };
    let srv = &mut st.servers[si];
    let id = format!(
        "{}/advancedThreatProtectionSettings/Default",
        srv.db_id(&srv.databases[di].name)
    );
    let d = &mut srv.databases[di];
    let mut status = 200;
    if method == "PUT" {
        let state = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["properties"]["state"].as_str().map(str::to_string));
        match state.as_deref() {
            Some(s @ ("Enabled" | "Disabled")) => {
                if d.atp_state == "New" {
                    status = 201;
                }
                d.atp_state = s.to_string();
            }
            _ => {
                return Reply::arm_error(
                    400,
                    "AdvancedThreatProtectionInvalidUserSuppliedParameter",
                    "The 'properties.state' of the Advanced Threat Protection settings must be Enabled or Disabled.",
                )
            }
        }
    }
    Reply::json(
        status,
        json!({
            "id": id,
            "name": "Default",
            "type": "Microsoft.Sql/servers/databases/advancedThreatProtectionSettings",
            "properties": { "state": d.atp_state },
        }),
    )
}

/// `PATCH {DB}`: what pitr changes after a restore (`properties.readScale`),
/// answered at once (200; Azure may answer 202 and an operation).
pub(crate) fn patch_db(
    st: &mut State,
    now: chrono::DateTime<chrono::Utc>,
    path: (&str, &str, &str, &str),
    req: &Req,
) -> Reply {
    let (si, di) = match locate_db(st, path) {
        Ok(at) => at,
        Err(reply) => return reply,
    };
    let body = match parse_json_body(req) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let db = path.3;
    let d = &mut st.servers[si].databases[di];
    if d.status != "Online" {
        return Reply::arm_error(
            409,
            "ConflictingDatabaseOperation",
            format!("An operation is in progress on database '{db}'; retry once it has finished."),
        );
    }
    if let Some(v) = body["properties"].get("readScale").filter(|v| !v.is_null()) {
        match v.as_str() {
            Some("Disabled") => d.read_scale = "Disabled".into(),
            Some("Enabled") if super::model::allows_read_scale(&d.sku) => {
                d.read_scale = "Enabled".into()
            }
            Some("Enabled") => {
                return Reply::arm_error(
                    400,
                    "InvalidReadScaleEdition",
                    format!(
                        "Read scale-out is not available for the service tier of database '{db}'."
                    ),
                )
            }
            _ => {
                return Reply::arm_error(
                    400,
                    "InvalidRequestContent",
                    format!("'properties.readScale' {v} must be Enabled or Disabled."),
                )
            }
        }
    }
    let srv = &st.servers[si];
    Reply::json(200, srv.databases[di].to_arm(srv, now))
}
