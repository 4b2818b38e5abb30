//! The HTTP surface: routes, the recording layer every request passes through, and the gate of
//! API calls (bearer check, limits, injected faults, latency).

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use rand::Rng as _;
use serde_json::Value;
use tokio::net::TcpListener;

use super::{
    Shared, auth, batch, cdc,
    config::DropStyle,
    conn::{ConnKill, KillableListener},
    faults::{Fault, throttle_response},
    handlers,
    limits::{SlotGuard, Violation},
    lock,
    stats::RecordedRequest,
};

/// Marks an answer that must never reach the client (the create was committed first).
#[derive(Clone, Copy)]
pub struct Dropped;

/// Serves until the simulator shuts down.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let shutdown = shared.shutdown.clone();
    let app = router(shared).into_make_service_with_connect_info::<ConnKill>();
    let result = axum::serve(KillableListener(listener), app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(error) = result {
        tracing::warn!(%error, "QBO simulator server stopped with an error");
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route(
            "/v3/company/{realm}/customer",
            post(handlers::write_customer),
        )
        .route(
            "/v3/company/{realm}/{entity}/{id}",
            get(handlers::read_entity),
        )
        .route(
            "/v3/company/{realm}/query",
            get(handlers::query_get).post(handlers::query_post),
        )
        .route("/v3/company/{realm}/cdc", get(cdc::cdc))
        .route("/v3/company/{realm}/batch", post(batch::batch))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&shared), gate));
    Router::new()
        .route("/oauth2/v1/tokens/bearer", post(auth::token))
        .route("/v2/oauth2/tokens/revoke", post(auth::revoke))
        .merge(api)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), record))
        .with_state(shared)
}

async fn not_found(State(shared): State<Arc<Shared>>) -> Response {
    let fault = Fault::validation(
        "500",
        "Unsupported Operation",
        "Operation is not supported by the simulator",
    );
    let mut response = fault.into_response(&shared.envelope_time(), false);
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

fn endpoint_label(method: &str, path: &str) -> &'static str {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (_, ["oauth2", "v1", "tokens", "bearer"]) => "oauth.token",
        (_, ["v2", "oauth2", "tokens", "revoke"]) => "oauth.revoke",
        ("POST", ["v3", "company", _, "customer"]) => "customer.write",
        ("GET", ["v3", "company", _, "customer", _]) => "customer.read",
        ("GET", ["v3", "company", _, _, _]) => "entity.read",
        (_, ["v3", "company", _, "query"]) => "query",
        (_, ["v3", "company", _, "cdc"]) => "cdc",
        (_, ["v3", "company", _, "batch"]) => "batch",
        _ => "other",
    }
}

/// The realm of an API path, if it is one.
pub fn realm_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v3/company/")?;
    rest.split('/').next().filter(|r| !r.is_empty())
}

/// A query parameter, percent-decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let query = query?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(value))
    })
}

