//! The service's one typed configuration. Every setting is a command-line flag with an
//! environment variable and a documented default; secrets are `SecretString`s that never
//! appear in logs or `Debug` output.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};
use secrecy::SecretString;

/// Everything `qbo-sync serve` needs.
#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub server: ServerConfig,
    #[command(flatten)]
    pub qbo: QboConfig,
    #[command(flatten)]
    pub security: SecurityConfig,
    #[command(flatten)]
    pub worker: WorkerConfig,
    #[command(flatten)]
    pub push: PushConfig,
    #[command(flatten)]
    pub log: LogConfig,
    #[command(flatten)]
    pub traces: TraceConfig,
}

impl Config {
    /// Parses a configuration from command-line style arguments (and the environment), as
    /// `serve` does. Tests and tools use it to get every documented default.
    ///
    /// # Errors
    /// clap's error when an argument is unknown or malformed.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        let args = std::iter::once(std::ffi::OsString::from("qbo-sync"))
            .chain(args.into_iter().map(Into::into));
        <Wrapper as clap::Parser>::try_parse_from(args).map(|w| w.config)
    }
}

/// PostgreSQL settings.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// PostgreSQL connection URL (it may hold a password: it is never logged).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    pub database_url: SecretString,
    /// Largest number of pooled connections per replica.
    #[arg(long, env = "QBO_SYNC_DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,
    /// How long to wait for a pooled connection before failing the request.
    #[arg(long, env = "QBO_SYNC_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub db_acquire_timeout: Duration,
    /// Server-side `statement_timeout` of every connection.
    #[arg(long, env = "QBO_SYNC_DB_STATEMENT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub db_statement_timeout: Duration,
}

/// gRPC and HTTP listener settings.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Address of the gRPC listener.
    #[arg(long, env = "QBO_SYNC_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    pub grpc_addr: SocketAddr,
    /// Address of the HTTP listener (`/metrics`, `/healthz`, QBO webhooks).
    #[arg(long, env = "QBO_SYNC_HTTP_ADDR", default_value = "0.0.0.0:9090")]
    pub http_addr: SocketAddr,
    /// Longest time one RPC may run; past it the server answers CANCELLED (a shorter client
    /// deadline wins).
    #[arg(long, env = "QBO_SYNC_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Largest gRPC message accepted or sent, in bytes.
    #[arg(long, env = "QBO_SYNC_MAX_MESSAGE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// RPCs handled at once per replica; past it, new RPCs are shed with UNAVAILABLE.
    #[arg(long, env = "QBO_SYNC_MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,
    /// How long shutdown waits for in-flight RPCs and jobs before it stops them.
    #[arg(long, env = "QBO_SYNC_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// How often the database is checked for the health service.
    #[arg(long, env = "QBO_SYNC_HEALTH_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub health_interval: Duration,
    /// How often the queue, link, review and connection gauges of `/metrics` are read from
    /// the database.
    #[arg(long, env = "QBO_SYNC_METRICS_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub metrics_interval: Duration,
}

