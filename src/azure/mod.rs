//! The Azure side: a small typed client for the few Microsoft.Sql and
//! Microsoft.Compute operations `pitr` uses, on the official `azure_core`
//! pipeline with `azure_identity` credentials.
//!
//! Why not `azure_mgmt_sql`: the unofficial 0.21 line is unmaintained, only
//! ships a preview api-version, and its poller loses the error code of a failed
//! operation, cannot follow a Location-only 202, turns `Retry-After: 0` into a
//! tight loop and has no deadline. [`lro`] does those four things right.
pub mod client;
mod compute;
pub mod credentials;
pub mod error;
pub mod limiter;
pub mod lro;
pub mod models;
mod sql;
pub mod states;

pub use client::ArmClient;
pub use error::AzureError;
pub use lro::{Begun, FinalState, Operation, PollProgress};
pub use models::{Database, RestoreSpec, RunCommand, RunCommandSpec, VirtualMachine};
