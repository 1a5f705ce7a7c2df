//! Azure's own enums for what pitr waits on, each value classified once:
//! a database's `properties.status` (`DatabaseStatus`, Microsoft.Sql
//! 2023-08-01) and a managed Run Command's `instanceView.executionState`
//! (`ExecutionState`, Microsoft.Compute 2024-07-01). A value Azure adds
//! later, or one the spec lists but that never ends by itself, is
//! [`Phase::Unexpected`]: the step fails with Azure's value after a bounded
//! wait ([`UNEXPECTED_GRACE`]) instead of polling until its timeout.

/// Where a waited-on object stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Moving towards an end by itself: keep waiting.
    InProgress,
    /// The end pitr waits for (a database Online; a script that ran).
    Done,
    /// An end that is a failure: stop at once, with Azure's value.
    Failed,
    /// Not moving towards the end pitr waits for (paused, stopped, offline)
    /// or not a value of the enum: wait a bounded time, then fail.
    Unexpected,
}

/// Every `DatabaseStatus` of Microsoft.Sql 2023-08-01, classified for a
/// database pitr waits to be Online (a restored one; the one it verifies).
pub const DATABASE_STATUSES: [(&str, Phase); 24] = [
    ("Online", Phase::Done),
    ("Restoring", Phase::InProgress),
    ("Creating", Phase::InProgress),
    ("Copying", Phase::InProgress),
    ("Recovering", Phase::InProgress),
    ("Resuming", Phase::InProgress),
    ("Scaling", Phase::InProgress),
    ("Starting", Phase::InProgress),
    ("OnlineChangingDwPerformanceTiers", Phase::InProgress),
    ("OfflineChangingDwPerformanceTiers", Phase::InProgress),
    ("RecoveryPending", Phase::Failed),
    ("Suspect", Phase::Failed),
    ("EmergencyMode", Phase::Failed),
    ("Inaccessible", Phase::Failed),
    ("Disabled", Phase::Failed),
    ("Offline", Phase::Unexpected),
    ("OfflineSecondary", Phase::Unexpected),
    ("Standby", Phase::Unexpected),
    ("Shutdown", Phase::Unexpected),
    ("AutoClosed", Phase::Unexpected),
    ("Pausing", Phase::Unexpected),
    ("Paused", Phase::Unexpected),
    ("Stopping", Phase::Unexpected),
    ("Stopped", Phase::Unexpected),
];

/// Every `ExecutionState` of a managed Run Command (Microsoft.Compute
/// 2024-07-01), classified for pitr waiting for its script to end: `Done`
/// is the script's end whatever its exit code (the exit code decides).
pub const EXECUTION_STATES: [(&str, Phase); 7] = [
    ("Pending", Phase::InProgress),
    ("Running", Phase::InProgress),
    ("Succeeded", Phase::Done),
    ("Failed", Phase::Done),
    ("TimedOut", Phase::Done),
    ("Canceled", Phase::Done),
    // Azure's own "I do not know yet": it may say so before the VM agent
    // reports; bounded like any value that does not move.
    ("Unknown", Phase::Unexpected),
];

/// How long a database or a script may stay in an [`Phase::Unexpected`]
/// state before the step fails with Azure's value.
pub const UNEXPECTED_GRACE: std::time::Duration = std::time::Duration::from_secs(300);

fn of(table: &[(&str, Phase)], value: &str) -> Phase {
    table
        .iter()
        .find(|(v, _)| *v == value)
        .map_or(Phase::Unexpected, |(_, p)| *p)
}

/// A database's `status`.
pub fn database_status(status: &str) -> Phase {
    of(&DATABASE_STATUSES, status)
}

/// A Run Command's `executionState`.
pub fn execution_state(state: &str) -> Phase {
    of(&EXECUTION_STATES, state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_of_azures_enums_is_classified_once() {
        for table in [&DATABASE_STATUSES[..], &EXECUTION_STATES[..]] {
            let mut names: Vec<&str> = table.iter().map(|(v, _)| *v).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), table.len(), "a value twice");
        }
        assert_eq!(database_status("Online"), Phase::Done);
        assert_eq!(database_status("Restoring"), Phase::InProgress);
        assert_eq!(database_status("Inaccessible"), Phase::Failed);
        assert_eq!(database_status("Paused"), Phase::Unexpected);
        // Case matters (Azure's values are PascalCase), and a value Azure
        // adds later is unexpected, never "still running".
        assert_eq!(database_status("online"), Phase::Unexpected);
        assert_eq!(database_status("Hibernating"), Phase::Unexpected);
        for end in ["Succeeded", "Failed", "TimedOut", "Canceled"] {
            assert_eq!(execution_state(end), Phase::Done, "{end}");
        }
        assert_eq!(execution_state("Running"), Phase::InProgress);
        assert_eq!(execution_state("Unknown"), Phase::Unexpected);
        assert_eq!(execution_state("Queued"), Phase::Unexpected);
    }
}
