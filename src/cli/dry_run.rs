//! Dry runs: the engine against an embedded mock Azure seeded from the config.
use super::Failure;
use crate::config::Config;
use crate::store::SharedStore;
use std::path::Path;

pub async fn run(_: &Config, _: SharedStore, _: &str, _: &str) -> Result<(), Failure> {
    Err(Failure::failed("dry run: wiring pending"))
}

pub async fn serve_mock(
    _: Option<&Path>,
    _: std::net::SocketAddr,
    _: Option<&Path>,
    _: &Path,
) -> Result<(), Failure> {
    Err(Failure::failed("mock-azure: wiring pending"))
}
