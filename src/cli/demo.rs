//! `pitr demo`.
use super::Failure;

pub async fn run(_: bool) -> Result<(), Failure> {
    Err(Failure::failed("demo: wiring pending"))
}
