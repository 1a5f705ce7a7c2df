//! Help on every command and option (issue 23, point 4): a newcomer reads
//! `pitr <command> --help` before the README, so no subcommand, argument or
//! option may be without a line saying what it is for.
use crate::helpers::PITR;
use clap::CommandFactory;
use pitr::cli::Cli;

/// Every subcommand and argument of `pitr`, walked through clap's own tree,
/// has a non-empty help text (clap's `help` and `version` aside).
#[test]
fn every_command_and_option_has_help() {
    let mut missing = Vec::new();
    let mut seen = 0;
    walk(&Cli::command(), "pitr", &mut missing, &mut seen);
    assert!(missing.is_empty(), "no help text: {missing:#?}");
    // The walk reached the whole tree, not just the top.
    assert!(seen > 100, "only {seen} commands and arguments walked");
}

fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>, seen: &mut usize) {
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        *seen += 1;
        if !has_text(arg.get_help()) && !has_text(arg.get_long_help()) {
            missing.push(format!("{path} {id}"));
        }
    }
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        *seen += 1;
        let sub_path = format!("{path} {}", sub.get_name());
        if !has_text(sub.get_about()) && !has_text(sub.get_long_about()) {
            missing.push(sub_path.clone());
        }
        walk(sub, &sub_path, missing, seen);
    }
}

fn has_text(s: Option<&clap::builder::StyledStr>) -> bool {
    s.is_some_and(|s| !s.to_string().trim().is_empty())
}

fn help(args: &[&str]) -> String {
    let out = std::process::Command::new(PITR)
        .args(args)
        .output()
        .expect("pitr runs");
    assert!(out.status.success(), "pitr {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the help says matches what the program does: the exit codes are in
/// the footer, `--actor` names the fallback to the OS account, and
/// `store init` says the default store is made on first use.
#[test]
fn the_help_says_what_really_happens() {
    let top = help(&["--help"]);
    for needle in [
        "Exit codes:",
        "0  success",
        "1  the operation failed",
        "2  bad input",
    ] {
        assert!(top.contains(needle), "pitr --help lacks {needle:?}:\n{top}");
    }
    assert!(top.contains("else the OS account"), "{top}");
    let store = help(&["store", "--help"]);
    assert!(store.contains("init") && store.contains("copy"), "{store}");
    assert!(store.contains("create it"), "{store}");
    let init = help(&["store", "init", "--help"]);
    assert!(init.contains("sqlite://var/pitr.db"), "{init}");
    assert!(init.contains("on first use"), "{init}");
    assert!(!init.contains("Every other command refuses"), "{init}");
}

/// `store init --help` is true: with the default store URL, a command
/// other than `store init` makes `var/pitr.db` itself; another SQLite path
/// that does not exist is refused (exit 2) and not created.
#[test]
fn the_default_store_is_made_on_first_use_and_another_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pitr.toml");
    std::fs::write(&config, "[auth]\nmode = \"none\"\n").unwrap();
    let run = |extra: &[(&str, &str)]| {
        let mut c = std::process::Command::new(PITR);
        c.args(["env", "list"])
            .env("PITR_CONFIG", &config)
            .env_remove("PITR_STORE_URL")
            .current_dir(dir.path());
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().expect("pitr runs")
    };
    let out = run(&[]);
    assert!(out.status.success(), "{out:?}");
    assert!(dir.path().join("var/pitr.db").exists());
    let out = run(&[("PITR_STORE_URL", "sqlite://other/pitr.db")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!dir.path().join("other/pitr.db").exists());
}
