//! One poller for every ARM long-running operation, following ARM's rules as
//! the official Azure SDKs do (checked against the Azure SDK test server's
//! LRO scenarios: `tests/it/lro_testserver.rs`):
//!
//! - The first answer decides how to follow the operation ([`Operation::begin`]):
//!   `Azure-AsyncOperation` first, else `Location`; a PUT answered 200/201
//!   without either is read by its body's `provisioningState` (absent or
//!   `Succeeded`: done; non-terminal: the resource itself is polled); a 204,
//!   or a DELETE/POST 200, is done at once.
//! - An `Azure-AsyncOperation` status is read case-insensitively
//!   (`Succeeded`, `succeeded`); `Failed`/`Canceled` keep Azure's
//!   `error.code` (a numeric code as its text) and `error.message`.
//! - A `Location` poll answered 202 may name a new `Location`: it is followed.
//! - After an `Azure-AsyncOperation` succeeded, the final result is read only
//!   where ARM puts it: a PUT's resource at its own URL, a POST's result at
//!   its `Location` (or in the status body when the operation says so), and
//!   nothing for a DELETE. An unusable `Location` is never touched otherwise.
//! - Poll URLs are absolute; `Retry-After` is seconds, and 0 or absent means
//!   "the floor", never a tight loop; the interval is capped; every wait has
//!   a deadline.
use super::client::{ArmClient, ArmResponse};
use super::error::AzureError;
use azure_core::http::{Method, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Where an operation's final result is, once it succeeded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalState {
    /// A PUT: the resource, read again at its own URL.
    OriginalUri,
    /// A POST: the result at the `Location` URL.
    Location,
    /// The operation status body itself (an operation declared with
    /// `final-state-via: azure-async-operation`).
    AzureAsyncOperation,
    /// A DELETE, and checkpoints written before this field existed: nothing
    /// to read (the caller looks at Azure itself).
    #[default]
    Nothing,
}

impl FinalState {
    /// ARM's default for a method.
    pub fn of(method: Method) -> Self {
        match method {
            Method::Put | Method::Patch => Self::OriginalUri,
            Method::Post => Self::Location,
            _ => Self::Nothing,
        }
    }

    fn is_nothing(&self) -> bool {
        *self == Self::Nothing
    }
}

/// What is needed to re-attach to an operation after a crash; checkpointed
/// before the first poll. Fields added later are optional, so that an older
/// checkpoint still loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub async_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// The URL the operation was started on: read for a PUT's final state,
    /// and polled by `provisioningState` when Azure gave nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_url: Option<String>,
    #[serde(default, skip_serializing_if = "FinalState::is_nothing")]
    pub final_state: FinalState,
}

/// How a started operation stands after Azure's first answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Begun {
    /// Finished at once, with the final body (if any).
    Done(Outcome),
    /// To be followed with [`ArmClient::wait`].
    Polling(Operation),
}

impl Begun {
    /// The operation to follow, if there is one.
    pub fn into_operation(self) -> Option<Operation> {
        match self {
            Self::Done(_) => None,
            Self::Polling(op) => Some(op),
        }
    }
}

impl Operation {
    /// Reads Azure's first answer to `method` on `url` by ARM's rules.
    pub(crate) fn begin(
        op: &str,
        method: Method,
        url: &Url,
        r: &ArmResponse,
    ) -> Result<Begun, AzureError> {
        let protocol = |detail: String| AzureError::Protocol {
            op: op.to_string(),
            detail,
        };
        let final_state = FinalState::of(method);
        let follow = |async_url, location_url| Operation {
            op: op.to_string(),
            async_url,
            location_url,
            retry_after_secs: r.retry_after.map(|d| d.as_secs()),
            resource_url: Some(url.to_string()),
            final_state,
        };
        if r.status == 204 {
            return Ok(Begun::Done(None));
        }
        if r.azure_async_operation.is_some() || r.location.is_some() {
            return Ok(Begun::Polling(follow(
                r.azure_async_operation.clone(),
                r.location.clone(),
            )));
        }
        let body = json_body(op, &r.body)?;
        match (final_state, r.status) {
            (FinalState::OriginalUri, 200 | 201) => {
                let state = body
                    .as_ref()
                    .and_then(|b| b.pointer("/properties/provisioningState"))
                    .and_then(Value::as_str);
                match state.map(Terminal::of) {
                    // A 201 says "created", not "done": its state is read.
                    None if r.status == 201 => Ok(Begun::Polling(follow(None, None))),
                    None | Some(Terminal::Succeeded) => Ok(Begun::Done(body)),
                    Some(Terminal::Ended) => Err(ended(op, state.unwrap_or(""), body.as_ref())),
                    Some(Terminal::Running) => Ok(Begun::Polling(follow(None, None))),
                }
            }
            (_, 202) => Err(protocol(
                "HTTP 202 without Azure-AsyncOperation or Location: nothing to follow".into(),
            )),
            _ => Ok(Begun::Done(body)),
        }
    }