/// QuickBooks Online API settings.
#[derive(Debug, Clone, Args)]
pub struct QboConfig {
    /// Base URL of the QBO Accounting API (the simulator's URL in development).
    #[arg(
        long,
        env = "QBO_SYNC_QBO_BASE_URL",
        default_value = "https://quickbooks.api.intuit.com"
    )]
    pub qbo_base_url: String,
    /// Intuit's OAuth 2.0 token endpoint.
    #[arg(
        long,
        env = "QBO_SYNC_QBO_TOKEN_URL",
        default_value = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
    )]
    pub qbo_token_url: String,
    /// Intuit's OAuth 2.0 revoke endpoint, called (best effort) when a tenant disconnects.
    #[arg(
        long,
        env = "QBO_SYNC_QBO_REVOKE_URL",
        default_value = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"
    )]
    pub qbo_revoke_url: String,
    /// Longest wait for the revoke endpoint; disconnecting goes on without it after that.
    #[arg(long, env = "QBO_SYNC_QBO_REVOKE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub qbo_revoke_timeout: Duration,
    /// OAuth client id of the Intuit app.
    #[arg(long, env = "QBO_SYNC_QBO_CLIENT_ID", default_value = "")]
    pub qbo_client_id: String,
    /// OAuth client secret of the Intuit app.
    #[arg(long, env = "QBO_SYNC_QBO_CLIENT_SECRET", hide_env_values = true)]
    pub qbo_client_secret: Option<SecretString>,
    /// Verifier token that signs QBO webhooks (not the client secret).
    #[arg(long, env = "QBO_SYNC_WEBHOOK_VERIFIER_TOKEN", hide_env_values = true)]
    pub webhook_verifier_token: Option<SecretString>,
    /// Timeout of one HTTP call to QBO.
    #[arg(long, env = "QBO_SYNC_QBO_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub qbo_timeout: Duration,
    /// Timeout of establishing a connection to QBO.
    #[arg(long, env = "QBO_SYNC_QBO_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub qbo_connect_timeout: Duration,
    /// `minorversion` sent on every call (75 is the lowest QBO honours since 2025-08).
    #[arg(long, env = "QBO_SYNC_QBO_MINOR_VERSION", default_value_t = 75)]
    pub qbo_minor_version: u32,
    /// Length of QBO's rate window (one minute; shrink it only against the simulator).
    #[arg(long, env = "QBO_SYNC_QBO_RATE_WINDOW", default_value = "60s", value_parser = parse_duration)]
    pub qbo_rate_window: Duration,
    /// Requests per realm per window, batch calls included (QBO: 500).
    #[arg(long, env = "QBO_SYNC_QBO_REQUESTS_PER_WINDOW", default_value_t = 500)]
    pub qbo_requests_per_window: u32,
    /// Batch calls per realm per window (QBO: 40).
    #[arg(long, env = "QBO_SYNC_QBO_BATCHES_PER_WINDOW", default_value_t = 40)]
    pub qbo_batches_per_window: u32,
    /// Share of the rate kept unused, in percent, as margin for clock and network jitter.
    #[arg(long, env = "QBO_SYNC_QBO_RATE_HEADROOM_PERCENT", default_value_t = 3)]
    pub qbo_rate_headroom_percent: u32,
    /// Requests per realm in flight at once, over all replicas (QBO: 10).
    #[arg(long, env = "QBO_SYNC_QBO_MAX_CONCURRENT", default_value_t = 10)]
    pub qbo_max_concurrent: u16,
    /// Concurrency slots only interactive work may use.
    #[arg(long, env = "QBO_SYNC_QBO_INTERACTIVE_SLOTS", default_value_t = 2)]
    pub qbo_interactive_slots: u16,
    /// Lease of a concurrency slot (a dead replica's slot frees itself after it); a lease
    /// shorter than the call timeout plus half of it (at least 250 ms) is raised to that.
    #[arg(long, env = "QBO_SYNC_QBO_SLOT_LEASE", default_value = "45s", value_parser = parse_duration)]
    pub qbo_slot_lease: Duration,
    /// How many start times ahead background work may book (interactive work books freely,
    /// so it overtakes background work after at most this many calls).
    #[arg(long, env = "QBO_SYNC_QBO_BACKGROUND_DEPTH", default_value_t = 2)]
    pub qbo_background_depth: u32,
    /// Share of a realm's QBO rate, and of the worker pool's claims, that background work
    /// (sync runs and the pushes they queue, bulk pushes) keeps while interactive work would
    /// take it all, in percent (0: interactive work always goes first, so a steady stream of
    /// interactive pushes can hold a sync run back for as long as it lasts; at most 50).
    #[arg(long, env = "QBO_SYNC_QBO_BACKGROUND_SHARE", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(0..=50))]
    pub qbo_background_share: u32,
    /// First backoff after a 429/503/3001 (doubled each time, with full jitter).
    #[arg(long, env = "QBO_SYNC_QBO_BACKOFF_BASE", default_value = "1s", value_parser = parse_duration)]
    pub qbo_backoff_base: Duration,
    /// Longest single backoff.
    #[arg(long, env = "QBO_SYNC_QBO_BACKOFF_MAX", default_value = "60s", value_parser = parse_duration)]
    pub qbo_backoff_max: Duration,
    /// Total time one call may spend backing off before it gives up with `Throttled` (the
    /// caller then reschedules without spending an attempt).
    #[arg(long, env = "QBO_SYNC_QBO_THROTTLE_BUDGET", default_value = "5m", value_parser = parse_duration)]
    pub qbo_throttle_budget: Duration,
    /// Re-read-and-retry rounds of a sparse update that meets 5010.
    #[arg(long, env = "QBO_SYNC_QBO_STALE_RETRIES", default_value_t = 3)]
    pub qbo_stale_retries: u32,
    /// Items per batch call (QBO: at most 30).
    #[arg(long, env = "QBO_SYNC_QBO_BATCH_SIZE", default_value_t = 30)]
    pub qbo_batch_size: usize,
    /// MAXRESULTS of paged queries (QBO: at most 1000).
    #[arg(long, env = "QBO_SYNC_QBO_PAGE_SIZE", default_value_t = 1000)]
    pub qbo_page_size: u32,
    /// Refresh the access token this long before it expires.
    #[arg(long, env = "QBO_SYNC_QBO_TOKEN_SKEW", default_value = "120s", value_parser = parse_duration)]
    pub qbo_token_skew: Duration,
    /// Most pages scanned per entity when a duplicate-name holder must be found by a full scan
    /// (QBO's case rules for `=` are unconfirmed).
    #[arg(long, env = "QBO_SYNC_QBO_NAME_SCAN_PAGES", default_value_t = 50)]
    pub qbo_name_scan_pages: u32,
    /// Version byte written in front of tokens sealed with `QBO_SYNC_TOKEN_KEY`; raise it when
    /// the key changes.
    #[arg(long, env = "QBO_SYNC_TOKEN_KEY_VERSION", default_value_t = 1)]
    pub qbo_token_key_version: u8,
    /// The previous token key during a rotation, as `VERSION:BASE64`; tokens sealed with it
    /// stay readable and are re-sealed with the current key at their next refresh.
    #[arg(long, env = "QBO_SYNC_TOKEN_KEY_PREVIOUS", hide_env_values = true)]
    pub qbo_token_key_previous: Option<SecretString>,
}

