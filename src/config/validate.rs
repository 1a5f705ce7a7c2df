//! Every value bounded and every name checked, before anything is changed.
//! A refused value names its key and the allowed range or form. Names follow
//! ARM's naming rules, so that no configured name can change the target of
//! an ARM request (`AxDB/../..`, `?`, `#`).
use super::{Config, ConfigError, CredentialKind, WEEK_SECS};
use crate::domain::{ActionKind, Environment};
use std::collections::HashSet;

impl Config {
    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        self.check().map_err(|problem| ConfigError::Invalid {
            path: origin.to_string(),
            problem,
        })
    }

    /// Checks every key that needs no other part of pitr; the store URL
    /// is checked by the store where the app is put together
    /// (`cli::commands::load_config`).
    fn check(&self) -> Result<(), String> {
        let a = &self.azure;
        for (key, value) in [
            ("arm_endpoint", &a.arm_endpoint),
            ("authority_host", &a.authority_host),
        ] {
            match url::Url::parse(value) {
                Ok(u) if u.scheme() == "https" && u.host().is_some() => {}
                _ => return Err(format!("[azure] {key} '{value}' must be an https URL")),
            }
        }
        if !is_env_var_name(&a.client_secret_env) {
            return Err(format!(
                "[azure] client_secret_env '{}' must name an environment variable (letters, digits and _, not starting with a digit)",
                a.client_secret_env
            ));
        }
        for (key, value) in [("tenant_id", &a.tenant_id), ("client_id", &a.client_id)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(format!(
                    "[azure] {key} must not be empty; remove it or set it"
                ));
            }
        }
        if a.credential == CredentialKind::ClientSecret
            && (a.tenant_id.is_none() || a.client_id.is_none())
        {
            return Err(
                "[azure] credential = \"client_secret\" needs tenant_id and client_id".into(),
            );
        }
        let r = &a.rate_limits;
        for (name, b) in [
            ("reads", r.reads),
            ("writes", r.writes),
            ("deletes", r.deletes),
        ] {
            if b.capacity == 0 || b.capacity > 100_000 {
                return Err(format!(
                    "[azure.rate_limits] {name}.capacity = {} is outside 1..=100000",
                    b.capacity
                ));
            }
            if !(b.per_second.is_finite() && b.per_second > 0.0 && b.per_second <= 100_000.0) {
                return Err(format!(
                    "[azure.rate_limits] {name}.per_second = {} must be a positive rate (at most 100000)",
                    b.per_second
                ));
            }
        }
        if r.runners == 0 || r.runners > 1000 {
            return Err(format!(
                "[azure.rate_limits] runners = {} is outside 1..=1000",
                r.runners
            ));
        }
        if a.max_concurrent_restores_per_subscription > 10_000 {
            return Err(format!(
                "[azure] max_concurrent_restores_per_subscription = {} is outside 0..=10000 (0: no queue)",
                a.max_concurrent_restores_per_subscription
            ));
        }
        let e = &self.engine;
        e.estimates.check("engine.estimates", 0)?;
        e.timeouts.check("engine.timeouts", 1)?;
        let min = a.min_poll_interval_ms;
        for (key, value, low, high) in [
            ("[azure] min_poll_interval_ms", min, 1, 3_600_000),
            (
                "[azure] max_poll_interval_ms",
                a.max_poll_interval_ms,
                min,
                3_600_000,
            ),
            (
                "[azure] request_timeout_secs",
                a.request_timeout_secs,
                1,
                3600,
            ),
            ("[azure] retry_max_times", a.retry_max_times as u64, 0, 20),
            (
                "[azure] retry_min_delay_ms",
                a.retry_min_delay_ms,
                0,
                600_000,
            ),
            (
                "[azure] retry_max_delay_ms",
                a.retry_max_delay_ms,
                a.retry_min_delay_ms,
                3_600_000,
            ),
            (
                "[engine] restore_timeout_secs",
                e.restore_timeout_secs.unwrap_or(1),
                1,
                WEEK_SECS,
            ),
            (
                "[engine] action_timeout_secs",
                e.action_timeout_secs.unwrap_or(1),
                1,
                WEEK_SECS,
            ),
            (
                "[engine] step_timeout_secs",
                e.step_timeout_secs.unwrap_or(1),
                1,
                WEEK_SECS,
            ),
            ("[engine] lease_ttl_secs", e.lease_ttl_secs, 3, 24 * 3600),
            (
                "[engine] keep_original_hours",
                e.keep_original_hours,
                0,
                24 * 365,
            ),
            (
                "[engine] scheduler_tick_secs",
                e.scheduler_tick_secs,
                1,
                3600,
            ),
            (
                "[engine] max_concurrent_runs",
                e.max_concurrent_runs as u64,
                1,
                10_000,
            ),
        ] {
            if value < low || value > high {
                return Err(format!("{key} = {value} is outside {low}..={high}"));
            }
        }
        self.check_serve_shape()?;
        let mut seen = HashSet::new();
        for env in &self.environments {
            environment(env)?;
            if !seen.insert(env.name.as_str()) {
                return Err(format!(
                    "environment '{}' is declared twice; names must be unique",
                    env.name
                ));
            }
        }
        Ok(())
    }
}

