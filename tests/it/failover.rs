//! Several `pitr serve` runners, real processes, on one PostgreSQL database
//! and one `pitr mock-azure`: runs are shared out by atomic claims, a
//! runner killed with `kill -9` (or aborted between the two renames of a
//! swap, the `crash-points` feature's `PITR_CRASH_AT`) has its runs taken
//! over by another, and two runners started at the same instant never both
//! run one request. Everything is waited for on observable state (the mock's
//! journal, the request view's `runner`); nothing is timed.
use crate::helpers::*;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

/// Each environment's server sits in a location of its own, so that the
/// mock's journal tells whose an operation poll is (its URL names the
/// location, not the server).
const LOCATIONS: [&str; 6] = [
    "westeurope",
    "northeurope",
    "francecentral",
    "germanywestcentral",
    "swedencentral",
    "uksouth",
];
const ORIGINAL: &str = "v3 after destructive tests";
const RESTORED: &str = "v2 after test cycle 1";

fn env_name(i: usize) -> String {
    format!("e{}", i + 1)
}

fn rg(i: usize) -> String {
    format!("rg-e{}", i + 1)
}

fn server(i: usize) -> String {
    format!("sql-e{}", i + 1)
}

fn vm_id(i: usize, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/{name}-e{}",
        rg(i),
        i + 1
    )
}

/// `n` environments, each with its server (in its own location), its F&O
/// database and an AOS and a BI VM.
fn fleet_scenario(n: usize) -> String {
    let mut s = String::from("[settings]\nrestore_polls = 2\nrun_command_polls = 1\n");
    for (i, location) in LOCATIONS.iter().enumerate().take(n) {
        let (rg, server, e) = (rg(i), server(i), i + 1);
        s.push_str(&format!(
            r#"
[[servers]]
subscription_id = "{SUB}"
resource_group = "{rg}"
name = "{server}"
location = "{location}"

[[servers.databases]]
name = "AxDB"
earliest_restore = "-7d"
created = "-60d"
history = [
  {{ at = "-30d", content = "v1 before test cycle" }},
  {{ at = "-3d", content = "{RESTORED}" }},
  {{ at = "-1h", content = "{ORIGINAL}" }},
]

[[vms]]
subscription_id = "{SUB}"
resource_group = "{rg}"
name = "aos-e{e}"
location = "{location}"
services = ["W3SVC", "DynamicsAxBatch"]
aos = {{ server = "{server}.database.windows.net", database = "AxDB", sql_user = "axdbadmin", sql_password = "aos-own-test-value" }}

[[vms]]
subscription_id = "{SUB}"
resource_group = "{rg}"
name = "bi-e{e}"
location = "{location}"
services = ["MR2012ProcessService"]
"#
        ));
    }
    s
}

/// The config of every runner: the PostgreSQL store, a short lease and
/// scheduler tick, originals kept `keep_hours`, and `n` environments.
fn fleet_config(
    n: usize,
    store: &str,
    max_concurrent: usize,
    keep_hours: u64,
    lease_ttl_secs: u64,
) -> impl FnOnce(&str, &std::path::Path, &std::path::Path) -> String {
    let store = store.to_string();
    move |url, ca, _sqlite| {
        let mut c = format!(
            r#"
[store]
url = "{store}"

[azure]
arm_endpoint = "{url}"
authority_host = "{url}"
ca_file = "{ca}"
credential = "client_secret"
tenant_id = "test-tenant"
client_id = "test-client"
client_secret_env = "PITR_TEST_CLIENT_SECRET"
min_poll_interval_ms = 50
max_poll_interval_ms = 200
retry_min_delay_ms = 10
retry_max_delay_ms = 100
request_timeout_secs = 10

[serve]
listen = "127.0.0.1:0"

[auth]
mode = "none"

[engine]
restore_timeout_secs = 300
lease_ttl_secs = {lease_ttl_secs}
scheduler_tick_secs = 1
max_concurrent_runs = {max_concurrent}
keep_original_hours = {keep_hours}

[engine.estimates]
restore_secs = 60
sync_secs = 60
"#,
            ca = ca.display()
        );
        for (i, location) in LOCATIONS.iter().enumerate().take(n) {
            c.push_str(&format!(
                r#"
[[environments]]
name = "{name}"
tier = "sandbox"
database_kind = "azure_sql"
subscription_id = "{SUB}"
resource_group = "{rg}"
server = "{server}"
location = "{location}"
database = "AxDB"
aos_vms = ["{aos}"]
sync_vm = "{aos}"
mr_vm = "{bi}"
"#,
                name = env_name(i),
                rg = rg(i),
                server = server(i),
                aos = vm_id(i, "aos"),
                bi = vm_id(i, "bi"),
            ));
        }
        c
    }
}

