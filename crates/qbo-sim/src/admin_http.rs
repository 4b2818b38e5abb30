//! A small admin HTTP API over a running [`Simulator`], for a simulator that runs as its own
//! process (the chaos suite kills and restarts everything around it): seed customers, issue
//! tokens, change faults, expire or supersede tokens, read the counters and the customers.
//!
//! JSON in and out, loopback only, no authentication: it is a test fixture, never exposed.
//!
//! | Route | Does |
//! | --- | --- |
//! | `GET /admin/stats` | [`SimStats`] as JSON (`limit_violations.total` included) |
//! | `PUT /admin/faults` | replaces the faults; absent fields take their defaults |
//! | `GET /admin/realms/{realm}/customers` | `[{"id", "name", "active"}]`, by Id |
//! | `POST /admin/realms/{realm}/customers` | seeds a JSON array of customers |
//! | `POST /admin/realms/{realm}/refresh-token` | `{"refresh_token"}` of a new connection |
//! | `POST /admin/realms/{realm}/authorization-code` | `{"code"}` for `{"redirect_uri"}` |
//! | `POST /admin/realms/{realm}/expire-access-tokens` | every access token ends now |
//! | `POST /admin/realms/{realm}/supersede-refresh-token` | `{"refresh_token"}` that superseded the realm's |

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{DropStyle, FaultConfig, SimStats, Simulator, ThrottleStyle};

/// The admin routes over `sim`.
pub fn router(sim: Arc<Simulator>) -> Router {
    Router::new()
        .route("/admin/stats", get(stats))
        .route("/admin/faults", put(set_faults))
        .route(
            "/admin/realms/{realm}/customers",
            get(customers).post(seed_customers),
        )
        .route("/admin/realms/{realm}/refresh-token", post(refresh_token))
        .route(
            "/admin/realms/{realm}/authorization-code",
            post(authorization_code),
        )
        .route(
            "/admin/realms/{realm}/expire-access-tokens",
            post(expire_access_tokens),
        )
        .route(
            "/admin/realms/{realm}/supersede-refresh-token",
            post(supersede_refresh_token),
        )
        .with_state(sim)
}

/// Serves the admin API on `listener` until `stop` is cancelled.
///
/// # Errors
/// When the server fails.
pub async fn serve(
    sim: Arc<Simulator>,
    listener: TcpListener,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, router(sim))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    Ok(())
}

type Sim = State<Arc<Simulator>>;

async fn stats(State(sim): Sim) -> Json<Value> {
    Json(stats_json(&sim.stats()))
}

/// The counters as JSON, field for field.
pub fn stats_json(s: &SimStats) -> Value {
    let v = s.limit_violations;
    json!({
        "requests": s.requests,
        "per_endpoint": s.per_endpoint,
        "creates": s.creates,
        "updates": s.updates,
        "replays": s.replays,
        "limit_violations": {
            "rate": v.rate, "concurrency": v.concurrency, "batch": v.batch, "total": v.total(),
        },
        "max_concurrency_seen": s.max_concurrency_seen,
        "injected_throttles": s.injected_throttles,
        "injected_server_errors": s.injected_server_errors,
        "dropped_responses": s.dropped_responses,
        "unauthorized": s.unauthorized,
        "token_outcomes": s.token_outcomes,
        "requestid_too_long": s.requestid_too_long,
    })
}

