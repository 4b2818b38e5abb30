//! The Helm chart (`helm/qbo-sync`), checked without helm: a renderer for the subset of Go
//! templates the chart uses renders it for several sets of values, every manifest's YAML is
//! parsed, and the rules (probes, security, secrets, hooks, `--no-migrate`...) are asserted on
//! the result; the values files are validated against values.schema.json; the probes' service
//! names are asked of a real server whose database goes away; and the rendered containers run
//! the real binary (`process`).

mod chart;
mod checks;
mod functions;
mod lex;
mod optional;
mod parse;
mod pod;
mod process;
mod render;
mod schema;

use std::{collections::BTreeSet, time::Duration};

use clap::Args;
use qbo_sync::config::Config;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use self::{
    chart::Chart,
    checks::{SECRET_ENVS, check_release, s},
    optional::exported_metrics,
    render::{Engine, Val, go_float},
};
use crate::helpers::{TestApp, eventually};

/// Every optional object on, and the rest of the switches away from their defaults.
const EVERYTHING_ON: &str = "
serviceMonitor: {enabled: true}
prometheusRule: {enabled: true, runbookUrl: 'https://runbooks.example.com/qbo-sync'}
networkPolicy: {enabled: true}
ingress: {enabled: true, tlsSecretName: webhooks-tls}
dashboard: {enabled: true}
autoscaling: {enabled: true, minReplicas: 3}
config:
  QBO_SYNC_OTLP_ENDPOINT: 'http://otel-collector.observability:4317'
";

/// The leanest release: no migration Job (the app migrates), no budget or spread, a service
/// account made elsewhere, TLS with client certificates, and large numbers in the settings.
const MINIMAL: &str = "
fullnameOverride: sync
migration: {enabled: false}
podDisruptionBudget: {enabled: false}
topologySpread: {enabled: false}
serviceAccount: {create: false, name: workload-identity}
tls: {enabled: true, existingSecret: qbo-sync-grpc-tls, clientCA: true}
config:
  QBO_SYNC_MAX_MESSAGE_BYTES: 16777216
  QBO_SYNC_DB_MAX_CONNECTIONS: '10'
  QBO_SYNC_QBO_BASE_URL: 'https://sandbox-quickbooks.api.intuit.com'
";

fn env_flags() -> Vec<(String, String)> {
    let command = Config::augment_args(clap::Command::new("qbo-sync"));
    command
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_str()?.to_owned();
            Some((env, format!("--{}", arg.get_long()?)))
        })
        .collect()
}

#[test]
fn the_renderer_prints_and_trims_as_helm_does() {
    assert_eq!(go_float(50051.0), "50051");
    assert_eq!(go_float(123456.0), "123456");
    assert_eq!(go_float(1_000_000.0), "1e+06");
    assert_eq!(go_float(8_388_608.0), "8.388608e+06");
    assert_eq!(go_float(0.5), "0.5");
    let files = |_: &str| None;
    let defines = Default::default();
    let engine = Engine {
        defines: &defines,
        files: &files,
    };
    let data = Val::from_json(&serde_json::json!({"n": 1_000_000, "m": {"a": "x", "b": ""}}));
    let render = |source: &str| {
        let parsed = parse::parse(source).map_err(|e| e.to_string())?;
        engine.render(&parsed.nodes, &data)
    };
    assert_eq!(
        render("a: {{ .n }}\nb: {{ .n | int }}").unwrap(),
        "a: 1e+06\nb: 1000000"
    );
    let trimmed = "x:\n  {{- range $k, $v := .m }}\n  {{ $k }}: {{ $v | default \"-\" | quote }}\n  {{- end }}\n";
    assert_eq!(render(trimmed).unwrap(), "x:\n  a: \"x\"\n  b: \"-\"\n");
    assert!(
        render("{{ .missing }}")
            .unwrap_err()
            .contains("no value .missing")
    );
    assert!(
        render("{{ .n | b64enc }}")
            .unwrap_err()
            .contains("outside the supported subset")
    );
    assert!(
        render("{{ printf \"%d\" .n }}").is_err(),
        "Helm would print %!d(float64=...)"
    );
}

