//! The progress of runs in this process, fanned out per request to the
//! Server-Sent Events subscribers of that request (a broadcast channel per
//! watched request), and passed on to the console as before.
use crate::domain::RequestId;
use crate::engine::progress::{Progress, ProgressEvent};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// One progress line, as an SSE `progress` event carries it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProgressLine {
    /// `step_started`, `azure`, `step_done`, `step_failed` or `note`.
    pub kind: &'static str,
    pub step: Option<String>,
    pub message: String,
}

impl From<&ProgressEvent> for ProgressLine {
    fn from(ev: &ProgressEvent) -> Self {
        let (kind, step, message) = match ev {
            ProgressEvent::StepStarted { step, attempt } => {
                ("step_started", Some(*step), format!("attempt {attempt}"))
            }
            ProgressEvent::Azure { step, message } => ("azure", Some(*step), message.clone()),
            ProgressEvent::StepDone {
                step,
                elapsed,
                summary,
            } => (
                "step_done",
                Some(*step),
                format!("done in {:.1}s: {summary}", elapsed.as_secs_f64()),
            ),
            ProgressEvent::StepFailed { step, error } => {
                ("step_failed", Some(*step), error.clone())
            }
            ProgressEvent::Note(n) => ("note", None, n.clone()),
        };
        ProgressLine {
            kind,
            step: step.map(|s| s.as_str().to_string()),
            message,
        }
    }
}

#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

struct Shared {
    inner: Arc<dyn Progress>,
    channels: Mutex<HashMap<RequestId, broadcast::Sender<ProgressLine>>>,
}

impl Hub {
    /// Passes every event on to `inner` too (the console).
    pub fn new(inner: Arc<dyn Progress>) -> Hub {
        Hub {
            shared: Arc::new(Shared {
                inner,
                channels: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The progress lines of `request`'s runs in this process from now on.
    pub fn subscribe(&self, request: &RequestId) -> broadcast::Receiver<ProgressLine> {
        let mut channels = self
            .shared
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        channels.retain(|_, tx| tx.receiver_count() > 0);
        channels
            .entry(request.clone())
            .or_insert_with(|| broadcast::channel(256).0)
            .subscribe()
    }
}

impl Progress for Hub {
    fn event(&self, ev: ProgressEvent) {
        self.shared.inner.event(ev);
    }

    fn for_request(&self, request: &RequestId) -> Option<Arc<dyn Progress>> {
        Some(Arc::new(Tagged {
            shared: self.shared.clone(),
            request: request.clone(),
        }))
    }
}

/// The progress of one request's run.
struct Tagged {
    shared: Arc<Shared>,
    request: RequestId,
}

impl Progress for Tagged {
    fn event(&self, ev: ProgressEvent) {
        let line = ProgressLine::from(&ev);
        if let Some(tx) = self
            .shared
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&self.request)
        {
            // No subscriber: nobody to tell.
            let _ = tx.send(line);
        }
        self.shared.inner.event(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::StepName;

    #[test]
    fn a_request_gets_only_its_own_progress() {
        let hub = Hub::new(Arc::new(crate::engine::progress::Silent));
        let mut a = hub.subscribe(&"a".into());
        let mut b = hub.subscribe(&"b".into());
        let pa = hub.for_request(&"a".into()).unwrap();
        pa.event(ProgressEvent::StepFailed {
            step: StepName::Restore,
            error: "boom".into(),
        });
        let got = a.try_recv().unwrap();
        assert_eq!(got.kind, "step_failed");
        assert_eq!(got.step.as_deref(), Some("restore"));
        assert!(b.try_recv().is_err());
    }
}
