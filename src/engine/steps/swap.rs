//! `swap`: `<db>` -> `<db>_before_<job8>`, then `<db>_pitr_<job8>` -> `<db>`
//! (in a rollback job, the reverse: see `recovery.rs`).
//! Which rename comes next is decided by [`next_swap_action`] from which
//! `databaseId` sits under which name, so a crash between the two renames is
//! finished by the missing rename only.
use super::{job_ids, swap_names, Renamed, StepCx, StepDef, Timeout, TimeoutClass, MAX_RENAMES};
use crate::domain::step::Phase;
use crate::domain::swap::next_swap_action;
use crate::domain::StepName;
use crate::engine::{crash, Engine, StepError};

pub(super) const DEF: StepDef = StepDef {
    name: StepName::Swap,
    phase: Phase::Downtime,
    window_guard: true,
    estimate_secs: 120,
    timeout: Timeout {
        class: TimeoutClass::Step,
        default_secs: 900,
    },
    crash_points: &[
        "after_first_rename",
        "after_first_checkpoint",
        "after_second_rename",
    ],
};

impl Engine {
    pub(super) async fn swap(&self, cx: &mut StepCx<'_>) -> Result<String, StepError> {
        let env = cx.env;
        let names = swap_names(env, cx.job);
        if cx.job.is_rollback() {
            // A rollback's swap is the reverse one.
            self.unswap(env, cx.job).await?;
            return Ok(format!(
                "{} holds the original database again; the restored one is kept as {}",
                names.live, names.restored
            ));
        }
        let (original, restored) = job_ids(cx.job)?;
        let mut done = Vec::new();
        for _ in 0..MAX_RENAMES {
            let next = self
                .rename_next(env, cx.job, &names, StepName::Swap, "", |seen| {
                    next_swap_action(&names, seen, &original, &restored)
                })
                .await?;
            let (from, to) = match next {
                Renamed::Settled => {
                    return Ok(format!(
                        "{} now holds the restored database; the original is {}",
                        names.live, names.before
                    ))
                }
                Renamed::Unclear => continue,
                Renamed::Moved { from, to } => (from, to),
            };
            let first = to == names.before;
            crash::point(if first {
                "swap.after_first_rename"
            } else {
                "swap.after_second_rename"
            });
            done.push(format!("{from} -> {to}"));
            cx.rec.detail = Some(format!("renamed {}", done.join(", ")));
            self.checkpoint(&cx.job.id, cx.rec).await?;
            if first {
                crash::point("swap.after_first_checkpoint");
            }
        }
        Err(StepError::Failed(
            "the swap did not settle after the expected renames".into(),
        ))
    }
}
