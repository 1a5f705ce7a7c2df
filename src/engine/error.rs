//! What the engine reports: how a run ended (an [`Outcome`], never an
//! error), and what went wrong when it could not be carried out (an
//! [`EngineError`]; the service turns it into a
//! [`crate::service::ServiceError`], which each front end maps once).
use crate::azure::AzureError;
use crate::domain::lifecycle::InvalidTransition;
use crate::domain::rollback::RollbackRefused;
use crate::domain::{Job, JobStatus, RequestId, RuleViolation};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Rule(#[from] RuleViolation),
    #[error("{0}")]
    Lifecycle(#[from] InvalidTransition),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Azure(#[from] AzureError),
    #[error("{0}")]
    Rollback(#[from] RollbackRefused),
    #[error("{0}")]
    NothingToResume(#[from] crate::domain::job::NothingToResume),
    #[error("{0}")]
    BadInput(String),
    #[error("interrupted; every checkpoint is written; continue with `pitr resume {request}`")]
    Interrupted { request: RequestId },
    /// The store failed while a run was under way.
    #[error("the store failed during the run of request {request}: {cause}. {}; every step done so far is checkpointed: fix the store and continue with `pitr resume {request}`", match environment {
        Some(true) => "The environment is OFFLINE (this run stopped its services)",
        Some(false) => "The environment is online",
        None => "The environment may be offline (the run was recovering from a failed step)",
    })]
    StoreFailed {
        request: RequestId,
        /// Whether the environment is down: `None` when it is not known.
        environment: Option<bool>,
        cause: StoreError,
    },
    /// A run that could not reach an end: its state is checkpointed and a
    /// person must look (the message says what to do).
    #[error("job {job} {status}: {cause}")]
    Stuck {
        job: String,
        status: &'static str,
        cause: String,
    },
}

/// A failure inside a step, with the text stored in its checkpoint.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    #[error("{0}")]
    Azure(#[from] AzureError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Failed(String),
    /// The step waits for a person or a callback; the job stays running.
    #[error("{0}")]
    Waiting(String),
}

/// How a run (or a rollback) ended. Each is a complete, recorded end: the
/// caller decides what counts as success (a `RolledBack` run failed; a
/// `RolledBack` rollback did what was asked).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every step succeeded.
    Succeeded(Job),
    /// A pre-staged run stopped with its restore done; the downtime steps
    /// wait for the window.
    Staged(Job),
    /// A step waits for a person or a webhook's callback (the message says
    /// what to do); the job stays running with its lease released.
    Waiting { job: Job, message: String },
    /// The run ended `Failed` or `RolledBack` with its cause. `problems` is
    /// true when the recovery itself left something undone (a person must
    /// look: the cause says what).
    Ended {
        job: Job,
        cause: String,
        problems: bool,
    },
}

impl Outcome {
    /// How a finished job ended, from its status.
    pub(crate) fn of(job: Job, cause: Option<String>, problems: bool) -> Self {
        match job.status {
            JobStatus::Succeeded => Self::Succeeded(job),
            _ => Self::Ended {
                job,
                cause: cause.unwrap_or_default(),
                problems,
            },
        }
    }

    pub fn job(&self) -> &Job {
        match self {
            Self::Succeeded(job)
            | Self::Staged(job)
            | Self::Waiting { job, .. }
            | Self::Ended { job, .. } => job,
        }
    }

    pub fn status(&self) -> JobStatus {
        self.job().status
    }

    /// The run did what a run is for so far: succeeded, staged for its
    /// window, or waiting for a person.
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            Self::Succeeded(_) | Self::Staged(_) | Self::Waiting { .. }
        )
    }

    /// The line a person reads about this end.
    pub fn describe(&self) -> String {
        match self {
            Self::Succeeded(job) => format!("job {} succeeded", job.id),
            Self::Staged(job) => format!(
                "job {} staged: the restore is done; the downtime steps wait for the window",
                job.id
            ),
            Self::Waiting { job, message } => format!("job {} waiting: {message}", job.id),
            Self::Ended {
                job,
                cause,
                problems,
            } => format!(
                "job {} {}: {cause}",
                job.id,
                if *problems {
                    "ended with problems"
                } else {
                    job.status.as_str()
                }
            ),
        }
    }
}
