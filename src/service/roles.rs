//! Who may do what, as pure functions of the caller and the facts of the
//! call: deny by default; every use case of the service asks [`decide`]
//! before it reads or changes anything it would not show the caller, for
//! every front end (the CLI's local mode is a caller too: the local
//! operator).
//!
//! - `Pitr.Viewer`: read everything.
//! - `Pitr.Requester`: read; submit (for an environment with
//!   `requester_groups`, only with one of those groups in the token);
//!   reschedule and cancel the requests they submitted (the lifecycle then
//!   says whether it is still before the start).
//! - `Pitr.Operator`: everything, including accept, reject, run, resume,
//!   rollback, confirming a step, recording a deployment, emergency
//!   reasons, and reschedule or cancel of any request.
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

/// Who calls a use case: a signed-in person or application (the API's
/// bearer token, the page's session), or the CLI's local operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Recorded in the audit trail: `preferred_username` (or `upn`), else
    /// `oid`, else the application id.
    pub actor: String,
    pub roles: BTreeSet<Role>,
    /// Group object ids from the token's `groups` claim.
    pub groups: Vec<String>,
}

impl Actor {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The local operator of `auth.mode = "none"` (loopback only).
    pub fn local_operator(actor: &str) -> Actor {
        Actor {
            actor: actor.to_string(),
            roles: [Role::Operator].into_iter().collect(),
            groups: Vec::new(),
        }
    }
}

/// What a call wants to do, with the facts the decision needs (a
/// permission asked of [`decide`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission<'a> {
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
    /// A person's word on a step that waits for one (`job confirm`).
    Confirm,
    /// Record a deployment of a code version (`env deployment add`).
    RecordDeployment,
}

impl Permission<'_> {
    pub fn verb(&self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Submit { .. } => "submit a request",
            Permission::Reschedule { .. } => "reschedule this request",
            Permission::Cancel { .. } => "cancel this request",
            Permission::Accept => "accept a request",
            Permission::Reject => "reject a request",
            Permission::Run => "run a request",
            Permission::Resume => "resume a run",
            Permission::Rollback => "roll back a run",
            Permission::Confirm => "confirm a step",
            Permission::RecordDeployment => "record a deployment",
        }
    }
}

/// Why a call is refused (403), in words for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// The decision for `who` doing `what`.
pub fn decide(who: &Actor, what: &Permission<'_>) -> Result<(), Denied> {
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
        Permission::Read if requester || who.has(Role::Viewer) => Ok(()),
        Permission::Read => Err(need(Role::Viewer)),
        Permission::Submit {
            emergency: true, ..
        }
        | Permission::Reschedule {
            emergency: true, ..
        } => Err(Denied(format!(
            "an emergency reason (a window sooner than 24 hours) needs the app role {}",
            Role::Operator.claim()
        ))),
        Permission::Submit {
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
        Permission::Reschedule { own: true, .. } | Permission::Cancel { own: true }
            if requester =>
        {
            Ok(())
        }
        Permission::Reschedule { .. } | Permission::Cancel { .. } if requester => {
            Err(Denied(format!(
                "a requester may {} only for requests they submitted; an operator ({}) may for any",
                what.verb().trim_end_matches(" this request"),
                Role::Operator.claim()
            )))
        }
        Permission::Submit { .. } | Permission::Reschedule { .. } | Permission::Cancel { .. } => {
            Err(need(Role::Requester))
        }
        Permission::Accept
        | Permission::Reject
        | Permission::Run
        | Permission::Resume
        | Permission::Rollback
        | Permission::Confirm
        | Permission::RecordDeployment => Err(need(Role::Operator)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(roles: &[Role], groups: &[&str]) -> Actor {
        Actor {
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
                    (Permission::Read, reader),
                    (Permission::Accept, op),
                    (Permission::Reject, op),
                    (Permission::Run, op),
                    (Permission::Resume, op),
                    (Permission::Rollback, op),
                    (Permission::Confirm, op),
                    (Permission::RecordDeployment, op),
                ];
                for emergency in [false, true] {
                    actions.push((
                        Permission::Submit {
                            environment_groups: &none,
                            emergency,
                        },
                        op || (req && !emergency),
                    ));
                    actions.push((
                        Permission::Submit {
                            environment_groups: &groups,
                            emergency,
                        },
                        op || (req && !emergency && member),
                    ));
                    for own in [false, true] {
                        actions.push((
                            Permission::Reschedule { own, emergency },
                            op || (req && own && !emergency),
                        ));
                    }
                }
                for own in [false, true] {
                    actions.push((Permission::Cancel { own }, op || (req && own)));
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
        assert!(decide(&Actor::local_operator("me"), &Permission::Rollback).is_ok());
    }
}
