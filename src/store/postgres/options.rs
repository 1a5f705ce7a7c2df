//! A `postgres://` URL read the way libpq reads it, for the options pitr
//! understands: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` with
//! `sslmode`, `sslrootcert`, `password`, `connect_timeout` and
//! `application_name`. Anything else is refused by name, so a typo is never
//! silently ignored.
//!
//! The password is a [`Secret`]: it is never shown by `Debug`, in an error,
//! or in the target name used by messages.
use crate::store::{redact_url, Result, StoreError, PASSWORD_ENV};
use percent_encoding::percent_decode_str;
use std::path::PathBuf;
use std::time::Duration;

/// libpq's `sslmode`. `prefer` (libpq's default) and `require` encrypt
/// without checking who answers; `verify-ca` checks the certificate chain;
/// `verify-full` also checks that the certificate names the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }
}

/// Where the CA certificates that `verify-ca`/`verify-full` trust come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file (`sslrootcert=/path/ca.pem`).
    File(PathBuf),
    /// The operating system's trust store (`sslrootcert=system`, and the
    /// default for the verifying modes).
    System,
}

/// A password: shown as `***` by `Debug`, never by `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

const OPTIONS: &str = "sslmode, sslrootcert, password, connect_timeout, application_name";
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub user: String,
    pub password: Option<Secret>,
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<RootCert>,
    pub connect_timeout: Duration,
    pub application_name: String,
}

