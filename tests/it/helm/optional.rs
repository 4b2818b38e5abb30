//! The rules of the optional objects: ServiceMonitor, PrometheusRule, NetworkPolicy, Ingress
//! and the Grafana dashboard; and the metric names their queries read.

use std::collections::BTreeSet;

use regex::Regex;
use serde_json::Value;

use super::{
    chart::Release,
    checks::{ALERTS, list, s, selects},
};

/// The metric names the service's source exports (`counter!("...")` and the like).
pub fn exported_metrics() -> BTreeSet<String> {
    let call = Regex::new(r#"(counter|gauge|histogram)!\(\s*"([a-z0-9_]+)""#).unwrap();
    let mut names = BTreeSet::new();
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                names.extend(call.captures_iter(&text).map(|c| c[2].to_owned()));
            }
        }
    }
    names
}

/// Every `qbo_sync_*` series a PromQL expression reads is one the service exports. The
/// exporter renders histograms as summaries (no buckets are configured), so a histogram's
/// series are its quantiles, `_sum` and `_count`, never `_bucket`.
pub fn check_query(expr: &str, exported: &BTreeSet<String>) {
    let series = Regex::new(r"qbo_sync_[a-z0-9_]+").unwrap();
    for found in series.find_iter(expr) {
        let name = found.as_str();
        let base = name
            .strip_suffix("_sum")
            .or_else(|| name.strip_suffix("_count"))
            .filter(|base| exported.contains(*base))
            .unwrap_or(name);
        assert!(
            exported.contains(base),
            "{name} in {expr:?} is not exported"
        );
    }
}

pub fn check_optional(release: &Release, exported: &BTreeSet<String>) {
    let deployment = release.one("Deployment", "");
    let pod_labels = &deployment.doc["spec"]["template"]["metadata"]["labels"];
    let service = release.one("Service", "");
    if let Some(monitor) = release.all("ServiceMonitor").first() {
        let spec = &monitor.doc["spec"];
        assert!(selects(
            &spec["selector"]["matchLabels"],
            &service.doc["metadata"]["labels"]
        ));
        let endpoint = &spec["endpoints"][0];
        assert_eq!(endpoint["path"], "/metrics");
        assert!(
            list(&service.doc["spec"]["ports"])
                .iter()
                .any(|p| p["name"] == endpoint["port"])
        );
    }
    if let Some(rule) = release.all("PrometheusRule").first() {
        check_alerts(release, &rule.doc, exported);
    }
    if let Some(policy) = release.all("NetworkPolicy").first() {
        let spec = &policy.doc["spec"];
        assert!(selects(&spec["podSelector"]["matchLabels"], pod_labels));
        let ingress_ports: Vec<&Value> = list(&spec["ingress"])
            .iter()
            .inspect(|rule| assert!(!list(&rule["from"]).is_empty(), "an open ingress rule"))
            .flat_map(|rule| list(&rule["ports"]))
            .map(|p| &p["port"])
            .collect();
        assert!(ingress_ports.contains(&&"grpc".into()) && ingress_ports.contains(&&"http".into()));
        let egress: Vec<i64> = list(&spec["egress"])
            .iter()
            .flat_map(|rule| list(&rule["ports"]))
            .map(|p| p["port"].as_i64().expect("numbered egress ports"))
            .collect();
        let database = release.values["networkPolicy"]["databasePort"]
            .as_i64()
            .unwrap();
        for port in [53, database, 443] {
            assert!(egress.contains(&port), "egress to {port}: {egress:?}");
        }
        // The trace collector is reachable exactly when traces are exported.
        let otlp = release.values["networkPolicy"]["otlpPort"]
            .as_i64()
            .unwrap();
        let exports = release.values["config"]["QBO_SYNC_OTLP_ENDPOINT"]
            .as_str()
            .is_some_and(|e| !e.is_empty());
        assert_eq!(
            egress.contains(&otlp),
            exports,
            "egress to the collector: {egress:?}"
        );
    }
    if let Some(ingress) = release.all("Ingress").first() {
        let rules = list(&ingress.doc["spec"]["rules"]);
        assert_eq!(rules.len(), 1);
        let paths = list(&rules[0]["http"]["paths"]);
        assert_eq!(paths.len(), 1, "the webhook and nothing else");
        assert_eq!(paths[0]["path"], "/webhooks/qbo");
        assert_eq!(paths[0]["pathType"], "Exact");
        let backend = &paths[0]["backend"]["service"];
        assert_eq!(backend["name"], service.doc["metadata"]["name"]);
        assert_eq!(backend["port"]["name"], "http");
    }
    if let Some(dashboard) = release
        .all("ConfigMap")
        .iter()
        .find(|m| m.name().ends_with("-dashboard"))
    {
        let json: Value = serde_json::from_str(s(&dashboard.doc["data"]["qbo-sync.json"]))
            .expect("the dashboard is JSON");
        let panels = list(&json["panels"]);
        assert!(!panels.is_empty());
        for panel in panels {
            for target in list(&panel["targets"]) {
                check_query(s(&target["expr"]), exported);
            }
        }
    }
}

fn check_alerts(release: &Release, rule: &Value, exported: &BTreeSet<String>) {
    let rules = list(&rule["spec"]["groups"][0]["rules"]);
    let names: Vec<&str> = rules.iter().map(|r| s(&r["alert"])).collect();
    assert_eq!(names, ALERTS);
    let runbook = s(&release.values["prometheusRule"]["runbookUrl"]);
    for alert in rules {
        check_query(s(&alert["expr"]), exported);
        assert!(["warning", "info", "critical"].contains(&s(&alert["labels"]["severity"])));
        let annotations = &alert["annotations"];
        assert!(!s(&annotations["summary"]).is_empty());
        // Prometheus' own templates survive Helm's rendering.
        let description = s(&annotations["description"]);
        assert!(
            !description.contains("{{ ") || description.contains("{{ $"),
            "{description}"
        );
        match annotations.get("runbook_url") {
            Some(url) => assert!(s(url).starts_with(runbook) && !runbook.is_empty()),
            None => assert!(runbook.is_empty()),
        }
    }
    let queue = &rules[0]["annotations"]["description"];
    assert!(s(queue).contains("{{ $labels.kind }}"), "{queue}");
}
