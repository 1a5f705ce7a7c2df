//! Whether a finished run may be rolled back on request, decided before
//! anything is changed: first from the store (the job and the environment's
//! history), then from what Azure shows under the three names.
use super::ids::{JobId, RequestId};
use super::job::{current_run, Job, JobStatus};
use super::swap::{next_unswap_action, SwapNames};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackRefused {
    #[error("request {0} has no run to roll back")]
    NoRun(RequestId),
    #[error("job {0} is still running; let it finish, or continue it with `pitr resume {1}`")]
    StillRunning(JobId, String),
    #[error("job {0} is already rolled back")]
    AlreadyRolledBack(JobId),
    #[error("job {0} never reached the swap: the original database was not replaced, nothing to roll back")]
    NeverSwapped(JobId),
    #[error("a later restore replaced {environment}'s database since job {job}; rolling this one back would undo it; nothing was changed")]
    LaterRestore { environment: String, job: JobId },
    #[error(
        "the original database ({before}) no longer exists (cleaned up?); it cannot be rolled back"
    )]
    OriginalGone { before: String },
    #[error("cannot roll back job {job}: {why}")]
    Unrecognised { job: JobId, why: String },
}

/// The restore a rollback undoes: the request's latest run, or, after a
/// rollback that failed, the restore that rollback was for. A rollback
/// still running or already done is refused here.
pub fn target<'a>(request: &RequestId, jobs: &'a [Job]) -> Result<&'a Job, RollbackRefused> {
    let current = current_run(jobs).ok_or_else(|| RollbackRefused::NoRun(request.clone()))?;
    let Some(of) = &current.facts.rollback else {
        return Ok(current);
    };
    match current.status {
        JobStatus::Running => Err(RollbackRefused::StillRunning(
            current.id.clone(),
            request.to_string(),
        )),
        JobStatus::Succeeded | JobStatus::RolledBack => {
            Err(RollbackRefused::AlreadyRolledBack(of.job.clone()))
        }
        JobStatus::Failed => jobs
            .iter()
            .find(|j| j.id == of.job)
            .ok_or_else(|| RollbackRefused::NoRun(request.clone())),
    }
}

/// The checks that need only the store.
pub fn check_job(
    job: &Job,
    swap_started: bool,
    later_restore: bool,
    environment: &str,
) -> Result<(), RollbackRefused> {
    match job.status {
        JobStatus::Running => {
            return Err(RollbackRefused::StillRunning(
                job.id.clone(),
                job.request_id.to_string(),
            ))
        }
        JobStatus::RolledBack => return Err(RollbackRefused::AlreadyRolledBack(job.id.clone())),
        JobStatus::Succeeded | JobStatus::Failed => {}
    }
    if !swap_started {
        return Err(RollbackRefused::NeverSwapped(job.id.clone()));
    }
    if later_restore {
        return Err(RollbackRefused::LaterRestore {
            environment: environment.to_string(),
            job: job.id.clone(),
        });
    }
    Ok(())
}

