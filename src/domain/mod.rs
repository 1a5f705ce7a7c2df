//! The pure core: requests and their rules, the lifecycle, the step plan and
//! the decisions a run makes from its checkpoints and what Azure shows (how a
//! restore continues, the swap, the window, the recovery, a rollback), and
//! what a scheduler tick does with the work in play ([`tick`]). Nothing here performs I/O; the engine gathers the facts, calls these
//! functions and performs what they decide.
pub mod environment;
pub mod fix;
pub mod ids;
pub mod job;
pub mod lifecycle;
pub mod recovery;
pub mod request;
pub mod restore;
pub mod retention;
pub mod rollback;
pub mod rules;
pub mod schedule;
pub mod step;
pub mod swap;
pub mod tick;
pub mod time;
pub mod window;

pub use environment::{ActionKind, DatabaseKind, Environment, Tier, WebhookAction};
pub use ids::{JobId, RequestId};
pub use job::{Job, JobFacts, JobStatus};
pub use lifecycle::{LifecycleEvent, RequestStatus};
pub use request::{
    standing_restores, Acknowledgements, EnvironmentEvent, EnvironmentEventKind, HistoryEntry,
    RequestEvent, RequestSpec, RestoreRecord, RestoreRequest, RollbackRecord, Window,
};
pub use rules::RuleViolation;
pub use step::{StepName, StepRecord, StepStatus};
