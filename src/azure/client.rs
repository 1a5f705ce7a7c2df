//! The typed ARM client. Every request goes through the `azure_core`
//! pipeline (user agent, request id, bearer token) and one retry layer
//! (`backon`) for transient failures only; the pipeline's own retry policy is
//! off so that attempts are not multiplied and `Retry-After` is honoured once.
use super::credentials;
use super::error::{self, AzureError};
use super::limiter::{resource_type, subscription_of, Class, Limiter, RestoreSlots};
use super::lro::{Begun, Operation, PollSettings};
use crate::metrics::Metrics;

use crate::config::AzureConfig;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::http::headers::HeaderName;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{
    ClientOptions, Context, Method, Pipeline, PipelineSendOptions, Request, RetryOptions,
    Transport, Url,
};
use backon::{ExponentialBuilder, Retryable};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ARM_SCOPE: &str = "https://management.azure.com/.default";
const MAX_HONOURED_RETRY_AFTER: Duration = Duration::from_secs(300);
/// How often a request to an endpoint where nothing listens is sent.
const UNREACHABLE_ATTEMPTS: usize = 3;

/// Which failures a request may be retried on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// 408, 429, 5xx, transport and token errors: safe for reads and for
    /// actions that are idempotent on the VM (Run Command scripts).
    Transient,
    /// 429 only.
    ThrottledOnly,
}

/// One answer from ARM, read whole.
#[derive(Debug, Clone)]
pub struct ArmResponse {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub azure_async_operation: Option<String>,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

impl ArmResponse {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

#[derive(Debug, Clone)]
pub struct RetrySettings {
    pub max_times: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

#[derive(Debug, Clone)]
pub struct ArmClient {
    pipeline: Pipeline,
    endpoint: Url,
    /// For messages: where tokens come from, and for whom.
    authority: String,
    tenant: String,
    client: String,
    pub(crate) poll: PollSettings,
    retry: RetrySettings,
    /// Shared by every clone (every job and step of the process), like the
    /// pipeline and its one HTTP connection pool.
    limiter: Arc<Limiter>,
    restores: Arc<RestoreSlots>,
    metrics: Arc<Metrics>,
}

impl ArmClient {
    /// Builds the client from config; `extra_ca_pem` (e.g. the embedded mock's
    /// CA) is trusted in addition to `azure.ca_file` and the system roots.
    pub fn new(cfg: &AzureConfig, extra_ca_pem: Option<&str>) -> Result<Self, AzureError> {
        Self::build(cfg, extra_ca_pem, None)
    }

    /// A client for a mock Azure (dry runs, the demo): the mock's URL serves
    /// both ARM and the token endpoint, and its CA is trusted. The poll floor
    /// is lowered because nothing is gained by waiting on a simulation.
    pub fn for_mock(cfg: &AzureConfig, url: &str, ca_pem: &str) -> Result<Self, AzureError> {
        let mut cfg = cfg.clone();
        cfg.arm_endpoint = url.to_string();
        cfg.authority_host = url.to_string();
        cfg.ca_file = None;
        cfg.credential = crate::config::CredentialKind::ClientSecret;
        cfg.tenant_id = Some("pitr-dry-run".into());
        cfg.client_id = Some("pitr-dry-run".into());
        cfg.min_poll_interval_ms = cfg.min_poll_interval_ms.clamp(1, 200);
        cfg.max_poll_interval_ms = cfg.max_poll_interval_ms.min(1_000);
        cfg.retry_min_delay_ms = cfg.retry_min_delay_ms.min(100);
        cfg.retry_max_delay_ms = cfg.retry_max_delay_ms.min(1_000);
        Self::build(&cfg, Some(ca_pem), Some("mock-azure-accepts-any-secret"))
    }

