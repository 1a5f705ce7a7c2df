//! What a run does after a step failed for good (or an operator asked for a
//! rollback), decided from its checkpoints. Before `swap` the original
//! database was never touched: bring the environment online and end
//! `Failed`. From `swap` on: put the original back under its name (the
//! restored one stays as `<db>_pitr_<job8>` for diagnosis), bring the
//! environment online and end `RolledBack`.
use super::job::JobStatus;
use super::step::{Checkpoints, StepName, StepRecord};

/// The facts the recovery is decided from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecoveryFacts {
    /// A rename of the swap was attempted.
    pub swap_started: bool,
    /// The run brought the environment back online (a finished run that an
    /// operator rolls back).
    pub online_done: bool,
    /// The environment may be down: offline or online was attempted.
    pub services_touched: bool,
    /// A restore PUT may have been sent.
    pub restore_started: bool,
    /// The environment keeps a failed restore for diagnosis.
    pub keep_failed_restore: bool,
}

impl RecoveryFacts {
    pub fn from_checkpoints(records: &[StepRecord], keep_failed_restore: bool) -> Self {
        Self {
            swap_started: records.started(StepName::Swap),
            online_done: records.succeeded(StepName::Online),
            services_touched: records.started(StepName::Offline)
                || records.started(StepName::Online),
            restore_started: records.started(StepName::Restore),
            keep_failed_restore,
        }
    }
}

/// The recovery, in the order it is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryPlan {
    /// Stop the services before renaming (the environment is up).
    pub take_offline: bool,
    /// Rename the original back under the environment's name.
    pub unswap: bool,
    /// Drop `<db>_pitr_<job8>` (a restore that will not be used).
    pub drop_partial_restore: bool,
    /// Start the services.
    pub bring_online: bool,
    /// How the job ends.
    pub ends: JobStatus,
    /// Nothing was changed in Azure: the request is runnable again as it
    /// was, and there is nothing to recover.
    pub nothing_changed: bool,
}

pub fn plan_recovery(f: RecoveryFacts) -> RecoveryPlan {
    RecoveryPlan {
        take_offline: f.swap_started && f.online_done,
        unswap: f.swap_started,
        drop_partial_restore: !f.swap_started && f.restore_started && !f.keep_failed_restore,
        bring_online: f.services_touched,
        ends: if f.swap_started {
            JobStatus::RolledBack
        } else {
            JobStatus::Failed
        },
        nothing_changed: !f.swap_started && !f.restore_started && !f.services_touched,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination_of_facts_gets_its_plan() {
        for bits in 0..32u8 {
            let f = RecoveryFacts {
                swap_started: bits & 1 != 0,
                online_done: bits & 2 != 0,
                services_touched: bits & 4 != 0,
                restore_started: bits & 8 != 0,
                keep_failed_restore: bits & 16 != 0,
            };
            let p = plan_recovery(f);
            // The original goes back exactly when the swap was attempted.
            assert_eq!(p.unswap, f.swap_started, "{f:?}");
            assert_eq!(
                p.ends,
                if f.swap_started {
                    JobStatus::RolledBack
                } else {
                    JobStatus::Failed
                }
            );
            // A finished run goes offline before its database is renamed.
            assert_eq!(p.take_offline, f.swap_started && f.online_done, "{f:?}");
            // A restore is dropped only before the swap, and only if not kept.
            assert_eq!(
                p.drop_partial_restore,
                !f.swap_started && f.restore_started && !f.keep_failed_restore,
                "{f:?}"
            );
            // The services are started whenever they may have been stopped.
            assert_eq!(p.bring_online, f.services_touched, "{f:?}");
            // Nothing to recover only when nothing was touched.
            assert_eq!(
                p.nothing_changed,
                !f.swap_started && !f.restore_started && !f.services_touched,
                "{f:?}"
            );
            if p.nothing_changed {
                assert!(!p.take_offline && !p.unswap && !p.drop_partial_restore && !p.bring_online);
            }
        }
    }

    #[test]
    fn facts_come_from_the_checkpoints() {
        use crate::domain::step::StepStatus;
        let rec = |step, attempts, status| StepRecord {
            attempts,
            status,
            ..StepRecord::pending(step)
        };
        let records = [
            rec(StepName::Offline, 1, StepStatus::Succeeded),
            rec(StepName::Restore, 1, StepStatus::Failed),
            rec(StepName::Swap, 0, StepStatus::Pending),
        ];
        assert_eq!(
            RecoveryFacts::from_checkpoints(&records, true),
            RecoveryFacts {
                swap_started: false,
                online_done: false,
                services_touched: true,
                restore_started: true,
                keep_failed_restore: true,
            }
        );
    }
}
