//! Knobs of the simulator: the fixed configuration given at start and the fault settings that a
//! test may change at any moment with [`super::Simulator::set_faults`].

use std::time::Duration;

use chrono::FixedOffset;

/// Configuration fixed for the lifetime of one simulator.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// OAuth client id the token endpoint accepts.
    pub client_id: String,
    /// OAuth client secret the token endpoint accepts.
    pub client_secret: String,
    /// Lifetime of an access token (QBO: one hour).
    pub access_token_ttl: Duration,
    /// Lifetime announced for refresh tokens (`x_refresh_token_expires_in`; QBO: 100 days).
    pub refresh_token_ttl: Duration,
    /// Length of the rolling window of the per-realm limits (QBO: one minute). Benchmarks shrink
    /// it, together with the limits, to run the same shape of traffic faster.
    pub rate_window: Duration,
    /// Requests allowed per realm in one window (QBO: 500), batch requests included.
    pub max_requests_per_window: u32,
    /// Requests one realm may have in flight at once (QBO: 10).
    pub max_concurrent: u32,
    /// Batch requests allowed per realm in one window (QBO: 40).
    pub max_batches_per_window: u32,
    /// When true, a batch counts one request per item towards `max_requests_per_window`
    /// (one tutorial says items are metered like calls; UNCONFIRMED). Default: one per batch.
    pub batch_items_count_toward_rate: bool,
    /// Answer 429 (and count a violation) when a limit above is exceeded. When false, the
    /// violations are still counted but the request is served.
    pub enforce_limits: bool,
    /// Largest number of items in one batch request (QBO: 30).
    pub max_batch_items: usize,
    /// Largest MAXRESULTS honoured; larger values are capped silently (QBO: 1000).
    pub max_page_size: usize,
    /// Page size when a query has no MAXRESULTS (UNCONFIRMED; 100 here).
    pub default_page_size: usize,
    /// Largest number of objects in one CDC answer (QBO: 1000).
    pub cdc_max_objects: usize,
    /// How far back `changedSince` may go (QBO: 30 days).
    pub cdc_window: Duration,
    /// Offset used for `MetaData` times and the envelope `time` (QBO answers in Pacific time).
    pub utc_offset: FixedOffset,
    /// How string `=`, `IN` and `LIKE` compare in queries (UNCONFIRMED in QBO).
    pub string_match: StringMatch,
    /// How the absorbed side of a merge looks afterwards (UNCONFIRMED in QBO).
    pub merge_variant: MergeVariant,
    /// Which 6240 Detail text is sent, depending on the holder of the name (UNCONFIRMED).
    pub duplicate_detail: DuplicateDetailPolicy,
    /// Reject updates of an inactive customer that do not reactivate it, with 6000
    /// ("You cannot modify a list element that has been deleted"; one report, UNCONFIRMED).
    pub reject_updates_to_inactive: bool,
    /// Rotate the refresh token on every refresh (the old one becomes `invalid_grant`).
    pub rotate_refresh_tokens: bool,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            client_id: "sim-client-id".to_owned(),
            client_secret: "sim-client-secret".to_owned(),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(100 * 24 * 3600),
            rate_window: Duration::from_secs(60),
            max_requests_per_window: 500,
            max_concurrent: 10,
            max_batches_per_window: 40,
            batch_items_count_toward_rate: false,
            enforce_limits: true,
            max_batch_items: 30,
            max_page_size: 1000,
            default_page_size: 100,
            cdc_max_objects: 1000,
            cdc_window: Duration::from_secs(30 * 24 * 3600),
            utc_offset: FixedOffset::west_opt(7 * 3600).expect("valid offset"),
            string_match: StringMatch::CaseInsensitive,
            merge_variant: MergeVariant::Inactive,
            duplicate_detail: DuplicateDetailPolicy::default(),
            reject_updates_to_inactive: false,
            rotate_refresh_tokens: true,
        }
    }
}

impl SimulatorConfig {
    /// The same limits over a window `speedup` times shorter, so a benchmark runs the shape of
    /// a minute of traffic in `60 s / speedup`.
    pub fn time_scaled(self, speedup: u32) -> Self {
        Self {
            rate_window: self.rate_window / speedup.max(1),
            ..self
        }
    }
}

/// How string comparisons in queries treat letter case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMatch {
    /// `'bob'` matches `BOB` (SQL Server's default collation; the likely QBO behaviour).
    CaseInsensitive,
    /// Exact comparison, to prove a client does not rely on the server folding case.
    CaseSensitive,
}

