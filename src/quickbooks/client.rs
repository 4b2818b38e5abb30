//! The HTTP core of the QBO client: one place that adds `minorversion`, the bearer token and
//! JSON headers, holds a limiter permit around every call, logs `intuit_tid`, parses faults,
//! and applies the retry rules:
//!
//! * 401 → refresh the token once (under the cross-replica lock) and retry once;
//! * 429, 3001, 403 ThrottleExceeded, 502/503/504 → back off with jitter (at least the
//!   server's `Retry-After`), pausing the realm for every replica, until the throttle budget is
//!   spent; these waits are not attempts of the caller's job;
//! * 500 → retry once (Intuit: "resubmit the request once");
//! * transport failures → retried only for calls marked idempotent; a create's uncertain
//!   outcome goes back to the caller, which looks the name up before trying again.

use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::{Method, header::HeaderMap};
use secrecy::ExposeSecret;
use serde_json::Value;
use sqlx::PgPool;
use tracing::{Instrument, debug, warn};

use super::{
    QboError,
    auth::{AccessToken, OAuthApp, TokenManager},
    error::{Answer, classify},
    limiter::{CallKind, Lane, Limiter, LimiterSettings},
    model::canonicalize_keys,
};
use crate::{
    config::QboConfig,
    crypto::TokenCipher,
    domain::{RealmId, TenantId},
};

/// Knobs of the client besides the limiter's.
#[derive(Debug, Clone)]
pub(crate) struct ClientSettings {
    pub minor_version: u32,
    pub page_size: u32,
    pub batch_size: usize,
    pub stale_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub throttle_budget: Duration,
    pub name_scan_pages: u32,
}

/// The QBO Accounting API client. One per process; it is `Send + Sync`.
#[derive(Debug)]
pub struct QboClient {
    http: reqwest::Client,
    base_url: String,
    pub(crate) settings: ClientSettings,
    tokens: TokenManager,
    limiter: Limiter,
}

/// One API call to make.
pub(crate) struct Call {
    pub method: Method,
    /// The path below `/v3/company/{realm}/`, e.g. `customer/12`.
    pub path: String,
    /// Extra query parameters, values not yet encoded.
    pub params: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    pub lane: Lane,
    pub kind: CallKind,
    /// Safe to resend after a transport failure (reads, queries).
    pub idempotent: bool,
    /// Span-like name for logs, e.g. `qbo.customer.read`.
    pub op: &'static str,
}

/// A successful answer and the company that gave it.
pub(crate) struct Reply {
    /// The JSON body, keys in canonical spelling.
    pub value: Value,
    /// The realm of the token the call was made with.
    pub realm: RealmId,
}

struct RawAnswer {
    status: u16,
    tid: String,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

impl QboClient {
    /// Builds the client from configuration, a pool for connection and limiter state, and
    /// the token cipher.
    ///
    /// # Errors
    /// [`QboError::Config`] when the HTTP client cannot be built or the secret is missing.
    pub fn new(config: &QboConfig, pool: PgPool, cipher: TokenCipher) -> Result<Self, QboError> {
        let http = reqwest::Client::builder()
            .timeout(config.qbo_timeout)
            .connect_timeout(config.qbo_connect_timeout)
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| QboError::Config(format!("HTTP client: {e}")))?;
        let secret = config
            .qbo_client_secret
            .clone()
            .ok_or_else(|| QboError::Config("QBO_SYNC_QBO_CLIENT_SECRET is not set".into()))?;
        let app = OAuthApp {
            client_id: config.qbo_client_id.clone(),
            client_secret: secret,
            token_url: config.qbo_token_url.clone(),
            revoke_url: config.qbo_revoke_url.clone(),
            revoke_timeout: config.qbo_revoke_timeout,
        };
        let tokens = TokenManager::new(
            pool.clone(),
            cipher,
            app,
            http.clone(),
            config.qbo_token_skew,
        );
        let limiter = Limiter::new(pool, LimiterSettings::from_config(config));
        Ok(Self {
            http,
            base_url: config.qbo_base_url.trim_end_matches('/').to_owned(),
            settings: ClientSettings {
                minor_version: config.qbo_minor_version,
                page_size: config.qbo_page_size.clamp(1, 1000),
                batch_size: config.qbo_batch_size.clamp(1, 30),
                stale_retries: config.qbo_stale_retries,
                backoff_base: config.qbo_backoff_base,
                backoff_max: config.qbo_backoff_max,
                throttle_budget: config.qbo_throttle_budget,
                name_scan_pages: config.qbo_name_scan_pages,
            },
            tokens,
            limiter,
        })
    }

