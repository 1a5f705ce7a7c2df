//! Every built-in script template, rendered by the real code for every step
//! and for parameter shapes that break naive quoting (quotes, spaces, `$()`,
//! backticks, cmd's metacharacters, non-ASCII, empty values, newlines, the
//! optional password on and off), is parsed by a real PowerShell grammar:
//! tree-sitter-powershell (from PyPI, pinned in
//! tests/python/requirements-pwsh-grammar.txt) through
//! tests/python/parse_powershell.py, which must report no ERROR and no
//! MISSING node, nor what the grammar lets through that Windows PowerShell
//! 5.1 does not parse (a quote in a bareword, `&&` / `||`; its docstring
//! lists the grammar's gaps). `.ci/run` makes the virtual environment
//! (`target/pwsh-grammar-venv`); the test fails, never skips, without it.
//! `PITR_TEST_PWSH_GRAMMAR_PYTHON` names another interpreter.
//!
//! The script is taken from the Run Command body as it goes on the wire
//! (`RunCommandSpec::body`). Values never enter the script text (they
//! travel base64url-encoded in `PitrArgs` / `PitrSecrets`), so the shapes
//! differ only where a template has an optional part; they are rendered all
//! the same, so that a template that ever inlined a value would be parsed
//! with the values that break it.
use pitr::azure::models::RunCommandSpec;
use pitr::engine::actions::{self, Script, SyncTarget};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn python() -> PathBuf {
    match std::env::var_os("PITR_TEST_PWSH_GRAMMAR_PYTHON") {
        Some(p) => p.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pwsh-grammar-venv/bin/python"),
    }
}

/// The values an environment and a job hand the templates.
struct Shape {
    name: &'static str,
    package_dir: &'static str,
    server: &'static str,
    database: &'static str,
    sql_user: &'static str,
    sql_password: &'static str,
    mr_install_dir: &'static str,
    job: &'static str,
}

const SHAPES: [Shape; 8] = [
    Shape {
        name: "plain",
        package_dir: r"K:\AosService\PackagesLocalDirectory",
        server: "sql-uat",
        database: "AxDB",
        sql_user: "axdbadmin",
        sql_password: "S3cret!",
        mr_install_dir: r"C:\MR",
        job: "7f3c2a9e-0d41-4b8e-9c55-1a2b3c4d5e6f",
    },
    Shape {
        name: "quotes",
        package_dir: r#"K:\it's "quoted"\Packages"#,
        server: "o'brien",
        database: r#"Ax"DB"#,
        sql_user: "d'artagnan",
        sql_password: r#"'"''""'"#,
        mr_install_dir: r"C:\MR's",
        job: r#"job "one" 'two'"#,
    },
    Shape {
        name: "spaces",
        package_dir: r"K:\Aos Service\Packages Local Directory",
        server: " sql uat ",
        database: "Ax DB",
        sql_user: "axdb admin",
        sql_password: "p@ss word",
        mr_install_dir: r"C:\Program Files\Microsoft Dynamics 365 for Operations - Financial Reporting",
        job: "a b  c",
    },
    Shape {
        name: "metacharacters",
        package_dir: r"K:\$(Remove-Item -Recurse C:\)\`whoami`",
        server: "sql&calc|more>out<in",
        database: "%PATH%^&^|",
        sql_user: "${env:USERNAME}; exit 7",
        sql_password: "`$(iex 'x')`;#<#@{}",
        mr_install_dir: r"C:\MR @(1,2) [int]::MaxValue -and $true",
        job: "-Reason ERROR' ; exit 9 ; '",
    },
    Shape {
        name: "non-ascii",
        package_dir: r"K:\Zürich\日本\Pakete",
        server: "sql-zürich",
        database: "AxDB_日本",
        sql_user: "jürgen",
        sql_password: "naïve café – 日本語 ✓",
        mr_install_dir: r"C:\Programme\Finanzberichte – Zürich",
        job: "Zürich 日本 ✓",
    },
    Shape {
        name: "empty",
        package_dir: "",
        server: "",
        database: "",
        sql_user: "",
        sql_password: "",
        mr_install_dir: "",
        job: "",
    },
    Shape {
        name: "newlines",
        package_dir: "K:\\a\nb",
        server: "sql\r\nuat",
        database: "Ax\nDB",
        sql_user: "u\n}",
        sql_password: "\"@\n'@\n",
        mr_install_dir: "C:\\MR\n#>",
        job: "j\n<#",
    },
    Shape {
        name: "unicode-quotes",
        // PowerShell takes ‘ ’ ‚ ‛ and “ ” „ as quotes too.
        package_dir: "K:\\‘single’\\“double”",
        server: "sql‛uat‚",
        database: "Ax„DB”",
        sql_user: "‘",
        sql_password: "“",
        mr_install_dir: "C:\\MR’",
        job: "’“",
    },
];