impl Config {
    /// The forms of `[serve]`, `[auth]` and `[[notifications]]` (checked on
    /// every load; what only `pitr serve` needs is in [`Config::check_serve`]).
    fn check_serve_shape(&self) -> Result<(), String> {
        let s = &self.serve;
        if s.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "[serve] listen '{}' must be an IP address and port, like 127.0.0.1:8080",
                s.listen
            ));
        }
        if s.tls_cert.is_some() != s.tls_key.is_some() {
            return Err("[serve] tls_cert and tls_key go together: set both or neither".into());
        }
        if let Some(u) = &s.public_url {
            http_url("[serve] public_url", u)?;
        }
        // The web page's cookies are `Secure` off loopback: over plain HTTP
        // a browser drops them and the sign-in would loop. The address
        // checked is the one the sign-in uses: `public_url`, or its default
        // `http(s)://{listen}`.
        let u = s.public_url();
        let plain_off_loopback =
            url::Url::parse(&u).is_ok_and(|p| p.scheme() == "http") && !super::is_loopback_url(&u);
        if plain_off_loopback && self.auth.client_id.is_some() {
            return Err(match &s.public_url {
                Some(_) => format!(
                    "[serve] public_url '{u}' must be an https URL for the web page's sign-in ([auth] client_id is set): its cookies are Secure off loopback, and Entra ID takes plain-HTTP redirect URIs only for localhost; put TLS in front (or tls_cert/tls_key) and give its https address"
                ),
                None => format!(
                    "[serve] public_url is needed for the web page's sign-in ([auth] client_id is set) when listen '{}' is not a loopback address: set it to the https address people open (TLS in front, or tls_cert/tls_key); without it the sign-in would go to '{u}' over plain HTTP and loop",
                    s.listen
                ),
            });
        }
        let a = &self.auth;
        if let Some(h) = &a.authority_host {
            match url::Url::parse(h) {
                Ok(u) if u.scheme() == "https" && u.host().is_some() => {}
                _ => return Err(format!("[auth] authority_host '{h}' must be an https URL")),
            }
        }
        for (key, value) in [
            ("tenant_id", &a.tenant_id),
            ("audience", &a.audience),
            ("client_id", &a.client_id),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(format!(
                    "[auth] {key} must not be empty; remove it or set it"
                ));
            }
        }
        if let Some(t) = &a.tenant_id {
            if !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            {
                return Err(format!(
                    "[auth] tenant_id '{t}' must be a tenant id (a UUID) or a domain name"
                ));
            }
        }
        if let Some(var) = &a.client_secret_env {
            if !is_env_var_name(var) {
                return Err("[auth] client_secret_env must name an environment variable".into());
            }
        }
        let mut urls = HashSet::new();
        for n in &self.notifications {
            http_url("[[notifications]] url", &n.url)?;
            if !urls.insert(n.url.as_str()) {
                return Err(format!(
                    "[[notifications]] url '{}' is declared twice",
                    n.url
                ));
            }
            if !is_env_var_name(&n.secret_env) {
                return Err(format!(
                    "[[notifications]] {}: secret_env must name an environment variable (letters, digits and _)",
                    n.url
                ));
            }
            if n.events.is_empty() {
                return Err(format!(
                    "[[notifications]] {}: events is empty; remove it (all events) or name some",
                    n.url
                ));
            }
            for e in &n.events {
                if !super::NOTIFICATION_EVENTS.contains(&e.as_str()) {
                    return Err(format!(
                        "[[notifications]] {}: event '{e}' is unknown; use any of {}",
                        n.url,
                        super::NOTIFICATION_EVENTS.join(" ")
                    ));
                }
            }
        }
        Ok(())
    }

    /// What `pitr serve` needs on top of a valid config: an auth mode it
    /// can enforce (`none` only on a loopback listener; `entra` with its
    /// tenant and audience). Refused before anything listens (exit 2).
    pub fn check_serve(&self) -> Result<(), String> {
        let listen: std::net::SocketAddr = self
            .serve
            .listen
            .parse()
            .map_err(|_| format!("[serve] listen '{}' is not an address", self.serve.listen))?;
        match self.auth.mode {
            super::AuthMode::None if !listen.ip().is_loopback() => Err(format!(
                "[auth] mode = \"none\" is refused on [serve] listen = {listen}, which is not a loopback address: anyone reaching it would act as an operator; use mode = \"entra\" (tenant_id, audience) or listen on 127.0.0.1"
            )),
            super::AuthMode::None => Ok(()),
            super::AuthMode::Entra => {
                if self.auth.tenant_id.is_none() || self.auth.audience.is_none() {
                    return Err("[auth] mode = \"entra\" needs tenant_id (the Entra tenant) and audience (the API's application ID URI, e.g. api://pitr); or, on a loopback listener only, mode = \"none\"".into());
                }
                Ok(())
            }
        }
    }

    /// `[auth] authority_host`, else `[azure] authority_host`, without a
    /// trailing slash.
    pub fn auth_authority(&self) -> String {
        self.auth
            .authority_host
            .clone()
            .unwrap_or_else(|| self.azure.authority_host.clone())
            .trim_end_matches('/')
            .to_string()
    }
}

