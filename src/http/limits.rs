//! The limits every call of the service is held to, pages and API alike.
use std::time::Duration;

/// The largest request body accepted (413 beyond).
pub const BODY_LIMIT: usize = 64 * 1024;
/// Every call but an event stream ends within this (503 beyond).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
