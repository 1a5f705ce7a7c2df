//! What the person does to get past a refusal, beyond what its message
//! says: a value each front end words in its own terms (a CLI flag or
//! command, a form's field or button, an API body field or call), so that
//! no message of the core names one front end's inputs.
use super::rules::Statements;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// Name one of the configured environments.
    ChooseEnvironment,
    /// Acknowledge these statements (`erase`, `downtime`, `scope`).
    Acknowledge(Statements),
    /// End the window at least an hour after its start.
    LengthenWindow,
    /// An operator may give an emergency reason instead.
    EmergencyReason,
    /// Acknowledge the code-version difference.
    AckVersionMismatch,
    /// Accept the request first.
    AcceptFirst,
    /// The run has started: let it finish, or roll it back afterwards.
    RollBackAfterwards,
    /// The request is finished: submit a new one.
    SubmitNew,
    /// The request's status does not allow it: look at where it is.
    LookAtStatus,
    /// The request has no run yet: start one.
    StartRun,
    /// The request's run has finished: roll it back, or submit a new
    /// request.
    RollBackOrSubmitNew,
}

impl Fix {
    /// What to do instead, in words that name no front end's inputs
    /// (rules' fixes are said by their messages).
    pub fn words(self) -> &'static str {
        match self {
            Fix::AcceptFirst => "it must be accepted first",
            Fix::RollBackAfterwards => {
                "the run has started; let it finish, or roll it back afterwards"
            }
            Fix::SubmitNew => "it is finished; submit a new request",
            Fix::LookAtStatus => "its status does not allow it",
            Fix::StartRun => "it has not started a run",
            Fix::RollBackOrSubmitNew => {
                "its run has finished; roll it back, or submit a new request"
            }
            _ => "",
        }
    }
}