/// Authentication and encryption settings.
#[derive(Debug, Clone, Args)]
pub struct SecurityConfig {
    /// Base64 of the 32-byte key that encrypts OAuth tokens at rest.
    #[arg(long, env = "QBO_SYNC_TOKEN_KEY", hide_env_values = true)]
    pub token_key: Option<SecretString>,
    /// TOML file of the callers allowed in: `[[caller]]` tables with `name`, `token_sha256`,
    /// `scopes` and `tenants`. Reloaded when it changes; required unless `--insecure-no-auth`.
    #[arg(long, env = "QBO_SYNC_CALLERS_FILE")]
    pub callers_file: Option<PathBuf>,
    /// How often the callers file is read again to pick up changes.
    #[arg(long, env = "QBO_SYNC_CALLERS_RELOAD_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub callers_reload_interval: Duration,
    /// Serve without caller authentication: every RPC acts as an all-powerful caller named
    /// `insecure-no-auth`. For development only.
    #[arg(long, env = "QBO_SYNC_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// PEM certificate chain of the gRPC listener; with `--tls-key`, the listener speaks TLS.
    #[arg(long, env = "QBO_SYNC_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "QBO_SYNC_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM certificates of the CAs whose client certificates are accepted; when set, every
    /// gRPC client must present one (mutual TLS).
    #[arg(long, env = "QBO_SYNC_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
}

impl QboConfig {
    /// Background work's turn for `qbo_background_share`: after this many interactive starts
    /// (or claims) in a row, background work goes next (`0`: never; 20 % gives one in five,
    /// 50 % every other one).
    #[must_use]
    pub fn background_turn(&self) -> u32 {
        match self.qbo_background_share.min(50) {
            0 => 0,
            share => (100 / share).saturating_sub(1).max(1),
        }
    }
}