impl ConnectOptions {
    /// Reads `url`; `env_password` (from [`PASSWORD_ENV`]) wins over a
    /// password in the URL.
    pub fn parse(url: &str, env_password: Option<String>) -> Result<ConnectOptions> {
        let bad = |problem: String| StoreError::BadUrl {
            url: redact_url(url),
            problem,
        };
        let parsed = url::Url::parse(url).map_err(|e| {
            bad(format!(
                "cannot be read ({e}); write postgres://USER@HOST:5432/DATABASE, \
                 percent-encode special characters, and put the password in {PASSWORD_ENV}"
            ))
        })?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        }
        let user = decode(parsed.username());
        if user.is_empty() {
            return Err(bad(
                "no user; write postgres://USER@HOST:5432/DATABASE".into()
            ));
        }
        let host = parsed
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host; write postgres://USER@HOST:5432/DATABASE".into()))?;
        let dbname = decode(parsed.path().trim_start_matches('/'));
        if dbname.is_empty() || dbname.contains('/') {
            return Err(bad(
                "no database name; write postgres://USER@HOST:5432/DATABASE".into(),
            ));
        }
        let mut options = ConnectOptions {
            user,
            password: parsed.password().map(|p| Secret(decode(p))),
            host,
            port: parsed.port().unwrap_or(5432),
            dbname,
            sslmode: SslMode::Prefer,
            sslrootcert: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            application_name: "pitr".into(),
        };
        for pair in parsed.query().unwrap_or("").split('&') {
            if pair.is_empty() {
                continue;
            }
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (key, value) = (decode(key), decode(value));
            match key.as_str() {
                "sslmode" => {
                    options.sslmode = SslMode::parse(&value).ok_or_else(|| {
                        bad(format!(
                            "sslmode '{value}' is not one of disable, prefer, require, \
                             verify-ca, verify-full"
                        ))
                    })?
                }
                "sslrootcert" if value == "system" => options.sslrootcert = Some(RootCert::System),
                "sslrootcert" if !value.is_empty() => {
                    options.sslrootcert = Some(RootCert::File(PathBuf::from(value)))
                }
                "password" => options.password = Some(Secret(value)),
                "connect_timeout" => {
                    let secs = value
                        .parse::<u64>()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| {
                            bad(format!(
                                "connect_timeout '{value}' is not a number of seconds above 0"
                            ))
                        })?;
                    options.connect_timeout = Duration::from_secs(secs);
                }
                "application_name" => options.application_name = value,
                other => {
                    return Err(bad(format!(
                        "option '{other}' is not understood here; pitr reads {OPTIONS}"
                    )))
                }
            }
        }
        if let Some(p) = env_password {
            options.password = Some(Secret(p));
        }
        Ok(options)
    }

    /// How messages name the store: engine, user, host, port and database
    /// (the user as the URL writes it), never the password.
    pub fn target(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let user: String = self
            .user
            .chars()
            .map(|c| match c {
                '%' | '@' | ':' | '/' => format!("%{:02X}", c as u32),
                c => c.to_string(),
            })
            .collect();
        format!("postgres://{user}@{}:{}/{}", host, self.port, self.dbname)
    }

    pub fn pg_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.user(&self.user)
            .host(&self.host)
            .port(self.port)
            .dbname(&self.dbname)
            .application_name(&self.application_name)
            .connect_timeout(self.connect_timeout)
            .ssl_mode(match self.sslmode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                    tokio_postgres::config::SslMode::Require
                }
            });
        if let Some(p) = &self.password {
            c.password(p.expose());
        }
        c
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_libpq_forms() {
        let o = ConnectOptions::parse(
            "postgres://pitr%40corp:p%2Fss@db.example.com:6432/pitr%20store?sslmode=verify-full&sslrootcert=/etc/ca.pem&connect_timeout=3",
            None,
        )
        .unwrap();
        assert_eq!(
            (o.user.as_str(), o.host.as_str(), o.port, o.dbname.as_str()),
            ("pitr@corp", "db.example.com", 6432, "pitr store")
        );
        assert_eq!(o.password.as_ref().map(Secret::expose), Some("p/ss"));
        assert_eq!(o.sslmode, SslMode::VerifyFull);
        assert_eq!(o.sslrootcert, Some(RootCert::File("/etc/ca.pem".into())));
        assert_eq!(o.connect_timeout, Duration::from_secs(3));
        assert_eq!(
            o.target(),
            "postgres://pitr%40corp@db.example.com:6432/pitr store"
        );

        let o = ConnectOptions::parse("postgresql://u@[::1]/db?password=from-query", None).unwrap();
        assert_eq!((o.host.as_str(), o.port), ("::1", 5432));
        assert_eq!(o.target(), "postgres://u@[::1]:5432/db");
        assert_eq!(o.sslmode, SslMode::Prefer);
        assert_eq!(o.password.as_ref().map(Secret::expose), Some("from-query"));
        // The environment wins over the URL.
        let o = ConnectOptions::parse("postgres://u:url@h/db", Some("env".into())).unwrap();
        assert_eq!(o.password.as_ref().map(Secret::expose), Some("env"));
        let o = ConnectOptions::parse("postgres://u@h/db?sslrootcert=system", None).unwrap();
        assert_eq!(o.sslrootcert, Some(RootCert::System));
    }

    #[test]
    fn refuses_what_it_would_otherwise_ignore_without_showing_the_password() {
        for (url, expected) in [
            ("postgres://h/db", "no user"),
            ("postgres://u@h", "no database"),
            ("postgres://u@h/", "no database"),
            (
                "postgres://u:hunter22@h/db?sslmode=verify",
                "sslmode 'verify'",
            ),
            ("postgres://u:hunter22@h/db?sslcert=x", "option 'sslcert'"),
            (
                "postgres://u:hunter22@h/db?connect_timeout=soon",
                "connect_timeout",
            ),
            ("postgres://u:hunter22@h:99999/db", "cannot be read"),
        ] {
            match ConnectOptions::parse(url, None) {
                Err(e @ StoreError::BadUrl { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.contains(expected), "{url}: {msg}");
                    assert!(!msg.contains("hunter22"), "{msg}");
                }
                other => panic!("{url}: expected BadUrl, got {other:?}"),
            }
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let o = ConnectOptions::parse("postgres://u:hunter22@h/db", None).unwrap();
        assert!(!format!("{o:?}").contains("hunter22"));
        assert!(!format!("{:?}", o.pg_config()).contains("hunter22"));
    }
}