    fn build(
        cfg: &AzureConfig,
        extra_ca_pem: Option<&str>,
        secret_override: Option<&str>,
    ) -> Result<Self, AzureError> {
        let endpoint = Url::parse(&cfg.arm_endpoint)
            .map_err(|e| AzureError::Setup(format!("arm_endpoint '{}': {e}", cfg.arm_endpoint)))?;
        // No redirects: a 3xx would carry a request body (a Run Command
        // script, parameters) to another origin, around the poll-origin
        // check. Azure's own clients do not follow them either.
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(cfg.request_timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(10));
        let mut pems: Vec<Vec<u8>> = Vec::new();
        if let Some(path) = &cfg.ca_file {
            pems.push(std::fs::read(path).map_err(|e| {
                AzureError::Setup(format!(
                    "cannot read [azure] ca_file {}: {e}; start the mock with --ca-out or fix the path",
                    path.display()
                ))
            })?);
        }
        if let Some(pem) = extra_ca_pem {
            pems.push(pem.as_bytes().to_vec());
        }
        for pem in pems {
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    AzureError::Setup(
                        "[azure] ca_file holds no PEM certificate (-----BEGIN CERTIFICATE-----); point it at the CA file `pitr mock-azure --ca-out` wrote".into(),
                    )
                })?;
            for c in certs {
                http = http.add_root_certificate(c);
            }
        }
        let http = http
            .build()
            .map_err(|e| AzureError::Setup(format!("HTTP client: {e}")))?;
        let transport = Transport::new(Arc::new(http));

        let mut cloud = CustomConfiguration::default();
        cloud.authority_host = cfg.authority_host.clone();
        let options = ClientOptions {
            transport: Some(transport),
            retry: RetryOptions::none(),
            cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
            ..Default::default()
        };
        let credential = credentials::build(cfg, &options, secret_override)?;
        let auth = BearerTokenAuthorizationPolicy::new(credential, [ARM_SCOPE]);
        let pipeline = Pipeline::new(
            Some("pitr"),
            Some(env!("CARGO_PKG_VERSION")),
            options,
            Vec::new(),
            vec![Arc::new(auth)],
            None,
        );
        let metrics = Arc::new(Metrics::default());
        Ok(Self {
            limiter: Arc::new(Limiter::new(cfg, metrics.clone())),
            restores: Arc::new(RestoreSlots::new(cfg)),
            metrics,
            pipeline,
            endpoint,
            authority: cfg.authority_host.clone(),
            tenant: cfg.tenant_id.clone().unwrap_or_else(|| "(none)".into()),
            client: cfg.client_id.clone().unwrap_or_else(|| "(none)".into()),
            poll: PollSettings {
                floor: Duration::from_millis(cfg.min_poll_interval_ms.max(1)),
                cap: Duration::from_millis(cfg.max_poll_interval_ms.max(cfg.min_poll_interval_ms)),
            },
            retry: RetrySettings {
                max_times: cfg.retry_max_times,
                min_delay: Duration::from_millis(cfg.retry_min_delay_ms),
                max_delay: Duration::from_millis(
                    cfg.retry_max_delay_ms.max(cfg.retry_min_delay_ms),
                ),
            },
        })
    }

    /// The process's metrics (ARM requests, 429s, limiter waits; the engine
    /// adds its own).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Waits for a restore slot in the subscription of `resource_id` (Azure
    /// SQL caps concurrent restores per subscription); held until dropped.
    pub async fn restore_slot(
        &self,
        resource_id: &str,
        on_wait: impl FnOnce(),
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let sub = subscription_of(resource_id)?;
        let started = std::time::Instant::now();
        let permit = self.restores.acquire(sub, on_wait).await;
        self.metrics
            .restore_queue_wait
            .inc_by(started.elapsed().as_secs_f64());
        permit
    }

    /// Runners sharing the service principal's ARM budget
    /// (`[azure.rate_limits] runners`).
    pub fn runners_sharing(&self) -> usize {
        self.restores.runners()
    }

    /// Restores this runner starts at once per subscription (0: no queue).
    pub fn restore_cap(&self) -> usize {
        self.restores.cap()
    }

    pub(crate) fn url(&self, path: &str, api_version: &str) -> Result<Url, AzureError> {
        let mut u = self
            .endpoint
            .join(path)
            .map_err(|e| AzureError::Setup(format!("bad resource path {path}: {e}")))?;
        u.query_pairs_mut().append_pair("api-version", api_version);
        Ok(u)
    }