/// The job queue's worker pool.
#[derive(Debug, Clone, Args)]
pub struct WorkerConfig {
    /// Worker loops per replica (0: this replica runs no jobs). Jobs mostly wait on QBO's
    /// per-company limits, so a loop costs little; QBO's limits, not this number, bound the
    /// calls per company.
    #[arg(long, env = "QBO_SYNC_WORKERS", default_value_t = 8)]
    pub workers: usize,
    /// Lease of a claimed job; heartbeats renew it, and a job whose replica died runs again
    /// on another one after it.
    #[arg(long, env = "QBO_SYNC_JOB_LEASE", default_value = "60s", value_parser = parse_duration)]
    pub job_lease: Duration,
    /// Longest wait of an idle worker between claims when no NOTIFY wakes it.
    #[arg(long, env = "QBO_SYNC_JOB_POLL_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub job_poll_interval: Duration,
    /// First retry delay after a failed attempt (doubled each attempt, with jitter).
    #[arg(long, env = "QBO_SYNC_JOB_BACKOFF_BASE", default_value = "10s", value_parser = parse_duration)]
    pub job_backoff_base: Duration,
    /// Longest retry delay.
    #[arg(long, env = "QBO_SYNC_JOB_BACKOFF_MAX", default_value = "30m", value_parser = parse_duration)]
    pub job_backoff_max: Duration,
    /// How long succeeded and cancelled jobs are kept (dead jobs stay until handled).
    #[arg(long, env = "QBO_SYNC_JOB_RETENTION", default_value = "24h", value_parser = parse_duration)]
    pub job_retention: Duration,
}

/// How pushes look for a customer in QBO before creating it.
#[derive(Debug, Clone, Args)]
pub struct PushConfig {
    /// A bulk push (a backfill: `BatchUpsertCustomers`) decides from the mirror of the
    /// tenant's QBO customers once at least this many pushes of the tenant wait, reading the
    /// whole company once instead of looking each customer up; fewer are looked up live.
    #[arg(long, env = "QBO_SYNC_PUSH_MIRROR_BACKLOG", default_value_t = 100)]
    pub push_mirror_backlog: i64,
    /// How old a mirror a bulk push may decide from; an older one is read again first. A QBO
    /// customer created in that window with a differently written name is not seen (one with
    /// the same name still meets QBO's 6240 and is linked).
    #[arg(long, env = "QBO_SYNC_PUSH_MIRROR_MAX_AGE", default_value = "10m", value_parser = parse_duration)]
    pub push_mirror_max_age: Duration,
    /// Every connected tenant gets an incremental sync this often (scheduled once across
    /// replicas); `0` turns the automatic sync off.
    #[arg(long, env = "QBO_SYNC_AUTO_SYNC_INTERVAL", default_value = "15m", value_parser = parse_duration)]
    pub auto_sync_interval: Duration,
    /// Digit customers a sync run applies per transaction (and per checkpoint).
    #[arg(long, env = "QBO_SYNC_SYNC_APPLY_CHUNK", default_value_t = 1_000)]
    pub sync_apply_chunk: usize,
}

/// Logging settings.
#[derive(Debug, Clone, Args)]
pub struct LogConfig {
    /// Log format: `json` for machines, `pretty` for people.
    #[arg(long, env = "QBO_SYNC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax (`RUST_LOG` style).
    #[arg(long, env = "QBO_SYNC_LOG", default_value = "info")]
    pub log_filter: String,
}

/// OpenTelemetry trace export over OTLP/gRPC; off unless an endpoint is given.
#[derive(Debug, Clone, Args)]
pub struct TraceConfig {
    /// OTLP/gRPC endpoint of the collector, e.g. `http://otel-collector:4317` (`https://`
    /// checks the collector's certificate against the Mozilla roots compiled in). Unset or
    /// empty: no trace export, no exporter and no background task. Extra headers (a vendor's
    /// API key) come from the standard `OTEL_EXPORTER_OTLP_HEADERS`.
    #[arg(long, env = "QBO_SYNC_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    #[arg(long, env = "QBO_SYNC_OTLP_SERVICE_NAME", default_value = "qbo-sync")]
    pub otlp_service_name: String,
    /// More resource attributes, as `key=value,key=value` (e.g.
    /// `deployment.environment.name=prod`); the standard `OTEL_RESOURCE_ATTRIBUTES` is read
    /// too, and these win over it.
    #[arg(long, env = "QBO_SYNC_OTLP_RESOURCE_ATTRIBUTES", default_value = "", value_parser = parse_resource_attributes)]
    pub otlp_resource_attributes: ResourceAttributes,
    /// Share of traces started here (RPCs without a sampled caller, jobs, webhooks) that are
    /// exported, from 0 to 1. A caller's `traceparent` decides for its own traces.
    #[arg(long, env = "QBO_SYNC_OTLP_SAMPLE_RATIO", default_value_t = 1.0, value_parser = parse_ratio)]
    pub otlp_sample_ratio: f64,
    /// Longest time one export of a batch of spans may take, and so the longest wait for the
    /// last batch at shutdown.
    #[arg(long, env = "QBO_SYNC_OTLP_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub otlp_timeout: Duration,
}

