//! `sync`: F&O database synchronization against the swapped-in database, by
//! the setup tool on the sync VM. Safe to run again.
use super::action::Vms;
use super::vm::RUN_COMMAND_POINTS;
use super::{StepCx, StepDef, Timeout, TimeoutClass};
use crate::domain::step::Phase;
use crate::domain::{Environment, StepName};
use crate::engine::{actions, Engine, StepError};

pub(super) const DEF: StepDef = StepDef {
    name: StepName::Sync,
    phase: Phase::Downtime,
    window_guard: false,
    estimate_secs: 1800,
    timeout: Timeout {
        class: TimeoutClass::Action,
        default_secs: 21600,
    },
    crash_points: RUN_COMMAND_POINTS,
};

impl Engine {
    pub(super) async fn sync(&self, cx: &mut StepCx<'_>) -> Result<String, StepError> {
        let env = cx.env;
        // Only an environment that still names `sql_password_env` sends a
        // password (protected); otherwise the AOS VM uses its own.
        let password = self.sql_password(env);
        let action = actions::sync(&actions::SyncTarget {
            package_dir: &env.package_dir,
            server: &env.server,
            database: &env.database,
            sql_user: &env.sql_user,
            sql_password: password.as_deref(),
        });
        self.act(StepName::Sync, env, cx.job, cx.rec, Vms::Sync, &action)
            .await
    }

    /// The SQL password of an environment that still names
    /// `sql_password_env` (or a secret given in code for it).
    pub(super) fn sql_password(&self, env: &Environment) -> Option<String> {
        env.sql_password_env
            .as_ref()
            .and_then(|var| self.secret(var))
    }
}