    /// Poll URLs come from Azure's headers; a token is only ever sent to the
    /// configured ARM endpoint's origin.
    pub(crate) fn poll_url(&self, op: &str, raw: &str) -> Result<Url, AzureError> {
        let u = Url::parse(raw).map_err(|e| AzureError::Protocol {
            op: op.to_string(),
            detail: format!("poll URL '{raw}' is not absolute: {e}"),
        })?;
        if u.origin() != self.endpoint.origin() {
            return Err(AzureError::Protocol {
                op: op.to_string(),
                detail: format!(
                    "poll URL host {} differs from the ARM endpoint {}; refusing to send a token there",
                    u.origin().ascii_serialization(),
                    self.endpoint.origin().ascii_serialization()
                ),
            });
        }
        Ok(u)
    }

    /// Starts a long-running operation: `method` on `path` (relative to the
    /// ARM endpoint, with `api_version`), Azure's first answer read by ARM's
    /// rules ([`Operation::begin`]). The typed operations are built on it;
    /// it is public so that the poller can be run against the Azure SDK
    /// test server's scenarios like any ARM operation.
    pub async fn begin(
        &self,
        op: &str,
        method: Method,
        path: &str,
        api_version: &str,
        body: Option<&serde_json::Value>,
        retry: Retry,
    ) -> Result<Begun, AzureError> {
        let url = self.url(path, api_version)?;
        let r = self.send_with(op, method, &url, body, retry).await?;
        Operation::begin(op, method, &url, &r)
    }

    /// Sends one request, retrying transient failures with exponential
    /// backoff and jitter, honouring `Retry-After`. Non-2xx answers are errors.
    pub(crate) async fn send(
        &self,
        op: &str,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
    ) -> Result<ArmResponse, AzureError> {
        self.send_with(op, method, url, body, Retry::Transient)
            .await
    }

    /// `Retry::ThrottledOnly` is for requests that must not be sent twice
    /// (a restore PUT, a rename): a lost answer may hide an accepted request,
    /// so only a 429, which Azure did not act on, is retried here; the step
    /// looks at Azure again before deciding to resend.
    pub(crate) async fn send_with(
        &self,
        op: &str,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        retry: Retry,
    ) -> Result<ArmResponse, AzureError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_times)
            .with_jitter();
        let attempts = AtomicUsize::new(0);
        let result = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.send_once(op, method, url, body).await
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|e: &AzureError| match retry {
            // Nothing listening: a short wait for a restart, not minutes.
            _ if e.is_unreachable() => attempts.load(Ordering::Relaxed) < UNREACHABLE_ATTEMPTS,
            Retry::Transient => e.is_transient(),
            Retry::ThrottledOnly => matches!(e, AzureError::Unavailable { status: 429, .. }),
        })
        .adjust(|e, next| {
            let next = next?;
            Some(match e.retry_after() {
                Some(ra) => ra.min(MAX_HONOURED_RETRY_AFTER).max(next),
                None => next,
            })
        })
        .notify(|e, wait| {
            // Nothing listening is said once, in the final error.
            if e.is_unreachable() {
                tracing::debug!(op, error = %e, wait_ms = wait.as_millis() as u64, "nothing answered; trying again");
            } else {
                tracing::warn!(op, error = %e, wait_ms = wait.as_millis() as u64, "transient Azure failure; retrying");
            }
        })
        .await;
        result.map_err(|mut e| {
            e.set_attempts(attempts.load(Ordering::Relaxed));
            e
        })
    }

    async fn send_once(
        &self,
        op: &str,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
    ) -> Result<ArmResponse, AzureError> {
        let mut req = Request::new(url.clone(), method);
        req.insert_header("accept", "application/json");
        if let Some(b) = body {
            req.insert_header("content-type", "application/json");
            let bytes = serde_json::to_vec(b).map_err(|e| AzureError::Protocol {
                op: op.to_string(),
                detail: e.to_string(),
            })?;
            req.set_body(bytes);
        }
        let class = Class::of(method.as_str());
        let sub = subscription_of(url.path()).map(str::to_string);
        if let Some(sub) = &sub {
            self.limiter.acquire(sub, class).await;
        }
        let operation = format!("{} {}", method.as_str(), resource_type(url.path()));
        let ctx = Context::new();
        let sent = self
            .pipeline
            .send(
                &ctx,
                &mut req,
                Some(PipelineSendOptions {
                    skip_checks: true,
                    ..Default::default()
                }),
            )
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                self.metrics.arm_request(class.as_str(), operation, 0);
                return Err(self.classify(op, &e));
            }
        };
        let (status, headers, body) = resp.deconstruct();
        let status = u16::from(status);
        let header = |name: &'static str| {
            headers
                .get_optional_str(&HeaderName::from_static(name))
                .map(str::to_string)
        };
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        self.metrics.arm_request(class.as_str(), operation, status);
        if let Some(sub) = &sub {
            for c in Class::ALL {
                let left = headers
                    .get_optional_str(&HeaderName::from(format!(
                        "x-ms-ratelimit-remaining-subscription-{}",
                        c.as_str()
                    )))
                    .and_then(|v| v.trim().parse::<u64>().ok());
                if let Some(left) = left {
                    tracing::trace!(op, bucket = c.as_str(), left, "ARM rate-limit budget");
                    self.limiter.observe_remaining(sub, c, left);
                }
            }
            if status == 429 {
                self.limiter
                    .throttled(sub, class, retry_after.unwrap_or(Duration::from_secs(1)));
            }
        }
        let response = ArmResponse {
            status,
            retry_after,
            azure_async_operation: header("azure-asyncoperation"),
            location: header("location"),
            body: body.to_vec(),
        };
        tracing::debug!(op, method = ?method, status, "ARM answered");
        if (200..300).contains(&status) {
            Ok(response)
        } else {
            Err(error::from_status(op, status, &response.body, retry_after))
        }
    }
}