#[test]
fn the_values_files_match_the_schema_and_it_describes_every_value() {
    let chart = Chart::load();
    let production = chart.values(&[&chart.example("production.yaml")]);
    for (name, values) in [
        ("values.yaml", chart.defaults.clone()),
        ("production", production),
    ] {
        assert_eq!(
            schema::validate(&chart.schema, &values),
            Vec::<String>::new(),
            "{name}"
        );
        // Only the Kubernetes Affinity passes through whole; every other value is typed.
        let open = schema::undescribed(&chart.schema, &chart.schema, &values, "");
        assert_eq!(open, [".affinity (open object)"], "{name}");
    }
}

#[test]
fn the_schema_refuses_secrets_in_settings_and_weakened_pods() {
    let chart = Chart::load();
    let refused = [
        "config: {DATABASE_URL: 'postgres://app:hunter2@db/qbo'}",
        "config: {QBO_SYNC_TOKEN_KEY: a2V5}",
        "config: {QBO_SYNC_QBO_CLIENT_SECRET: s3cret}",
        "config: {QBO_SYNC_INSECURE_NO_AUTH: 'true'}",
        "config: {QBO_SYNC_GRPC_ADDR: '0.0.0.0:1'}",
        "config: {QBO_SYNC_WORKERS: eight}",
        "config: {QBO_SYNC_DB_ACQUIRE_TIMEOUT: 5 seconds}",
        "config: {QBO_SYNC_LOG_FORMAT: xml}",
        "securityContext: {readOnlyRootFilesystem: false}",
        "securityContext: {allowPrivilegeEscalation: true}",
        "securityContext: {capabilities: {drop: [NET_RAW]}}",
        "podSecurityContext: {runAsNonRoot: false}",
        "probes: {liveness: {exec: {command: [sh]}}}",
        "secrets: {databaseUrl: {key: ''}}",
        "replicaCount: two",
        "ports: {grpc: 70000}",
        "image: {digest: latest}",
        "typo: 1",
    ];
    for bad in refused {
        let errors = schema::validate(&chart.schema, &chart.values(&[bad]));
        assert!(!errors.is_empty(), "the schema accepts {bad}");
    }
}

