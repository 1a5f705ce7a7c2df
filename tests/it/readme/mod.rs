//! The README against the program (issue 23): its rules table names every
//! rule the code enforces, and its runnable shell blocks run (`blocks.rs`).
mod blocks;

use std::collections::BTreeSet;
use std::path::Path;

pub(crate) fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md")
}

/// The rule names of the `rule NAME: ...` messages the code refuses with,
/// read from the `#[error("rule NAME:` attributes of the error enums in
/// `src/domain`, `src/engine` and `src/store` (the request rules, and the
/// store's `one-active-request` and `max-concurrent-runs`).
fn rules_in_code() -> BTreeSet<String> {
    let mut rules = BTreeSet::new();
    for dir in ["src/domain", "src/engine", "src/store"] {
        for file in rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (at, _) in text.match_indices("#[error(\"rule ") {
                let rest = &text[at + "#[error(\"rule ".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                assert!(
                    rest[name.len()..].starts_with(':'),
                    "{}: a rule message is `rule NAME: ...`: {}",
                    file.display(),
                    &rest[..rest.len().min(60)]
                );
                rules.insert(name);
            }
        }
    }
    rules
}

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The first column of the table under `## Request rules`.
fn rules_in_readme(readme: &str) -> BTreeSet<String> {
    let section = readme
        .split("\n## Request rules\n")
        .nth(1)
        .expect("a `## Request rules` section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_rules_table_lists_every_rule_the_code_enforces() {
    let code = rules_in_code();
    // The walk found the rules, not nothing.
    for known in ["window-in-past", "one-active-request", "notice-24h"] {
        assert!(code.contains(known), "{known} not found in the code: {code:?}");
    }
    let table = rules_in_readme(&readme());
    let missing: Vec<_> = code.difference(&table).collect();
    let stale: Vec<_> = table.difference(&code).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README rules table: missing {missing:?}, not in the code {stale:?}"
    );
}