impl ArmClient {
    /// What a failed send means: nothing listening (a short wait, then a
    /// message naming the endpoint), Entra ID refusing the credential
    /// (final), or a failure worth retrying.
    fn classify(&self, op: &str, e: &azure_core::Error) -> AzureError {
        let credential = matches!(e.kind(), azure_core::error::ErrorKind::Credential);
        if let Some(cause) = connect_failure(e) {
            return if credential {
                AzureError::Unreachable {
                    what: "Entra ID (the token endpoint)",
                    endpoint: self.authority.clone(),
                    key: "authority_host",
                    cause,
                }
            } else {
                AzureError::Unreachable {
                    what: "Azure Resource Manager",
                    endpoint: self.endpoint.origin().ascii_serialization(),
                    key: "arm_endpoint",
                    cause,
                }
            };
        }
        if credential {
            let message = describe_transport_error(e);
            if let Some(code) = super::error::aadsts_code(&message) {
                return AzureError::CredentialRefused {
                    tenant: self.tenant.clone(),
                    client: self.client.clone(),
                    hint: super::error::aadsts_hint(&code),
                    code,
                    message: first_line(&message),
                };
            }
            return AzureError::Credential(first_line(&e.to_string()));
        }
        AzureError::Transport {
            op: op.to_string(),
            cause: describe_transport_error(e),
        }
    }
}

/// The cause when the connection itself failed (refused, no such host,
/// connect timeout): nothing was sent.
fn connect_failure(e: &azure_core::Error) -> Option<String> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<reqwest::Error>() {
            if r.is_connect() {
                // The innermost cause names it: "Connection refused", "dns error"...
                let mut inner = s.source();
                let mut last = r.to_string();
                while let Some(i) = inner {
                    last = i.to_string();
                    inner = i.source();
                }
                return Some(last);
            }
        }
        src = s.source();
    }
    None
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    op: &str,
    body: &[u8],
) -> Result<T, AzureError> {
    serde_json::from_slice(body).map_err(|e| AzureError::Protocol {
        op: op.to_string(),
        detail: format!("cannot read the answer: {e}"),
    })
}

pub(crate) fn last_segment(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// The innermost cause says what happened (refused, reset, timed out).
fn describe_transport_error(e: &azure_core::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        src = s.source();
    }
    msg
}
