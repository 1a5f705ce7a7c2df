//! `sync`: F&O database synchronization against the swapped-in database, by
//! the setup tool on the sync VM. Safe to run again.
use super::vm::{single_vm, summarise, RUN_COMMAND_POINTS};
use super::{StepCx, StepDef, Timeout};
use crate::domain::step::Phase;
use crate::domain::{Environment, Job, StepName};
use crate::engine::{actions, Engine, StepError};

pub(super) const DEF: StepDef = StepDef {
    name: StepName::Sync,
    phase: Phase::Downtime,
    window_guard: false,
    estimate_secs: 1800,
    timeout: Timeout::Action,
    crash_points: RUN_COMMAND_POINTS,
};

impl Engine {
    pub(super) async fn sync(&self, cx: &mut StepCx<'_>) -> Result<String, StepError> {
        let env = cx.env;
        let vm = single_vm(env, &env.sync_vm, "sync_vm")?;
        let password = self.sql_password(env, cx.job).unwrap_or_default();
        let params = vec![
            ("PackageDir".to_string(), env.package_dir.clone()),
            ("Server".to_string(), env.server.clone()),
            ("Database".to_string(), env.database.clone()),
            ("SqlUser".to_string(), env.sql_user.clone()),
            ("SqlPwd".to_string(), password.clone()),
        ];
        let secrets = [password];
        let outs = self
            .run_on_vms(
                StepName::Sync,
                cx.job,
                cx.rec,
                std::slice::from_ref(vm),
                &actions::sync_script(),
                &params,
                &secrets,
            )
            .await?;
        Ok(summarise(&outs))
    }

    /// The SQL password sync passes to the setup tool: from the variable
    /// the environment names (or a secret given in code); a rehearsal
    /// against the mock needs none.
    pub(super) fn sql_password(&self, env: &Environment, job: &Job) -> Option<String> {
        let given = env
            .sql_password_env
            .as_ref()
            .and_then(|var| self.secret(var));
        given.or_else(|| job.dry_run.then(|| "dry-run-placeholder".into()))
    }
}
