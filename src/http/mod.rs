//! The HTTP listener's routes (axum): Prometheus metrics, liveness and readiness, and QBO
//! webhooks. Handlers are thin: they call one use case and turn its answer into a status.

mod qbo_events;
mod webhooks;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{Router, extract::State, http::StatusCode, routing::get};

pub use webhooks::{SIGNATURE_HEADER, WebhookEndpoint};

use crate::telemetry;

/// Every route of the HTTP listener. `database_up` is what the database watcher last saw.
pub fn router(database_up: Arc<AtomicBool>, webhooks: WebhookEndpoint) -> Router {
    let metrics = telemetry::metrics_handle();
    Router::new()
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        )
        .route("/healthz", get(|| std::future::ready("ok")))
        .route("/readyz", get(ready))
        .with_state(database_up)
        .merge(webhooks::routes(webhooks))
}

async fn ready(State(database_up): State<Arc<AtomicBool>>) -> (StatusCode, &'static str) {
    if database_up.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
    }
}
