//! `restore`: a new database `<db>_pitr_<job8>` with the source's content as
//! of the restore point. Never issues a second restore PUT: the operation is
//! checkpointed before it is polled, and what to do on a resume is decided
//! by [`next_restore_action`] from what Azure shows under the target name.
use super::{StepCx, StepDef, Timeout, TimeoutClass};
use crate::azure::states::{Phase as Db, UNEXPECTED_GRACE};
use crate::azure::{Operation, RestoreSpec};
use crate::domain::restore::{next_restore_action, RestoreAction, Target};
use crate::domain::step::Phase;
use crate::domain::{Job, StepName};
use crate::engine::{crash, Engine, StepError};
use std::time::Duration;

pub(super) const DEF: StepDef = StepDef {
    name: StepName::Restore,
    phase: Phase::Staging,
    window_guard: true,
    estimate_secs: 1800,
    timeout: Timeout {
        class: TimeoutClass::Restore,
        default_secs: 43200,
    },
    crash_points: &[
        "after_put_accepted",
        "after_checkpoint",
        "after_wait",
        "after_short_term",
    ],
};

/// How often a restore PUT whose answer was lost is looked for and resent.
const PUT_ATTEMPTS: u32 = 6;

/// The original's tags, and which job restored it.
pub(super) fn restored_tags(job: &Job) -> std::collections::BTreeMap<String, String> {
    let mut tags = job.facts.source_tags.clone();
    tags.insert("pitr-job".into(), job.id.to_string());
    tags
}

impl Engine {
    pub(super) async fn restore(&self, cx: &mut StepCx<'_>) -> Result<String, StepError> {
        let (req, env) = (cx.req, cx.env);
        let name = cx.job.restored_name(&env.database);
        let target = env.database_id(&name);
        let checkpointed = cx
            .rec
            .external_ref
            .as_deref()
            .and_then(Operation::from_checkpoint);
        let deadline = self.step_timeout(StepName::Restore);
        let seen = self.target(&target).await?;
        let action = next_restore_action(&seen, checkpointed.is_some());
        // A restore in Azure counts against the subscription's cap from its
        // PUT to its end: wait for a slot first, and hold it till then.
        let _slot = match action {
            RestoreAction::Done | RestoreAction::Fail(_) => None,
            _ => {
                self.azure
                    .restore_slot(&target, || {
                        self.note(
                            StepName::Restore,
                            "waiting for a restore slot in the subscription".to_string(),
                        )
                    })
                    .await
            }
        };
        // Polls stretch with what this environment's restores took, not
        // with the planning default (see `restore_pace`).
        let expected = self.restore_pace(env).await;
        match action {
            RestoreAction::Done => {}
            RestoreAction::Fail(why) => return Err(StepError::Failed(format!("{name}: {why}"))),
            RestoreAction::Reattach => {
                // Decided only when an operation was checkpointed.
                if let Some(op) = &checkpointed {
                    self.note(StepName::Restore, format!("re-attaching to {}", op.op));
                    self.azure
                        .wait_expecting(
                            op,
                            deadline,
                            expected,
                            &mut self.poll_reporter(StepName::Restore),
                        )
                        .await?;
                }
            }
            RestoreAction::FollowTarget => {
                self.note(
                    StepName::Restore,
                    format!("{name} exists ({}); waiting for it", seen.status()),
                );
                self.wait_until_online(&target, deadline).await?;
            }
            RestoreAction::Start => {
                let spec = RestoreSpec {
                    location: env.location.clone(),
                    source_database_id: cx
                        .job
                        .facts
                        .source_resource_id
                        .clone()
                        .unwrap_or_else(|| env.database_id(&env.database)),
                    restore_point: req.spec.restore_point,
                    sku: cx.job.facts.source_sku.clone(),
                    elastic_pool_id: cx.job.facts.source_elastic_pool_id.clone(),
                    tags: restored_tags(cx.job),
                    zone_redundant: cx.job.facts.source_zone_redundant,
                    backup_storage_redundancy: cx.job.facts.source_backup_redundancy.clone(),
                    properties: cx.job.facts.source_properties.clone(),
                };
                match self.put_restore_once(cx.job, &target, &spec).await? {
                    Some(op) => {
                        crash::point("restore.after_put_accepted");
                        cx.rec.external_ref = Some(op.to_checkpoint());
                        self.checkpoint(&cx.job.id, cx.rec).await?;
                        crash::point("restore.after_checkpoint");
                        self.note(
                            StepName::Restore,
                            format!(
                                "accepted by Azure: {} as of {} into {name}",
                                env.database,
                                crate::domain::time::show(req.spec.restore_point)
                            ),
                        );
                        self.azure
                            .wait_expecting(
                                &op,
                                deadline,
                                expected,
                                &mut self.poll_reporter(StepName::Restore),
                            )
                            .await?;
                    }
                    // An answer was lost but the PUT had reached Azure, or
                    // the restore was done at once.
                    None => self.wait_until_online(&target, deadline).await?,
                }
            }
        }
        crash::point("restore.after_wait");
        let db = self.azure.get_database(&target).await?.ok_or_else(|| {
            StepError::Failed(format!(
                "Azure reported the restore done but {name} does not exist"
            ))
        })?;
        if !db.is_online() {
            self.wait_until_online(&target, deadline).await?;
        }
        let restored = db
            .database_id()
            .ok_or_else(|| StepError::Failed(format!("{name} has no databaseId")))?
            .to_string();
        cx.job.facts.restored_database_id = Some(restored.clone());
        self.save_job(cx.job).await?;
        // Before the swap: the environment never runs on Azure's defaults.
        let carried = self.carry_over(cx.job, &target).await?;
        let carried = if carried.is_empty() {
            String::new()
        } else {
            format!("; given the original's {}", carried.join(" and "))
        };
        Ok(format!("{name} is Online (databaseId {restored}){carried}"))
    }