/// One `pitr serve` process: its runner id and API address (from its
/// banner) and every line it wrote to stderr.
struct Runner {
    child: Child,
    id: String,
    api: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Runner {
    fn start(t: &TestEnv, store: &str, extra: &[&str], env: &[(&str, &str)]) -> Runner {
        Self::attach(Self::spawn(t, store, extra, env))
    }

    fn spawn(t: &TestEnv, store: &str, extra: &[&str], env: &[(&str, &str)]) -> Child {
        let mut args = vec!["serve"];
        args.extend_from_slice(extra);
        let mut cmd = t.command(&args);
        cmd.env("PITR_STORE_URL", store).env("PITR_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pitr serve")
    }

    /// Reads the banner of a spawned runner, then keeps its log.
    fn attach(mut child: Child) -> Runner {
        let stderr = child.stderr.take().expect("serve stderr");
        let mut lines = BufReader::new(stderr).lines();
        let (mut id, mut api, mut seen) = (None, None, Vec::new());
        for line in lines.by_ref() {
            let line = line.expect("read serve output");
            seen.push(line.clone());
            if let Some(rest) = line.strip_prefix("pitr serve: runner ") {
                id = rest.split_whitespace().next().map(str::to_string);
            }
            if let Some(rest) = line.strip_prefix("pitr serve: API listening on ") {
                api = rest.split(';').next().map(|s| s.trim().to_string());
                break;
            }
        }
        let (Some(id), Some(api)) = (id, api) else {
            panic!(
                "pitr serve printed no runner id or address:\n{}",
                seen.join("\n")
            );
        };
        let log = Arc::new(Mutex::new(seen));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Runner {
            child,
            id,
            api,
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Peak resident memory of the process so far (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }

    fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        // Reaped at once: a zombie still counts as gone for the takeover,
        // but nothing should linger.
        self.child.wait().expect("reap");
    }

    /// SIGTERM, then waits for a clean exit.
    fn stop(mut self) -> std::process::ExitStatus {
        std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Submits and accepts, for each environment, a request whose window is
/// open now (an emergency: less than 24 hours' notice).
fn submit_open(t: &TestEnv, store: &str, envs: impl Iterator<Item = String>) -> Vec<String> {
    let start = Utc::now() - Duration::minutes(1);
    let (point, ws, we) = (
        rfc3339_ago(Duration::days(1)),
        start.to_rfc3339(),
        (start + Duration::hours(3)).to_rfc3339(),
    );
    envs.map(|env| {
        let args = [
            "request",
            "submit",
            "--env",
            &env,
            "--database",
            "AxDB",
            "--restore-point",
            &point,
            "--window-start",
            &ws,
            "--window-end",
            &we,
            "--ack-erase",
            "--ack-downtime",
            "--ack-scope",
            "--emergency-reason",
            "test data corrupted; rehearsal tomorrow",
        ];
        let out = t
            .command(&args)
            .env("PITR_STORE_URL", store)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let out = t
            .command(&["request", "accept", &id])
            .env("PITR_STORE_URL", store)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        id
    })
    .collect()
}

/// `GET /api/v1/requests/{id}` of a runner: the request view.
async fn view(http: &reqwest::Client, api: &str, id: &str) -> Value {
    http.get(format!("{api}/api/v1/requests/{id}"))
        .send()
        .await
        .expect("the runner answers")
        .json()
        .await
        .expect("a request view")
}

/// The reasons of the takeovers in a request view's audit trail
/// (`taken over (REASON): ...`), oldest first.
fn takeover_reasons(view: &Value) -> Vec<String> {
    view["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["note"].as_str()?.strip_prefix("taken over ("))
        .filter_map(|rest| rest.split_once(')').map(|(r, _)| r.to_string()))
        .collect()
}

/// Waits (bounded, wide enough for a loaded machine) until `done` holds.
async fn until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    while std::time::Instant::now() < deadline {
        if done().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Which environment (index) a journal entry acted on: its server, its
/// VMs, or an operation in its location.
fn env_of(entry: &Value, n: usize) -> Option<usize> {
    let path = entry["path"].as_str().unwrap_or("").to_ascii_lowercase();
    (0..n).find(|&i| {
        path.contains(&format!("/resourcegroups/{}/", rg(i)))
            || path.contains(&format!("/locations/{}/", LOCATIONS[i]))
    })
}

fn at(entry: &Value) -> DateTime<Utc> {
    entry["at"].as_str().unwrap().parse().unwrap()
}

fn accepted(entry: &Value) -> bool {
    entry["status"]
        .as_u64()
        .is_some_and(|s| (200..300).contains(&s))
}

fn is_move(entry: &Value) -> bool {
    entry["method"] == "POST" && entry["path"].as_str().unwrap_or("").contains("/move?")
}

/// The first ARM request on environment `i` after `after`: the takeover.
fn next_action(
    journal: &[Value],
    i: usize,
    n: usize,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    journal
        .iter()
        .filter(|e| env_of(e, n) == Some(i) && at(e) > after)
        .map(at)
        .min()
}

/// The mutating requests Azure accepted on environment `i`, by method and
/// path (query left out): each must appear once per job.
fn mutations(journal: &[Value], i: usize, n: usize) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for e in journal
        .iter()
        .filter(|e| env_of(e, n) == Some(i) && e["method"] != "GET" && accepted(e))
    {
        let path = e["path"].as_str().unwrap_or("");
        let path = path.split('?').next().unwrap_or(path).to_string();
        *m.entry((e["method"].as_str().unwrap().to_string(), path))
            .or_insert(0) += 1;
    }
    m
}

/// Three runners on three hosts (the host part of their ids): a dead
/// runner's leases cannot be judged from another machine and are waited
/// out: every takeover is recorded as `lease_expired`. The lease (12 s,
/// renewed every 4 s) is long enough that a loaded machine renews it in
/// time: no live runner's run is taken.
#[cfg(feature = "crash-points")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_runners_on_three_hosts_share_six_runs_and_take_over_from_dead_ones() {
    fleet(["runner-1", "runner-2", "runner-3"], "lease_expired", 12).await
}

/// The same on one host: a runner whose process is gone is seen to be gone
/// (/proc), and its runs are taken over at once, recorded as `owner_gone`:
/// the lease (120 s) is far longer than the test, so a takeover that fell
/// back to waiting for expiry would show as `lease_expired`, or never come.
#[cfg(feature = "crash-points")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_runners_on_one_host_take_over_at_the_next_tick() {
    fleet(["one-host"; 3], "owner_gone", 120).await
}

#[cfg(feature = "crash-points")]
async fn fleet(hosts: [&str; 3], reason: &str, lease_ttl_secs: u64) {
    const N: usize = 6;
    let db = PgDatabase::create().await;
    let t = TestEnv::start_config(
        &fleet_scenario(N),
        fleet_config(N, &db.url, N, 24, lease_ttl_secs),
    );
    let http = reqwest::Client::new();
    let ids = submit_open(&t, &db.url, (0..N).map(env_name));
    // Every restore stays in progress until the test lets it finish.
    t.hold("restore", true).await;

    // The runners come up one after the other, each allowed a larger global
    // count, so each ends up holding two runs: the first claims two, the
    // second sees two running and claims two more, the third the last two.
    let runners_of = |views: &[Value]| -> Vec<Option<String>> {
        views
            .iter()
            .map(|v| v["runner"].as_str().map(str::to_string))
            .collect()
    };
    let views = |api: String| {
        let (http, ids) = (http.clone(), ids.clone());
        async move {
            let mut all = Vec::new();
            for id in &ids {
                all.push(view(&http, &api, id).await);
            }
            all
        }
    };
    let mut r1 = Runner::start(
        &t,
        &db.url,
        &["--max-concurrent", "2"],
        &[("HOSTNAME", hosts[0])],
    );
    until("the first runner to hold two runs", || async {
        runners_of(&views(r1.api.clone()).await)
            .iter()
            .filter(|r| r.as_deref() == Some(r1.id.as_str()))
            .count()
            == 2
    })
    .await;
    let mut r2 = Runner::start(
        &t,
        &db.url,
        &["--max-concurrent", "4"],
        &[
            ("PITR_CRASH_AT", "swap.after_first_rename"),
            ("HOSTNAME", hosts[1]),
        ],
    );
    until("the second runner to hold two runs", || async {
        runners_of(&views(r2.api.clone()).await)
            .iter()
            .filter(|r| r.as_deref() == Some(r2.id.as_str()))
            .count()
            == 2
    })
    .await;
    let r3 = Runner::start(&t, &db.url, &[], &[("HOSTNAME", hosts[2])]);
    until("six restores in progress", || async {
        accepted_restore_puts(&t.journal().await) == N
            && runners_of(&views(r3.api.clone()).await)
                .iter()
                .all(Option::is_some)
    })
    .await;
    let shown = runners_of(&views(r3.api.clone()).await);
    for r in [&r1, &r2, &r3] {
        assert_eq!(
            shown
                .iter()
                .filter(|x| x.as_deref() == Some(r.id.as_str()))
                .count(),
            2,
            "{shown:?}"
        );
    }
    // At most six runs at once, however many runners.
    assert_eq!(
        views(r3.api.clone())
            .await
            .iter()
            .filter(|v| v["status"] == "running")
            .count(),
        N
    );

    // kill -9 the first runner while it holds two restores in progress.
    let r1_envs: Vec<usize> = (0..N)
        .filter(|&i| shown[i].as_deref() == Some(r1.id.as_str()))
        .collect();
    let r1_rss = r1.peak_rss_kib();
    let killed_at = Utc::now();
    r1.kill9();
    until("the first runner's runs to be taken over", || async {
        let j = t.journal().await;
        r1_envs
            .iter()
            .all(|&i| next_action(&j, i, N, killed_at).is_some())
    })
    .await;
    let journal = t.journal().await;
    let mut takeovers = Vec::new();
    for &i in &r1_envs {
        let next = next_action(&journal, i, N, killed_at).unwrap();
        let ms = (next - killed_at).num_milliseconds();
        println!(
            "takeover after kill -9 of {} (restore in progress) on {}: {ms} ms",
            r1.id,
            env_name(i)
        );
        takeovers.push(ms);
    }

    // Let the restores finish: the second runner aborts between the two
    // renames of its first swap.
    t.hold("restore", false).await;
    // Nothing else in this loop: the journal is read as soon as the abort
    // is seen, before another runner (on one host, at its next tick) can
    // have finished that swap.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    let status = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the second runner never reached its swap"
        );
        if let Some(status) = r2.exited() {
            break status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let journal = t.journal().await;
    assert!(!status.success(), "aborted, not stopped");
    let r2_log = r2.log();
    assert!(
        r2_log
            .iter()
            .any(|l| l.contains("PITR_CRASH_AT=swap.after_first_rename")),
        "{r2_log:?}"
    );
    // Where it stopped: an environment with one rename done, not two, the
    // rename of a job the second runner was renaming (its progress lines
    // name the target, `<db>_before_<job8>`).
    let renaming: Vec<String> = r2_log
        .iter()
        .filter_map(|l| {
            l.split_once("renaming AxDB -> ")
                .map(|(_, to)| to.trim().to_string())
        })
        .collect();
    let moves = |i: usize| -> Vec<&Value> {
        journal
            .iter()
            .filter(|e| env_of(e, N) == Some(i) && is_move(e) && accepted(e))
            .collect()
    };
    let between: Vec<usize> = (0..N)
        .filter(|&i| {
            let m = moves(i);
            m.len() == 1
                && renaming.iter().any(|to| {
                    m[0]["body"]["id"]
                        .as_str()
                        .is_some_and(|id| id.ends_with(&format!("/databases/{to}")))
                })
        })
        .collect();
    assert!(
        !between.is_empty(),
        "no swap of the second runner stopped halfway: {renaming:?}"
    );
    for &i in &between {
        let first_rename = journal
            .iter()
            .filter(|e| env_of(e, N) == Some(i) && is_move(e) && accepted(e))
            .map(at)
            .next()
            .unwrap();
        until("the aborted swap to be taken over", || async {
            next_action(&t.journal().await, i, N, first_rename).is_some()
        })
        .await;
        let next = next_action(&t.journal().await, i, N, first_rename).unwrap();
        let ms = (next - first_rename).num_milliseconds();
        println!(
            "takeover after abort of {} between the renames on {}: {ms} ms (from its first rename)",
            r2.id,
            env_name(i)
        );
        takeovers.push(ms);
    }

    // The third runner finishes everything.
    until("all six requests to end", || async {
        views(r3.api.clone())
            .await
            .iter()
            .all(|v| !matches!(v["status"].as_str(), Some("running") | Some("accepted")))
    })
    .await;
    let r3_rss = r3.peak_rss_kib();
    let r3_id = r3.id.clone();
    let finished = views(r3.api.clone()).await;
    let r3_metrics = http
        .get(format!("{}/metrics", r3.api))
        .send()
        .await
        .expect("the runner answers")
        .text()
        .await
        .unwrap();
    let r3_log = r3.log();
    assert!(r3.stop().success(), "the last runner stops cleanly");
    for v in &finished {
        assert_eq!(v["status"], "succeeded", "{v}");
        assert!(v["runner"].is_null(), "{v}");
    }
    // How each run was taken over, recorded with the takeover: the first
    // runner's two runs once each, the aborted swaps once each, every one
    // for the reason this layout allows; no other run was taken.
    let mut taken = 0;
    for (i, v) in finished.iter().enumerate() {
        let reasons = takeover_reasons(v);
        let want = usize::from(r1_envs.contains(&i)) + usize::from(between.contains(&i));
        assert!(
            reasons.len() >= want && reasons.iter().all(|r| r == reason),
            "{}: {reasons:?}, want {want} x {reason}",
            env_name(i)
        );
        if !r1_envs.contains(&i) && shown[i].as_deref().is_none_or(|r| r != r2.id) {
            assert!(
                reasons.is_empty(),
                "{}: a live runner's run was taken: {reasons:?}",
                env_name(i)
            );
        }
        taken += reasons.len();
    }
    // The log and the metric say the same, by reason.
    let logged = r2_log
        .iter()
        .chain(&r3_log)
        .filter(|l| l.contains("lease taken over") && l.contains(&format!("reason={reason}")))
        .count();
    assert_eq!(logged, taken, "{r2_log:?}\n{r3_log:?}");
    let r3_taken = r3_log
        .iter()
        .filter(|l| l.contains("lease taken over"))
        .count();
    let metric = format!("pitr_lease_takeovers_total{{reason=\"{reason}\"}} {r3_taken}");
    assert!(
        r3_metrics.lines().any(|l| l == metric),
        "{metric} in:\n{r3_metrics}"
    );
    let state = t.state().await;
    let journal = t.journal().await;
    assert!(all_running(&state), "services running everywhere");
    for i in 0..N {
        let dbs: HashMap<String, Value> = state["servers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"] == server(i).as_str())
            .flat_map(|s| s["databases"].as_array().cloned().unwrap_or_default())
            .map(|d| (d["name"].as_str().unwrap().to_string(), d))
            .collect();
        assert_eq!(dbs["AxDB"]["content"], RESTORED, "{}: {dbs:?}", env_name(i));
        assert_eq!(dbs["AxDB"]["status"], "Online", "{}", env_name(i));
        assert!(
            dbs.values().any(|d| d["content"] == ORIGINAL),
            "{}: the original is kept",
            env_name(i)
        );
        let puts = journal
            .iter()
            .filter(|e| {
                env_of(e, N) == Some(i)
                    && e["method"] == "PUT"
                    && e["body"]["properties"]["createMode"] == "PointInTimeRestore"
                    && accepted(e)
            })
            .count();
        assert_eq!(puts, 1, "{}: one accepted restore PUT", env_name(i));
        let twice: Vec<_> = mutations(&journal, i, N)
            .into_iter()
            .filter(|(_, count)| *count > 1)
            .collect();
        assert!(twice.is_empty(), "{}: done twice: {twice:?}", env_name(i));
    }
    // The runner id is on the log lines of the runner's work.
    assert!(
        r3_log.iter().any(
            |l| l.contains(&format!("runner{{runner={r3_id}}}")) && l.contains("run succeeded")
        ),
        "{r3_log:?}"
    );
    let mutating: usize = (0..N).map(|i| mutations(&journal, i, N).len()).sum();
    println!(
        "six runs on three runners: {} ARM requests, {mutating} accepted mutating ones, each once; \
         takeovers {takeovers:?} ms; peak RSS of one runner (VmHWM): first {} KiB before its kill, last {} KiB at the end",
        journal.len(),
        r1_rss.unwrap_or(0),
        r3_rss.unwrap_or(0)
    );
}

/// Two runners started at the same instant on an accepted request in its
/// window: exactly one claims and runs it; the other never touches it. The
/// original is kept 0 hours: both runners find its cleanup due at once, and
/// it is dropped once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_started_together_run_a_request_once() {
    let db = PgDatabase::create().await;
    let t = TestEnv::start_config(&fleet_scenario(1), fleet_config(1, &db.url, 2, 0, 12));
    let ids = submit_open(&t, &db.url, std::iter::once(env_name(0)));
    let id = &ids[0];
    // Both processes are started before either is looked at.
    let (a, b) = (
        Runner::spawn(&t, &db.url, &[], &[("HOSTNAME", "runner-a")]),
        Runner::spawn(&t, &db.url, &[], &[("HOSTNAME", "runner-b")]),
    );
    let (a, b) = (Runner::attach(a), Runner::attach(b));
    let http = reqwest::Client::new();
    until("the request to end", || async {
        let v = view(&http, &a.api, id).await;
        !matches!(v["status"].as_str(), Some("running") | Some("accepted"))
    })
    .await;
    let shown = view(&http, &b.api, id).await;
    assert_eq!(shown["status"], "succeeded", "{shown}");
    assert_eq!(
        shown["jobs"].as_array().unwrap().len(),
        1,
        "one run: {shown}"
    );
    let before = format!("AxDB_before_{}", &shown["job"]["id"].as_str().unwrap()[..8]);
    let names = |state: Value| -> Vec<String> {
        state["servers"][0]["databases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect()
    };
    until("the original to be dropped", || async {
        !names(t.state().await).contains(&before)
    })
    .await;
    let journal = t.journal().await;
    let deletes = journal
        .iter()
        .filter(|e| {
            e["method"] == "DELETE"
                && e["path"]
                    .as_str()
                    .unwrap_or("")
                    .contains(&format!("/databases/{before}?"))
        })
        .count();
    assert_eq!(deletes, 1, "the original is dropped once, by one runner");
    assert_eq!(accepted_restore_puts(&journal), 1);
    assert_eq!(restore_puts(&journal), 1, "the other runner sent none");
    let twice: Vec<_> = mutations(&journal, 0, 1)
        .into_iter()
        .filter(|(_, c)| *c > 1)
        .collect();
    assert!(twice.is_empty(), "done twice: {twice:?}");
    let (a_id, b_id) = (a.id.clone(), b.id.clone());
    assert_ne!(a_id, b_id);
    let (a_log, b_log) = (a.log(), b.log());
    assert!(a.stop().success() && b.stop().success());
    // Exactly one of them started it (its log, under its runner id); the
    // other's log says nothing of running it.
    let started = |log: &[String], runner: &str| {
        log.iter().any(|l| {
            l.contains(&format!("runner{{runner={runner}}}"))
                && l.contains("window open: run started")
                && l.contains(id.as_str())
        })
    };
    let ran = |log: &[String]| log.iter().any(|l| l.contains("run succeeded"));
    assert!(
        started(&a_log, &a_id) ^ started(&b_log, &b_id),
        "exactly one runner started it:\n{a_log:#?}\n{b_log:#?}"
    );
    assert_eq!(ran(&a_log), started(&a_log, &a_id));
    assert_eq!(ran(&b_log), started(&b_log, &b_id));
    // One start in the audit trail.
    let history: Vec<Value> = t
        .command(&["request", "history", id, "--json"])
        .env("PITR_STORE_URL", &db.url)
        .output()
        .map(|o| serde_json::from_slice::<Value>(&o.stdout).unwrap())
        .unwrap()
        .as_array()
        .cloned()
        .unwrap();
    let to: Vec<&str> = history.iter().map(|e| e["to"].as_str().unwrap()).collect();
    assert_eq!(to, ["submitted", "accepted", "running", "succeeded"]);
}
