//! The rules every rendering of the chart must follow, checked on the parsed manifests.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde_json::Value;

use super::{
    chart::{Manifest, NAMESPACE, Release},
    optional::check_optional,
    pod::{check_env, check_probes, check_security, check_shutdown, check_volumes},
};

/// The environment variables that carry secrets: never in a ConfigMap, only from a Secret.
pub const SECRET_ENVS: [&str; 5] = [
    "DATABASE_URL",
    "QBO_SYNC_QBO_CLIENT_SECRET",
    "QBO_SYNC_WEBHOOK_VERIFIER_TOKEN",
    "QBO_SYNC_TOKEN_KEY",
    "QBO_SYNC_TOKEN_KEY_PREVIOUS",
];

pub const ALERTS: [&str; 5] = [
    "QboSyncJobQueueStale",
    "QboSyncDeadJobs",
    "QboSyncConnectionsNeedReauth",
    "QboSyncReviewBacklog",
    "QboSyncQboThrottled",
];

pub fn s(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
}

pub fn list(value: &Value) -> &Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
}

pub fn flag(values: &Value, path: &str) -> bool {
    path.split('.')
        .fold(values, |v, key| &v[key])
        .as_bool()
        .unwrap_or_else(|| panic!("values.{path} is not a boolean"))
}

pub fn int(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("not an integer: {value}"))
}

