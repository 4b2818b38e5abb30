//! Logging (tracing, JSON or pretty), the optional OpenTelemetry trace export over OTLP, and
//! the Prometheus metrics recorder.
//!
//! Trace export is off unless `QBO_SYNC_OTLP_ENDPOINT` is set; then the spans the service
//! makes anyway (`grpc.*`, `job.*`, `webhook.qbo`, `sync.run`, `qbo.*`, `db.*`) also go to a
//! collector, through a batch processor running on the service's own Tokio runtime. Off, no
//! exporter, layer or task exists.

use std::sync::OnceLock;

use anyhow::Context as _;
use http::HeaderMap;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::{
    Context, KeyValue,
    propagation::{Extractor, TextMapPropagator},
    trace::{Link, SpanKind, TraceContextExt as _, TraceId, TracerProvider as _},
};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    runtime,
    trace::{
        BatchConfigBuilder, Sampler, SamplingDecision, SamplingResult, SdkTracerProvider,
        ShouldSample, span_processor_with_async_runtime::BatchSpanProcessor,
    },
};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, fmt, fmt::MakeWriter, prelude::*};

use crate::config::{LogConfig, LogFormat, TraceConfig};

/// Names of the spans that may start a trace: one RPC, one job, one webhook. Other spans
/// without a parent (the worker's polling, the gauges, the health ping) are never exported,
/// so a collector sees units of work, not a query every two seconds.
const TRACE_ROOTS: [&str; 3] = ["grpc.", "job.", "webhook."];

/// What [`init`] installed; [`Telemetry::shutdown`] flushes it.
#[derive(Debug)]
#[must_use = "shut it down at the end, or the last spans are lost"]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported (an OTLP endpoint is configured).
    #[must_use]
    pub fn exports_traces(&self) -> bool {
        self.traces.is_some()
    }

    /// Exports the spans still buffered and stops the exporter: at most the export timeout
    /// when the collector does not answer. It blocks, so it runs on a blocking thread, while
    /// the runtime that carries the exporter still runs.
    pub async fn shutdown(self) {
        let Some(provider) = self.traces else {
            return;
        };
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match flushed {
            Ok(Ok(())) => tracing::debug!("trace exporter flushed and stopped"),
            Ok(Err(error)) => tracing::warn!(%error, "trace exporter did not flush cleanly"),
            Err(error) => tracing::warn!(%error, "trace exporter shutdown panicked"),
        }
    }
}

/// Installs the global tracing subscriber and, when an OTLP endpoint is configured, the trace
/// exporter. Call once, at start, inside the Tokio runtime (the exporter's batch task runs
/// on it).
///
/// # Errors
/// When the filter does not parse, the endpoint is not a URL, or a subscriber is already
/// installed.
pub fn init(log: &LogConfig, traces: &TraceConfig) -> anyhow::Result<Telemetry> {
    let provider = traces
        .endpoint()
        .map(|e| tracer_provider(e, traces))
        .transpose()?;
    subscriber(log, std::io::stdout, provider.as_ref())?
        .try_init()
        .context("installing the tracing subscriber")?;
    if let Some(endpoint) = traces.endpoint() {
        // Host and port only: a URL may carry credentials.
        let collector = endpoint
            .parse::<http::Uri>()
            .ok()
            .and_then(|uri| {
                uri.host()
                    .map(|host| format!("{host}:{}", uri.port_u16().unwrap_or_default()))
            })
            .unwrap_or_default();
        tracing::info!(
            collector,
            sample_ratio = traces.otlp_sample_ratio,
            "exporting traces over OTLP"
        );
    }
    Ok(Telemetry { traces: provider })
}

/// Installs the global tracing subscriber without trace export (`qbo-sync migrate`).
///
/// # Errors
/// When the filter does not parse or a subscriber is already installed.
pub fn init_logging(config: &LogConfig) -> anyhow::Result<()> {
    subscriber(config, std::io::stdout, None)?
        .try_init()
        .context("installing the tracing subscriber")
}

/// The service's subscriber: the filter, the OpenTelemetry layer when `traces` is given, and
/// log lines in the configured format written to `writer`. [`init`] installs it globally with
/// stdout; tests install it for their thread with a buffer, to read what the service logs.
///
/// In JSON, each line carries the fields of every span it happened in (`spans`, outermost
/// first): the RPC with its `tenant`, the job with its `run_id`, the QBO call with its
/// `realm` and `intuit_tid`.
///
/// # Errors
/// When the filter does not parse.
pub fn subscriber<W>(
    config: &LogConfig,
    writer: W,
    traces: Option<&SdkTracerProvider>,
) -> anyhow::Result<impl Subscriber + Send + Sync + 'static>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&config.log_filter)
        .with_context(|| format!("QBO_SYNC_LOG '{}' is not a valid filter", config.log_filter))?;
    let lines = match config.log_format {
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(writer)
            .boxed(),
        LogFormat::Pretty => fmt::layer().with_target(false).with_writer(writer).boxed(),
    };
    let otel = traces.map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("qbo-sync"))
            .with_threads(false)
    });
    Ok(tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(lines))
}

