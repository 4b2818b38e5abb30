//! The tower layer around every RPC: per-replica concurrency limit with load shedding, a
//! tracing span, and request metrics. Health and reflection are never shed, so probes keep
//! answering while the service is saturated.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use futures::future::BoxFuture;
use http::{Request, Response};
use tokio::sync::Semaphore;
use tonic::{Status, body::Body};
use tower::{Layer, Service};
use tracing::Instrument;

/// RPC paths with these prefixes bypass the concurrency limit.
const EXEMPT_PREFIXES: [&str; 2] = ["/grpc.health.v1.", "/grpc.reflection."];

/// Limits in-flight RPCs per replica and sheds the excess with UNAVAILABLE.
#[derive(Debug, Clone)]
pub struct RpcLayer {
    permits: Arc<Semaphore>,
}

impl RpcLayer {
    /// A layer admitting at most `max_in_flight` RPCs at once.
    #[must_use]
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
        }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            permits: Arc::clone(&self.permits),
        }
    }
}

/// The service [`RpcLayer`] makes.
#[derive(Debug, Clone)]
pub struct RpcService<S> {
    inner: S,
    permits: Arc<Semaphore>,
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
        let rpc = request.uri().path().to_owned();
        let exempt = EXEMPT_PREFIXES.iter().any(|p| rpc.starts_with(p));
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
        let span = tracing::info_span!("grpc", rpc = %rpc, code = tracing::field::Empty);
        Box::pin(
            async move {
                let started = Instant::now();
                let response = inner.call(request).await?;
                drop(permit);
                // Errors come as trailers-only responses with grpc-status in the headers;
                // a response without it is a success whose status follows in the trailers.
                let code = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from);
                let elapsed = started.elapsed();
                tracing::Span::current().record("code", tracing::field::debug(code));
                if exempt {
                    tracing::trace!(elapsed_ms = elapsed.as_millis() as u64, "rpc finished");
                } else {
                    tracing::info!(elapsed_ms = elapsed.as_millis() as u64, "rpc finished");
                }
                let code_label = format!("{code:?}");
                metrics::counter!("qbo_sync_grpc_requests_total", "rpc" => rpc.clone(), "code" => code_label).increment(1);
                metrics::histogram!("qbo_sync_grpc_request_duration_seconds", "rpc" => rpc).record(elapsed.as_secs_f64());
                Ok(response)
            }
            .instrument(span),
        )
    }
}
