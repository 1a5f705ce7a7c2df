//! Crash points: named places where a crash matters. With the
//! `crash-points` feature, `PITR_CRASH_AT=<point>` aborts the process there
//! (like `kill -9`: no destructor runs, nothing is flushed), so tests can
//! prove that a resumed run ends well from each of them. Without the feature
//! the calls compile to nothing.

/// Every crash point, in the order a run meets them.
pub const POINTS: &[&str] = &[
    "preflight.started",
    "preflight.after_get",
    "preflight.done",
    "offline.started",
    "offline.after_run_command_accepted",
    "offline.after_checkpoint",
    "offline.after_wait",
    "offline.done",
    "restore.started",
    "restore.after_put_accepted",
    "restore.after_checkpoint",
    "restore.after_wait",
    "restore.done",
    "swap.started",
    "swap.after_first_rename",
    "swap.after_first_checkpoint",
    "swap.after_second_rename",
    "swap.done",
    "sync.started",
    "sync.after_run_command_accepted",
    "sync.after_checkpoint",
    "sync.after_wait",
    "sync.done",
    "mr_reset.started",
    "mr_reset.after_run_command_accepted",
    "mr_reset.after_checkpoint",
    "mr_reset.after_wait",
    "mr_reset.done",
    "online.started",
    "online.after_run_command_accepted",
    "online.after_checkpoint",
    "online.after_wait",
    "online.done",
    "verify.started",
    "verify.done",
];

/// Crash points of the recovery (rollback) path, met after a step failed
/// for good from `swap` on.
pub const RECOVERY_POINTS: &[&str] = &[
    "recovery.started",
    "recovery.after_unswap_rename",
    "recovery.before_online",
];

/// Aborts the process if `PITR_CRASH_AT` names this point.
#[inline]
pub fn point(name: &str) {
    #[cfg(feature = "crash-points")]
    {
        debug_assert!(
            POINTS.contains(&name) || RECOVERY_POINTS.contains(&name),
            "unknown crash point {name}"
        );
        if std::env::var("PITR_CRASH_AT").as_deref() == Ok(name) {
            eprintln!("PITR_CRASH_AT={name}: aborting");
            std::process::abort();
        }
    }
    #[cfg(not(feature = "crash-points"))]
    let _ = name;
}

/// The `<step>.<suffix>` point.
#[inline]
pub fn at(step: crate::domain::StepName, suffix: &str) {
    #[cfg(feature = "crash-points")]
    point(&format!("{step}.{suffix}"));
    #[cfg(not(feature = "crash-points"))]
    let _ = (step, suffix);
}