async fn set_faults(State(sim): Sim, Json(body): Json<Value>) -> Response {
    match faults_from_json(&body) {
        Ok(faults) => {
            sim.set_faults(faults);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(why) => (StatusCode::BAD_REQUEST, why).into_response(),
    }
}

/// Reads a [`FaultConfig`] from JSON: `latency_ms`, `latency_jitter_ms`, `throttle_rate`,
/// `server_error_rate`, `server_error_status`, `server_error_html`, `throttle_style`
/// (`json429`, `xml429`, `forbidden403`, `fault200`, `lowercase429`), `retry_after_secs`,
/// `drop_response_after_create`, `drop_hang_ms` (absent: the connection is reset), `seed`.
///
/// # Errors
/// A field of the wrong type or an unknown throttle style.
pub fn faults_from_json(body: &Value) -> Result<FaultConfig, String> {
    let mut f = FaultConfig::default();
    let num = |key: &str| body.get(key).filter(|v| !v.is_null());
    let millis = |key: &str| -> Result<Option<Duration>, String> {
        num(key)
            .map(|v| {
                v.as_u64()
                    .map(Duration::from_millis)
                    .ok_or(format!("{key}: ms"))
            })
            .transpose()
    };
    let rate = |key: &str| -> Result<Option<f64>, String> {
        num(key)
            .map(|v| v.as_f64().ok_or(format!("{key}: a number")))
            .transpose()
    };
    let int = |key: &str| -> Result<Option<u64>, String> {
        num(key)
            .map(|v| v.as_u64().ok_or(format!("{key}: an integer")))
            .transpose()
    };
    f.latency = millis("latency_ms")?.unwrap_or(f.latency);
    f.latency_jitter = millis("latency_jitter_ms")?.unwrap_or(f.latency_jitter);
    f.throttle_rate = rate("throttle_rate")?.unwrap_or(f.throttle_rate);
    f.server_error_rate = rate("server_error_rate")?.unwrap_or(f.server_error_rate);
    if let Some(status) = int("server_error_status")? {
        f.server_error_status = u16::try_from(status).map_err(|e| e.to_string())?;
    }
    f.server_error_html = num("server_error_html").and_then(Value::as_bool) == Some(true);
    if let Some(secs) = int("retry_after_secs")? {
        f.retry_after_secs = Some(u32::try_from(secs).map_err(|e| e.to_string())?);
    }
    if let Some(n) = int("drop_response_after_create")? {
        f.drop_response_after_create = u32::try_from(n).map_err(|e| e.to_string())?;
    }
    if let Some(hang) = millis("drop_hang_ms")? {
        f.drop_style = DropStyle::Hang(hang);
    }
    f.seed = int("seed")?.unwrap_or(f.seed);
    if let Some(style) = num("throttle_style") {
        f.throttle_style = match style.as_str() {
            Some("json429") => ThrottleStyle::Json429,
            Some("xml429") => ThrottleStyle::Xml429,
            Some("forbidden403") => ThrottleStyle::Forbidden403,
            Some("fault200") => ThrottleStyle::Fault200,
            Some("lowercase429") => ThrottleStyle::LowerCase429,
            _ => return Err(format!("throttle_style: unknown {style}")),
        };
    }
    Ok(f)
}

async fn customers(State(sim): Sim, Path(realm): Path<String>) -> Json<Value> {
    let list: Vec<Value> = sim
        .customers(&realm)
        .iter()
        .map(|c| {
            json!({
                "id": c.get("Id").cloned().unwrap_or(Value::Null),
                "name": c.get("DisplayName").cloned().unwrap_or(Value::Null),
                "active": c.get("Active").and_then(Value::as_bool).unwrap_or(true),
            })
        })
        .collect();
    Json(Value::Array(list))
}

async fn seed_customers(
    State(sim): Sim,
    Path(realm): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    match sim.seed_customers(&realm, body) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e:#}")).into_response(),
    }
}

async fn refresh_token(State(sim): Sim, Path(realm): Path<String>) -> Json<Value> {
    Json(json!({"refresh_token": sim.issue_refresh_token(&realm)}))
}

async fn authorization_code(
    State(sim): Sim,
    Path(realm): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let Some(redirect) = body.get("redirect_uri").and_then(Value::as_str) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is required").into_response();
    };
    let code = sim.issue_authorization_code(&realm, redirect);
    Json(json!({"code": code})).into_response()
}

async fn expire_access_tokens(State(sim): Sim, Path(realm): Path<String>) -> StatusCode {
    sim.expire_access_tokens(&realm);
    StatusCode::NO_CONTENT
}

async fn supersede_refresh_token(State(sim): Sim, Path(realm): Path<String>) -> Json<Value> {
    Json(json!({"refresh_token": sim.supersede_refresh_tokens(&realm)}))
}
