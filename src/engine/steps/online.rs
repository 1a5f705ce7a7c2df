//! `online`: the environment's services start on every AOS VM (starting a
//! running service is a no-op). The instant the downtime ended is recorded.
use super::vm::RUN_COMMAND_POINTS;
use super::{StepCx, StepDef, Timeout, TimeoutClass};
use crate::domain::step::Phase;
use crate::domain::StepName;
use crate::engine::{Engine, StepError};

pub(super) const DEF: StepDef = StepDef {
    name: StepName::Online,
    phase: Phase::Downtime,
    window_guard: false,
    estimate_secs: 300,
    timeout: Timeout {
        class: TimeoutClass::Action,
        default_secs: 3600,
    },
    crash_points: RUN_COMMAND_POINTS,
};

impl Engine {
    pub(super) async fn online(&self, cx: &mut StepCx<'_>) -> Result<String, StepError> {
        let summary = self
            .services(StepName::Online, cx.env, cx.job, cx.rec, true)
            .await?;
        cx.job.facts.online_at = Some(self.clock.now());
        self.save_job(cx.job).await?;
        Ok(summary)
    }
}
