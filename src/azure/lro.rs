//! One poller for every ARM long-running operation.
//!
//! ARM rules followed: prefer `Azure-AsyncOperation` (200 with a `status`),
//! else `Location` (202 while running, then the final result); poll URLs are
//! absolute; `Retry-After` is seconds, and 0 or absent means "the floor", never
//! a tight loop; the interval is capped; every wait has a deadline. A
//! Failed/Canceled status keeps Azure's `error.code` and `error.message`.
use super::client::{ArmClient, ArmResponse};
use super::error::AzureError;
use azure_core::http::Method;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// What is needed to re-attach to an operation after a crash; checkpointed
/// before the first poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub async_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl Operation {
    pub(crate) fn from_response(op: &str, r: &ArmResponse) -> Option<Self> {
        if r.azure_async_operation.is_none() && r.location.is_none() {
            return None;
        }
        Some(Self {
            op: op.to_string(),
            async_url: r.azure_async_operation.clone(),
            location_url: r.location.clone(),
            retry_after_secs: r.retry_after.map(|d| d.as_secs()),
        })
    }

    pub fn to_checkpoint(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_checkpoint(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PollSettings {
    pub floor: Duration,
    pub cap: Duration,
}

impl PollSettings {
    /// The wait before the next poll.
    pub fn interval(&self, retry_after: Option<Duration>) -> Duration {
        retry_after
            .unwrap_or(Duration::ZERO)
            .clamp(self.floor, self.cap)
    }
}

/// What a poll showed, for live progress.
#[derive(Debug, Clone)]
pub struct PollProgress {
    pub op: String,
    pub polls: u32,
    pub elapsed: Duration,
    pub status: String,
}

/// How an operation ended well: with the final body (Location answers) or none.
pub type Outcome = Option<serde_json::Value>;

impl ArmClient {
    /// Polls `op` until it ends or `deadline` passes.
    pub async fn wait(
        &self,
        op: &Operation,
        deadline: Duration,
        progress: &mut (dyn FnMut(&PollProgress) + Send),
    ) -> Result<Outcome, AzureError> {
        let started = Instant::now();
        let mut retry_after = op.retry_after_secs.map(Duration::from_secs);
        let mut polls = 0u32;
        loop {
            let wait = self.poll.interval(retry_after);
            if started.elapsed() + wait > deadline {
                return Err(AzureError::Timeout {
                    op: op.op.clone(),
                    after: deadline,
                });
            }
            tokio::time::sleep(wait).await;
            polls += 1;
            let (status, next_retry_after, done) = self.poll_once(op).await?;
            retry_after = next_retry_after;
            progress(&PollProgress {
                op: op.op.clone(),
                polls,
                elapsed: started.elapsed(),
                status: status.clone(),
            });
            if let Some(outcome) = done {
                return Ok(outcome);
            }
        }
    }

    /// One poll: (status text, Retry-After, Some(outcome) when finished).
    async fn poll_once(
        &self,
        op: &Operation,
    ) -> Result<(String, Option<Duration>, Option<Outcome>), AzureError> {
        if let Some(raw) = &op.async_url {
            let url = self.poll_url(&op.op, raw)?;
            let r = self
                .send(&format!("{} (status)", op.op), Method::Get, &url, None)
                .await?;
            let v = r.json().ok_or_else(|| AzureError::Protocol {
                op: op.op.clone(),
                detail: "operation status is not JSON".into(),
            })?;
            let status = v
                .get("status")
                .and_then(|s| s.as_str())
                .unwrap_or("")
                .to_string();
            return match status.as_str() {
                // An action's result (a Run Command's output) is at the
                // Location URL once the operation succeeded.
                "Succeeded" => match &op.location_url {
                    Some(loc) => {
                        let url = self.poll_url(&op.op, loc)?;
                        let res = self
                            .send(&format!("{} (result)", op.op), Method::Get, &url, None)
                            .await?;
                        Ok((status, r.retry_after, Some(res.json())))
                    }
                    None => Ok((status, r.retry_after, Some(None))),
                },
                "Failed" | "Canceled" | "Cancelled" => {
                    let err = v.get("error");
                    let field = |k: &str| {
                        err.and_then(|e| e.get(k))
                            .and_then(|x| x.as_str())
                            .unwrap_or("")
                            .to_string()
                    };
                    Err(AzureError::OperationFailed {
                        op: op.op.clone(),
                        status,
                        code: match field("code") {
                            c if c.is_empty() => "Unknown".into(),
                            c => c,
                        },
                        message: field("message"),
                    })
                }
                "" => Err(AzureError::Protocol {
                    op: op.op.clone(),
                    detail: "operation status has no `status`".into(),
                }),
                _ => Ok((status, r.retry_after, None)),
            };
        }
        if let Some(raw) = &op.location_url {
            let url = self.poll_url(&op.op, raw)?;
            // A 4xx here is the operation's own failure, with Azure's code.
            let r = self
                .send(&format!("{} (result)", op.op), Method::Get, &url, None)
                .await?;
            return Ok(match r.status {
                202 => ("InProgress".into(), r.retry_after, None),
                _ => ("Succeeded".into(), r.retry_after, Some(r.json())),
            });
        }
        Err(AzureError::Protocol {
            op: op.op.clone(),
            detail: "nothing to poll".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_or_absent_retry_after_means_the_floor_and_large_is_capped() {
        let p = PollSettings {
            floor: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        };
        assert_eq!(p.interval(None), Duration::from_millis(500));
        assert_eq!(p.interval(Some(Duration::ZERO)), Duration::from_millis(500));
        assert_eq!(
            p.interval(Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert_eq!(
            p.interval(Some(Duration::from_secs(600))),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn checkpoint_roundtrip() {
        let op = Operation {
            op: "PUT restore x".into(),
            async_url: Some("https://a/b".into()),
            location_url: None,
            retry_after_secs: Some(0),
        };
        assert_eq!(Operation::from_checkpoint(&op.to_checkpoint()), Some(op));
    }
}
