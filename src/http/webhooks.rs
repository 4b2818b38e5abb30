//! `POST /webhooks/qbo`: QuickBooks tells us that customers changed. The handler checks the
//! signature over the raw body, reads the events (`qbo_events`) and hands them to one use case,
//! which only writes to the database, so QBO gets its answer well within its 3 seconds.
//!
//! Answers: 200 when handled (or when the body holds no customer event), 400 for a malformed
//! body, 401 for a missing or wrong signature, 503 when no verifier token is configured or the
//! database failed (QBO sends the notification again later). Neither the token nor the body is
//! ever logged.

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use tracing::Instrument;

use super::qbo_events::{EventsError, customer_events};
use crate::{
    error::error_chain,
    service::webhooks::{CustomerEvent, QboNotifications},
};

/// The header carrying base64(HMAC-SHA256(verifier token, raw body)).
pub const SIGNATURE_HEADER: &str = "intuit-signature";

/// What the webhook route needs.
#[derive(Clone)]
pub struct WebhookEndpoint {
    verifier_token: Option<SecretString>,
    notifications: QboNotifications,
    follow_callers: bool,
}

impl WebhookEndpoint {
    /// The endpoint; without a verifier token it answers 503 to every notification.
    #[must_use]
    pub fn new(verifier_token: Option<SecretString>, notifications: QboNotifications) -> Self {
        Self {
            verifier_token,
            notifications,
            follow_callers: false,
        }
    }

    /// Makes each notification's span a child of the sender's W3C `traceparent`, when traces
    /// are exported.
    #[must_use]
    pub fn following_caller_traces(mut self, follow: bool) -> Self {
        self.follow_callers = follow;
        self
    }
}

/// The route, with its state.
pub fn routes(endpoint: WebhookEndpoint) -> Router {
    Router::new()
        .route("/webhooks/qbo", post(receive))
        .with_state(endpoint)
}

async fn receive(
    State(endpoint): State<WebhookEndpoint>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let span = tracing::info_span!(
        "webhook",
        otel.name = "webhook.qbo",
        otel.kind = "server",
        http.request.method = "POST",
        http.route = "/webhooks/qbo",
        http.response.status_code = tracing::field::Empty,
        outcome = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    if endpoint.follow_callers {
        crate::telemetry::follow_caller_trace(&span, &headers);
        crate::telemetry::record_trace_id(&span);
    }
    let (status, text, outcome) = answer(&endpoint, &headers, &body)
        .instrument(span.clone())
        .await;
    span.record("http.response.status_code", status.as_u16());
    span.record("outcome", outcome);
    metrics::counter!("qbo_sync_webhooks_total", "outcome" => outcome).increment(1);
    (status, text)
}

async fn answer(
    endpoint: &WebhookEndpoint,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, &'static str, &'static str) {
    let Some(token) = &endpoint.verifier_token else {
        tracing::warn!("QBO webhook refused: QBO_SYNC_WEBHOOK_VERIFIER_TOKEN is not set");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks are not configured: set QBO_SYNC_WEBHOOK_VERIFIER_TOKEN",
            "unconfigured",
        );
    };
    let events = match verified_events(token, headers, body) {
        Ok(events) => events,
        Err(Refusal::BadSignature { signed }) => {
            tracing::warn!(signed, "QBO webhook refused: bad or missing signature");
            return (
                StatusCode::UNAUTHORIZED,
                "missing or invalid intuit-signature",
                "unauthorized",
            );
        }
        Err(Refusal::Malformed(e)) => {
            tracing::warn!(error = %e, "QBO webhook refused: malformed body");
            return (
                StatusCode::BAD_REQUEST,
                "malformed notification",
                "malformed",
            );
        }
    };
    if events.is_empty() {
        return (StatusCode::OK, "no customer events", "ignored");
    }
    match endpoint.notifications.handle(&events).await {
        Ok(handled) => {
            tracing::info!(
                events = events.len(),
                runs_queued = handled.runs_queued,
                runs_active = handled.runs_active,
                realms_skipped = handled.realms_skipped,
                links_repointed = handled.links_repointed,
                merges_in_review = handled.merges_in_review,
                "QBO webhook handled"
            );
            (StatusCode::OK, "ok", "handled")
        }
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "QBO webhook not handled: QBO will send it again");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the notification could not be recorded now; send it again",
                "failed",
            )
        }
    }
}

/// Why a notification is refused before the use case sees it.
#[derive(Debug)]
enum Refusal {
    /// The signature header is missing, not base64, or not the body's HMAC (`signed` says
    /// whether a readable header was there).
    BadSignature { signed: bool },
    /// Signed, but not a notification.
    Malformed(EventsError),
}

/// The customer events of a notification whose signature checks out: the pure part of the
/// endpoint, which the property tests drive with arbitrary headers and bodies.
fn verified_events(
    token: &SecretString,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<CustomerEvent>, Refusal> {
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if !signature.is_some_and(|s| signature_matches(token, body, s)) {
        return Err(Refusal::BadSignature {
            signed: signature.is_some(),
        });
    }
    customer_events(body).map_err(Refusal::Malformed)
}

/// Whether `signature` is base64 of HMAC-SHA256 of `body` under the verifier token, compared
/// in constant time (the MAC's own check).
fn signature_matches(token: &SecretString, body: &[u8], signature: &str) -> bool {
    let Ok(expected) = BASE64.decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(token.expose_secret().as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
#[path = "webhooks_props.rs"]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_the_signature_over_the_raw_body() {
        // echo -n '{"a":1}' | openssl dgst -sha256 -hmac verifier -binary | base64
        let token = SecretString::from("verifier");
        let good = "dgQRJSqDHmB7uXBRprMquDYc4x9Sf+1q/ebUT0swqbg=";
        assert!(signature_matches(&token, br#"{"a":1}"#, good));
        assert!(
            !signature_matches(&token, br#"{"a": 1}"#, good),
            "re-serialised body"
        );
        assert!(!signature_matches(
            &SecretString::from("other"),
            br#"{"a":1}"#,
            good
        ));
        assert!(!signature_matches(&token, br#"{"a":1}"#, "not base64!"));
        assert!(!signature_matches(&token, br#"{"a":1}"#, ""));
    }
}