/// The checks on what Azure shows: the original must still exist (under
/// `<db>_before_<job8>`, or already back under `<db>`), and the names must be
/// in a state the reverse swap recognises.
pub fn check_names(
    job: &Job,
    names: &SwapNames,
    observed: &HashMap<String, String>,
) -> Result<(), RollbackRefused> {
    let original = job.facts.original_database_id.as_deref();
    let before_exists = observed.contains_key(&names.before);
    let live_is_original = observed.get(&names.live).map(String::as_str) == original;
    if !before_exists && !live_is_original {
        return Err(RollbackRefused::OriginalGone {
            before: names.before.clone(),
        });
    }
    if let Some(original) = original {
        next_unswap_action(
            names,
            observed,
            original,
            job.facts.restored_database_id.as_deref(),
        )
        .map_err(|e| RollbackRefused::Unrecognised {
            job: job.id.clone(),
            why: e.to_string(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::swap::tests::{names, obs};
    use chrono::Utc;

    fn job(status: JobStatus) -> Job {
        Job {
            id: "j1234567".into(),
            request_id: "r1".into(),
            dry_run: false,
            status,
            plan: vec![],
            created_at: Utc::now(),
            updated_at: Utc::now(),
            finished_at: None,
            facts: crate::domain::job::JobFacts {
                original_database_id: Some("O".into()),
                restored_database_id: Some("R".into()),
                ..Default::default()
            },
            error: None,
        }
    }

    #[test]
    fn a_rollback_undoes_the_latest_restore_once() {
        use crate::domain::job::RollbackOf;
        let restore = job(JobStatus::Succeeded);
        let rollback = |status| Job {
            id: "r7654321".into(),
            status,
            facts: crate::domain::job::JobFacts {
                rollback: Some(RollbackOf {
                    job: restore.id.clone(),
                    by: "ops".into(),
                    reason: None,
                }),
                ..restore.facts.clone()
            },
            ..restore.clone()
        };
        let req = RequestId::from("r1");
        assert!(matches!(target(&req, &[]), Err(RollbackRefused::NoRun(_))));
        assert_eq!(
            target(&req, std::slice::from_ref(&restore)).unwrap().id,
            restore.id
        );
        // A rehearsal after it is not the run.
        let mut dry = job(JobStatus::Succeeded);
        dry.id = "d0000000".into();
        dry.dry_run = true;
        assert_eq!(
            target(&req, &[restore.clone(), dry]).unwrap().id,
            restore.id
        );
        assert!(matches!(
            target(&req, &[restore.clone(), rollback(JobStatus::Running)]),
            Err(RollbackRefused::StillRunning(..))
        ));
        assert_eq!(
            target(&req, &[restore.clone(), rollback(JobStatus::Succeeded)]),
            Err(RollbackRefused::AlreadyRolledBack(restore.id.clone()))
        );
        // A failed rollback is tried again on the same restore.
        assert_eq!(
            target(&req, &[restore.clone(), rollback(JobStatus::Failed)])
                .unwrap()
                .id,
            restore.id
        );
    }

    #[test]
    fn the_job_must_be_finished_swapped_and_not_replaced_since() {
        use JobStatus::*;
        for status in [Succeeded, Failed] {
            assert_eq!(check_job(&job(status), true, false, "uat"), Ok(()));
            assert!(matches!(
                check_job(&job(status), false, false, "uat"),
                Err(RollbackRefused::NeverSwapped(_))
            ));
            assert!(matches!(
                check_job(&job(status), true, true, "uat"),
                Err(RollbackRefused::LaterRestore { .. })
            ));
        }
        assert!(matches!(
            check_job(&job(Running), true, false, "uat"),
            Err(RollbackRefused::StillRunning(..))
        ));
        assert!(matches!(
            check_job(&job(RolledBack), true, false, "uat"),
            Err(RollbackRefused::AlreadyRolledBack(_))
        ));
    }

    #[test]
    fn the_original_must_still_exist_in_a_recognised_state() {
        let j = job(JobStatus::Succeeded);
        let n = names();
        // After a finished run: restored live, original kept.
        let ok = obs(&[("AxDB", "R"), ("AxDB_before_1", "O")]);
        assert_eq!(check_names(&j, &n, &ok), Ok(()));
        // Half rolled back already (resumable): the original is back.
        let back = obs(&[("AxDB", "O"), ("AxDB_pitr_1", "R")]);
        assert_eq!(check_names(&j, &n, &back), Ok(()));
        // Cleaned up: the original is gone.
        let gone = obs(&[("AxDB", "R")]);
        assert!(matches!(
            check_names(&j, &n, &gone),
            Err(RollbackRefused::OriginalGone { .. })
        ));
        // Something else under the names.
        let odd = obs(&[("AxDB", "X"), ("AxDB_before_1", "O")]);
        assert!(matches!(
            check_names(&j, &n, &odd),
            Err(RollbackRefused::Unrecognised { .. })
        ));
    }
}