fn http_url(key: &str, value: &str) -> Result<(), String> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => Ok(()),
        _ => Err(format!("{key} '{value}' must be an http(s) URL")),
    }
}

fn environment(env: &Environment) -> Result<(), String> {
    let name = &env.name;
    let what = |key: &str, rule: &str| format!("environment '{name}': {key} {rule}");
    if !is_environment_name(name) {
        return Err(format!(
            "environment name '{name}' must be 1-64 letters, digits, '.', '_' or '-'"
        ));
    }
    if !is_uuid(&env.subscription_id) {
        return Err(what(
            "subscription_id",
            &format!(
                "'{}' must be a subscription id (a UUID)",
                env.subscription_id
            ),
        ));
    }
    resource_group(&env.resource_group).map_err(|r| what("resource_group", &r))?;
    server(&env.server).map_err(|r| what("server", &r))?;
    if !is_location(&env.location) {
        return Err(what(
            "location",
            &format!(
                "'{}' must be an Azure region name (lowercase letters and digits, like westeurope)",
                env.location
            ),
        ));
    }
    for (key, db) in [
        ("database", Some(&env.database)),
        ("entity_store_database", env.entity_store_database.as_ref()),
        ("mr_database", env.mr_database.as_ref()),
    ] {
        if let Some(db) = db {
            database(db).map_err(|r| what(key, &r))?;
        }
    }
    if let Some(var) = &env.sql_password_env {
        if !is_env_var_name(var) {
            return Err(what(
                "sql_password_env",
                "must name an environment variable (letters, digits and _)",
            ));
        }
    }
    for g in &env.requester_groups {
        if g.is_empty() || g.len() > 128 || g.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(what(
                "requester_groups",
                "must list group object ids (UUIDs, as in the token's groups claim)",
            ));
        }
    }
    if env.retention_days == 0 || env.retention_days > 35 {
        return Err(what(
            "retention_days",
            &format!(
                "= {} is outside 1..=35 (Azure SQL keeps point-in-time backups 1 to 35 days)",
                env.retention_days
            ),
        ));
    }
    for vm in env.aos_vms.iter().chain(&env.sync_vm).chain(&env.mr_vm) {
        if parse_vm_id(vm).is_none() {
            return Err(what(
                "VM",
                &format!("'{vm}' is not a VM resource id (/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/NAME)"),
            ));
        }
    }
    if env.actions == ActionKind::VmRunCommand
        && (env.aos_vms.is_empty() || env.sync_vm.is_none() || env.mr_vm.is_none())
    {
        return Err(what(
            "actions",
            "= \"vm-run-command\" needs aos_vms, sync_vm and mr_vm",
        ));
    }
    match (&env.actions, &env.webhook) {
        (ActionKind::Webhook, None) => {
            return Err(what(
                "actions",
                "= \"webhook\" needs webhook = { url = \"https://...\", secret_env = \"VAR\" }",
            ))
        }
        (ActionKind::Webhook, Some(w)) => {
            match url::Url::parse(&w.url) {
                Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {}
                _ => {
                    return Err(what(
                        "webhook.url",
                        &format!("'{}' must be an http(s) URL", w.url),
                    ))
                }
            }
            if !is_env_var_name(&w.secret_env) {
                return Err(what(
                    "webhook.secret_env",
                    "must name an environment variable (letters, digits and _)",
                ));
            }
        }
        (_, Some(_)) => {
            return Err(what(
                "webhook",
                "is only used with actions = \"webhook\"; remove it or set actions",
            ))
        }
        _ => {}
    }
    Ok(())
}