/// The tracer provider exporting to `endpoint` over OTLP/gRPC in batches.
fn tracer_provider(endpoint: &str, config: &TraceConfig) -> anyhow::Result<SdkTracerProvider> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(config.otlp_timeout);
    if endpoint.starts_with("https://") {
        exporter =
            exporter.with_tls_config(tonic::transport::ClientTlsConfig::new().with_webpki_roots());
    }
    let exporter = exporter
        .build()
        .with_context(|| format!("QBO_SYNC_OTLP_ENDPOINT '{endpoint}' cannot be used"))?;
    let batches = BatchConfigBuilder::default()
        .with_max_export_timeout(config.otlp_timeout)
        .build();
    let processor = BatchSpanProcessor::builder(exporter, runtime::Tokio)
        .with_batch_config(batches)
        .build();
    let attributes = config
        .otlp_resource_attributes
        .0
        .iter()
        .map(|(key, value)| KeyValue::new(key.clone(), value.clone()));
    // `builder()` reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME; ours are added after,
    // so they win.
    let resource = Resource::builder()
        .with_attributes(attributes)
        .with_service_name(config.otlp_service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(UnitsOfWork {
            ratio: Sampler::TraceIdRatioBased(config.otlp_sample_ratio),
        })))
        .with_resource(resource)
        .build())
}

/// Samples traces started here: those whose first span is a unit of work ([`TRACE_ROOTS`]),
/// at the configured ratio. A span with a parent follows its parent (`ParentBased`).
#[derive(Debug, Clone)]
struct UnitsOfWork {
    ratio: Sampler,
}

impl ShouldSample for UnitsOfWork {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        if TRACE_ROOTS.iter().any(|root| name.starts_with(root)) {
            self.ratio
                .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
        } else {
            SamplingResult {
                decision: SamplingDecision::Drop,
                attributes: Vec::new(),
                trace_state: opentelemetry::trace::TraceState::default(),
            }
        }
    }
}

/// Makes `span` a child of the caller's span named by W3C `traceparent` (and `tracestate`)
/// in `headers`, so the service's spans join the caller's trace. Without the header, or
/// without trace export, nothing changes.
pub fn follow_caller_trace(span: &tracing::Span, headers: &HeaderMap) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    // Fails only when no OpenTelemetry layer is installed: then there is nothing to join.
    let _ = span.set_parent(parent);
}

/// Records the OpenTelemetry trace id of `span` (a unit of work's root span, declared with an
/// empty `trace_id` field) in that field, so every log line inside it names the trace an
/// operator can open. Without trace export there is no trace id and nothing is recorded.
pub fn record_trace_id(span: &tracing::Span) {
    let id = span.context().span().span_context().trace_id();
    if id != TraceId::INVALID {
        span.record("trace_id", tracing::field::display(id));
    }
}

/// Reads propagation headers out of an `http::HeaderMap` (tonic's metadata is one too).
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use. Several `App`s in one process
/// (as in tests) share it, because the `metrics` facade has one global recorder.
#[must_use]
pub fn metrics_handle() -> PrometheusHandle {
    METRICS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; metrics then go there.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(name: &str) -> SamplingDecision {
        let sampler = UnitsOfWork {
            ratio: Sampler::TraceIdRatioBased(1.0),
        };
        sampler
            .should_sample(
                None,
                TraceId::from(7u128),
                name,
                &SpanKind::Internal,
                &[],
                &[],
            )
            .decision
    }

    #[test]
    fn only_units_of_work_start_traces() {
        assert_eq!(
            decide("grpc.CustomerSyncService/TriggerSync"),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(decide("job.sync_run"), SamplingDecision::RecordAndSample);
        assert_eq!(decide("webhook.qbo"), SamplingDecision::RecordAndSample);
        assert_eq!(decide("db.jobs.claim"), SamplingDecision::Drop);
        assert_eq!(decide("qbo.customer.read"), SamplingDecision::Drop);
    }

    #[test]
    fn a_ratio_of_zero_starts_none() {
        let sampler = UnitsOfWork {
            ratio: Sampler::TraceIdRatioBased(0.0),
        };
        let result = sampler.should_sample(
            None,
            TraceId::from(7u128),
            "grpc.CustomerSyncService/UpsertCustomer",
            &SpanKind::Server,
            &[],
            &[],
        );
        assert_eq!(result.decision, SamplingDecision::Drop);
    }
}
