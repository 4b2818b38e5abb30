//! Counters and the request log that tests inspect.

use std::collections::BTreeMap;

/// A snapshot of the simulator's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Every HTTP request received, OAuth included.
    pub requests: u64,
    /// Requests per endpoint label (`customer.read`, `customer.write`, `query`, `cdc`, `batch`,
    /// `oauth.token`, `oauth.revoke`, `other`).
    pub per_endpoint: BTreeMap<String, u64>,
    /// Customers created (single and batch; replays do not count).
    pub creates: u64,
    /// Customers updated (single and batch).
    pub updates: u64,
    /// Answers served from the `requestid` replay cache.
    pub replays: u64,
    /// Requests that broke one of the enforced limits.
    pub limit_violations: LimitViolations,
    /// Highest number of API requests one realm had in flight at once.
    pub max_concurrency_seen: u32,
    /// Throttle answers injected by the fault rate (not limit violations).
    pub injected_throttles: u64,
    /// Server errors injected by the fault rate.
    pub injected_server_errors: u64,
    /// Creates committed whose answer was dropped.
    pub dropped_responses: u64,
    /// API requests refused with 401.
    pub unauthorized: u64,
    /// Token endpoint answers by outcome (`issued`, `invalid_grant`, `invalid_client`, ...).
    pub token_outcomes: BTreeMap<String, u64>,
    /// `requestid` values longer than the documented 50 characters.
    pub requestid_too_long: u64,
}

/// Violations of the per-realm limits, by limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitViolations {
    /// More than `max_requests_per_window` requests in one rolling window.
    pub rate: u64,
    /// More than `max_concurrent` requests in flight.
    pub concurrency: u64,
    /// More than `max_batches_per_window` batch requests in one rolling window.
    pub batch: u64,
}

impl LimitViolations {
    /// All violations together.
    pub fn total(&self) -> u64 {
        self.rate + self.concurrency + self.batch
    }
}

/// One request as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// The realm of an API path.
    pub realm: Option<String>,
    /// The `requestid` query parameter, decoded.
    pub requestid: Option<String>,
    /// The `minorversion` query parameter.
    pub minorversion: Option<String>,
    /// HTTP status answered (0 when the answer was dropped).
    pub status: u16,
    /// The `intuit_tid` header sent back.
    pub intuit_tid: String,
    /// When the request arrived (for rates measured from the log).
    pub received_at: std::time::Instant,
}
