//! Crash points: named places where a crash matters. With the
//! `crash-points` feature, `PITR_CRASH_AT=<point>` aborts the process there
//! (like `kill -9`: no destructor runs, nothing is flushed), so tests can
//! prove that a resumed run ends well from each of them. Without the feature
//! the calls compile to nothing.
//!
//! The points of a step are declared in its definition (`engine/steps/`):
//! `<step>.started`, the step's own points, `<step>.done`.
use super::steps;
use crate::domain::step::Phase;

pub use super::recovery::RECOVERY_POINTS;

/// Every crash point of a run, in the order a run meets them (steps that
/// are not part of a run, such as cleanup, are left out).
pub fn points() -> Vec<String> {
    steps::all()
        .filter(|d| d.phase != Phase::Later)
        .flat_map(step_points)
        .collect()
}

fn step_points(def: &steps::StepDef) -> Vec<String> {
    std::iter::once("started")
        .chain(def.crash_points.iter().copied())
        .chain(std::iter::once("done"))
        .map(|p| format!("{}.{p}", def.name))
        .collect()
}

/// Aborts the process if `PITR_CRASH_AT` names this point.
#[inline]
pub fn point(name: &str) {
    #[cfg(feature = "crash-points")]
    {
        debug_assert!(
            steps::all().flat_map(step_points).any(|p| p == name)
                || RECOVERY_POINTS.contains(&name),
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_run_meets_each_steps_points_between_its_start_and_end() {
        let p = super::points();
        assert_eq!(p.first().map(String::as_str), Some("preflight.started"));
        assert_eq!(p.last().map(String::as_str), Some("verify.done"));
        assert!(p.contains(&"swap.after_first_checkpoint".to_string()));
        assert!(!p.iter().any(|x| x.starts_with("cleanup.")));
    }
}