/// Splits a VM resource id into (subscription, resource group, name), each
/// checked against ARM's naming rules.
pub fn parse_vm_id(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.strip_prefix('/')?.split('/').collect();
    match parts.as_slice() {
        ["subscriptions", sub, "resourceGroups", rg, "providers", prov, "virtualMachines", name]
            if prov.eq_ignore_ascii_case("Microsoft.Compute")
                && is_uuid(sub)
                && resource_group(rg).is_ok()
                && is_vm_name(name) =>
        {
            Some((sub, rg, name))
        }
        _ => None,
    }
}

fn is_environment_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !s.starts_with('.')
}

fn is_env_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_location(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// 1-90 characters: letters, digits, `_`, `(`, `)`, `-`, `.`; not ending in `.`.
fn resource_group(s: &str) -> Result<(), String> {
    let ok = (1..=90).contains(&s.chars().count())
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '(' | ')' | '-' | '.'))
        && !s.ends_with('.');
    ok.then_some(()).ok_or_else(|| {
        format!("'{s}' must be 1-90 letters, digits, '_', '(', ')', '-' or '.', not ending in '.'")
    })
}

/// 1-63 lowercase letters, digits and hyphens, not starting or ending with a hyphen.
fn server(s: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    ok.then_some(()).ok_or_else(|| {
        format!(
            "'{s}' must be 1-63 lowercase letters, digits and '-', not starting or ending with '-'"
        )
    })
}

/// 1-128 characters without `<>*%&:\/?#` or control characters, not ending
/// in `.` or a space, and not `.` or `..`.
fn database(s: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&s.chars().count())
        && !s
            .chars()
            .any(|c| c.is_control() || "<>*%&:\\/?#".contains(c))
        && !s.ends_with('.')
        && !s.ends_with(' ')
        && !s.starts_with(' ');
    ok.then_some(()).ok_or_else(|| {
        format!("'{s}' must be 1-128 characters without <>*%&:\\/?# or control characters, not ending in '.' or a space")
    })
}

/// 1-64 letters, digits, `-`, `_` and `.`, not starting with `_` nor
/// ending in `.` or `-`.
fn is_vm_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !s.starts_with('_')
        && !s.ends_with('.')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests;
