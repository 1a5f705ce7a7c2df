//! `mr_reset`: Management Reporter (Financial reporting) data mart reset on
//! the MR VM. Safe to run again.
use super::action::Vms;
use super::vm::RUN_COMMAND_POINTS;
use super::{StepCx, StepDef, Timeout, TimeoutClass};
use crate::domain::step::Phase;
use crate::domain::StepName;
use crate::engine::{actions, Engine, StepError};

pub(super) const DEF: StepDef = StepDef {
    name: StepName::MrReset,
    phase: Phase::Downtime,
    window_guard: false,
    estimate_secs: 300,
    timeout: Timeout {
        class: TimeoutClass::Action,
        default_secs: 7200,
    },
    crash_points: RUN_COMMAND_POINTS,
};

impl Engine {
    pub(super) async fn mr_reset(&self, cx: &mut StepCx<'_>) -> Result<String, StepError> {
        let env = cx.env;
        let action = actions::mr_reset(&env.mr_install_dir, cx.job.id.as_str());
        self.act(StepName::MrReset, env, cx.job, cx.rec, Vms::Mr, &action)
            .await
    }
}
