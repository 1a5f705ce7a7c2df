//! The README's runnable shell blocks, run as pasted (issue 23, point 1).
//!
//! A fenced block whose info string is `sh run` is meant to be pasted into a
//! shell from the project folder while `pitr mock-azure --scenario
//! config/mock-scenario.toml --ca-out var/mock-ca.pem` runs (terminal 1).
//! This test makes such a folder in a temporary directory (the repository's
//! `config/` files, an empty `var/`), starts that mock itself on a free port
//! and runs every `sh run` block there with `bash -euo pipefail`, the built
//! `pitr` first on PATH. Only addresses are rewritten: the mock's
//! `127.0.0.1:8443` becomes the port it got, `127.0.0.1:8080` (and `808N`)
//! free ports, and a line starting a second mock (`pitr mock-azure ...`,
//! "unless the one above still runs") is left out because one runs. Each
//! block has a deadline; a block that fails prints its output.
use crate::helpers::PITR;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Bound on one block (the slowest, the rehearsal, takes ~30 s in a debug
/// build on a loaded machine).
const BLOCK_DEADLINE: Duration = Duration::from_secs(300);

/// The `sh run` blocks of a Markdown text, with the line each starts at.
pub(crate) fn runnable_blocks(md: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in md.lines().enumerate() {
        match &mut current {
            None => {
                if let Some(info) = line.trim_start().strip_prefix("```") {
                    let words: Vec<&str> = info.split_whitespace().collect();
                    if words == ["sh", "run"] {
                        current = Some((n + 1, String::new()));
                    }
                }
            }
            Some((_, text)) => {
                if line.trim_start().starts_with("```") {
                    blocks.push(current.take().unwrap());
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    assert!(current.is_none(), "an `sh run` block is not closed");
    blocks
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A project folder with the mock running, as the README's terminal 1.
struct Project {
    dir: tempfile::TempDir,
    mock: Child,
    mock_addr: String,
    /// Where `[serve] listen` (127.0.0.1:8080 in config/pitr.toml) points.
    serve_addr: String,
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.mock.kill();
        let _ = self.mock.wait();
    }
}

impl Project {
    fn start() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::create_dir_all(dir.path().join("var")).unwrap();
        std::fs::copy(
            root.join("config/mock-scenario.toml"),
            dir.path().join("config/mock-scenario.toml"),
        )
        .unwrap();
        // Terminal 1, as the README says, but on a free port.
        let mut mock = Command::new(PITR)
            .args(["mock-azure", "--scenario", "config/mock-scenario.toml"])
            .args(["--ca-out", "var/mock-ca.pem", "--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("pitr mock-azure starts");
        let mut lines = BufReader::new(mock.stdout.take().unwrap()).lines();
        let url = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| {
                l.strip_prefix("mock Azure listening on ")
                    .map(|u| u.trim().to_string())
            })
            .expect("the mock prints its URL");
        std::thread::spawn(move || for _ in lines {});
        let mock_addr = url.trim_start_matches("https://").to_string();
        let config = std::fs::read_to_string(root.join("config/pitr.toml")).unwrap();
        assert!(
            config.contains("https://127.0.0.1:8443"),
            "config/pitr.toml"
        );
        assert!(config.contains("\"127.0.0.1:8080\""), "config/pitr.toml");
        let serve_addr = format!("127.0.0.1:{}", free_port());
        std::fs::write(
            dir.path().join("config/pitr.toml"),
            config
                .replace("127.0.0.1:8443", &mock_addr)
                .replace("127.0.0.1:8080", &serve_addr),
        )
        .unwrap();
        Project {
            dir,
            mock,
            mock_addr,
            serve_addr,
        }
    }

    /// The block as it runs here: addresses rewritten, a second mock left out.
    fn localize(&self, block: &str) -> String {
        let mut text = String::new();
        for line in block.lines() {
            if line.trim_start().starts_with("pitr mock-azure ") {
                text.push_str("# (the mock already runs)\n");
                continue;
            }
            text.push_str(line);
            text.push('\n');
        }
        let mut text = text
            .replace("127.0.0.1:8443", &self.mock_addr)
            .replace("127.0.0.1:8080", &self.serve_addr);
        for from in ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"] {
            text = text.replace(from, &format!("127.0.0.1:{}", free_port()));
        }
        text
    }

    /// Runs one block; returns its exit code and output (stdout, stderr).
    fn run(&self, script: &str) -> (Option<i32>, String) {
        use std::os::unix::process::CommandExt;
        let bin = Path::new(PITR).parent().unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env_remove("PITR_CONFIG")
            .env_remove("PITR_LOG")
            .env_remove("PITR_STORE_URL")
            .env_remove("PITR_CLIENT_SECRET")
            .env("PITR_ACTOR", "readme")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that whatever it leaves running
            // (a `pitr serve &` it did not stop) is ended with it.
            .process_group(0)
            .spawn()
            .expect("bash runs");
        let pgid = child.id();
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + BLOCK_DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        // Whatever the block started and left behind.
        let _ = Command::new("kill")
            .args(["-KILL", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
        let _ = child.wait();
        let output = format!(
            "--- stdout\n{}\n--- stderr\n{}",
            out.join().unwrap_or_default(),
            err.join().unwrap_or_default()
        );
        match status {
            Some(s) => (s.code(), output),
            None => (
                None,
                format!("timed out after {BLOCK_DEADLINE:?}\n{output}"),
            ),
        }
    }
}

#[test]
fn the_runnable_readme_blocks_run_as_pasted() {
    let readme = super::readme();
    let blocks = runnable_blocks(&readme);
    assert!(
        blocks.len() >= 2,
        "the README marks its runnable blocks with ```sh run"
    );
    // The marker is documented where contributors look.
    let working = readme
        .split("\n## Working on pitr\n")
        .nth(1)
        .expect("a `## Working on pitr` section");
    assert!(
        working.contains("```sh run") && working.contains("tests/it/readme/blocks.rs"),
        "the README's Working on pitr says what ```sh run means"
    );
    let project = Project::start();
    for (line, block) in &blocks {
        let started = Instant::now();
        let (code, output) = project.run(&project.localize(block));
        assert_eq!(
            code,
            Some(0),
            "README.md line {line}: the block failed:\n{block}\n{output}"
        );
        eprintln!("README.md line {line}: ran in {:.1?}", started.elapsed());
    }
}

#[test]
fn runnable_blocks_are_found_by_their_info_string() {
    let md = "text\n```sh\nnot me\n```\n```sh run\necho a\necho b\n```\n```toml\nx = 1\n```\n";
    assert_eq!(
        runnable_blocks(md),
        vec![(5, "echo a\necho b\n".to_string())]
    );
}
