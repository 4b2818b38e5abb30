//! Trace export over OTLP, end to end: `qbo-sync serve` as a process, pointed at a tiny OTLP
//! collector in the test (the collector's gRPC service from `opentelemetry-proto`), an RPC
//! that carries the caller's W3C `traceparent`, then SIGTERM: the span must arrive, flushed by
//! the shutdown, as a child of the caller's span, with the service name and the RPC's
//! attributes, and the RPC's log lines must name its trace id. Without
//! `QBO_SYNC_OTLP_ENDPOINT` nothing may arrive, even with the standard `OTEL_EXPORTER_OTLP_*`
//! variables pointing at the collector, and no log line names a trace.

use std::{
    net::SocketAddr,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value},
    trace::v1::{Span, span::SpanKind},
};
use qbo_sync::proto::v1::{self as pb, customer_sync_service_client::CustomerSyncServiceClient};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpListener,
    process::{Child, Command},
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, transport::Channel};

use crate::helpers::fresh_database;

/// The caller's trace and span, as its `traceparent` names them (sampled).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// Records every export it receives.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    async fn start() -> (Self, SocketAddr) {
        let collector = Self::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        (collector, addr)
    }

    fn requests(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Every span received, with the `service.name` of its resource.
    fn spans(&self) -> Vec<(String, Span)> {
        let mut spans = Vec::new();
        for request in self.0.lock().unwrap().iter() {
            for resource_spans in &request.resource_spans {
                let attributes = resource_spans
                    .resource
                    .as_ref()
                    .map(|r| r.attributes.as_slice())
                    .unwrap_or_default();
                let service = string_attribute(attributes, "service.name").unwrap_or_default();
                for scope in &resource_spans.scope_spans {
                    for span in &scope.spans {
                        spans.push((service.clone(), span.clone()));
                    }
                }
            }
        }
        spans
    }
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| match &v.value {
            Some(any_value::Value::StringValue(s)) => Some(s.clone()),
            Some(any_value::Value::IntValue(i)) => Some(i.to_string()),
            _ => None,
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the server printed, one JSON line each.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<serde_json::Value>>>);

impl Logs {
    /// The `rpc finished` line of the RPC whose path ends with `method`.
    fn rpc_finished(&self, method: &str) -> serde_json::Value {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|l| {
                l["message"] == "rpc finished"
                    && l["spans"][0]["rpc"]
                        .as_str()
                        .is_some_and(|rpc| rpc.ends_with(method))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no 'rpc finished' line for {method}"))
    }
}

/// `qbo-sync serve` on port-0 listeners over a fresh database, with `env` set; returns the
/// child, its gRPC address (read from its "qbo-sync started" line) and its log lines.
async fn serve(env: &[(&str, String)]) -> (Child, String, Logs) {
    let db = fresh_database().await.unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_qbo-sync"));
    command
        .args(["serve", "--insecure-no-auth", "--workers", "0"])
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args(["--log-format", "json", "--log-filter", "info"])
        .env("DATABASE_URL", &db.url)
        .env_remove("QBO_SYNC_OTLP_ENDPOINT")
        // The last batch must come from the shutdown's flush, not from the timer.
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let started = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if json["message"] == "qbo-sync started" {
                return json["grpc"].as_str().unwrap().to_owned();
            }
        }
        panic!("the server ended before it started:\n{seen}");
    };
    let grpc = tokio::time::timeout(Duration::from_secs(60), started)
        .await
        .expect("started within a minute");
    // Keep reading its output, so it never blocks on a full pipe and the test can read it.
    let logs = Logs::default();
    let kept = logs.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(json) = serde_json::from_str(&line) {
                kept.0.lock().unwrap().push(json);
            }
        }
    });
    (child, grpc, logs)
}