/// `selector` picks `labels`: each of its labels has the same value there.
pub fn selects(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().expect("a label map");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Every rule, on one rendered release.
pub fn check_release(release: &Release, exported: &BTreeSet<String>) {
    check_metadata(release);
    check_kinds(release);
    let settings = check_config_maps(release);
    let deployment = release.one("Deployment", "");
    check_deployment(release, deployment, &settings);
    check_service_and_budget(release, deployment);
    check_migration(release, deployment);
    check_optional(release, exported);
    assert!(
        release
            .notes
            .contains(s(&release.values["secrets"]["callers"]["key"])),
        "NOTES.txt names the Secret keys:\n{}",
        release.notes
    );
}

fn check_metadata(release: &Release) {
    let name = Regex::new(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$").unwrap();
    let mut seen = BTreeSet::new();
    for m in &release.manifests {
        let doc = &m.doc;
        assert!(doc["apiVersion"].is_string(), "{}: apiVersion", m.source);
        assert!(
            name.is_match(m.name()) && m.name().len() <= 63,
            "{}: name {:?}",
            m.source,
            m.name()
        );
        assert_eq!(doc["metadata"]["namespace"], NAMESPACE, "{}", m.source);
        let labels = doc["metadata"]["labels"].as_object().expect("labels");
        assert_eq!(
            labels["app.kubernetes.io/managed-by"], "Helm",
            "{}",
            m.source
        );
        for (key, value) in labels {
            assert!(
                value.as_str().is_some_and(|v| v.len() <= 63),
                "{}: label {key}",
                m.source
            );
        }
        for (key, value) in doc["metadata"]["annotations"]
            .as_object()
            .into_iter()
            .flatten()
        {
            assert!(
                value.is_string(),
                "{}: annotation {key} must be a string",
                m.source
            );
        }
        assert!(
            seen.insert((m.kind().to_owned(), m.name().to_owned())),
            "{} twice",
            m.name()
        );
    }
}

/// Each object exists exactly when its values ask for it; the chart never renders a Secret.
fn check_kinds(release: &Release) {
    let v = &release.values;
    let count = |kind: &str| release.all(kind).len();
    assert_eq!(count("Secret"), 0, "the chart holds no secret values");
    assert_eq!(count("Deployment"), 1);
    assert_eq!(count("Service"), 1);
    let expect = [
        ("ServiceAccount", flag(v, "serviceAccount.create")),
        ("Job", flag(v, "migration.enabled")),
        (
            "PodDisruptionBudget",
            flag(v, "podDisruptionBudget.enabled"),
        ),
        ("HorizontalPodAutoscaler", flag(v, "autoscaling.enabled")),
        ("ServiceMonitor", flag(v, "serviceMonitor.enabled")),
        ("PrometheusRule", flag(v, "prometheusRule.enabled")),
        ("NetworkPolicy", flag(v, "networkPolicy.enabled")),
        ("Ingress", flag(v, "ingress.enabled")),
    ];
    for (kind, wanted) in expect {
        assert_eq!(count(kind), usize::from(wanted), "{kind}");
    }
    let config_maps =
        1 + usize::from(flag(v, "migration.enabled")) + usize::from(flag(v, "dashboard.enabled"));
    assert_eq!(count("ConfigMap"), config_maps);
}

/// No secret in any ConfigMap; returns the app's settings.
fn check_config_maps(release: &Release) -> BTreeMap<String, String> {
    let credentials = Regex::new(r"://[^/\s:@]+:[^/\s@]+@").unwrap();
    for m in release.all("ConfigMap") {
        for (key, value) in m.doc["data"].as_object().expect("data") {
            let value = value
                .as_str()
                .unwrap_or_else(|| panic!("{}: {key} must be a string", m.name()));
            assert!(
                !SECRET_ENVS.contains(&key.as_str()),
                "{}: secret {key}",
                m.name()
            );
            assert!(
                !key.ends_with("_SECRET") && !key.contains("PASSWORD"),
                "{}: {key} looks like a secret",
                m.name()
            );
            assert!(
                !credentials.is_match(value),
                "{}: {key} holds credentials",
                m.name()
            );
        }
    }
    let deployment = release.one("Deployment", "");
    let container = &deployment.doc["spec"]["template"]["spec"]["containers"][0];
    let from = s(&container["envFrom"][0]["configMapRef"]["name"]);
    let app = release.one("ConfigMap", from);
    app.doc["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), s(v).to_owned()))
        .collect()
}

fn check_deployment(release: &Release, deployment: &Manifest, settings: &BTreeMap<String, String>) {
    let v = &release.values;
    let spec = &deployment.doc["spec"];
    let pod = &spec["template"]["spec"];
    if flag(v, "autoscaling.enabled") {
        assert!(
            spec.get("replicas").is_none(),
            "the autoscaler owns the replicas"
        );
    } else {
        assert_eq!(spec["replicas"], v["replicaCount"]);
    }
    assert!(selects(
        &spec["selector"]["matchLabels"],
        &spec["template"]["metadata"]["labels"]
    ));
    let checksum = s(&spec["template"]["metadata"]["annotations"]["checksum/settings"]);
    assert!(Regex::new("^[0-9a-f]{64}$").unwrap().is_match(checksum));
    let containers = list(&pod["containers"]);
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let args: Vec<&str> = list(&container["args"]).iter().map(s).collect();
    if flag(v, "migration.enabled") {
        assert_eq!(
            args,
            ["serve", "--no-migrate"],
            "the Job migrates; the app must not"
        );
    } else {
        assert_eq!(args, ["serve"]);
    }
    let port = |name: &str| {
        list(&container["ports"])
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| int(&p["containerPort"]))
            .unwrap_or_else(|| panic!("container port {name}"))
    };
    assert_eq!(port("grpc"), int(&v["ports"]["grpc"]));
    assert_eq!(port("http"), int(&v["ports"]["http"]));
    assert_eq!(
        settings["QBO_SYNC_GRPC_ADDR"],
        format!("0.0.0.0:{}", port("grpc"))
    );
    assert_eq!(
        settings["QBO_SYNC_HTTP_ADDR"],
        format!("0.0.0.0:{}", port("http"))
    );
    check_env(release, container);
    check_probes(v, container, port("grpc"));
    check_shutdown(pod, container, settings);
    check_security(pod, container);
    let resources = &container["resources"];
    for path in [
        ["requests", "cpu"],
        ["requests", "memory"],
        ["limits", "memory"],
    ] {
        assert!(
            resources[path[0]][path[1]].is_string(),
            "resources.{}.{}",
            path[0],
            path[1]
        );
    }
    check_volumes(pod, container, settings, v);
    if flag(v, "topologySpread.enabled") {
        let labels = &spec["template"]["metadata"]["labels"];
        let constraints = list(&pod["topologySpreadConstraints"]);
        assert!(!constraints.is_empty());
        for c in constraints {
            assert!(
                selects(&c["labelSelector"]["matchLabels"], labels),
                "spread over our pods"
            );
            assert!(c["topologyKey"].is_string() && int(&c["maxSkew"]) >= 1);
        }
    }
}

fn check_service_and_budget(release: &Release, deployment: &Manifest) {
    let pod_labels = &deployment.doc["spec"]["template"]["metadata"]["labels"];
    let service = release.one("Service", "");
    assert!(selects(&service.doc["spec"]["selector"], pod_labels));
    let container = &deployment.doc["spec"]["template"]["spec"]["containers"][0];
    for port in list(&service.doc["spec"]["ports"]) {
        let target = &port["targetPort"];
        assert!(
            list(&container["ports"])
                .iter()
                .any(|p| &p["name"] == target),
            "{port}"
        );
    }
    let v = &release.values;
    let replicas = if flag(v, "autoscaling.enabled") {
        int(&v["autoscaling"]["minReplicas"])
    } else {
        int(&v["replicaCount"])
    };
    if flag(v, "podDisruptionBudget.enabled") {
        let pdb = &release.one("PodDisruptionBudget", "").doc["spec"];
        assert!(selects(&pdb["selector"]["matchLabels"], pod_labels));
        let min = int(&pdb["minAvailable"]);
        assert!(
            min >= 1 && min < replicas,
            "a drain can evict one of {replicas} (minAvailable {min})"
        );
    }
    if flag(v, "autoscaling.enabled") {
        let hpa = &release.one("HorizontalPodAutoscaler", "").doc["spec"];
        assert_eq!(hpa["scaleTargetRef"]["kind"], "Deployment");
        assert_eq!(
            hpa["scaleTargetRef"]["name"],
            deployment.doc["metadata"]["name"]
        );
        assert!(int(&hpa["maxReplicas"]) >= int(&hpa["minReplicas"]));
        assert!(!list(&hpa["metrics"]).is_empty());
    }
}

/// The migration Job is a pre-install/pre-upgrade hook running `migrate` with the database's
/// Secret, and its pod is never mistaken for the app's.
fn check_migration(release: &Release, deployment: &Manifest) {
    if !flag(&release.values, "migration.enabled") {
        return;
    }
    let job = release.one("Job", "-migrate");
    let settings = release.one("ConfigMap", "-migrate");
    let weight = |m: &Manifest| {
        let annotations = &m.doc["metadata"]["annotations"];
        assert_eq!(
            annotations["helm.sh/hook"],
            "pre-install,pre-upgrade",
            "{}",
            m.name()
        );
        assert!(s(&annotations["helm.sh/hook-delete-policy"]).contains("before-hook-creation"));
        s(&annotations["helm.sh/hook-weight"])
            .parse::<i64>()
            .unwrap()
    };
    assert!(
        weight(settings) < weight(job),
        "the Job's settings exist before it runs"
    );
    let app_settings = release.one("ConfigMap", deployment.name());
    assert_eq!(
        settings.doc["data"], app_settings.doc["data"],
        "the Job sees the app's settings"
    );
    let pod = &job.doc["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let container = &pod["containers"][0];
    let args: Vec<&str> = list(&container["args"]).iter().map(s).collect();
    assert_eq!(args, ["migrate"]);
    let app = &deployment.doc["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], app["image"]);
    assert_eq!(
        container["envFrom"][0]["configMapRef"]["name"],
        settings.doc["metadata"]["name"]
    );
    let database = |c: &Value| {
        list(&c["env"])
            .iter()
            .find(|e| e["name"] == "DATABASE_URL")
            .cloned()
            .expect("DATABASE_URL")
    };
    assert_eq!(database(container), database(app));
    check_security(pod, container);
    let job_labels = &job.doc["spec"]["template"]["metadata"]["labels"];
    let selector = &release.one("Service", "").doc["spec"]["selector"];
    assert!(
        !selects(selector, job_labels),
        "the Service must not route to the Job's pod"
    );
    // Hooks run before the chart's own objects exist: not the service account it creates.
    if let Some(account) = release.all("ServiceAccount").first() {
        assert_ne!(pod["serviceAccountName"], account.doc["metadata"]["name"]);
    }
}
