//! What `pitr serve` shows Prometheus at `GET /metrics` (text format, the
//! `prometheus-client` crate). One [`Metrics`] per process (per `App`): the
//! Azure client counts ARM requests, 429s and limiter waits; the engine
//! observes steps, downtime, scheduler lag and lease takeovers; the values
//! read from the store (requests by status, outbox backlog) are set when
//! scraped. Names, types and labels are listed in README "Many environments".
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ArmLabels {
    /// reads, writes or deletes (ARM's buckets).
    pub class: String,
    /// Method and resource type: `GET Microsoft.Sql/servers/databases`.
    pub operation: String,
    /// HTTP status; 0 when no answer came.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabel {
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub step: String,
    /// succeeded, failed, ...
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

type FloatCounter = Counter<f64, AtomicU64>;
type HistFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn step_histogram() -> Histogram {
    // 1 s .. ~9 h.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        1.0, 2.0, 16,
    ))
}

pub struct Metrics {
    registry: Registry,
    pub arm_requests: Family<ArmLabels, Counter>,
    pub arm_throttled: Family<ClassLabel, Counter>,
    pub limiter_wait: Family<ClassLabel, FloatCounter>,
    pub restore_queue_wait: FloatCounter,
    pub step_duration: HistFamily<StepLabels>,
    pub downtime: Histogram,
    pub scheduler_lag: Histogram,
    pub lease_takeovers: Family<ReasonLabel, Counter>,
    pub jobs_finished: Family<StatusLabel, Counter>,
    pub jobs_running: Gauge,
    pub requests: Family<StatusLabel, Gauge>,
    pub outbox_backlog: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("pitr");
        let arm_requests = Family::<ArmLabels, Counter>::default();
        registry.register(
            "arm_requests",
            "ARM requests sent, by bucket class, operation and HTTP status",
            arm_requests.clone(),
        );
        let arm_throttled = Family::<ClassLabel, Counter>::default();
        registry.register(
            "arm_throttled",
            "ARM answers 429 TooManyRequests, by bucket class",
            arm_throttled.clone(),
        );
        let limiter_wait = Family::<ClassLabel, FloatCounter>::default();
        registry.register(
            "arm_limiter_wait_seconds",
            "Time requests waited for the shared ARM rate limiter, by bucket class",
            limiter_wait.clone(),
        );
        let restore_queue_wait = FloatCounter::default();
        registry.register(
            "restore_queue_wait_seconds",
            "Time restores waited for a slot under the per-subscription restore cap",
            restore_queue_wait.clone(),
        );
        let step_duration: HistFamily<StepLabels> = Family::new_with_constructor(step_histogram);
        registry.register(
            "step_duration_seconds",
            "Duration of each step run, by step and how it ended",
            step_duration.clone(),
        );
        let downtime = step_histogram();
        registry.register(
            "job_downtime_seconds",
            "Downtime of each finished job: environment offline -> back online",
            downtime.clone(),
        );
        let scheduler_lag = Histogram::new([
            0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
        ]);
        registry.register(
            "scheduler_lag_seconds",
            "Window open -> offline step started, per job",
            scheduler_lag.clone(),
        );
        let lease_takeovers = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "lease_takeovers",
            "Jobs taken over from another runner, by reason (owner_gone: its process is gone on this host; lease_expired: its lease ran out)",
            lease_takeovers.clone(),
        );
        let jobs_finished = Family::<StatusLabel, Counter>::default();
        registry.register(
            "jobs_finished",
            "Jobs this runner drove to an end, by final status",
            jobs_finished.clone(),
        );
        let jobs_running = Gauge::default();
        registry.register(
            "jobs_running",
            "Jobs this runner is driving now",
            jobs_running.clone(),
        );
        let requests = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "requests",
            "Restore requests in the store, by status (read when scraped)",
            requests.clone(),
        );
        let outbox_backlog = Gauge::default();
        registry.register(
            "outbox_backlog",
            "Notifications written to the outbox and not yet delivered or given up (read when scraped)",
            outbox_backlog.clone(),
        );
        Self {
            registry,
            arm_requests,
            arm_throttled,
            limiter_wait,
            restore_queue_wait,
            step_duration,
            downtime,
            scheduler_lag,
            lease_takeovers,
            jobs_finished,
            jobs_running,
            requests,
            outbox_backlog,
        }
    }
}

impl Metrics {
    /// `class` is the ARM bucket (`reads`, `writes`, `deletes`).
    pub fn arm_request(&self, class: &str, operation: String, code: u16) {
        self.arm_requests
            .get_or_create(&ArmLabels {
                class: class.into(),
                operation,
                code: code.to_string(),
            })
            .inc();
        if code == 429 {
            self.arm_throttled
                .get_or_create(&ClassLabel {
                    class: class.into(),
                })
                .inc();
        }
    }

    pub fn limiter_waited(&self, class: &str, wait: Duration) {
        self.limiter_wait
            .get_or_create(&ClassLabel {
                class: class.into(),
            })
            .inc_by(wait.as_secs_f64());
    }

    pub fn step_finished(&self, step: &str, status: &str, secs: f64) {
        self.step_duration
            .get_or_create(&StepLabels {
                step: step.into(),
                status: status.into(),
            })
            .observe(secs.max(0.0));
    }

    pub fn lease_taken_over(&self, reason: &str) {
        self.lease_takeovers
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    pub fn job_finished(&self, status: &str) {
        self.jobs_finished
            .get_or_create(&StatusLabel {
                status: status.into(),
            })
            .inc();
    }

    /// Sum of `pitr_arm_requests` over labels matching `f`.
    pub fn arm_requests_where(&self, f: impl Fn(&ArmLabels) -> bool) -> u64 {
        let text = self.encode();
        text.lines()
            .filter(|l| l.starts_with("pitr_arm_requests_total{"))
            .filter_map(|l| {
                let (labels, value) = l.rsplit_once(' ')?;
                let get = |k: &str| {
                    labels
                        .split(&format!("{k}=\""))
                        .nth(1)
                        .and_then(|r| r.split('"').next())
                        .unwrap_or("")
                        .to_string()
                };
                let lbl = ArmLabels {
                    class: get("class"),
                    operation: get("operation"),
                    code: get("code"),
                };
                f(&lbl).then(|| value.parse::<u64>().ok()).flatten()
            })
            .sum()
    }

    /// The Prometheus text exposition (OpenMetrics text, which Prometheus
    /// scrapes as `application/openmetrics-text`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_types_and_values() {
        let m = Metrics::default();
        m.arm_request("reads", "GET Microsoft.Sql/servers/databases".into(), 200);
        m.arm_request("reads", "GET Microsoft.Sql/servers/databases".into(), 429);
        m.limiter_waited("writes", Duration::from_millis(1500));
        m.step_finished("restore", "succeeded", 12.0);
        m.scheduler_lag.observe(0.2);
        let text = m.encode();
        assert!(text.contains("# TYPE pitr_arm_requests counter"), "{text}");
        assert!(text.contains(
            "pitr_arm_requests_total{class=\"reads\",operation=\"GET Microsoft.Sql/servers/databases\",code=\"429\"} 1"
        ), "{text}");
        assert!(
            text.contains("pitr_arm_throttled_total{class=\"reads\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("pitr_arm_limiter_wait_seconds_total{class=\"writes\"} 1.5"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE pitr_step_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("pitr_scheduler_lag_seconds_count 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(m.arm_requests_where(|l| l.class == "reads"), 2);
        assert_eq!(m.arm_requests_where(|l| l.code == "429"), 1);
    }
}