/// Decodes `%XX` and `+` of a query string value.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let pair = bytes
            .get(i + 1)
            .copied()
            .and_then(hex)
            .zip(bytes.get(i + 2).copied().and_then(hex));
        match (bytes[i], pair) {
            (b'+', _) => out.push(b' '),
            (b'%', Some((high, low))) => {
                out.push(high * 16 + low);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Records every request, counts it and stamps the `intuit_tid` header on the answer.
async fn record(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let received_at = std::time::Instant::now();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let n = shared.tid_counter.fetch_add(1, Ordering::Relaxed);
    let tid = format!("1-{:08x}-{:024x}", n, n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let requestid = query_param(query.as_deref(), "requestid");
    let conn = request
        .extensions()
        .get::<ConnectInfo<ConnKill>>()
        .map(|c| c.0.clone());
    {
        let mut stats = lock(&shared.stats);
        stats.requests += 1;
        *stats
            .per_endpoint
            .entry(endpoint_label(&method, &path).to_owned())
            .or_default() += 1;
        if requestid.as_ref().is_some_and(|r| r.chars().count() > 50) {
            stats.requestid_too_long += 1;
        }
    }
    let mut response = next.run(request).await;
    let dropped = response.extensions().get::<Dropped>().is_some();
    if dropped {
        // Cut the connection before hyper writes a byte of the answer.
        conn.iter().for_each(ConnKill::cut);
    }
    if let Ok(value) = HeaderValue::from_str(&tid) {
        response.headers_mut().insert("intuit_tid", value);
    }
    lock(&shared.log).push(RecordedRequest {
        realm: realm_of(&path).map(str::to_owned),
        minorversion: query_param(query.as_deref(), "minorversion"),
        method,
        path,
        query,
        requestid,
        status: if dropped {
            0
        } else {
            response.status().as_u16()
        },
        intuit_tid: tid,
        received_at,
    });
    response
}

/// Bearer check, limits, injected faults and latency, in the order QBO's gateway would apply
/// them; the concurrency slot is held until the handler is done.
async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let Some(realm) = realm_of(&path).map(str::to_owned) else {
        return next.run(request).await;
    };
    let bearer = lock(&shared.auth).check_bearer(request.headers(), &realm, shared.now());
    if let Err(error) = bearer {
        lock(&shared.stats).unauthorized += 1;
        // The observed 401 body uses the lower-cased envelope.
        return Fault::authentication(error.detail()).into_response(&shared.envelope_time(), true);
    }
    let is_batch = path.ends_with("/batch");
    let admission = lock(&shared.limits).admit(&realm, is_batch, Instant::now(), &shared.config);
    note_admission(&shared, admission.violation, admission.in_flight);
    if !admission.admitted {
        return throttle(&shared);
    }
    let _slot = SlotGuard {
        shared: Arc::clone(&shared),
        realm,
    };
    if let Some(response) = injected_fault(&shared) {
        return response;
    }
    let latency = pick_latency(&shared);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    next.run(request).await
}

fn note_admission(shared: &Shared, violation: Option<Violation>, in_flight: u32) {
    let mut stats = lock(&shared.stats);
    stats.max_concurrency_seen = stats.max_concurrency_seen.max(in_flight);
    match violation {
        Some(Violation::Rate) => stats.limit_violations.rate += 1,
        Some(Violation::Concurrency) => stats.limit_violations.concurrency += 1,
        Some(Violation::Batch) => stats.limit_violations.batch += 1,
        None => {}
    }
}

/// The throttle answer in the configured style.
pub fn throttle(shared: &Shared) -> Response {
    let faults = lock(&shared.faults);
    let (style, retry, lower) = (
        faults.config.throttle_style,
        faults.config.retry_after_secs,
        faults.config.lowercase_faults,
    );
    drop(faults);
    throttle_response(style, &shared.envelope_time(), retry, lower)
}

fn injected_fault(shared: &Shared) -> Option<Response> {
    let mut faults = lock(&shared.faults);
    let (throttle_rate, error_rate) =
        (faults.config.throttle_rate, faults.config.server_error_rate);
    let status = faults.config.server_error_status;
    let html = faults.config.server_error_html;
    let lower = faults.config.lowercase_faults;
    let roll: f64 = if throttle_rate > 0.0 || error_rate > 0.0 {
        faults.rng.random()
    } else {
        1.0
    };
    drop(faults);
    if roll < throttle_rate {
        lock(&shared.stats).injected_throttles += 1;
        return Some(throttle(shared));
    }
    if roll < throttle_rate + error_rate {
        lock(&shared.stats).injected_server_errors += 1;
        if html {
            return Some(gateway_page(status));
        }
        return Some(Fault::server_error(status).into_response(&shared.envelope_time(), lower));
    }
    None
}

/// What a load balancer in front of QBO answers during an outage: HTML, not a Fault.
fn gateway_page(status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let reason = code.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1></body></html>"
    );
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "text/html")],
        body,
    )
        .into_response()
}

fn pick_latency(shared: &Shared) -> Duration {
    let mut faults = lock(&shared.faults);
    let base = faults.config.latency;
    let jitter = faults.config.latency_jitter;
    if jitter.is_zero() {
        return base;
    }
    let extra = faults.rng.random_range(0..=jitter.as_micros() as u64);
    base + Duration::from_micros(extra)
}

/// A JSON answer.
pub fn json_answer(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, axum::Json(body)).into_response()
}

/// Takes one "drop the answer after the commit" credit, if any is left.
pub fn take_drop_credit(shared: &Shared) -> Option<DropStyle> {
    let mut faults = lock(&shared.faults);
    if faults.config.drop_response_after_create == 0 {
        return None;
    }
    faults.config.drop_response_after_create -= 1;
    Some(faults.config.drop_style)
}

/// An answer that never completes: the connection is cut (after hanging, in `Hang` style).
pub async fn dropped_answer(shared: &Shared, style: DropStyle) -> Response {
    lock(&shared.stats).dropped_responses += 1;
    if let DropStyle::Hang(limit) = style {
        tokio::select! {
            () = tokio::time::sleep(limit) => {}
            () = shared.shutdown.cancelled() => {}
        }
    }
    // A body that fails at once makes hyper abort the connection before the answer is complete.
    let failing = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("answer dropped by fault injection"))
    });
    let mut response = Response::new(Body::from_stream(failing));
    response.extensions_mut().insert(Dropped);
    response
}
