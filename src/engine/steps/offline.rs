//! `offline`: the environment's services stop on every AOS VM (stopping a
//! stopped service is a no-op). The instant the downtime began is recorded.
use super::vm::RUN_COMMAND_POINTS;
use super::{StepCx, StepDef, Timeout, TimeoutClass};
use crate::domain::step::Phase;
use crate::domain::StepName;
use crate::engine::{Engine, StepError};

pub(super) const DEF: StepDef = StepDef {
    name: StepName::Offline,
    phase: Phase::Downtime,
    window_guard: true,
    estimate_secs: 300,
    timeout: Timeout {
        class: TimeoutClass::Action,
        default_secs: 3600,
    },
    crash_points: RUN_COMMAND_POINTS,
};

impl Engine {
    pub(super) async fn offline(&self, cx: &mut StepCx<'_>) -> Result<String, StepError> {
        if cx.job.facts.offline_at.is_none() {
            cx.job.facts.offline_at = Some(self.clock.now());
            self.save_job(cx.job).await?;
        }
        self.services(StepName::Offline, cx.env, cx.job, cx.rec, false)
            .await
    }
}