    /// The token manager (OAuth code exchange, refresh).
    #[must_use]
    pub fn tokens(&self) -> &TokenManager {
        &self.tokens
    }

    /// The shared limiter.
    #[must_use]
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// Runs one call with the retry rules of this module and returns the JSON answer with
    /// canonical key spelling, and the company that answered (the realm of the token used).
    /// The call is one span (see [`call_span`]) covering its retries.
    pub(crate) async fn execute(&self, tenant: &TenantId, call: &Call) -> Result<Reply, QboError> {
        let span = call_span(call.method.as_str(), call.op);
        span.record("tenant", tracing::field::display(tenant));
        let result = self
            .execute_with_retries(tenant, call)
            .instrument(span.clone())
            .await;
        record_call_outcome(&span, result.as_ref().err());
        result
    }

    async fn execute_with_retries(
        &self,
        tenant: &TenantId,
        call: &Call,
    ) -> Result<Reply, QboError> {
        let mut token = self.tokens.access_token(tenant).await?;
        let span = tracing::Span::current();
        span.record("realm", tracing::field::display(&token.realm));
        let (mut refreshed, mut resent_500, mut transport_retries) = (false, false, 0u32);
        let started = Instant::now();
        let (mut backoffs, mut attempts) = (0u32, 0u32);
        loop {
            attempts += 1;
            span.record("attempts", attempts);
            let waited = Instant::now();
            let permit = self
                .limiter
                .acquire(&token.realm, call.lane, call.kind)
                .await?;
            metrics::histogram!("qbo_sync_qbo_limiter_wait_seconds", "lane" => call.lane.label())
                .record(waited.elapsed().as_secs_f64());
            let outcome = self.send_once(&token, call).await;
            permit.release().await?;
            let answer = match outcome {
                Ok(raw) => match self.interpret(call, &raw) {
                    Ok(value) => Ok(value),
                    Err(e) => {
                        self.log_failure(call, &raw, &e);
                        Err((e, raw.retry_after))
                    }
                },
                Err(e) => Err((e, None)),
            };
            record_call(call, answer.as_ref().err().map(|(e, _)| e));
            let error = match answer {
                Ok(value) => {
                    return Ok(Reply {
                        value,
                        realm: token.realm,
                    });
                }
                Err(error) => error,
            };
            match error {
                (QboError::Unauthorized, _) if !refreshed => {
                    refreshed = true;
                    token = self
                        .tokens
                        .refresh_after_rejection(tenant, token.generation)
                        .await?;
                }
                (e, retry_after) if e.is_throttle_like() => {
                    let delay = self.backoff(backoffs, retry_after);
                    if started.elapsed() + delay > self.settings.throttle_budget {
                        return Err(e);
                    }
                    backoffs += 1;
                    if matches!(e, QboError::Throttled { .. }) {
                        self.limiter.pause(&token.realm, delay).await?;
                    }
                    tokio::time::sleep(delay).await;
                }
                (QboError::Server { status: 500, .. }, _) if !resent_500 => resent_500 = true,
                (QboError::Transport { .. }, _) if call.idempotent && transport_retries < 2 => {
                    transport_retries += 1;
                    tokio::time::sleep(self.backoff(transport_retries, None)).await;
                }
                (e, _) => return Err(e),
            }
        }
    }

    fn interpret(&self, call: &Call, raw: &RawAnswer) -> Result<Value, QboError> {
        let answer = Answer {
            status: raw.status,
            retry_after: raw.retry_after,
            body: &raw.body,
        };
        if let Some(error) = classify(&answer) {
            return Err(error);
        }
        debug!(op = call.op, status = raw.status, intuit_tid = %raw.tid, "qbo.call.ok");
        let mut value: Value =
            serde_json::from_slice(&raw.body).map_err(|e| QboError::decode(call.op, &e))?;
        canonicalize_keys(&mut value);
        Ok(value)
    }

    fn log_failure(&self, call: &Call, raw: &RawAnswer, error: &QboError) {
        if error.is_throttle_like() {
            debug!(op = call.op, status = raw.status, intuit_tid = %raw.tid, %error, "qbo.call.throttled");
        } else {
            warn!(op = call.op, status = raw.status, intuit_tid = %raw.tid, %error, "qbo.call.failed");
        }
        if let QboError::ValidationFault { message, .. } = error {
            debug!(op = call.op, intuit_tid = %raw.tid, fault = %message, "qbo.call.fault_text");
        }
    }

    /// Equal jitter over an exponential step, and never less than the server's Retry-After.
    fn backoff(&self, step: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .settings
            .backoff_base
            .saturating_mul(1u32 << step.min(16))
            .min(self.settings.backoff_max);
        let half = exp / 2;
        let jitter = rand::rng().random_range(0.0..=1.0);
        let delay = half + half.mul_f64(jitter);
        retry_after.map_or(delay, |ra| ra.max(delay.min(ra + half)))
    }

