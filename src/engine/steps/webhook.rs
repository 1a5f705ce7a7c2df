//! Environment actions of kind `webhook`: a signed POST per action to the
//! environment's `webhook.url` (an automation runbook, say), then its
//! outcome: in the answer itself, by polling the `status_url` it gives, or
//! by a signed callback (the job waits, like a manual action, until the
//! callback or `pitr job confirm` records it).
//!
//! Signature: `X-Pitr-Signature: sha256=<hex HMAC-SHA256 of the body>` with
//! the key in the variable `webhook.secret_env` names; `X-Pitr-Delivery` is
//! chosen and checkpointed before the first POST, so a call resent after a
//! crash carries the same id and the receiver can tell it is the same call.
use crate::domain::{Environment, Job, StepName, StepRecord};
use crate::engine::{Engine, EngineError, StepError};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// A call, as checkpointed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Call {
    delivery: String,
    #[serde(default)]
    posted: bool,
    #[serde(default)]
    status_url: Option<String>,
}

/// What the receiver says about an action (in its answer or at the status URL).
#[derive(Debug, Clone, Default, Deserialize)]
struct Status {
    /// `running`, `succeeded` or `failed`.
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    status_url: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// HMAC-SHA256 of `body`, as `sha256=<hex>`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Checks `sha256=<hex>` against the HMAC-SHA256 of `body`, in constant time.
pub fn signature_matches(key: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    if hex.len() != 64 {
        return false;
    }
    let Some(tag) = (0..32)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::verify(&key, body, &tag).is_ok()
}

/// What a receiver sends back when an action it was handed has ended:
/// signed like pitr's calls (`X-Pitr-Signature` over the raw body, the
/// environment's webhook key).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    /// The `X-Pitr-Delivery` of the call this answers.
    pub delivery: String,
    pub job: String,
    /// The step (`offline`, `sync`, ...), as pitr's call named it.
    pub action: String,
    /// `succeeded` or `failed`.
    pub status: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// Why a callback was not taken.
#[derive(Debug, thiserror::Error)]
pub enum CallbackRefused {
    /// Not signed with the environment's key (or for no job this pitr
    /// knows: the two are not told apart, to give nothing away).
    #[error("the callback's signature does not verify with the environment's webhook key")]
    Signature,
    #[error("{0}")]
    Malformed(String),
    /// Signed, but not for a call that is waiting now (already answered,
    /// another delivery, the job moved on).
    #[error("{0}")]
    NotWaiting(String),
    #[error("{0}")]
    Engine(#[from] EngineError),
}

impl Engine {
    /// Takes a receiver's signed callback: the waiting step's end is
    /// checkpointed and audited like `pitr job confirm`, and the job's lease
    /// is released so that a runner continues it at once (`pitr serve`
    /// picks it up on its next pass). Returns the job and the step.
    pub async fn webhook_callback(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<(crate::domain::JobId, StepName), CallbackRefused> {
        let cb: Callback = serde_json::from_slice(body).map_err(|e| {
            CallbackRefused::Malformed(format!(
                "the callback body is not {{\"delivery\", \"job\", \"action\", \"status\": \"succeeded\"|\"failed\", \"message\"}}: {e}"
            ))
        })?;
        let job = self
            .store
            .get_job(&crate::domain::JobId::from(cb.job.as_str()))
            .await
            .map_err(EngineError::from)?
            .ok_or(CallbackRefused::Signature)?;
        let req = self.request(&job.request_id).await?;
        let env = self.environment(&req.spec.environment)?;
        let key = env
            .webhook
            .as_ref()
            .and_then(|h| self.secret(&h.secret_env))
            .ok_or(CallbackRefused::Signature)?;
        if !signature.is_some_and(|s| signature_matches(key.as_bytes(), body, s)) {
            return Err(CallbackRefused::Signature);
        }
        let step = StepName::parse(&cb.action)
            .ok_or_else(|| CallbackRefused::Malformed(format!("'{}' is not a step", cb.action)))?;
        let failure = match cb.status.as_str() {
            "succeeded" => None,
            "failed" => Some(
                cb.message
                    .clone()
                    .unwrap_or_else(|| "no reason given".into()),
            ),
            other => {
                return Err(CallbackRefused::Malformed(format!(
                    "status '{other}' is not succeeded or failed"
                )))
            }
        };
        // Only the call this step is waiting on may be answered.
        let waiting = self
            .store
            .steps(&job.id)
            .await
            .map_err(EngineError::from)?
            .into_iter()
            .find(|r| r.step == step)
            .filter(|r| r.status == crate::domain::StepStatus::Waiting)
            .and_then(|r| r.external_ref)
            .and_then(|s| serde_json::from_str::<Call>(s.as_str()).ok())
            .is_some_and(|c| c.delivery == cb.delivery);
        if !waiting {
            return Err(CallbackRefused::NotWaiting(format!(
                "step {step} of job {} is not waiting for delivery {}",
                job.id, cb.delivery
            )));
        }
        let tag = cb.delivery.get(..8).unwrap_or(&cb.delivery);
        let job = self
            .record_confirmation(
                job.id.as_str(),
                step,
                failure,
                Some(format!("webhook callback, delivery {tag}")),
            )
            .await?;
        self.release_lease_of(&job.id).await;
        Ok((job.id, step))
    }

    pub(super) async fn webhook(
        &self,
        step: StepName,
        env: &Environment,
        job: &Job,
        rec: &mut StepRecord,
    ) -> Result<String, StepError> {
        let hook = env.webhook.as_ref().ok_or_else(|| {
            StepError::Failed(format!(
                "environment '{}' has no webhook configured",
                env.name
            ))
        })?;
        let key = self.secret(&hook.secret_env).ok_or_else(|| {
            StepError::Failed(format!(
                "the webhook key is not set: export {} before running",
                hook.secret_env
            ))
        })?;
        let mut call: Call = rec
            .external_ref
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        if call.delivery.is_empty() {
            call.delivery = uuid::Uuid::new_v4().to_string();
            self.save_call(job, rec, &call).await?;
        }
        if !call.posted {
            self.confirm_lease(&job.id).await?;
            let body = serde_json::to_vec(&serde_json::json!({
                "event": "action",
                "delivery": call.delivery,
                "action": step.as_str(),
                "job": job.id,
                "request": job.request_id,
                "environment": env.name,
                "database": env.database,
                "server": env.server,
                "at": self.clock.now().to_rfc3339(),
            }))
            .map_err(|e| StepError::Failed(format!("webhook body: {e}")))?;
            let answer = self
                .http
                .post(&hook.url)
                .header("content-type", "application/json")
                .header("X-Pitr-Event", "action")
                .header("X-Pitr-Delivery", &call.delivery)
                .header("X-Pitr-Signature", signature(key.as_bytes(), &body))
                .body(body)
                .send()
                .await
                .map_err(|e| {
                    StepError::Failed(format!("webhook {} did not answer: {e}", hook.url))
                })?;
            let code = answer.status();
            if !code.is_success() {
                return Err(StepError::Failed(format!(
                    "webhook {} refused the {step} call: HTTP {code}",
                    hook.url
                )));
            }
            let status: Status = answer.json().await.unwrap_or_default();
            call.posted = true;
            call.status_url = status.status_url.clone();
            self.save_call(job, rec, &call).await?;
            if let Some(done) = final_status(step, &status)? {
                return Ok(done);
            }
        }
        let Some(url) = call.status_url.clone() else {
            return Err(StepError::Waiting(format!(
                "{step} was handed to the webhook; the job continues on its signed callback (or `pitr job confirm {} --step {step}`)",
                job.id
            )));
        };
        self.poll_status(step, &url, key.as_bytes()).await
    }

    async fn save_call(
        &self,
        job: &Job,
        rec: &mut StepRecord,
        call: &Call,
    ) -> Result<(), StepError> {
        rec.external_ref = Some(
            serde_json::to_string(call)
                .map_err(|e| StepError::Failed(format!("checkpointing the webhook call: {e}")))?,
        );
        Ok(self.checkpoint(&job.id, rec).await?)
    }

    /// Polls the status URL until the action ends or the step's deadline.
    async fn poll_status(
        &self,
        step: StepName,
        url: &str,
        key: &[u8],
    ) -> Result<String, StepError> {
        let started = Instant::now();
        let deadline = self.step_timeout(step);
        loop {
            let answer = self
                .http
                .get(url)
                .header("X-Pitr-Signature", signature(key, url.as_bytes()))
                .send()
                .await;
            match answer {
                Ok(r) if r.status().is_success() => {
                    let status: Status = r.json().await.unwrap_or_default();
                    if let Some(done) = final_status(step, &status)? {
                        return Ok(done);
                    }
                    self.note(
                        step,
                        format!(
                            "webhook: {}",
                            status.message.as_deref().unwrap_or("still running")
                        ),
                    );
                }
                Ok(r) => self.note(step, format!("webhook status: HTTP {}", r.status())),
                Err(e) => self.note(step, format!("webhook status did not answer: {e}")),
            }
            let wait = self.azure.poll.interval(Some(started.elapsed() / 10));
            if started.elapsed() + wait > deadline {
                return Err(StepError::Failed(format!(
                    "the webhook did not report the end of {step} within {}s",
                    deadline.as_secs()
                )));
            }
            tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        }
    }
}

fn final_status(step: StepName, s: &Status) -> Result<Option<String>, StepError> {
    let message = s.message.clone().unwrap_or_default();
    match s.status.as_deref() {
        Some("succeeded") => Ok(Some(
            format!("webhook reported {step} done {message}")
                .trim()
                .to_string(),
        )),
        Some("failed") => Err(StepError::Failed(format!(
            "the webhook reported {step} failed: {message}"
        ))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2.
    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        let sig = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(signature(b"Jefe", b"what do ya want for nothing?"), sig);
        assert!(signature_matches(
            b"Jefe",
            b"what do ya want for nothing?",
            sig
        ));
        assert!(!signature_matches(
            b"Jeff",
            b"what do ya want for nothing?",
            sig
        ));
        assert!(!signature_matches(
            b"Jefe",
            b"what do ya want for nothing!",
            sig
        ));
        for bad in [
            "",
            "sha256=",
            "sha1=5bdc",
            &sig[..sig.len() - 1],
            &sig.replace('5', "g"),
        ] {
            assert!(
                !signature_matches(b"Jefe", b"what do ya want for nothing?", bad),
                "{bad}"
            );
        }
    }
}
