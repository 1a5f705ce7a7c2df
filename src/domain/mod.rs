//! The pure core: requests and their rules, the lifecycle, the step plan and
//! the decisions a resumed run makes from its checkpoints and what Azure shows.
//! Nothing here performs I/O; the engine performs what these functions decide.
pub mod environment;
pub mod job;
pub mod lifecycle;
pub mod request;
pub mod rules;
pub mod schedule;
pub mod swap;

pub use environment::{ActionKind, DatabaseKind, Environment, Tier};
pub use job::{Job, JobStatus, StepName, StepRecord, StepStatus};
pub use lifecycle::{LifecycleEvent, RequestStatus};
pub use request::{
    Acknowledgements, EnvironmentEvent, EnvironmentEventKind, NewRequest, RequestEvent,
    RestoreRequest, Window,
};
pub use rules::RuleViolation;
