//! Errors from Azure, keeping Azure's own code and message intact.
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AzureError {
    /// Azure answered with an error it will answer again (4xx with an ARM error code).
    #[error("Azure refused {op}: HTTP {status} {code}: {message}")]
    Refused {
        op: String,
        status: u16,
        code: String,
        message: String,
    },
    /// 408, 429, 5xx: worth retrying; surfaced once the retries are spent.
    #[error("Azure did not serve {op} (HTTP {status} {code}: {message}) after {attempts} attempts; it may be throttled or unavailable, try again later")]
    Unavailable {
        op: String,
        status: u16,
        code: String,
        message: String,
        retry_after: Option<Duration>,
        attempts: usize,
    },
    /// The request never got an answer (connection refused or dropped, timeout).
    #[error("cannot reach Azure for {op}: {cause}")]
    Transport { op: String, cause: String },
    #[error("cannot get a token for Azure: {0}")]
    Credential(String),
    /// Nothing listens at the endpoint (connection refused, no such host):
    /// not worth more than a short wait. `key` is the config key to check.
    #[error("cannot reach {what} at {endpoint}: {cause}; is [azure] {key} right? (for a rehearsal: is `pitr mock-azure` running there?)")]
    Unreachable {
        what: &'static str,
        endpoint: String,
        key: &'static str,
        cause: String,
    },
    /// Entra ID refused the credential (`AADSTS...`): final, the config
    /// must change.
    #[error("Entra ID refused the credential of client {client} in tenant {tenant}: {code}: {message}; {hint}")]
    CredentialRefused {
        tenant: String,
        client: String,
        code: String,
        message: String,
        hint: &'static str,
    },
    /// A long-running operation ended Failed or Canceled.
    #[error("Azure operation {op} ended {status}: {code}: {message}")]
    OperationFailed {
        op: String,
        status: String,
        code: String,
        message: String,
    },
    #[error("Azure operation {op} did not finish within {after:?}; it may still be running in Azure (resume re-attaches to it)")]
    Timeout { op: String, after: Duration },
    #[error("unexpected answer from Azure for {op}: {detail}")]
    Protocol { op: String, detail: String },
    #[error("Azure client setup: {0}")]
    Setup(String),
}

impl AzureError {
    /// Transient failures are retried; the rest stop the step at once. An
    /// unreachable endpoint gets a short wait only (see the client).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. }
                | Self::Transport { .. }
                | Self::Credential(_)
                | Self::Unreachable { .. }
        )
    }

    /// Nothing answered at all: Azure cannot have acted on the request.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Azure's error code, if Azure gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. }
            | Self::Unavailable { code, .. }
            | Self::OperationFailed { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Refused { status: 404, .. })
    }

    pub(crate) fn set_attempts(&mut self, n: usize) {
        if let Self::Unavailable { attempts, .. } = self {
            *attempts = n;
        }
    }
}

/// Classifies an HTTP error answer.
pub(crate) fn from_status(
    op: &str,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> AzureError {
    let (code, message) = parse_error_body(body).unwrap_or_else(|| {
        (
            format!("Http{status}"),
            String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        )
    });
    if status == 408 || status == 429 || status >= 500 {
        AzureError::Unavailable {
            op: op.to_string(),
            status,
            code,
            message,
            retry_after,
            attempts: 1,
        }
    } else {
        AzureError::Refused {
            op: op.to_string(),
            status,
            code,
            message,
        }
    }
}

/// What to change for an Entra ID error code.
pub(crate) fn aadsts_hint(code: &str) -> &'static str {
    match code {
        "AADSTS90002" | "AADSTS900023" => "the tenant does not exist: check [azure] tenant_id",
        "AADSTS7000215" | "AADSTS7000222" => {
            "the client secret is wrong or expired: set a valid one in the variable [azure] client_secret_env names"
        }
        "AADSTS700016" => "the application does not exist in that tenant: check [azure] client_id and tenant_id",
        "AADSTS50034" | "AADSTS50126" => "the sign-in is refused: check [azure] client_id and the credential",
        _ => "check [azure] tenant_id, client_id and the credential; Entra ID's message says more",
    }
}

/// The first `AADSTS<digits>` code in a message.
pub(crate) fn aadsts_code(message: &str) -> Option<String> {
    let at = message.find("AADSTS")?;
    let digits: String = message[at + 6..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then(|| format!("AADSTS{digits}"))
}

/// `{"error":{"code":..,"message":..}}`, the ARM error body.
pub(crate) fn parse_error_body(body: &[u8]) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error")?;
    // ARM codes are strings; a numeric one is kept as its text.
    let code = super::lro::text(e.get("code")?);
    if code.is_empty() {
        return None;
    }
    let message = e.get("message").map(super::lro::text).unwrap_or_default();
    Some((code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_keeps_azure_code() {
        let body = br#"{"error":{"code":"InvalidPointInTime","message":"too early"}}"#;
        let e = from_status("PUT db", 400, body, None);
        assert!(!e.is_transient());
        assert_eq!(e.code(), Some("InvalidPointInTime"));
        assert!(e.to_string().contains("too early"));
        let e = from_status("GET db", 429, b"", Some(Duration::from_secs(3)));
        assert!(e.is_transient());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert!(from_status("GET", 503, b"<html>", None).is_transient());
        assert!(from_status("GET", 404, b"{}", None).is_not_found());
        let e = from_status(
            "GET",
            409,
            br#"{"error":{"code":409,"message":"busy"}}"#,
            None,
        );
        assert_eq!(e.code(), Some("409"), "a numeric code is kept as text");
    }

    #[test]
    fn entra_codes_are_found_with_what_to_change() {
        assert_eq!(
            aadsts_code("ClientSecretCredential authentication failed. AADSTS7000215: Invalid client secret provided.").as_deref(),
            Some("AADSTS7000215")
        );
        assert_eq!(aadsts_code("no code here"), None);
        assert!(aadsts_hint("AADSTS90002").contains("tenant_id"));
        assert!(aadsts_hint("AADSTS7000215").contains("client_secret_env"));
    }
}
