//! What a use case reports when it cannot be carried out: one
//! [`ServiceError`] with a [`Kind`] that every front end maps once (the CLI
//! to an exit code, the API to a problem's status, the page to its wording),
//! and for a broken rule the rule itself, whose name and facts are values,
//! never parsed out of the message. Messages name no front end's inputs:
//! each front end adds its own hint from [`ServiceError::fix`].
use crate::azure::AzureError;
use crate::domain::rules::Fix;
use crate::domain::RuleViolation;
use crate::engine::EngineError;
use crate::store::StoreError;

/// What kind of failure, in the caller's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The input cannot be read (a malformed instant, nothing to change, an
    /// unknown step): nothing was done.
    BadInput,
    /// A request rule is broken ([`ServiceError::rule`] names it).
    Rule,
    /// The input is well formed but cannot be used (a database Azure does
    /// not know, an empty version): nothing was done.
    Invalid,
    /// The object's state does not allow it (its status, a run in progress,
    /// nothing to resume or roll back): nothing was done.
    Conflict,
    /// Another runner or caller changed or holds it meanwhile (a status
    /// moved under us, a lease held): try again after a look.
    Contended,
    /// No such request, job or environment.
    NotFound,
    /// The caller's roles (or groups) do not allow it.
    Forbidden,
    /// Azure refused or did not answer (Azure's own code and message kept).
    Azure,
    /// The store cannot be used as configured (missing, too new, not a
    /// store, an unsupported URL).
    Setup,
    /// The store failed: try again.
    Store,
    /// A run stopped at a safe point (interrupted, or the store failed
    /// during it): every checkpoint is written; resume it.
    Unavailable,
    /// A run could not reach an end; a person must look.
    Stuck,
    /// The operation was carried out and failed (a run that ended failed).
    Failed,
}

impl Kind {
    /// The HTTP status both HTTP front ends (the API and the page) answer
    /// with.
    pub fn http_status(self) -> u16 {
        match self {
            Kind::BadInput => 400,
            Kind::Rule | Kind::Invalid => 422,
            Kind::Conflict | Kind::Contended => 409,
            Kind::NotFound => 404,
            Kind::Forbidden => 403,
            Kind::Azure | Kind::Stuck | Kind::Failed => 502,
            Kind::Setup | Kind::Store | Kind::Unavailable => 503,
        }
    }
}

#[derive(Debug)]
pub struct ServiceError {
    pub kind: Kind,
    message: String,
    rule: Option<Box<RuleViolation>>,
    /// A rule checked by the store (`one-active-request`,
    /// `max-concurrent-runs`), which has no [`RuleViolation`].
    store_rule: Option<&'static str>,
    /// What to do instead when the request's state forbids the call.
    instead: Option<Fix>,
    /// The request the error is about, for a hint that names it.
    request: Option<String>,
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ServiceError {}

impl ServiceError {
    pub fn new(kind: Kind, message: impl Into<String>) -> ServiceError {
        ServiceError {
            kind,
            message: message.into(),
            rule: None,
            store_rule: None,
            instead: None,
            request: None,
        }
    }