/// The chart's setting names are the service's own: the schema's settings, the ones the chart
/// sets itself and the secrets cover every variable `serve` reads, and what the chart renders
/// parses with the service's real configuration parser.
#[test]
fn every_setting_is_one_the_service_reads() {
    let chart = Chart::load();
    let flags: std::collections::BTreeMap<String, String> = env_flags().into_iter().collect();
    let managed = [
        "QBO_SYNC_GRPC_ADDR",
        "QBO_SYNC_HTTP_ADDR",
        "QBO_SYNC_SHUTDOWN_GRACE",
        "QBO_SYNC_CALLERS_FILE",
        "QBO_SYNC_TLS_CERT",
        "QBO_SYNC_TLS_KEY",
        "QBO_SYNC_TLS_CLIENT_CA",
    ];
    let settable = chart.schema["properties"]["config"]["properties"]
        .as_object()
        .unwrap();
    let mut covered: BTreeSet<&str> = settable.keys().map(String::as_str).collect();
    covered.extend(managed.iter().chain(&SECRET_ENVS));
    // Development only: a production chart never turns authentication off.
    covered.insert("QBO_SYNC_INSECURE_NO_AUTH");
    let read: BTreeSet<&str> = flags.keys().map(String::as_str).collect();
    assert_eq!(
        covered, read,
        "the chart and src/config.rs name the same settings"
    );

    for overrides in [vec![], vec![MINIMAL], vec![EVERYTHING_ON]] {
        let release = chart.render(&chart.values(&overrides), "qbo-sync").unwrap();
        let app = release.one("ConfigMap", "sync");
        let mut args = Vec::new();
        for (key, value) in app.doc["data"].as_object().unwrap() {
            let flag = flags
                .get(key)
                .unwrap_or_else(|| panic!("{key} is no setting"));
            args.extend([flag.clone(), s(value).to_owned()]);
        }
        let config = Config::from_args(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        if overrides == [MINIMAL] {
            assert_eq!(
                config.server.max_message_bytes, 16_777_216,
                "no 1.6777216e+07"
            );
        }
    }
}

#[test]
fn every_rendering_follows_the_rules() {
    let chart = Chart::load();
    let exported = exported_metrics();
    let production = chart.example("production.yaml");
    let cases: [(&str, &str, Vec<&str>); 5] = [
        ("defaults", "qbo-sync", vec![]),
        ("production", "billing", vec![&production]),
        ("everything on", "qbo-sync-staging", vec![EVERYTHING_ON]),
        ("minimal", "qbo", vec![MINIMAL]),
        (
            "production, everything on",
            "prod",
            vec![&production, EVERYTHING_ON],
        ),
    ];
    for (case, name, overrides) in cases {
        let values = chart.values(&overrides);
        assert_eq!(
            schema::validate(&chart.schema, &values),
            Vec::<String>::new(),
            "{case}"
        );
        let release = chart
            .render(&values, name)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        check_release(&release, &exported);
    }
    let defaults = chart.render(&chart.defaults, "qbo-sync").unwrap();
    let deployment = defaults.one("Deployment", "qbo-sync");
    assert_eq!(
        deployment.doc["spec"]["replicas"], 2,
        "two replicas by default"
    );
    assert_eq!(
        deployment.name(),
        "qbo-sync",
        "a release named like the chart is not doubled"
    );
    let on = chart
        .render(&chart.values(&[EVERYTHING_ON]), "staging")
        .unwrap();
    let kinds: BTreeSet<&str> = on.manifests.iter().map(|m| m.kind()).collect();
    for kind in [
        "ServiceMonitor",
        "PrometheusRule",
        "NetworkPolicy",
        "Ingress",
        "HorizontalPodAutoscaler",
    ] {
        assert!(kinds.contains(kind), "{kind} with everything on");
    }
}

#[test]
fn tls_without_its_secret_refuses_to_render() {
    let chart = Chart::load();
    let values = chart.values(&["tls: {enabled: true}"]);
    let error = chart.render(&values, "qbo-sync").err().expect("refused");
    assert!(error.contains("tls.existingSecret is required"), "{error}");
}

/// What Kubernetes will see: the probes' service names, asked of a real server. Readiness
/// turns NOT_SERVING when the database goes away; liveness does not, so no restart follows.
#[tokio::test]
async fn the_chart_probes_answer_as_kubernetes_needs() {
    let chart = Chart::load();
    let release = chart.render(&chart.defaults, "qbo-sync").unwrap();
    let container = &release.one("Deployment", "").doc["spec"]["template"]["spec"]["containers"][0];
    let service = |probe: &str| s(&container[probe]["grpc"]["service"]).to_owned();
    let (liveness, readiness) = (service("livenessProbe"), service("readinessProbe"));
    let app = TestApp::spawn().await;
    let status = |name: String| {
        let mut health = app.health();
        async move {
            let answer = health
                .check(HealthCheckRequest { service: name })
                .await
                .ok()?;
            ServingStatus::try_from(answer.into_inner().status).ok()
        }
    };
    let both_serving = || async {
        status(liveness.clone()).await == Some(ServingStatus::Serving)
            && status(readiness.clone()).await == Some(ServingStatus::Serving)
    };
    assert!(
        eventually(Duration::from_secs(5), both_serving).await,
        "both SERVING at start"
    );
    app.proxy.set_up(false);
    let unready = || async { status(readiness.clone()).await == Some(ServingStatus::NotServing) };
    assert!(
        eventually(Duration::from_secs(10), unready).await,
        "readiness follows the database"
    );
    assert_eq!(
        status(liveness.clone()).await,
        Some(ServingStatus::Serving),
        "liveness does not"
    );
    app.proxy.set_up(true);
    assert!(
        eventually(Duration::from_secs(10), both_serving).await,
        "ready again"
    );
}