impl TraceConfig {
    /// The collector's endpoint when trace export is on (an empty value counts as unset, as
    /// a ConfigMap may give it).
    #[must_use]
    pub fn endpoint(&self) -> Option<&str> {
        self.otlp_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
    }
}

/// Resource attributes given as `key=value,key=value`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceAttributes(pub Vec<(String, String)>);

/// Parses `key=value,key=value` (spaces around items allowed; an empty text is no attribute).
///
/// # Errors
/// A message naming the item that is not `key=value` with a non-empty key.
pub fn parse_resource_attributes(text: &str) -> Result<ResourceAttributes, String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match item.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_owned(), value.trim().to_owned()))
            }
            _ => Err(format!("'{item}' is not key=value")),
        })
        .collect::<Result<_, _>>()
        .map(ResourceAttributes)
}

/// Parses a ratio between 0 and 1.
///
/// # Errors
/// When the text is not a number from 0 to 1.
pub fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(format!("'{text}' is not a ratio from 0 to 1")),
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable, coloured when on a terminal.
    Pretty,
}

/// Parses durations such as `250ms`, `5s`, `2m` or `1h`.
///
/// # Errors
/// A message naming the accepted forms when the text is not one of them.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 250ms, 5s, 2m or 1h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" | "" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number * 60)),
        "h" => Ok(Duration::from_secs(number * 3600)),
        _ => Err(format!("'{text}' has an unknown unit; use ms, s, m or h")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let config = Config::from_args(Vec::<String>::new()).unwrap();
        assert_eq!(config.server.grpc_addr.to_string(), "0.0.0.0:50051");
        assert_eq!(config.server.http_addr.to_string(), "0.0.0.0:9090");
        assert_eq!(config.qbo.qbo_base_url, "https://quickbooks.api.intuit.com");
        assert_eq!(config.log.log_format, LogFormat::Json);
        assert_eq!(config.traces.endpoint(), None);
        assert_eq!(config.traces.otlp_service_name, "qbo-sync");
        assert!((config.traces.otlp_sample_ratio - 1.0).abs() < f64::EPSILON);
        assert_eq!(config.traces.otlp_timeout, Duration::from_secs(10));
    }

    #[test]
    fn parses_trace_settings() {
        let config = Config::from_args([
            "--otlp-endpoint",
            " ",
            "--otlp-resource-attributes",
            "deployment.environment.name=prod, team = billing,",
            "--otlp-sample-ratio",
            "0.25",
        ])
        .unwrap();
        assert_eq!(config.traces.endpoint(), None, "blank is off");
        assert_eq!(
            config.traces.otlp_resource_attributes.0,
            vec![
                ("deployment.environment.name".to_owned(), "prod".to_owned()),
                ("team".to_owned(), "billing".to_owned()),
            ]
        );
        assert!((config.traces.otlp_sample_ratio - 0.25).abs() < f64::EPSILON);
        assert!(parse_ratio("1.5").is_err());
        assert!(parse_ratio("-0.1").is_err());
        assert!(parse_ratio("NaN").is_err());
        assert!(parse_resource_attributes("novalue").is_err());
        assert!(parse_resource_attributes("=x").is_err());
        assert_eq!(
            parse_resource_attributes(""),
            Ok(ResourceAttributes::default())
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = Config::from_args([
            "--database-url",
            "postgres://app:db-password@db.internal/qbo",
            "--qbo-client-secret",
            "client-secret-value",
            "--webhook-verifier-token",
            "verifier-value",
            "--token-key",
            "a2V5LWtleS1rZXkta2V5LWtleS1rZXkta2V5LWtleS0=",
        ])
        .unwrap();
        let debug = format!("{config:?}");
        for secret in [
            "db-password",
            "client-secret-value",
            "verifier-value",
            "a2V5LWtleS1",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked into {debug}");
        }
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
