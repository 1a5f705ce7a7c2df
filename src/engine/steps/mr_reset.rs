//! `mr_reset`: Management Reporter (Financial reporting) data mart reset on
//! the MR VM. Safe to run again.
use super::vm::{single_vm, summarise, RUN_COMMAND_POINTS};
use super::{StepCx, StepDef, Timeout};
use crate::domain::step::Phase;
use crate::domain::StepName;
use crate::engine::{actions, Engine, StepError};

pub(super) const DEF: StepDef = StepDef {
    name: StepName::MrReset,
    phase: Phase::Downtime,
    window_guard: false,
    estimate_secs: 300,
    timeout: Timeout::Action,
    crash_points: RUN_COMMAND_POINTS,
};

impl Engine {
    pub(super) async fn mr_reset(&self, cx: &mut StepCx<'_>) -> Result<String, StepError> {
        let env = cx.env;
        let vm = single_vm(env, &env.mr_vm, "mr_vm")?;
        let params = vec![
            ("MRInstallDirectory".to_string(), env.mr_install_dir.clone()),
            ("Job".to_string(), cx.job.id.to_string()),
        ];
        let outs = self
            .run_on_vms(
                StepName::MrReset,
                cx.job,
                cx.rec,
                std::slice::from_ref(vm),
                &actions::mr_reset_script(),
                &params,
                &[],
            )
            .await?;
        Ok(summarise(&outs))
    }
}