/// One `GetLinkStatus` carrying the caller's `traceparent`.
async fn call_with_traceparent(grpc: &str) {
    let channel = Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = CustomerSyncServiceClient::new(channel);
    let mut request = Request::new(pb::GetLinkStatusRequest {
        tenant_id: "tenant-traced".into(),
        digit_customer_id: "c-1".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01")
            .parse()
            .unwrap(),
    );
    // Whatever the answer (the customer is unknown), the RPC ran.
    let _ = client.get_link_status(request).await;
}

/// SIGTERM, as Kubernetes sends; waits for a clean exit.
async fn stop(mut child: Child) {
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("stops within a minute")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn an_rpc_span_joins_the_callers_trace_and_is_flushed_at_shutdown() {
    let (collector, addr) = Collector::start().await;
    let (child, grpc, logs) = serve(&[
        ("QBO_SYNC_OTLP_ENDPOINT", format!("http://{addr}")),
        ("QBO_SYNC_OTLP_SERVICE_NAME", "qbo-sync-under-test".into()),
        (
            "QBO_SYNC_OTLP_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test".into(),
        ),
    ])
    .await;
    call_with_traceparent(&grpc).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(collector.requests(), 0, "exported before the shutdown");
    stop(child).await;
    // The RPC's log lines name the trace an operator can open.
    let finished = logs.rpc_finished("/GetLinkStatus");
    assert_eq!(finished["spans"][0]["trace_id"], TRACE_ID, "{finished}");

    let spans = collector.spans();
    let (service, rpc) = spans
        .iter()
        .find(|(_, s)| s.name == "grpc.CustomerSyncService/GetLinkStatus")
        .unwrap_or_else(|| panic!("no RPC span among {:?}", names(&spans)));
    assert_eq!(service, "qbo-sync-under-test");
    assert_eq!(hex(&rpc.trace_id), TRACE_ID, "the caller's trace");
    assert_eq!(
        hex(&rpc.parent_span_id),
        PARENT_SPAN_ID,
        "the caller's span"
    );
    assert_eq!(rpc.kind, SpanKind::Server as i32);
    let attribute = |key| string_attribute(&rpc.attributes, key);
    assert_eq!(attribute("rpc.system").as_deref(), Some("grpc"));
    assert_eq!(attribute("rpc.method").as_deref(), Some("GetLinkStatus"));
    assert_eq!(
        attribute("rpc.service").as_deref(),
        Some("qbosync.v1.CustomerSyncService")
    );
    assert_eq!(attribute("tenant").as_deref(), Some("tenant-traced"));
    assert!(attribute("rpc.grpc.status_code").is_some(), "{rpc:?}");
    // Its database work is inside it; the background polling (gauges, health pings)
    // started no trace of its own.
    assert!(
        spans
            .iter()
            .any(|(_, s)| s.name.starts_with("db.") && s.parent_span_id == rpc.span_id),
        "no database span under the RPC: {:?}",
        names(&spans)
    );
    for (_, span) in &spans {
        assert_eq!(
            hex(&span.trace_id),
            TRACE_ID,
            "a stray trace: {}",
            span.name
        );
    }
    let environment = collector.0.lock().unwrap()[0].resource_spans[0]
        .resource
        .as_ref()
        .map(|r| string_attribute(&r.attributes, "deployment.environment.name"))
        .unwrap();
    assert_eq!(environment.as_deref(), Some("test"));
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported() {
    let (collector, addr) = Collector::start().await;
    // The standard variables would send spans to the collector if an exporter existed.
    let (child, grpc, logs) = serve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("http://{addr}"),
        ),
        ("OTEL_TRACES_EXPORTER", "otlp".into()),
    ])
    .await;
    call_with_traceparent(&grpc).await;
    stop(child).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(collector.requests(), 0, "{:?}", names(&collector.spans()));
    let finished = logs.rpc_finished("/GetLinkStatus");
    assert!(finished["spans"][0].get("trace_id").is_none(), "{finished}");
}

fn names(spans: &[(String, Span)]) -> Vec<&str> {
    spans.iter().map(|(_, s)| s.name.as_str()).collect()
}
