//! Layering: built-in defaults, then the TOML file, then `PITR_<SECTION>_<KEY>`
//! environment variables. An override takes the type its key needs (a
//! numeric-looking tenant id stays a string), and a bad one is reported by
//! the variable's name, never its value.
use super::{Config, ConfigError};
use std::ffi::OsString;
use std::path::Path;

/// The sections a `PITR_<SECTION>_<KEY>` variable can set. Other `PITR_*`
/// variables (PITR_CONFIG, PITR_LOG, a secret named by `client_secret_env`)
/// are not config keys and are left alone.
const SECTIONS: &[&str] = &["store", "azure", "engine", "serve", "auth"];

/// Nested tables a `PITR_*` variable can reach: (section, table).
const SUBTABLES: &[(&str, &str)] = &[("engine", "estimates"), ("engine", "timeouts")];

/// The `PITR_*` variables of this process. A variable whose name is not
/// UTF-8 cannot be a config key and is ignored; a `PITR_*` one whose value
/// is not UTF-8 is refused by name.
pub fn env_overrides() -> Result<Vec<(String, String)>, ConfigError> {
    overrides_from(std::env::vars_os())
}

fn overrides_from(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (name, value) in vars {
        let Ok(name) = name.into_string() else {
            continue;
        };
        if !name.starts_with("PITR_") {
            continue;
        }
        let value = value.into_string().map_err(|_| ConfigError::Override {
            var: name.clone(),
            problem: "its value is not valid UTF-8; set it to UTF-8 text".into(),
        })?;
        out.push((name, value));
    }
    Ok(out)
}

impl Config {
    /// Reads `path`, applies `PITR_*` overrides from `vars`, validates.
    pub fn load(
        path: &Path,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: p.clone(),
            cause: e.to_string(),
        })?;
        Self::from_toml(&text, &p, vars)
    }

    pub fn from_toml(
        text: &str,
        origin: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let parse_err = |cause: String| ConfigError::Parse {
            path: origin.to_string(),
            cause,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        // The file alone must make sense, so that a later error is the
        // variable's.
        decode(&table).map_err(parse_err)?;
        for (name, value) in vars {
            apply_override(&mut table, &name, &value)?;
        }
        let config = decode(&table).map_err(parse_err)?;
        config.validate(origin)?;
        Ok(config)
    }
}

fn decode(table: &toml::Table) -> Result<Config, String> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| e.to_string())
}

/// `PITR_AZURE_MIN_POLL_INTERVAL_MS=500` sets `[azure] min_poll_interval_ms`.
fn apply_override(table: &mut toml::Table, name: &str, value: &str) -> Result<(), ConfigError> {
    let refuse = |problem: String| ConfigError::Override {
        var: name.to_string(),
        problem,
    };
    let Some(rest) = name.strip_prefix("PITR_") else {
        return Ok(());
    };
    let rest = rest.to_ascii_lowercase();
    let Some((section, key)) = rest.split_once('_') else {
        return Ok(());
    };
    if !SECTIONS.contains(&section) {
        return Ok(());
    }
    if section == "azure" && key == "client_secret" {
        return Err(refuse(
            "secrets are not config keys; put the secret in the variable named by [azure] client_secret_env".into(),
        ));
    }
    // A key of a nested table (`PITR_ENGINE_ESTIMATES_RESTORE_SECS` sets
    // `[engine.estimates] restore_secs`).
    let mut path = vec![section.to_string()];
    let mut key = key.to_string();
    for (parent, sub) in SUBTABLES {
        if section == *parent {
            if let Some(k) = key.strip_prefix(&format!("{sub}_")) {
                path.push(sub.to_string());
                key = k.to_string();
                break;
            }
        }
    }
    let shown = format!("[{}] {key}", path.join("."));
    // The value takes the type its key accepts: the first reading under
    // which the whole config decodes.
    let mut candidates = Vec::new();
    if let Ok(i) = value.parse::<i64>() {
        candidates.push(toml::Value::Integer(i));
    }
    if let Ok(b) = value.parse::<bool>() {
        candidates.push(toml::Value::Boolean(b));
    }
    candidates.push(toml::Value::String(value.to_string()));
    let mut last_error = String::new();
    for candidate in candidates {
        let mut trial = table.clone();
        set(&mut trial, &path, &key, candidate).map_err(&refuse)?;
        match decode(&trial) {
            Ok(_) => {
                *table = trial;
                return Ok(());
            }
            Err(e) => last_error = e,
        }
    }
    // Not the value (which may be a secret set by mistake): the key and why.
    // The decoder's "invalid type: string \"<value>\", expected u64": only
    // what was expected is repeated, never the value.
    let expected = last_error
        .lines()
        .find_map(|l| l.find("expected").map(|i| l[i..].trim().to_string()));
    let why = if last_error.contains("unknown field") {
        format!(
            "there is no such key ({}); fix or unset the variable",
            expected.unwrap_or_default()
        )
    } else {
        format!(
            "the value is not of the right kind ({}); fix or unset the variable",
            expected.unwrap_or_else(|| "not accepted".into())
        )
    };
    Err(refuse(format!("cannot set {shown}: {why}")))
}

fn set(
    table: &mut toml::Table,
    path: &[String],
    key: &str,
    value: toml::Value,
) -> Result<(), String> {
    let mut t = table;
    for name in path {
        let entry = t
            .entry(name.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .ok_or_else(|| format!("[{}] is not a table", path.join(".")))?;
    }
    t.insert(key.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn an_override_takes_the_type_its_key_needs() {
        let c = Config::from_toml(
            "",
            "t",
            vars(&[
                ("PITR_AZURE_TENANT_ID", "12345"),
                ("PITR_AZURE_MIN_POLL_INTERVAL_MS", "250"),
                ("PITR_ENGINE_ESTIMATES_RESTORE_SECS", "900"),
            ]),
        )
        .unwrap();
        assert_eq!(c.azure.tenant_id.as_deref(), Some("12345"));
        assert_eq!(c.azure.min_poll_interval_ms, 250);
        assert_eq!(
            c.engine.estimates.secs(crate::domain::StepName::Restore),
            Some(900)
        );
    }

    #[test]
    fn a_bad_override_is_named_by_its_variable_never_its_value() {
        let e = Config::from_toml(
            "",
            "t",
            vars(&[("PITR_AZURE_MIN_POLL_INTERVAL_MS", "s3cr3t-abc")]),
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("PITR_AZURE_MIN_POLL_INTERVAL_MS"), "{msg}");
        assert!(msg.contains("min_poll_interval_ms"), "{msg}");
        assert!(!msg.contains("s3cr3t"), "{msg}");
        assert!(!msg.contains("config file"), "{msg}");
        let e = Config::from_toml("", "t", vars(&[("PITR_AZURE_NOPE", "1")])).unwrap_err();
        assert!(e.to_string().contains("PITR_AZURE_NOPE"), "{e}");
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn non_utf8_values_are_refused_by_name_and_foreign_variables_ignored() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![0x66, 0xff, 0x6f]);
        let e = overrides_from([(OsString::from("PITR_STORE_URL"), bad.clone())]).unwrap_err();
        assert!(e.to_string().contains("PITR_STORE_URL"), "{e}");
        assert!(e.to_string().contains("UTF-8"), "{e}");
        let ok = overrides_from([
            (OsString::from("LANG_WEIRD"), bad.clone()),
            (OsString::from_vec(vec![0x50, 0xff]), bad),
            (OsString::from("PITR_ACTOR"), OsString::from("ana")),
        ])
        .unwrap();
        assert_eq!(ok, vars(&[("PITR_ACTOR", "ana")]));
    }
}
