//! The swap (and its reverse) decided from what Azure shows: which database
//! id sits under which name. A crash between the two renames leaves a state
//! this function recognises, so a resumed run does the missing rename only.
use std::collections::HashMap;

/// Names involved in a swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapNames {
    /// The environment's database name (`<db>`).
    pub live: String,
    /// Where the original goes (`<db>_before_<job8>`).
    pub before: String,
    /// Where the restored database was created (`<db>_pitr_<job8>`).
    pub restored: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapAction {
    /// Rename `from` to `to`.
    Rename {
        from: String,
        to: String,
    },
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the databases are not in a state the swap recognises ({observed}); nothing was renamed; inspect the server and finish by hand or run `pitr rollback`")]
pub struct UnexpectedNames {
    pub observed: String,
}

/// `observed` maps each of the three names to the `databaseId` found under it
/// (absent when no database has that name).
pub fn next_swap_action(
    names: &SwapNames,
    observed: &HashMap<String, String>,
    original_id: &str,
    restored_id: &str,
) -> Result<SwapAction, UnexpectedNames> {
    let at = |n: &str| observed.get(n).map(String::as_str);
    let (live, before, restored) = (at(&names.live), at(&names.before), at(&names.restored));
    match (live, before, restored) {
        (Some(l), Some(b), None) if l == restored_id && b == original_id => Ok(SwapAction::Done),
        (Some(l), None, Some(r)) if l == original_id && r == restored_id => {
            Ok(SwapAction::Rename {
                from: names.live.clone(),
                to: names.before.clone(),
            })
        }
        (None, Some(b), Some(r)) if b == original_id && r == restored_id => {
            Ok(SwapAction::Rename {
                from: names.restored.clone(),
                to: names.live.clone(),
            })
        }
        _ => Err(unexpected(names, observed)),
    }
}

/// The reverse: bring the original back under the live name and keep the
/// restored database under its `_pitr_` name for diagnosis.
pub fn next_unswap_action(
    names: &SwapNames,
    observed: &HashMap<String, String>,
    original_id: &str,
    restored_id: Option<&str>,
) -> Result<SwapAction, UnexpectedNames> {
    let at = |n: &str| observed.get(n).map(String::as_str);
    let (live, before) = (at(&names.live), at(&names.before));
    match (live, before) {
        (Some(l), None) if l == original_id => Ok(SwapAction::Done),
        (Some(l), Some(b)) if Some(l) == restored_id && b == original_id => {
            if at(&names.restored).is_some() {
                return Err(unexpected(names, observed));
            }
            Ok(SwapAction::Rename {
                from: names.live.clone(),
                to: names.restored.clone(),
            })
        }
        (None, Some(b)) if b == original_id => Ok(SwapAction::Rename {
            from: names.before.clone(),
            to: names.live.clone(),
        }),
        _ => Err(unexpected(names, observed)),
    }
}

fn unexpected(names: &SwapNames, observed: &HashMap<String, String>) -> UnexpectedNames {
    let show = |n: &str| {
        format!(
            "{n}: {}",
            observed.get(n).map(String::as_str).unwrap_or("absent")
        )
    };
    UnexpectedNames {
        observed: [&names.live, &names.before, &names.restored]
            .iter()
            .map(|n| show(n))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn names() -> SwapNames {
        SwapNames {
            live: "AxDB".into(),
            before: "AxDB_before_1".into(),
            restored: "AxDB_pitr_1".into(),
        }
    }
    pub(crate) fn obs(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn swap_walks_through_both_renames() {
        let n = names();
        let s0 = obs(&[("AxDB", "O"), ("AxDB_pitr_1", "R")]);
        assert_eq!(
            next_swap_action(&n, &s0, "O", "R").unwrap(),
            SwapAction::Rename {
                from: "AxDB".into(),
                to: "AxDB_before_1".into()
            }
        );
        let s1 = obs(&[("AxDB_before_1", "O"), ("AxDB_pitr_1", "R")]);
        assert_eq!(
            next_swap_action(&n, &s1, "O", "R").unwrap(),
            SwapAction::Rename {
                from: "AxDB_pitr_1".into(),
                to: "AxDB".into()
            }
        );
        let s2 = obs(&[("AxDB_before_1", "O"), ("AxDB", "R")]);
        assert_eq!(
            next_swap_action(&n, &s2, "O", "R").unwrap(),
            SwapAction::Done
        );
    }

    #[test]
    fn swap_refuses_unknown_states() {
        let n = names();
        let s = obs(&[("AxDB", "X"), ("AxDB_pitr_1", "R")]);
        assert!(next_swap_action(&n, &s, "O", "R").is_err());
        assert!(next_swap_action(&n, &obs(&[]), "O", "R").is_err());
    }

    #[test]
    fn a_foreign_database_under_any_name_stops_the_swap_and_the_unswap() {
        // Every recognised shape, with each of its two databaseIds replaced
        // by one pitr does not know ("X"): nothing is renamed.
        let n = names();
        for (live, before, restored) in [
            (Some("R"), Some("O"), None),
            (Some("O"), None, Some("R")),
            (None, Some("O"), Some("R")),
        ] {
            let shape = [
                ("AxDB", live),
                ("AxDB_before_1", before),
                ("AxDB_pitr_1", restored),
            ];
            let present: Vec<usize> = (0..3).filter(|i| shape[*i].1.is_some()).collect();
            assert!(next_swap_action(&n, &at(&shape), "O", "R").is_ok());
            for i in present {
                let mut foreign = shape;
                foreign[i].1 = Some("X");
                assert!(
                    next_swap_action(&n, &at(&foreign), "O", "R").is_err(),
                    "swap went on with {foreign:?}"
                );
            }
        }
        for foreign in [
            obs(&[("AxDB", "X")]),
            obs(&[("AxDB", "X"), ("AxDB_before_1", "O")]),
            obs(&[("AxDB", "R"), ("AxDB_before_1", "X")]),
            obs(&[("AxDB_before_1", "X")]),
        ] {
            assert!(
                next_unswap_action(&n, &foreign, "O", Some("R")).is_err(),
                "unswap went on with {foreign:?}"
            );
        }
    }

    fn at(shape: &[(&str, Option<&str>); 3]) -> HashMap<String, String> {
        shape
            .iter()
            .filter_map(|(n, id)| Some((n.to_string(), (*id)?.to_string())))
            .collect()
    }

    #[test]
    fn unswap_walks_back() {
        let n = names();
        let s2 = obs(&[("AxDB_before_1", "O"), ("AxDB", "R")]);
        assert_eq!(
            next_unswap_action(&n, &s2, "O", Some("R")).unwrap(),
            SwapAction::Rename {
                from: "AxDB".into(),
                to: "AxDB_pitr_1".into()
            }
        );
        let s1 = obs(&[("AxDB_before_1", "O"), ("AxDB_pitr_1", "R")]);
        assert_eq!(
            next_unswap_action(&n, &s1, "O", Some("R")).unwrap(),
            SwapAction::Rename {
                from: "AxDB_before_1".into(),
                to: "AxDB".into()
            }
        );
        let s0 = obs(&[("AxDB", "O"), ("AxDB_pitr_1", "R")]);
        assert_eq!(
            next_unswap_action(&n, &s0, "O", Some("R")).unwrap(),
            SwapAction::Done
        );
    }
}