    async fn send_once(&self, token: &AccessToken, call: &Call) -> Result<RawAnswer, QboError> {
        let url = self.url(token, call);
        let mut request = self
            .http
            .request(call.method.clone(), url)
            .bearer_auth(token.token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = &call.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body).map_err(|e| QboError::Decode(e.to_string()))?);
        }
        let sent = Instant::now();
        let response = request.send().await.map_err(|e| {
            let error = transport_error(&e);
            warn!(op = call.op, %error, elapsed_ms = sent.elapsed().as_millis() as u64, "qbo.call.transport");
            error
        })?;
        let status = response.status().as_u16();
        let tid = intuit_tid(response.headers());
        record_answer(&tracing::Span::current(), status, &tid);
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await.map_err(|e| {
            let error = transport_error(&e);
            warn!(op = call.op, intuit_tid = %tid, %error, "qbo.call.transport_body");
            error
        })?;
        Ok(RawAnswer {
            status,
            tid,
            retry_after,
            body: body.to_vec(),
        })
    }

    fn url(&self, token: &AccessToken, call: &Call) -> String {
        let mut url = format!(
            "{}/v3/company/{}/{}?minorversion={}",
            self.base_url,
            super::query::encode_statement(token.realm.as_str()),
            call.path,
            self.settings.minor_version
        );
        for (key, value) in &call.params {
            url.push('&');
            url.push_str(key);
            url.push('=');
            url.push_str(&super::query::encode_statement(value));
        }
        url
    }
}

/// Maps a reqwest failure to [`QboError::Transport`]; only a failure to connect is certain
/// not to have reached QBO.
pub(crate) fn transport_error(error: &reqwest::Error) -> QboError {
    if error.is_timeout() {
        QboError::Transport {
            kind: "timeout",
            uncertain: true,
        }
    } else if error.is_connect() {
        QboError::Transport {
            kind: "connect",
            uncertain: false,
        }
    } else {
        QboError::Transport {
            kind: "connection lost",
            uncertain: true,
        }
    }
}

/// The `intuit_tid` response header, or `-`.
pub(crate) fn intuit_tid(headers: &HeaderMap) -> String {
    headers
        .get("intuit_tid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The span of one outgoing call to Intuit, retries included: named `METHOD endpoint` (e.g.
/// `GET qbo.customer.read`), never by its URL, whose query may hold customer names. The
/// tenant, realm, attempts, last HTTP status, `intuit_tid` and `outcome` (as in
/// `qbo_sync_qbo_requests_total`) are recorded as they become known.
pub(crate) fn call_span(method: &str, endpoint: &'static str) -> tracing::Span {
    tracing::info_span!(
        "qbo.call",
        otel.name = %format_args!("{method} {endpoint}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        endpoint,
        http.request.method = method,
        tenant = tracing::field::Empty,
        realm = tracing::field::Empty,
        attempts = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        intuit_tid = tracing::field::Empty,
        outcome = tracing::field::Empty,
    )
}

/// Records an HTTP answer in a [`call_span`].
pub(crate) fn record_answer(span: &tracing::Span, status: u16, tid: &str) {
    span.record("http.response.status_code", status);
    span.record("intuit_tid", tid);
}

/// Records how a [`call_span`] ended: `outcome` as in `qbo_sync_qbo_requests_total`, and
/// whether it failed (then the exported span is an error).
pub(crate) fn record_outcome(span: &tracing::Span, outcome: &str, failed: bool) {
    span.record("outcome", outcome);
    if failed {
        span.record("otel.status_code", "ERROR");
    }
}

/// [`record_outcome`] of an API call; a 6240 is an answer callers expect and handle, not a
/// failure of the call.
fn record_call_outcome(span: &tracing::Span, error: Option<&QboError>) {
    record_outcome(
        span,
        error.map_or("ok", QboError::outcome_label),
        error.is_some_and(|e| !matches!(e, QboError::DuplicateName { .. })),
    );
}

/// Counts one QBO request by endpoint and outcome, and each throttling answer.
fn record_call(call: &Call, error: Option<&QboError>) {
    let outcome = error.map_or("ok", QboError::outcome_label);
    metrics::counter!("qbo_sync_qbo_requests_total", "endpoint" => call.op, "outcome" => outcome)
        .increment(1);
    if matches!(error, Some(QboError::Throttled { .. })) {
        metrics::counter!("qbo_sync_qbo_throttled_total", "endpoint" => call.op).increment(1);
    }
}