/// What happens to the customer absorbed by a merge. QBO's behaviour is UNCONFIRMED, so every
/// variant the API notes name is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeVariant {
    /// The absorbed customer stays readable with `Active=false` (and keeps its name).
    Inactive,
    /// Read answers 610, queries never return it, CDC reports `status: "Deleted"`.
    Deleted,
    /// Read answers 610, queries never return it, CDC does not mention it at all.
    Missing,
}

/// The Detail text of a 6240 "Duplicate Name Exists Error".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateDetail {
    /// `The name supplied already exists. : Id=NN`
    WithId,
    /// `The name supplied already exists. : null`
    Null,
    /// The old long text: `... : Another customer, vendor or employee is already using this name. ...`
    AnotherUsing,
}

/// Chooses the 6240 Detail by the kind (and activity) of the record already holding the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateDetailPolicy {
    /// When the holder is an active customer.
    pub customer: DuplicateDetail,
    /// When the holder is an active vendor.
    pub vendor: DuplicateDetail,
    /// When the holder is an active employee.
    pub employee: DuplicateDetail,
    /// When the holder is inactive, of any kind; `None` keeps the per-kind choice.
    pub inactive: Option<DuplicateDetail>,
}

impl Default for DuplicateDetailPolicy {
    /// Mixed on purpose, so one default run exercises both client paths: the Id for active
    /// customers, `: null` for vendors, employees and every inactive holder.
    fn default() -> Self {
        Self {
            customer: DuplicateDetail::WithId,
            vendor: DuplicateDetail::Null,
            employee: DuplicateDetail::Null,
            inactive: Some(DuplicateDetail::Null),
        }
    }
}

impl DuplicateDetailPolicy {
    /// The same Detail whatever holds the name.
    pub fn always(detail: DuplicateDetail) -> Self {
        Self {
            customer: detail,
            vendor: detail,
            employee: detail,
            inactive: None,
        }
    }
}

/// Fault injection; replace it at any time with [`super::Simulator::set_faults`].
#[derive(Debug, Clone)]
pub struct FaultConfig {
    /// Added to every API request, while it holds a concurrency slot.
    pub latency: Duration,
    /// Extra random latency, uniform in `0..=latency_jitter`.
    pub latency_jitter: Duration,
    /// Fraction (0..=1) of API requests answered as throttled, in `throttle_style`.
    pub throttle_rate: f64,
    /// Fraction (0..=1) of API requests answered with `server_error_status`.
    pub server_error_rate: f64,
    /// Status of injected server errors (500, 502, 503 or 504).
    pub server_error_status: u16,
    /// Send injected server errors as a gateway's HTML page instead of a JSON SystemFault.
    pub server_error_html: bool,
    /// How throttling (injected or from the enforced limits) is answered.
    pub throttle_style: ThrottleStyle,
    /// `Retry-After` seconds on throttle answers; QBO sending it is UNCONFIRMED.
    pub retry_after_secs: Option<u32>,
    /// Send every JSON fault in the lower-cased envelope `{"fault":{"error":[..]}}`.
    pub lowercase_faults: bool,
    /// Send validation faults (6240, 5010, 610, ...) with HTTP 200, as QBO has been seen to.
    pub faults_as_http_200: bool,
    /// Commit the next N creates (single or batch) and then give no answer.
    pub drop_response_after_create: u32,
    /// How a dropped answer looks to the client.
    pub drop_style: DropStyle,
    /// Seed of the random choices above, for reproducible runs.
    pub seed: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            throttle_rate: 0.0,
            server_error_rate: 0.0,
            server_error_status: 503,
            server_error_html: false,
            throttle_style: ThrottleStyle::Json429,
            retry_after_secs: None,
            lowercase_faults: false,
            faults_as_http_200: false,
            drop_response_after_create: 0,
            drop_style: DropStyle::Reset,
            seed: 42,
        }
    }
}

/// The shapes in which QBO has been seen to signal throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleStyle {
    /// HTTP 429 with a JSON Fault, code 3001, type SERVICE.
    Json429,
    /// HTTP 429 with the XML `<Fault type="SERVICE"><Error code="3001">` body.
    Xml429,
    /// HTTP 403 with a Fault whose Message holds `ThrottleExceeded` (the pre-2017 form).
    Forbidden403,
    /// HTTP 200 carrying the throttle Fault.
    Fault200,
    /// HTTP 429 with the lower-cased `{"fault":{"error":[..]}}` envelope, `time` in epoch ms.
    LowerCase429,
}

/// What the client sees when an answer is dropped after the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropStyle {
    /// The connection is closed without a complete answer.
    Reset,
    /// Nothing is sent until the client gives up (or this long passes, then the connection closes).
    Hang(Duration),
}