    pub fn to_checkpoint(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_checkpoint(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }
}

/// An operation or provisioning state, case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Terminal {
    Succeeded,
    /// Failed or Canceled.
    Ended,
    Running,
}

impl Terminal {
    fn of(status: &str) -> Self {
        match status.to_ascii_lowercase().as_str() {
            "succeeded" => Self::Succeeded,
            "failed" | "canceled" | "cancelled" => Self::Ended,
            _ => Self::Running,
        }
    }
}

/// `None` for an empty body; an error for a body that is not JSON.
fn json_body(op: &str, body: &[u8]) -> Result<Option<Value>, AzureError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| AzureError::Protocol {
            op: op.to_string(),
            detail: format!("the answer is not JSON: {e}"),
        })
}

/// A Failed/Canceled operation, with Azure's `error.code` and `message`.
fn ended(op: &str, status: &str, body: Option<&Value>) -> AzureError {
    let field = |k: &str| {
        body.and_then(|b| b.get("error"))
            .and_then(|e| e.get(k))
            .map(text)
            .unwrap_or_default()
    };
    AzureError::OperationFailed {
        op: op.to_string(),
        status: status.to_string(),
        code: match field("code") {
            c if c.is_empty() => "Unknown".into(),
            c => c,
        },
        message: field("message"),
    }
}

/// A JSON string as it is, a number or boolean as its text.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(_) | Value::Bool(_) => v.to_string(),
        _ => String::new(),
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PollSettings {
    pub floor: Duration,
    pub cap: Duration,
}

/// A poll every tenth of the time an operation has run so far...
const ELAPSED_STRETCH: u32 = 10;
/// ...and about this many over the operation's expected length.
const POLLS_PER_EXPECTED: u32 = 30;

impl PollSettings {
    /// The wait before the next poll.
    pub fn interval(&self, retry_after: Option<Duration>) -> Duration {
        retry_after
            .unwrap_or(Duration::ZERO)
            .clamp(self.floor, self.cap)
    }

    /// The wait before the next poll of an operation that has run for
    /// `elapsed` and is expected to take `expected`: `Retry-After`, but
    /// never less than a tenth of the time so far nor a thirtieth of the
    /// expected length (a three-hour restore is not polled every second),
    /// within the floor and the cap.
    pub fn stretched(
        &self,
        retry_after: Option<Duration>,
        elapsed: Duration,
        expected: Option<Duration>,
    ) -> Duration {
        let stretch =
            (elapsed / ELAPSED_STRETCH).max(expected.unwrap_or_default() / POLLS_PER_EXPECTED);
        retry_after
            .unwrap_or(Duration::ZERO)
            .max(stretch)
            .clamp(self.floor, self.cap)
    }
}

#[cfg(test)]
mod stretch_tests {
    use super::*;

    #[test]
    fn polls_stretch_with_elapsed_and_expected_time() {
        let p = PollSettings {
            floor: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        let s = Duration::from_secs;
        assert_eq!(p.stretched(None, s(0), None), s(1));
        assert_eq!(p.stretched(Some(s(5)), s(0), None), s(5));
        assert_eq!(p.stretched(None, s(100), None), s(10));
        assert_eq!(p.stretched(Some(s(20)), s(100), None), s(20));
        // Three hours expected: a poll every 6 minutes, capped at 60 s.
        assert_eq!(p.stretched(None, s(0), Some(s(3 * 3600))), s(60));
        assert_eq!(p.stretched(None, s(0), Some(s(90))), s(3));
    }
}

/// What a poll showed, for live progress. Reported once before the first
/// poll (`polls` 0) and after each one, so that a long wait is announced
/// instead of silent.
#[derive(Debug, Clone)]
pub struct PollProgress {
    pub op: String,
    pub polls: u32,
    pub elapsed: Duration,
    pub status: String,
    /// The wait before the next poll; `None` once the operation ended.
    pub next_check: Option<Duration>,
}

/// How an operation ended well: with the final body, or none.
pub type Outcome = Option<Value>;

/// What one poll showed.
enum Poll {
    Running(String, Option<Duration>),
    Done(String, Outcome),
}

impl ArmClient {
    /// Polls `op` until it ends or `deadline` passes.
    pub async fn wait(
        &self,
        op: &Operation,
        deadline: Duration,
        progress: &mut (dyn FnMut(&PollProgress) + Send),
    ) -> Result<Outcome, AzureError> {
        self.wait_expecting(op, deadline, None, progress).await
    }

