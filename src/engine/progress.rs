//! Live progress of a run: step, elapsed time, what Azure says.
use crate::domain::StepName;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
}

/// Writes nothing (library callers, tests).
pub struct Silent;
impl Progress for Silent {
    fn event(&self, _: ProgressEvent) {}
}

/// Prints one line per event to stderr, with the time since the run began.
pub struct Console {
    started: Instant,
    out: Mutex<()>,
}

impl Default for Console {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            out: Mutex::new(()),
        }
    }
}

impl Progress for Console {
    fn event(&self, ev: ProgressEvent) {
        let t = self.started.elapsed().as_secs_f64();
        let line = match ev {
            ProgressEvent::StepStarted { step, attempt } => {
                if attempt > 1 {
                    format!("[{t:7.1}s] {step:<9} started (attempt {attempt})")
                } else {
                    format!("[{t:7.1}s] {step:<9} started")
                }
            }
            ProgressEvent::Azure { step, message } => format!("[{t:7.1}s] {step:<9} {message}"),
            ProgressEvent::StepDone {
                step,
                elapsed,
                summary,
            } => format!(
                "[{t:7.1}s] {step:<9} done in {:.1}s: {summary}",
                elapsed.as_secs_f64()
            ),
            ProgressEvent::StepFailed { step, error } => {
                format!("[{t:7.1}s] {step:<9} FAILED: {error}")
            }
            ProgressEvent::Note(n) => format!("[{t:7.1}s] {n}"),
        };
        let _guard = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}
