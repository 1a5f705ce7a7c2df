//! The integration tests, one binary: every story starts the real mock Azure
//! and a real store through [`helpers`], and acts through the `pitr` binary
//! or the library's public API.
mod actions;
mod after_swap;
mod bad_input;
mod beside_a_run;
mod checks;
mod commands;
mod counting_store;
#[cfg(feature = "crash-points")]
mod crash_points;
#[cfg(feature = "crash-points")]
mod crash_recovery;
mod credentials;
mod deploy_files;
mod durations;
mod failover;
mod faults;
mod help;
mod helpers;
mod in_process;
mod inherit;
mod leases;
mod lro_testserver;
mod misuse;
mod mock_azure;
mod powershell;
mod readme;
mod requests;
mod restore_e2e;
mod scale;
mod scheduler;
mod scheduler_bench;
mod serve;
mod service;
mod store_bench;
mod store_copy;
mod store_in_play;
mod store_outbox;
mod store_postgres;
mod store_suite;
mod users;
mod web;
mod window;
mod window_moving;
