//! What the benchmark reads of its runner processes (Linux `/proc`, and the
//! address each runner's API bound, from its log).
use super::fail;
use crate::cli::Failure;

pub(super) fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User + system CPU seconds of a process (Linux clock ticks at USER_HZ,
/// 100 on every mainstream kernel).
pub(super) fn proc_cpu_secs(pid: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = text.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The base URL of the API a runner bound (it listens on port 0, so no port is picked
/// and released for it to race for), read from its log's banner
/// (`pitr serve: API listening on ADDR; ...`); an error when it exits or
/// `deadline` passes first.
pub(super) async fn listening_on(
    log: &std::path::Path,
    child: &mut tokio::process::Child,
    deadline: tokio::time::Instant,
) -> Result<String, Failure> {
    const BANNER: &str = "pitr serve: API listening on ";
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(addr) = text.lines().find_map(|l| {
            l.strip_prefix(BANNER)
                .and_then(|rest| rest.split([';', ' ']).next())
        }) {
            return Ok(addr.to_string());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(fail(format!(
                "a runner exited ({status}) before listening; its log {}:\n{text}",
                log.display()
            )));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(fail(format!(
                "a runner did not listen within the time allowed; its log {}:\n{text}",
                log.display()
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
