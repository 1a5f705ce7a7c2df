//! Who may do what, as pure functions of the caller and the facts of the
//! call: deny by default, every route asks [`decide`] before it reads or
//! changes anything it would not show the caller.
//!
//! - `Pitr.Viewer`: read everything.
//! - `Pitr.Requester`: read; submit (for an environment with
//!   `requester_groups`, only with one of those groups in the token);
//!   reschedule and cancel the requests they submitted (the lifecycle then
//!   says whether it is still before the start).
//! - `Pitr.Operator`: everything, including accept, reject, run, resume,
//!   rollback, emergency reasons, and reschedule or cancel of any request.
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Requester,
    Operator,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Requester, Role::Operator];

    /// The Entra app role's value, as the token's `roles` claim carries it.
    pub fn claim(self) -> &'static str {
        match self {
            Role::Viewer => "Pitr.Viewer",
            Role::Requester => "Pitr.Requester",
            Role::Operator => "Pitr.Operator",
        }
    }

    pub fn from_claim(s: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.claim() == s)
    }
}

/// The caller of one API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Recorded in the audit trail: `preferred_username` (or `upn`), else
    /// `oid`, else the application id.
    pub actor: String,
    pub roles: BTreeSet<Role>,
    /// Group object ids from the token's `groups` claim.
    pub groups: Vec<String>,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The local operator of `auth.mode = "none"` (loopback only).
    pub fn local_operator(actor: &str) -> Principal {
        Principal {
            actor: actor.to_string(),
            roles: [Role::Operator].into_iter().collect(),
            groups: Vec::new(),
        }
    }
}

/// What a call wants to do, with the facts the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    Read,
    Submit {
        /// The environment's `requester_groups` (empty: any requester).
        environment_groups: &'a [String],
        emergency: bool,
    },
    Reschedule {
        /// The caller submitted the request.
        own: bool,
        emergency: bool,
    },
    Cancel {
        own: bool,
    },
    Accept,
    Reject,
    Run,
    Resume,
    Rollback,
}

impl Action<'_> {
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Submit { .. } => "submit a request",
            Action::Reschedule { .. } => "reschedule this request",
            Action::Cancel { .. } => "cancel this request",
            Action::Accept => "accept a request",
            Action::Reject => "reject a request",
            Action::Run => "run a request",
            Action::Resume => "resume a run",
            Action::Rollback => "roll back a run",
        }
    }
}

/// Why a call is refused (403), in words for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// The decision for `who` doing `what`.
pub fn decide(who: &Principal, what: &Action<'_>) -> Result<(), Denied> {
    if who.has(Role::Operator) {
        return Ok(());
    }
    let need = |role: Role| {
        Denied(format!(
            "to {} you need the app role {}; ask for it on the pitr application in Entra ID",
            what.verb(),
            role.claim()
        ))
    };
    let requester = who.has(Role::Requester);
    match *what {
        Action::Read if requester || who.has(Role::Viewer) => Ok(()),
        Action::Read => Err(need(Role::Viewer)),
        Action::Submit {
            emergency: true, ..
        }
        | Action::Reschedule {
            emergency: true, ..
        } => Err(Denied(format!(
            "an emergency reason (a window sooner than 24 hours) needs the app role {}",
            Role::Operator.claim()
        ))),
        Action::Submit {
            environment_groups, ..
        } if requester => {
            if environment_groups.is_empty()
                || environment_groups.iter().any(|g| who.groups.contains(g))
            {
                Ok(())
            } else {
                Err(Denied(
                    "this environment takes requests only from members of its requester groups; ask to be added to one".into(),
                ))
            }
        }
        Action::Reschedule { own: true, .. } | Action::Cancel { own: true } if requester => Ok(()),
        Action::Reschedule { .. } | Action::Cancel { .. } if requester => Err(Denied(format!(
            "a requester may {} only for requests they submitted; an operator ({}) may for any",
            what.verb().trim_end_matches(" this request"),
            Role::Operator.claim()
        ))),
        Action::Submit { .. } | Action::Reschedule { .. } | Action::Cancel { .. } => {
            Err(need(Role::Requester))
        }
        Action::Accept | Action::Reject | Action::Run | Action::Resume | Action::Rollback => {
            Err(need(Role::Operator))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(roles: &[Role], groups: &[&str]) -> Principal {
        Principal {
            actor: "x".into(),
            roles: roles.iter().copied().collect(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    /// Every action for every combination of roles, groups, ownership and
    /// emergency: the table the API promises.
    #[test]
    fn the_whole_matrix() {
        let groups = ["g1".to_string()];
        let none: [String; 0] = [];
        let role_sets: Vec<Vec<Role>> = vec![
            vec![],
            vec![Role::Viewer],
            vec![Role::Requester],
            vec![Role::Operator],
            vec![Role::Viewer, Role::Requester],
            vec![Role::Requester, Role::Operator],
        ];
        for roles in &role_sets {
            for member in [false, true] {
                let p = who(roles, if member { &["g1", "g2"] } else { &["g9"] });
                let op = p.has(Role::Operator);
                let req = p.has(Role::Requester);
                let reader = op || req || p.has(Role::Viewer);
                let mut actions = vec![
                    (Action::Read, reader),
                    (Action::Accept, op),
                    (Action::Reject, op),
                    (Action::Run, op),
                    (Action::Resume, op),
                    (Action::Rollback, op),
                ];
                for emergency in [false, true] {
                    actions.push((
                        Action::Submit {
                            environment_groups: &none,
                            emergency,
                        },
                        op || (req && !emergency),
                    ));
                    actions.push((
                        Action::Submit {
                            environment_groups: &groups,
                            emergency,
                        },
                        op || (req && !emergency && member),
                    ));
                    for own in [false, true] {
                        actions.push((
                            Action::Reschedule { own, emergency },
                            op || (req && own && !emergency),
                        ));
                    }
                }
                for own in [false, true] {
                    actions.push((Action::Cancel { own }, op || (req && own)));
                }
                for (action, allowed) in actions {
                    let got = decide(&p, &action);
                    assert_eq!(got.is_ok(), allowed, "{roles:?} member={member} {action:?}");
                    if let Err(d) = got {
                        assert!(!d.0.is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn role_claims_round_trip_and_unknown_roles_are_ignored() {
        for r in Role::ALL {
            assert_eq!(Role::from_claim(r.claim()), Some(r));
        }
        assert_eq!(Role::from_claim("pitr.operator"), None);
        assert_eq!(Role::from_claim("Pitr.Admin"), None);
        assert!(decide(&Principal::local_operator("me"), &Action::Rollback).is_ok());
    }
}
