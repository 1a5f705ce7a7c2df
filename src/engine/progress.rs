//! Live progress of a run: step, elapsed time, what Azure says.
use crate::domain::StepName;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum ProgressEvent {
    StepStarted {
        step: StepName,
        attempt: u32,
    },
    Azure {
        step: StepName,
        message: String,
    },
    StepDone {
        step: StepName,
        elapsed: Duration,
        summary: String,
    },
    StepFailed {
        step: StepName,
        error: String,
    },
    Note(String),
}

pub trait Progress: Send + Sync {
    fn event(&self, ev: ProgressEvent);

    /// The progress of one request's run, when this progress tells
    /// requests apart (the service's fan-out); `None`: use this one.
    fn for_request(&self, _request: &crate::domain::RequestId) -> Option<Arc<dyn Progress>> {
        None
    }
}

/// Writes nothing (library callers, tests).
pub struct Silent;
impl Progress for Silent {
    fn event(&self, _: ProgressEvent) {}
}
