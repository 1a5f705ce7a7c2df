//! The request lifecycle as a pure state machine:
//! `Submitted -> Accepted -> Running -> Succeeded | Failed | RolledBack`,
//! plus `Rejected`, `Cancelled` and `Missed`.
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
#[error("a request that is {from} cannot be {verb}: {hint}")]
pub struct InvalidTransition {
    pub from: RequestStatus,
    pub event: LifecycleEvent,
    pub verb: &'static str,
    pub hint: &'static str,
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
        hint: match (from, event) {
            (S::Submitted, E::Start) => "accept it first with `pitr request accept ID`",
            (S::Running, E::Cancel | E::Reschedule) => {
                "the run has started; let it finish or use `pitr rollback ID` afterwards"
            }
            _ if from.is_terminal() => "it is finished; submit a new request",
            _ => "see `pitr request show ID` for its status",
        },
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

    #[test]
    fn every_pair_is_decided_and_terminal_states_only_allow_rollback() {
        let events = [
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
        for from in S::ALL {
            for ev in events {
                let r = transition(from, ev);
                if matches!(from, S::Rejected | S::RolledBack | S::Cancelled | S::Missed) {
                    assert!(r.is_err(), "{from:?} {ev:?}");
                }
                if let Err(e) = r {
                    assert!(!e.to_string().is_empty());
                }
            }
        }
        assert!(transition(S::Submitted, E::Start).is_err());
        assert!(transition(S::Running, E::Cancel).is_err());
        assert_eq!(transition(S::Failed, E::RollBack).unwrap(), S::RolledBack);
    }

    #[test]
    fn parse_roundtrip() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
    }
}
