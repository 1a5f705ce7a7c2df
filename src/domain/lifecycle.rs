//! The request lifecycle as a pure state machine:
//! `Submitted -> Accepted -> Running -> Succeeded | Failed | RolledBack`,
//! plus `Rejected`, `Cancelled` and `Missed`.
use super::fix::Fix;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Submitted,
    Accepted,
    Rejected,
    Running,
    Succeeded,
    Failed,
    RolledBack,
    Cancelled,
    Missed,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 9] = [
        Self::Submitted,
        Self::Accepted,
        Self::Rejected,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::RolledBack,
        Self::Cancelled,
        Self::Missed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
            Self::Cancelled => "cancelled",
            Self::Missed => "missed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// An active request holds its environment: no second request may be
    /// submitted for it.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Submitted | Self::Accepted | Self::Running)
    }

    pub fn is_terminal(self) -> bool {
        !self.is_active()
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    Accept,
    Reject,
    Start,
    Succeed,
    Fail,
    RollBack,
    Cancel,
    Miss,
    Reschedule,
    /// A run that stopped before changing anything in Azure gives the
    /// request back: accepted, runnable again.
    Release,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a request that is {from} cannot be {verb}: {}", instead.words())]
pub struct InvalidTransition {
    pub from: RequestStatus,
    pub event: LifecycleEvent,
    pub verb: &'static str,
    /// What the person can do instead, for each front end to word.
    pub instead: Fix,
    /// The request, when the caller named it (for a hint naming it).
    pub request: Option<super::RequestId>,
}

impl InvalidTransition {
    /// The same refusal, of the request `id`.
    pub fn of(mut self, id: &super::RequestId) -> InvalidTransition {
        self.request = Some(id.clone());
        self
    }
}

impl LifecycleEvent {
    fn verb(self) -> &'static str {
        match self {
            Self::Accept => "accepted",
            Self::Reject => "rejected",
            Self::Start => "started",
            Self::Succeed => "marked succeeded",
            Self::Fail => "marked failed",
            Self::RollBack => "marked rolled back",
            Self::Cancel => "cancelled",
            Self::Miss => "marked missed",
            Self::Reschedule => "rescheduled",
            Self::Release => "released",
        }
    }
}

