//! What pitr sets again on the restored database after its restore:
//! Azure gives a restored database its defaults (7 days of point-in-time
//! backups, no long-term copies, Defender `New`, its sku's read scale-out),
//! not its source's. `preflight` reads the original's, `restore` sets them
//! on the restored database before the swap (so a crash cannot leave the
//! environment on Azure's defaults), `verify` checks the live database
//! against them.
use crate::azure::models::{LongTermRetention, ShortTermRetention};
use crate::domain::retention::{LongTerm, ShortTerm};
use crate::domain::{Job, StepName};
use crate::engine::{crash, Engine, StepError};

/// A database's retention as Azure shows it (`None`: no policy to show).
pub(super) struct Retention {
    pub short_term: Option<ShortTerm>,
    pub long_term: Option<LongTerm>,
}

fn short_term(p: ShortTermRetention) -> Option<ShortTerm> {
    Some(ShortTerm {
        days: p.retention_days?,
        diff_hours: p.diff_backup_interval_in_hours,
    })
}

fn long_term(p: LongTermRetention) -> LongTerm {
    LongTerm::new(
        p.weekly_retention.as_deref(),
        p.monthly_retention.as_deref(),
        p.yearly_retention.as_deref(),
        p.week_of_year,
    )
}

impl Engine {
    pub(super) async fn read_retention(&self, database_id: &str) -> Result<Retention, StepError> {
        Ok(Retention {
            short_term: self
                .azure
                .get_short_term_retention(database_id)
                .await?
                .and_then(short_term),
            long_term: self
                .azure
                .get_long_term_retention(database_id)
                .await?
                .map(long_term),
        })
    }

    /// Gives the restored database `target` the original's retention,
    /// Defender state and read scale-out, each only where it differs: run again after a crash, it sends
    /// only what is still missing. Returns what it did, for the step's
    /// summary.
    pub(super) async fn carry_over(
        &self,
        job: &Job,
        target: &str,
    ) -> Result<Vec<String>, StepError> {
        let name = crate::azure::client::last_segment(target).to_string();
        let now = self.read_retention(target).await?;
        let mut done = Vec::new();
        if let Some(orig) = &job.facts.source_short_term {
            let kept = now.short_term.as_ref().is_some_and(|r| orig.is_kept_by(r));
            if !kept {
                let had = now
                    .short_term
                    .as_ref()
                    .map_or("none".to_string(), ToString::to_string);
                self.note(
                    StepName::Restore,
                    format!("setting {name}'s short-term retention to the original's {orig} (Azure gave it {had})"),
                );
                self.confirm_lease(&job.id).await?;
                let policy = ShortTermRetention {
                    retention_days: Some(orig.days),
                    diff_backup_interval_in_hours: orig.diff_hours,
                };
                self.wait_policy(
                    self.azure
                        .begin_set_short_term_retention(target, &policy)
                        .await?,
                )
                .await?;
                done.push(format!("short-term retention {orig}"));
            }
        }
        crash::point("restore.after_short_term");
        if let Some(orig) = &job.facts.source_long_term {
            let kept = match &now.long_term {
                Some(r) => orig.is_kept_by(r),
                None => orig.is_none(),
            };
            if !kept {
                self.note(
                    StepName::Restore,
                    format!("setting {name}'s long-term retention to the original's: {orig}"),
                );
                self.confirm_lease(&job.id).await?;
                let policy = LongTermRetention {
                    weekly_retention: Some(orig.weekly.clone()),
                    monthly_retention: Some(orig.monthly.clone()),
                    yearly_retention: Some(orig.yearly.clone()),
                    week_of_year: Some(orig.week_of_year),
                };
                self.wait_policy(
                    self.azure
                        .begin_set_long_term_retention(target, &policy)
                        .await?,
                )
                .await?;
                done.push(format!("long-term retention {orig}"));
            }
        }
        if let Some(orig) = &job.facts.source_threat_protection {
            let now = self.azure.get_threat_protection(target).await?;
            if !now.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(orig)) {
                self.note(
                    StepName::Restore,
                    format!(
                        "setting {name}'s Defender threat protection to the original's {orig} (Azure gave it {})",
                        now.as_deref().unwrap_or("none")
                    ),
                );
                self.confirm_lease(&job.id).await?;
                self.wait_policy(self.azure.begin_set_threat_protection(target, orig).await?)
                    .await?;
                done.push(format!("threat protection {orig}"));
            }
        }
        if let Some(orig) = &job.facts.source_read_scale {
            let now = self
                .azure
                .get_database(target)
                .await?
                .and_then(|d| d.text_property("readScale").map(str::to_string));
            if !now.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(orig)) {
                self.note(
                    StepName::Restore,
                    format!(
                        "setting {name}'s read scale-out to the original's {orig} (Azure gave it {})",
                        now.as_deref().unwrap_or("none")
                    ),
                );
                self.confirm_lease(&job.id).await?;
                self.wait_policy(
                    self.azure
                        .begin_patch_database(target, &serde_json::json!({ "readScale": orig }))
                        .await?,
                )
                .await?;
                done.push(format!("read scale-out {orig}"));
            }
        }
        Ok(done)
    }

    async fn wait_policy(&self, op: Option<crate::azure::Operation>) -> Result<(), StepError> {
        if let Some(op) = op {
            self.azure
                .wait(
                    &op,
                    self.step_timeout(StepName::Restore),
                    &mut self.poll_reporter(StepName::Restore),
                )
                .await?;
        }
        Ok(())
    }

    /// `verify`'s check: the live database keeps what the original kept.
    /// The message names the setting and both values (a failed `verify`
    /// rolls the run back).
    pub(super) async fn check_retention(
        &self,
        job: &Job,
        id: &str,
        shown: &str,
        rollback: &str,
    ) -> Result<(), StepError> {
        let live = self.read_retention(id).await?;
        let differs = |what: &str, orig: String, now: String, collection: &str| {
            StepError::Failed(format!(
                "{shown} differs from the original in {what}: the original kept {orig}, the restored database keeps {now}{rollback}; find what changed {collection}/default of the restored database in Azure before submitting again"
            ))
        };
        if let Some(orig) = &job.facts.source_short_term {
            if !live.short_term.as_ref().is_some_and(|r| orig.is_kept_by(r)) {
                return Err(differs(
                    "short-term backup retention",
                    orig.to_string(),
                    live.short_term.map_or("none".into(), |r| r.to_string()),
                    "backupShortTermRetentionPolicies",
                ));
            }
        }
        if let Some(orig) = &job.facts.source_threat_protection {
            let now = self.azure.get_threat_protection(id).await?;
            if !now.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(orig)) {
                return Err(differs(
                    "Defender threat protection",
                    orig.clone(),
                    now.unwrap_or_else(|| "none".into()),
                    "advancedThreatProtectionSettings",
                ));
            }
        }
        if let Some(orig) = &job.facts.source_long_term {
            let now = live
                .long_term
                .unwrap_or_else(|| LongTerm::new(None, None, None, None));
            if !orig.is_kept_by(&now) {
                return Err(differs(
                    "long-term backup retention",
                    orig.to_string(),
                    now.to_string(),
                    "backupLongTermRetentionPolicies",
                ));
            }
        }
        Ok(())
    }
}
