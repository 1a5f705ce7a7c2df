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
        assert!(
            code.contains(known),
            "{known} not found in the code: {code:?}"
        );
    }
    let table = rules_in_readme(&readme());
    let missing: Vec<_> = code.difference(&table).collect();
    let stale: Vec<_> = table.difference(&code).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README rules table: missing {missing:?}, not in the code {stale:?}"
    );
}

/// The Benchmark table shows what the `pitr bench --json` outputs kept in
/// `docs/bench/` say, so that the figures live in one place: each result is
/// a row naming its file and mode, with its figures as the table rounds
/// them.
#[test]
fn the_benchmark_table_is_the_committed_bench_output() {
    let readme = readme();
    let section = readme
        .split("\n## Benchmark\n")
        .nth(1)
        .expect("a `## Benchmark` section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/bench");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("docs/bench")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no pitr bench --json output in docs/bench"
    );
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let bench: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let results = bench["results"].as_array().expect("results");
        assert_eq!(results.len(), 2, "{name}");
        for r in results {
            let mode = match r["mode"].as_str() {
                Some("default") => "default order",
                Some("prestaged") => "pre-staged",
                other => panic!("{name}: mode {other:?}"),
            };
            let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{name}: {k}"));
            let cells = [
                format!("{:.2} s", f("downtime_secs")),
                format!("{:.2} s", f("azure_secs_in_downtime")),
                format!("{:.3}", f("overhead_ratio")),
                format!("{:.0}", f("arm_requests_per_job")),
            ];
            let row = section
                .lines()
                .find(|l| l.starts_with('|') && l.contains(&name) && l.contains(mode))
                .unwrap_or_else(|| panic!("no Benchmark row for {name}, {mode}"));
            let shown: Vec<&str> = row.split('|').map(str::trim).collect();
            for cell in &cells {
                assert!(
                    shown.contains(&cell.as_str()),
                    "Benchmark row for {name}, {mode} shows {row:?}, the file says {cells:?}"
                );
            }
        }
    }
}
