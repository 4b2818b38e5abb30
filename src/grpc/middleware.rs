//! The tower layer around every RPC: per-replica concurrency limit with load shedding, a
//! tracing span, and request metrics. Health and reflection are never shed, so probes keep
//! answering while the service is saturated.
//!
//! An RPC holds its place in the limit until its response body has been sent (or dropped),
//! so a server stream such as WatchSyncRun counts until it ends, not only until its headers
//! go out. Metrics and logs label an RPC with its path only when the server serves that path;
//! any other path is `unknown`, so clients cannot create unbounded series.

use std::{
    collections::HashSet,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use prost::Message;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Status, body::Body};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// RPC paths with these prefixes bypass the concurrency limit.
const EXEMPT_PREFIXES: [&str; 2] = ["/grpc.health.v1.", "/grpc.reflection."];

/// The label of every path the server does not serve.
pub const UNKNOWN_RPC: &str = "unknown";

/// The paths of health and reflection, which have no descriptor set of ours.
const STANDARD_RPCS: [&str; 4] = [
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// Every RPC path the server serves: health, reflection and every method of the services in
/// `descriptor_set` (an encoded `FileDescriptorSet`, such as `proto::FILE_DESCRIPTOR_SET`).
///
/// # Errors
/// When `descriptor_set` does not decode.
pub fn served_rpcs(descriptor_set: &[u8]) -> Result<HashSet<String>, prost::DecodeError> {
    let set = prost_types::FileDescriptorSet::decode(descriptor_set)?;
    let mut paths: HashSet<String> = STANDARD_RPCS.iter().map(|p| (*p).to_owned()).collect();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                paths.insert(format!(
                    "/{}.{}/{}",
                    file.package(),
                    service.name(),
                    method.name()
                ));
            }
        }
    }
    Ok(paths)
}

/// Limits in-flight RPCs per replica and sheds the excess with UNAVAILABLE.
#[derive(Debug, Clone)]
pub struct RpcLayer {
    permits: Arc<Semaphore>,
    known: Arc<HashSet<String>>,
    traces: bool,
}

impl RpcLayer {
    /// A layer admitting at most `max_in_flight` RPCs at once, labelling the paths in `known`
    /// (see [`served_rpcs`]) by name and every other one as [`UNKNOWN_RPC`].
    #[must_use]
    pub fn new(max_in_flight: usize, known: HashSet<String>) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
            known: Arc::new(known),
            traces: false,
        }
    }

    /// When traces are exported: makes each RPC's span a child of the caller's W3C
    /// `traceparent` and gives it OpenTelemetry's RPC attributes. Without export neither is
    /// done (there is no trace to join, and the log lines stay short).
    #[must_use]
    pub fn exporting_traces(mut self, traces: bool) -> Self {
        self.traces = traces;
        self
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            permits: Arc::clone(&self.permits),
            known: Arc::clone(&self.known),
            traces: self.traces,
        }
    }
}

/// The service [`RpcLayer`] makes.
#[derive(Debug, Clone)]
pub struct RpcService<S> {
    inner: S,
    permits: Arc<Semaphore>,
    known: Arc<HashSet<String>>,
    traces: bool,
}

impl<S> Service<Request<Body>> for RpcService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let path = request.uri().path();
        let exempt = EXEMPT_PREFIXES.iter().any(|p| path.starts_with(p));
        let rpc = if self.known.contains(path) {
            path.to_owned()
        } else {
            UNKNOWN_RPC.to_owned()
        };
        let permit = if exempt {
            None
        } else {
            Some(Arc::clone(&self.permits).try_acquire_owned())
        };
        if let Some(Err(_)) = permit {
            metrics::counter!("qbo_sync_grpc_shed_total", "rpc" => rpc.clone()).increment(1);
            tracing::warn!(rpc, "shedding an RPC: too many in flight");
            let status = Status::unavailable("the server is overloaded; retry with backoff");
            return Box::pin(async move { Ok(status.into_http()) });
        }
        // The ready clone is used for this call; a fresh clone stays for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let span = rpc_span(&rpc, exempt, self.traces);
        if self.traces {
            crate::telemetry::follow_caller_trace(&span, request.headers());
            crate::telemetry::record_trace_id(&span);
        }
        let traces = self.traces;
        Box::pin(
            async move {
                let started = Instant::now();
                let response = inner.call(request).await?;
                // Errors come as trailers-only responses with grpc-status in the headers;
                // a response without it is a success whose status follows in the trailers.
                let code = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from);
                let elapsed = started.elapsed();
                record_code(&tracing::Span::current(), code, traces);
                if exempt {
                    tracing::trace!(elapsed_ms = elapsed.as_millis() as u64, "rpc finished");
                } else {
                    tracing::info!(elapsed_ms = elapsed.as_millis() as u64, "rpc finished");
                }
                let code_label = format!("{code:?}");
                metrics::counter!("qbo_sync_grpc_requests_total", "rpc" => rpc.clone(), "code" => code_label.clone()).increment(1);
                metrics::histogram!("qbo_sync_grpc_request_duration_seconds", "rpc" => rpc, "code" => code_label).record(elapsed.as_secs_f64());
                Ok(match permit {
                    Some(Ok(permit)) => response.map(|body| Body::new(Permitted { body, _permit: permit })),
                    _ => response,
                })
            }
            .instrument(span),
        )
    }
}

/// The span of one RPC: `grpc` in the logs, `grpc.Service/Method` in exported traces, where
/// it also carries OpenTelemetry's RPC attributes. Handlers record `tenant` in it (see
/// `grpc::auth`). Health and reflection calls get a trace-level span, which the default
/// filter leaves out, so probes never fill logs or traces.
fn rpc_span(rpc: &str, exempt: bool, traces: bool) -> tracing::Span {
    let (service, method) = rpc
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((UNKNOWN_RPC, UNKNOWN_RPC));
    let short = service.rsplit('.').next().unwrap_or(service);
    let name = format!("grpc.{short}/{method}");
    macro_rules! span_at {
        ($level:expr) => {
            tracing::span!(
                $level,
                "grpc",
                otel.name = %name,
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                rpc = %rpc,
                tenant = tracing::field::Empty,
                code = tracing::field::Empty,
                trace_id = tracing::field::Empty,
            )
        };
    }
    let span = if exempt {
        span_at!(tracing::Level::TRACE)
    } else {
        span_at!(tracing::Level::INFO)
    };
    if traces {
        span.set_attribute("rpc.system", "grpc");
        span.set_attribute("rpc.service", service.to_owned());
        span.set_attribute("rpc.method", method.to_owned());
    }
    span
}

/// Records the RPC's gRPC code; the codes that mean the server failed mark the span as an
/// error (OpenTelemetry's rule for gRPC servers), the caller's mistakes do not.
fn record_code(span: &tracing::Span, code: tonic::Code, traces: bool) {
    span.record("code", tracing::field::debug(code));
    if traces {
        span.set_attribute("rpc.grpc.status_code", code as i64);
    }
    if matches!(
        code,
        tonic::Code::Unknown
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Unimplemented
            | tonic::Code::Internal
            | tonic::Code::Unavailable
            | tonic::Code::DataLoss
    ) {
        span.record("otel.status_code", "ERROR");
    }
}

/// A response body that holds its RPC's place in the in-flight limit until it is dropped,
/// which hyper does once the body (a whole stream, for a server-streaming RPC) has been sent
/// or the client went away.
struct Permitted {
    body: Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for Permitted {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