    /// What Azure shows under the target name.
    async fn target(&self, id: &str) -> Result<Target, StepError> {
        Ok(match self.azure.get_database(id).await? {
            None => Target::Absent,
            Some(db) => match db.phase() {
                Db::Done => Target::Online,
                Db::InProgress => Target::InProgress(db.status().to_string()),
                // Will not come Online by itself.
                Db::Failed | Db::Unexpected => Target::Stuck(db.status().to_string()),
            },
        })
    }

    /// Sends the restore PUT so that it reaches Azure at most once: after a
    /// lost answer (timeout, dropped connection, 5xx) the target is looked at
    /// again, and an existing one is followed (`None`) instead of re-PUT.
    /// `None` too when Azure answered that the restore is already done.
    async fn put_restore_once(
        &self,
        job: &Job,
        target: &str,
        spec: &RestoreSpec,
    ) -> Result<Option<Operation>, StepError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.confirm_lease(&job.id).await?;
            match self.azure.begin_restore(target, spec).await {
                // Done at once (a 200/201 whose state is Succeeded): the
                // target is read like any other.
                Ok(begun) => return Ok(begun.into_operation()),
                Err(e) if e.is_transient() && attempt < PUT_ATTEMPTS => {
                    self.note(
                        StepName::Restore,
                        format!("the restore request got no clear answer ({e}); checking Azure before sending it again"),
                    );
                    tokio::time::sleep(self.azure.poll.interval(None) * attempt).await;
                    match next_restore_action(&self.target(target).await?, false) {
                        RestoreAction::Start => {}
                        RestoreAction::Fail(why) => return Err(StepError::Failed(why)),
                        _ => return Ok(None),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn wait_until_online(&self, id: &str, deadline: Duration) -> Result<(), StepError> {
        let started = std::time::Instant::now();
        let name = crate::azure::client::last_segment(id);
        // Since when the database shows a status that does not lead Online.
        let mut unexpected: Option<std::time::Instant> = None;
        loop {
            match self.azure.get_database(id).await? {
                Some(db) if db.is_online() => return Ok(()),
                Some(db) if db.phase() == Db::Failed => {
                    return Err(StepError::Failed(format!(
                        "{name} is {} in Azure after its restore; it will not come Online by itself: inspect it in the Azure portal",
                        db.status()
                    )))
                }
                Some(db) => {
                    if db.phase() == Db::Unexpected {
                        let since = *unexpected.get_or_insert_with(std::time::Instant::now);
                        if since.elapsed() >= UNEXPECTED_GRACE {
                            return Err(StepError::Failed(format!(
                                "{name} has been {} in Azure for {}s after its restore, a status that does not lead Online; inspect it in the Azure portal",
                                db.status(),
                                since.elapsed().as_secs()
                            )));
                        }
                    } else {
                        unexpected = None;
                    }
                    self.note(StepName::Restore, format!("{}: {}", db.name, db.status()))
                }
                None => {
                    return Err(StepError::Failed(format!(
                        "{name} disappeared while being restored; the restore failed or was cancelled in Azure"
                    )))
                }
            }
            let wait = self.azure.poll.interval(None);
            if started.elapsed() + wait > deadline {
                return Err(StepError::Failed(format!(
                    "{name} did not come Online within {}s",
                    deadline.as_secs()
                )));
            }
            tokio::time::sleep(wait).await;
        }
    }
}
