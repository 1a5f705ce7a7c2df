//! How long-running operations end: completion rules (polls, wall time,
//! holds, faults) and the emulated effect of each kind, run at completion so
//! that effects are ordered by completion, like on Azure.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::state::{OpDetail, OpError, OpKind, OpStatus, Planned, State};

impl State {
    /// Held by kind, or (a run command) by its script's text.
    fn is_held(&self, o: &super::state::Operation) -> bool {
        self.held.contains(&o.kind)
            || matches!(&o.detail, OpDetail::RunCommand { script, .. }
                if { let script = script.to_ascii_lowercase();
                     self.held_scripts.iter().any(|h| script.contains(h.as_str())) })
    }

    fn required(&self, kind: OpKind) -> (u32, Duration) {
        let s = &self.settings;
        match kind {
            OpKind::Restore => (
                s.restore_polls,
                Duration::from_millis(s.restore_duration_ms),
            ),
            OpKind::Delete => (s.delete_polls, Duration::from_millis(s.delete_duration_ms)),
            OpKind::RunCommand => (
                s.run_command_polls,
                Duration::from_millis(s.run_command_duration_ms),
            ),
        }
    }

    /// Completes every operation that is due. Called before each request is
    /// handled and after each poll is counted.
    pub fn tick(&mut self, now: DateTime<Utc>) {
        // Operations that have all ended are not looked at again.
        while self
            .operations
            .get(self.settled)
            .is_some_and(|o| o.status != OpStatus::InProgress)
        {
            self.settled += 1;
        }
        let from = self.settled;
        let due: Vec<usize> = self
            .operations
            .iter()
            .enumerate()
            .skip(from)
            .filter(|(_, o)| {
                let (polls, dur) = self.required(o.kind);
                o.status == OpStatus::InProgress
                    && !matches!(o.planned, Some(Planned::NeverFinish))
                    && !self.is_held(o)
                    && o.polls >= polls
                    && o.started_at.elapsed() >= dur
            })
            .map(|(i, _)| i)
            .collect();
        for i in due {
            self.complete(i, now);
        }
    }

    pub(super) fn finish(
        &mut self,
        i: usize,
        status: OpStatus,
        error: Option<OpError>,
        now: DateTime<Utc>,
    ) {
        self.completion_seq += 1;
        let seq = self.completion_seq;
        let op = &mut self.operations[i];
        op.status = status;
        op.error = error;
        op.end = Some(now);
        op.completed_seq = Some(seq);
    }

    /// Ends a restore whose target database was deleted while restoring.
    pub fn cancel(&mut self, i: usize, reason: String, now: DateTime<Utc>) {
        self.finish(
            i,
            OpStatus::Canceled,
            Some(OpError {
                status: 400,
                code: "OperationCanceled".into(),
                message: reason,
            }),
            now,
        );
    }

    fn complete(&mut self, i: usize, now: DateTime<Utc>) {
        let planned = self.operations[i].planned.clone();
        match self.operations[i].detail.clone() {
            OpDetail::Restore {
                server,
                database_id,
                content,
            } => {
                let status = self
                    .settings
                    .restored_status
                    .clone()
                    .unwrap_or_else(|| "Online".into());
                let Some(srv) = self.servers.get_mut(server) else {
                    return;
                };
                let pos = srv
                    .databases
                    .iter()
                    .position(|d| d.database_id == database_id);
                if let Some(Planned::Fail(err)) = planned {
                    if let Some(p) = pos {
                        srv.databases.remove(p);
                    }
                    self.finish(i, OpStatus::Failed, Some(err), now);
                    return;
                }
                match pos {
                    Some(p) => {
                        let db = &mut srv.databases[p];
                        db.status = status;
                        db.history = vec![(now, content)];
                        db.creation_date = now;
                        apply_restored_knobs(&self.settings, db);
                        self.finish(i, OpStatus::Succeeded, None, now);
                    }
                    None => self.cancel(
                        i,
                        "The restore was canceled because its target database no longer exists."
                            .into(),
                        now,
                    ),
                }
            }
            OpDetail::Delete {
                server,
                database_id,
            } => {
                if let Some(Planned::Fail(err)) = planned {
                    self.finish(i, OpStatus::Failed, Some(err), now);
                    return;
                }
                if let Some(srv) = self.servers.get_mut(server) {
                    srv.databases.retain(|d| d.database_id != database_id);
                }
                self.finish(i, OpStatus::Succeeded, None, now);
            }
            OpDetail::RunCommand { .. } => self.complete_run_command(i, now),
            // Acknowledgements are complete from the start.
            OpDetail::Ack { .. } => {}
        }
    }
}

/// The scenario's `restored_*` settings: what Azure made of the restore
/// instead of what its PUT asked for.
fn apply_restored_knobs(settings: &super::scenario::Settings, db: &mut super::model::Database) {
    if let Some(sku) = &settings.restored_sku {
        db.sku = super::model::complete_sku(sku.clone());
    }
    if let Some(pool) = &settings.restored_elastic_pool_id {
        db.elastic_pool_id = Some(pool.clone()).filter(|p| !p.is_empty());
    }
    if let Some(z) = settings.restored_zone_redundant {
        db.zone_redundant = z;
    }
    if let Some(r) = settings
        .restored_backup_storage_redundancy
        .as_deref()
        .and_then(super::scenario::backup_redundancy)
    {
        db.backup_redundancy = r;
    }
    if let Some(tags) = &settings.restored_tags {
        db.tags = tags.clone();
    }
}