/// The next status, or why the event is not allowed now.
pub fn transition(
    from: RequestStatus,
    event: LifecycleEvent,
) -> Result<RequestStatus, InvalidTransition> {
    use LifecycleEvent as E;
    use RequestStatus as S;
    let to = match (from, event) {
        (S::Submitted, E::Accept) => Some(S::Accepted),
        (S::Submitted, E::Reject) => Some(S::Rejected),
        (S::Submitted | S::Accepted, E::Cancel) => Some(S::Cancelled),
        (S::Submitted | S::Accepted, E::Reschedule) => Some(from),
        (S::Accepted, E::Start) => Some(S::Running),
        (S::Accepted, E::Miss) => Some(S::Missed),
        (S::Running, E::Succeed) => Some(S::Succeeded),
        (S::Running, E::Fail) => Some(S::Failed),
        (S::Running, E::RollBack) => Some(S::RolledBack),
        (S::Running, E::Release) => Some(S::Accepted),
        // An operator may roll back a finished run whose result is unwanted.
        (S::Succeeded | S::Failed, E::RollBack) => Some(S::RolledBack),
        _ => None,
    };
    to.ok_or(InvalidTransition {
        from,
        event,
        verb: event.verb(),
        instead: match (from, event) {
            (S::Submitted, E::Start) => Fix::AcceptFirst,
            (S::Running, E::Cancel | E::Reschedule) => Fix::RollBackAfterwards,
            // Its run may still be undone.
            _ if matches!(from, S::Succeeded | S::Failed) => Fix::RollBackOrSubmitNew,
            _ if from.is_terminal() => Fix::SubmitNew,
            _ => Fix::LookAtStatus,
        },
        request: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleEvent as E;
    use RequestStatus as S;

    #[test]
    fn happy_path() {
        let s = transition(S::Submitted, E::Accept).unwrap();
        let s = transition(s, E::Start).unwrap();
        assert_eq!(transition(s, E::Succeed).unwrap(), S::Succeeded);
    }

    const EVENTS: [LifecycleEvent; 10] = [
        E::Accept,
        E::Reject,
        E::Start,
        E::Succeed,
        E::Fail,
        E::RollBack,
        E::Cancel,
        E::Miss,
        E::Reschedule,
        E::Release,
    ];

    /// Every allowed move, written out: any pair not listed is refused.
    const ALLOWED: [(S, E, S); 14] = [
        (S::Submitted, E::Accept, S::Accepted),
        (S::Submitted, E::Reject, S::Rejected),
        (S::Submitted, E::Cancel, S::Cancelled),
        (S::Submitted, E::Reschedule, S::Submitted),
        (S::Accepted, E::Cancel, S::Cancelled),
        (S::Accepted, E::Reschedule, S::Accepted),
        (S::Accepted, E::Start, S::Running),
        (S::Accepted, E::Miss, S::Missed),
        (S::Running, E::Succeed, S::Succeeded),
        (S::Running, E::Fail, S::Failed),
        (S::Running, E::RollBack, S::RolledBack),
        (S::Running, E::Release, S::Accepted),
        (S::Succeeded, E::RollBack, S::RolledBack),
        (S::Failed, E::RollBack, S::RolledBack),
    ];

    #[test]
    fn exactly_the_allowed_transitions_are_allowed_and_the_rest_are_refused() {
        let allowed = |from, ev| {
            ALLOWED
                .iter()
                .find(|(f, e, _)| *f == from && *e == ev)
                .map(|(_, _, to)| *to)
        };
        for from in S::ALL {
            for ev in EVENTS {
                match (transition(from, ev), allowed(from, ev)) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{from:?} {ev:?}"),
                    (Err(e), None) => {
                        assert_eq!((e.from, e.event), (from, ev));
                        assert_eq!(
                            e.to_string(),
                            format!(
                                "a request that is {from} cannot be {}: {}",
                                e.verb,
                                e.instead.words()
                            )
                        );
                    }
                    (got, want) => panic!("{from:?} {ev:?}: got {got:?}, want {want:?}"),
                }
            }
        }
    }

    /// A refusal says what to do instead as a value (each front end words
    /// it), and its message names no front end's inputs.
    #[test]
    fn a_refusal_says_what_to_do_instead() {
        let instead = |from, ev| transition(from, ev).unwrap_err().instead;
        assert_eq!(instead(S::Submitted, E::Start), Fix::AcceptFirst);
        assert_eq!(
            transition(S::Submitted, E::Start).unwrap_err().to_string(),
            "a request that is submitted cannot be started: it must be accepted first"
        );
        for ev in [E::Cancel, E::Reschedule] {
            assert_eq!(instead(S::Running, ev), Fix::RollBackAfterwards, "{ev:?}");
        }
        for from in [S::Rejected, S::RolledBack, S::Cancelled, S::Missed] {
            assert_eq!(instead(from, E::Accept), Fix::SubmitNew, "{from:?}");
        }
        for from in [S::Succeeded, S::Failed] {
            assert_eq!(
                instead(from, E::Start),
                Fix::RollBackOrSubmitNew,
                "{from:?}"
            );
        }
        assert_eq!(instead(S::Accepted, E::Succeed), Fix::LookAtStatus);
        for from in S::ALL {
            for ev in EVENTS {
                if let Err(e) = transition(from, ev) {
                    let text = e.to_string();
                    assert!(!text.contains("pitr ") && !text.contains('`'), "{text}");
                    assert!(!e.instead.words().is_empty(), "{from:?} {ev:?}");
                }
            }
        }
    }

    #[test]
    fn parse_roundtrip() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
    }

    /// The names stored in the store and shown to people: fixed.
    #[test]
    fn stored_status_names_still_parse() {
        let stored = [
            ("submitted", S::Submitted),
            ("accepted", S::Accepted),
            ("rejected", S::Rejected),
            ("running", S::Running),
            ("succeeded", S::Succeeded),
            ("failed", S::Failed),
            ("rolled_back", S::RolledBack),
            ("cancelled", S::Cancelled),
            ("missed", S::Missed),
        ];
        for (name, status) in stored {
            assert_eq!(S::parse(name), Some(status), "{name}");
            assert_eq!(status.as_str(), name);
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{name}\"")
            );
        }
        assert_eq!(stored.len(), S::ALL.len());
        assert_eq!(S::parse("canceled"), None);
    }
}