    pub fn bad_input(message: impl Into<String>) -> ServiceError {
        Self::new(Kind::BadInput, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ServiceError {
        Self::new(Kind::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> ServiceError {
        Self::new(Kind::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> ServiceError {
        Self::new(Kind::Conflict, message)
    }

    /// The same error as another kind (an unknown environment named in a
    /// path is not found, where named in a request it breaks a rule).
    pub fn as_kind(mut self, kind: Kind) -> ServiceError {
        self.kind = kind;
        self
    }

    /// The broken rule's name (`notice-24h`), when a rule was broken.
    pub fn rule(&self) -> Option<&'static str> {
        self.rule
            .as_deref()
            .map(RuleViolation::rule)
            .or(self.store_rule)
    }

    /// The broken rule with its facts.
    pub fn violation(&self) -> Option<&RuleViolation> {
        self.rule.as_deref()
    }

    /// What the person changes or does instead, for the front end to
    /// word.
    pub fn fix(&self) -> Option<Fix> {
        self.rule
            .as_deref()
            .and_then(RuleViolation::fix)
            .or(self.instead)
    }

    /// The request the error is about, when known.
    pub fn request(&self) -> Option<&str> {
        self.request.as_deref()
    }

    /// The message without a rule's `rule NAME: ` prefix.
    pub fn text(&self) -> String {
        match (&self.rule, self.store_rule) {
            (Some(v), _) => v.text(),
            (None, Some(rule)) => self
                .message
                .strip_prefix(&format!("rule {rule}: "))
                .unwrap_or(&self.message)
                .to_string(),
            (None, None) => self.message.clone(),
        }
    }

    /// An engine error from a use case whose plain "cannot do that" answers
    /// (`EngineError::BadInput`) are of kind `bad_input`: [`Kind::Invalid`]
    /// where a value cannot be used, [`Kind::Conflict`] where the state
    /// forbids the call.
    pub fn from_engine(e: EngineError, bad_input: Kind) -> ServiceError {
        let message = e.to_string();
        match e {
            EngineError::Rule(v) => v.into(),
            EngineError::Lifecycle(t) => ServiceError {
                instead: Some(t.instead),
                request: t.request.map(|r| r.to_string()),
                ..Self::conflict(message)
            },
            EngineError::NothingToResume(n) => ServiceError {
                instead: Some(n.instead()),
                request: Some(n.request.to_string()),
                ..Self::conflict(message)
            },
            EngineError::Rollback(_) => Self::conflict(message),
            EngineError::BadInput(_) => Self::new(bad_input, message),
            EngineError::Store(s) => s.into(),
            EngineError::Azure(_) => Self::new(Kind::Azure, message),
            EngineError::Interrupted { .. } | EngineError::StoreFailed { .. } => {
                Self::new(Kind::Unavailable, message)
            }
            EngineError::Stuck { .. } => Self::new(Kind::Stuck, message),
        }
    }
}

impl From<RuleViolation> for ServiceError {
    fn from(v: RuleViolation) -> Self {
        ServiceError {
            kind: Kind::Rule,
            message: v.to_string(),
            rule: Some(Box::new(v)),
            store_rule: None,
            instead: None,
            request: None,
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        let (kind, store_rule) = match e {
            StoreError::RequestNotFound(_) | StoreError::JobNotFound(_) => (Kind::NotFound, None),
            StoreError::ActiveRequestExists { .. } => (Kind::Conflict, Some("one-active-request")),
            StoreError::RunInProgress { .. } => (Kind::Conflict, None),
            StoreError::StatusConflict { .. }
            | StoreError::LeaseHeld { .. }
            | StoreError::LeaseLost { .. } => (Kind::Contended, None),
            StoreError::LimitReached { .. } => (Kind::Contended, Some("max-concurrent-runs")),
            StoreError::SchemaTooNew { .. }
            | StoreError::NotAStore { .. }
            | StoreError::UnsupportedUrl(_) => (Kind::Setup, None),
            _ => (Kind::Store, None),
        };
        ServiceError {
            store_rule,
            ..Self::new(kind, message)
        }
    }
}

impl From<AzureError> for ServiceError {
    fn from(e: AzureError) -> Self {
        Self::new(Kind::Azure, e.to_string())
    }
}

impl From<super::roles::Denied> for ServiceError {
    fn from(d: super::roles::Denied) -> Self {
        Self::forbidden(d.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_is_a_value_not_a_parse() {
        let scope = crate::domain::rules::Statements {
            scope: true,
            ..Default::default()
        };
        let e = ServiceError::from(RuleViolation::MissingAcknowledgement(scope));
        assert_eq!((e.kind, e.rule()), (Kind::Rule, Some("acknowledgement")));
        assert_eq!(e.fix(), Some(Fix::Acknowledge(scope)));
        assert_eq!(e.text(), "the statement 'scope' was not acknowledged");
        let e = ServiceError::from(StoreError::ActiveRequestExists {
            environment: "e".into(),
            existing: "r".into(),
        });
        assert_eq!(
            (e.kind, e.rule()),
            (Kind::Conflict, Some("one-active-request"))
        );
        let e = ServiceError::from_engine(EngineError::BadInput("no".into()), Kind::Invalid);
        assert_eq!((e.kind, e.rule()), (Kind::Invalid, None));
    }
}
