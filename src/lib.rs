//! `pitr`: point-in-time restores of Azure SQL databases for Dynamics 365 F&O
//! non-production environments, carried out as checkpointed, resumable jobs.
//!
//! Layout (dependencies point inward):
//! - [`domain`]: pure request rules, lifecycle and step plan; no I/O.
//! - [`engine`]: the job runner that performs the steps.
//! - [`azure`]: the typed ARM client (azure_core pipeline, LRO poller, credentials).
//! - [`mock`]: the mock Azure (an ARM look-alike over HTTPS) used for dry runs.
//! - [`store`]: the state store (requests, audit events, jobs, step checkpoints).
//! - [`service`]: the use cases, with the caller and its roles, and their
//!   typed errors; every front end calls them.
//! - [`cli`], [`api`] and [`web`]: the front ends (the command line,
//!   `pitr serve`'s JSON API and its work-items page), each a thin adapter
//!   over [`service`]; [`http`] serves `api` and `web` side by side;
//!   [`auth`]: who is calling (Entra ID tokens).
//! - [`app`]: puts them together (config -> store -> Azure -> engine), once
//!   for every command, the demo, dry runs, the benchmark and the tests.
pub mod api;
pub mod app;
pub mod auth;
pub mod azure;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod engine;
pub mod http;
pub mod metrics;
pub mod mock;
pub mod notify;
pub mod service;
pub mod store;
pub mod web;
