//! How the `restore` step continues, decided from what Azure shows under the
//! target name and whether the restore operation was checkpointed. A second
//! restore PUT is only ever sent when no target exists and no operation was
//! recorded: the invariant "a restored database, once created, is never lost
//! by a retry" rests on this function.

/// What Azure shows under `<db>_pitr_<job8>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Absent,
    Online,
    /// Being created, restored, scaled...: it will come Online.
    InProgress(String),
    /// A state a restore does not pass through: it will not come Online by
    /// itself.
    Stuck(String),
}

impl Target {
    /// The status Azure reported ("absent" when there is no database).
    pub fn status(&self) -> &str {
        match self {
            Self::Absent => "absent",
            Self::Online => "Online",
            Self::InProgress(s) | Self::Stuck(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreAction {
    /// The restored database is Online: record it.
    Done,
    /// Poll the checkpointed operation (it tells Azure's error if it failed).
    Reattach,
    /// The PUT reached Azure but its answer was never checkpointed (a crash,
    /// a lost answer): follow the database itself until it is Online.
    FollowTarget,
    /// Nothing was sent that Azure acted on: send the restore PUT.
    Start,
    /// The target exists in a state no restore leads to; a person must look.
    Fail(String),
}

pub fn next_restore_action(target: &Target, checkpointed: bool) -> RestoreAction {
    match (target, checkpointed) {
        (Target::Online, _) => RestoreAction::Done,
        (Target::Stuck(status), _) => RestoreAction::Fail(format!(
            "the restored database exists but is {status}, a state a restore does not pass through; inspect it in Azure (the original database was not touched)"
        )),
        (_, true) => RestoreAction::Reattach,
        (Target::InProgress(_), false) => RestoreAction::FollowTarget,
        (Target::Absent, false) => RestoreAction::Start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_says_the_status_azure_reported() {
        // Shown in the step's notes and failures ("AxDB_pitr_x exists (Creating)").
        assert_eq!(Target::Absent.status(), "absent");
        assert_eq!(Target::Online.status(), "Online");
        assert_eq!(Target::InProgress("Creating".into()).status(), "Creating");
        assert_eq!(
            Target::Stuck("Inaccessible".into()).status(),
            "Inaccessible"
        );
    }

    #[test]
    fn every_combination_of_target_and_checkpoint_is_decided() {
        use RestoreAction as A;
        let busy = Target::InProgress("Restoring".into());
        let stuck = Target::Stuck("Inaccessible".into());
        let cases = [
            (Target::Absent, false, A::Start),
            (Target::Absent, true, A::Reattach),
            (busy.clone(), false, A::FollowTarget),
            (busy, true, A::Reattach),
            (Target::Online, false, A::Done),
            (Target::Online, true, A::Done),
        ];
        for (target, checkpointed, expected) in cases {
            assert_eq!(
                next_restore_action(&target, checkpointed),
                expected,
                "{target:?} {checkpointed}"
            );
        }
        for checkpointed in [false, true] {
            assert!(matches!(
                next_restore_action(&stuck, checkpointed),
                A::Fail(m) if m.contains("Inaccessible")
            ));
        }
    }
}
