//! Injected faults: request faults (matched against incoming requests) and
//! operation faults (how the next matching long-running operation ends).

use serde::{Deserialize, Serialize};

/// One injected fault. A fault with `operation` set is an operation fault
/// (it shapes how the next matching long-running operation ends); otherwise it
/// is a request fault, matched against incoming HTTP requests before normal
/// handling.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    /// Request faults: HTTP method to match (any when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Request faults: case-insensitive substring of path+query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_contains: Option<String>,
    /// How many matches the fault applies to; default 1, 0 = unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// Request faults: status to answer with. Operation faults with outcome
    /// `fail`: the HTTP status the Location URL reports (default 400, or 500
    /// for `InternalServerError`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Request faults: `Retry-After` header (seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Request faults with a 3xx `status`: the `Location` to redirect to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Request faults: wait this long before answering. Alone (no status, no
    /// drop) it only slows the request down, which is then handled normally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Request faults: close the connection without answering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_connection: Option<bool>,
    /// Request faults with `delay_ms` or `drop_connection`: carry the request
    /// out first, then delay or drop the answer (a lost answer: the client
    /// cannot tell whether Azure acted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_processing: Option<bool>,
    /// Operation faults: `restore`, `delete` or `run_command`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Operation faults: `fail`, `never_finish` or `exit_code`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Operation faults with outcome `exit_code`: the script's exit code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Operation faults on run commands: only scripts containing this text
    /// (case-insensitive) match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script_contains: Option<String>,
}

const OPERATION_KINDS: [&str; 3] = ["restore", "delete", "run_command"];
const OUTCOMES: [&str; 3] = ["fail", "never_finish", "exit_code"];

impl FaultSpec {
    pub fn is_operation_fault(&self) -> bool {
        self.operation.is_some()
    }

    /// Checks one fault; `Err` holds what is wrong and what to do.
    pub fn check(&self) -> Result<(), String> {
        if let Some(op) = &self.operation {
            if !OPERATION_KINDS.contains(&op.as_str()) {
                return Err(format!(
                    "operation '{op}' is unknown: use one of {}",
                    OPERATION_KINDS.join(", ")
                ));
            }
            let outcome = self.outcome.as_deref().ok_or_else(|| {
                format!(
                    "an operation fault needs `outcome` ({})",
                    OUTCOMES.join(", ")
                )
            })?;
            if !OUTCOMES.contains(&outcome) {
                return Err(format!(
                    "outcome '{outcome}' is unknown: use one of {}",
                    OUTCOMES.join(", ")
                ));
            }
            if outcome == "exit_code" {
                if op != "run_command" {
                    return Err(
                        "outcome 'exit_code' only applies to operation 'run_command'".into(),
                    );
                }
                if self.exit_code.is_none() {
                    return Err("outcome 'exit_code' needs `exit_code` (e.g. 1)".into());
                }
            }
            if self.script_contains.is_some() && op != "run_command" {
                return Err("`script_contains` only applies to operation 'run_command'".into());
            }
            if self.method.is_some()
                || self.path_contains.is_some()
                || self.retry_after.is_some()
                || self.location.is_some()
                || self.delay_ms.is_some()
                || self.drop_connection.is_some()
                || self.after_processing.is_some()
            {
                return Err("an operation fault cannot also have request-fault fields \
                            (method, path_contains, retry_after, delay_ms, drop_connection): \
                            split it into two faults"
                    .into());
            }
            if let Some(s) = self.status {
                if !(400..=599).contains(&s) {
                    return Err(format!("status {s} must be between 400 and 599"));
                }
            }
            return Ok(());
        }
        if self.outcome.is_some() || self.exit_code.is_some() || self.script_contains.is_some() {
            return Err(
                "`outcome`, `exit_code` and `script_contains` need `operation` \
                        (restore, delete or run_command)"
                    .into(),
            );
        }
        if self.after_processing == Some(true)
            && (self.status.is_some()
                || (self.drop_connection != Some(true) && self.delay_ms.is_none()))
        {
            return Err(
                "`after_processing` goes with `delay_ms` or `drop_connection = true`, not `status`"
                    .into(),
            );
        }
        if self.status.is_none() && self.drop_connection != Some(true) && self.delay_ms.is_none() {
            return Err(
                "a request fault needs `status`, `drop_connection = true` or `delay_ms`".into(),
            );
        }
        if let Some(s) = self.status {
            // A 1xx is not a final answer: hyper would send it and the
            // client would wait for one that never comes.
            if !(200..=599).contains(&s) {
                return Err(format!("status {s} must be between 200 and 599"));
            }
            if (300..=399).contains(&s) != self.location.is_some() {
                return Err(format!(
                    "a redirect (3xx) needs `location`, and only a redirect has one (status {s})"
                ));
            }
        }
        Ok(())
    }
}