    /// [`ArmClient::wait`] for an operation expected to take about
    /// `expected`: polls stretch with it and with the time elapsed
    /// ([`PollSettings::stretched`]).
    pub async fn wait_expecting(
        &self,
        op: &Operation,
        deadline: Duration,
        expected: Option<Duration>,
        progress: &mut (dyn FnMut(&PollProgress) + Send),
    ) -> Result<Outcome, AzureError> {
        let started = Instant::now();
        // A Location poll may move the operation to a new URL.
        let mut op = op.clone();
        let retry_after = op.retry_after_secs.map(Duration::from_secs);
        let mut wait = self.poll.stretched(retry_after, Duration::ZERO, expected);
        let mut polls = 0u32;
        progress(&PollProgress {
            op: op.op.clone(),
            polls,
            elapsed: Duration::ZERO,
            status: "InProgress".into(),
            next_check: Some(wait),
        });
        loop {
            if started.elapsed() + wait > deadline {
                return Err(AzureError::Timeout {
                    op: op.op.clone(),
                    after: deadline,
                });
            }
            tokio::time::sleep(wait).await;
            polls += 1;
            let (status, done) = match self.poll_once(&mut op).await? {
                Poll::Running(status, next) => {
                    wait = self.poll.stretched(next, started.elapsed(), expected);
                    (status, None)
                }
                Poll::Done(status, outcome) => (status, Some(outcome)),
            };
            progress(&PollProgress {
                op: op.op.clone(),
                polls,
                elapsed: started.elapsed(),
                status,
                next_check: done.is_none().then_some(wait),
            });
            if let Some(outcome) = done {
                return Ok(outcome);
            }
        }
    }

    async fn poll_once(&self, op: &mut Operation) -> Result<Poll, AzureError> {
        if let Some(raw) = &op.async_url {
            let r = self.get(op, "status", raw).await?;
            let v = json_body(&op.op, &r.body)?.ok_or_else(|| AzureError::Protocol {
                op: op.op.clone(),
                detail: "the operation status has no body".into(),
            })?;
            let status = v.get("status").map(text).unwrap_or_default();
            return match Terminal::of(&status) {
                _ if status.is_empty() => Err(AzureError::Protocol {
                    op: op.op.clone(),
                    detail: "the operation status has no `status`".into(),
                }),
                Terminal::Succeeded => Ok(Poll::Done(status, self.final_result(op, v).await?)),
                Terminal::Ended => Err(ended(&op.op, &status, Some(&v))),
                Terminal::Running => Ok(Poll::Running(status, r.retry_after)),
            };
        }
        if let Some(raw) = op.location_url.clone() {
            // A 4xx here is the operation's own failure, with Azure's code.
            let r = self.get(op, "result", &raw).await?;
            if r.status == 202 {
                if let Some(next) = r.location.filter(|l| *l != raw) {
                    op.location_url = Some(next);
                }
                return Ok(Poll::Running("InProgress".into(), r.retry_after));
            }
            return Ok(Poll::Done("Succeeded".into(), json_body(&op.op, &r.body)?));
        }
        if let Some(raw) = op.resource_url.clone() {
            let r = self.get(op, "provisioning state", &raw).await?;
            let v = json_body(&op.op, &r.body)?.ok_or_else(|| AzureError::Protocol {
                op: op.op.clone(),
                detail: "the resource has no body to read its provisioningState from".into(),
            })?;
            let state = v
                .pointer("/properties/provisioningState")
                .map(text)
                .unwrap_or_else(|| "Succeeded".into());
            return match Terminal::of(&state) {
                Terminal::Succeeded => Ok(Poll::Done(state, Some(v))),
                Terminal::Ended => Err(ended(&op.op, &state, Some(&v))),
                Terminal::Running => Ok(Poll::Running(state, r.retry_after)),
            };
        }
        Err(AzureError::Protocol {
            op: op.op.clone(),
            detail: "nothing to poll".into(),
        })
    }

    /// The result of an operation whose status said Succeeded.
    async fn final_result(&self, op: &Operation, status: Value) -> Result<Outcome, AzureError> {
        let url = match op.final_state {
            FinalState::Nothing => return Ok(None),
            FinalState::AzureAsyncOperation => return Ok(Some(status)),
            FinalState::OriginalUri => op.resource_url.as_deref(),
            // A POST without a Location has its result in the status.
            FinalState::Location => match op.location_url.as_deref() {
                None => return Ok(Some(status)),
                url => url,
            },
        };
        match url {
            Some(raw) => {
                let r = self.get(op, "result", raw).await?;
                json_body(&op.op, &r.body)
            }
            None => Ok(None),
        }
    }

    async fn get(&self, op: &Operation, what: &str, raw: &str) -> Result<ArmResponse, AzureError> {
        let url = self.poll_url(&op.op, raw)?;
        self.send(&format!("{} ({what})", op.op), Method::Get, &url, None)
            .await
    }
}

#[cfg(test)]
#[path = "lro_tests.rs"]
mod tests;