/// The templates rendered here, by the name of the function in
/// `engine::actions` that renders each.
const TEMPLATES: [&str; 4] = ["offline", "online", "sync", "mr_reset"];

/// Every template rendered for every shape: (file name, script as sent).
fn rendered() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |name: String, action: Script| {
        let (parameters, protected_parameters) = action.parameters();
        let body = RunCommandSpec {
            location: "westeurope".into(),
            script: action.script.clone(),
            parameters,
            protected_parameters,
            timeout_secs: 3600,
        }
        .body();
        let script = body["properties"]["source"]["script"]
            .as_str()
            .expect("the script in the Run Command body")
            .to_string();
        assert_eq!(script, action.script);
        out.push((name, script));
    };
    // offline and online take no values.
    add("offline.ps1".into(), actions::offline());
    add("online.ps1".into(), actions::online());
    for s in &SHAPES {
        for (part, password) in [("by-aos", None), ("sql-password", Some(s.sql_password))] {
            add(
                format!("sync-{}-{part}.ps1", s.name),
                actions::sync(&SyncTarget {
                    package_dir: s.package_dir,
                    server: s.server,
                    database: s.database,
                    sql_user: s.sql_user,
                    sql_password: password,
                }),
            );
        }
        add(
            format!("mr_reset-{}.ps1", s.name),
            actions::mr_reset(s.mr_install_dir, s.job),
        );
    }
    out
}

/// The functions of `engine::actions` that render a script: a template
/// added there must be added here too.
fn templates_in_the_source() -> BTreeSet<String> {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/engine/actions.rs"
    ))
    .expect("read src/engine/actions.rs");
    src.lines()
        .filter_map(|l| l.trim_start().strip_prefix("pub fn "))
        .filter(|l| l.contains("-> Script"))
        .filter_map(|l| l.split('(').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_built_in_script_parses_as_powershell() {
    let expected: BTreeSet<String> = TEMPLATES.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        templates_in_the_source(),
        expected,
        "the templates of src/engine/actions.rs and the ones this test renders differ"
    );
    let python = python();
    assert!(
        python.exists(),
        "{} is missing: run .ci/run (it makes target/pwsh-grammar-venv from \
         tests/python/requirements-pwsh-grammar.txt), or set PITR_TEST_PWSH_GRAMMAR_PYTHON \
         to a Python with tree-sitter and tree-sitter-powershell",
        python.display()
    );
    let scripts = rendered();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut files = Vec::new();
    for (name, script) in &scripts {
        let path = dir.path().join(name);
        std::fs::write(&path, script).expect("write a script");
        files.push(path);
    }
    let parser = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/parse_powershell.py"
    );
    let out = std::process::Command::new(&python)
        .arg(parser)
        .args(&files)
        .output()
        .expect("run tests/python/parse_powershell.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let clean = format!("parsed {} files, 0 problems", files.len());
    if !out.status.success() || !stdout.lines().any(|l| l == clean) {
        let why = match out.status.code() {
            Some(3) => "tree-sitter-powershell does not accept the rendered scripts",
            Some(4) => "tree-sitter-powershell failed its self-check (tests/python/parse_powershell.py)",
            Some(5) => "tree-sitter or tree-sitter-powershell is not installed for this Python: run .ci/run or set PITR_TEST_PWSH_GRAMMAR_PYTHON",
            Some(0) => "tests/python/parse_powershell.py did not parse every script",
            _ => "tests/python/parse_powershell.py could not run",
        };
        // Kept, so that the scripts can be read.
        let kept = dir.keep();
        panic!(
            "{why} (scripts kept in {}, {}, exit {:?}):\n{stdout}{stderr}",
            kept.display(),
            python.display(),
            out.status.code()
        );
    }
    let distinct: BTreeSet<&String> = scripts.iter().map(|(_, s)| s).collect();
    println!(
        "{} scripts rendered and parsed clean ({} distinct texts)",
        scripts.len(),
        distinct.len()
    );
}
