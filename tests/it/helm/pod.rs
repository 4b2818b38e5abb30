//! The rules of the app's pod: secrets only through secretKeyRef, the probes, the shutdown
//! timing, the security contexts and the volumes.

use std::collections::BTreeMap;

use qbo_sync::{
    app::{LIVENESS_SERVICE, SERVICE_NAMES},
    config::parse_duration,
};
use serde_json::Value;

use super::{
    chart::Release,
    checks::{flag, int, list, s},
};

/// Secrets reach the container only through secretKeyRef, each from the expected Secret.
pub fn check_env(release: &Release, container: &Value) {
    let v = &release.values;
    let fullname = s(&release.one("Deployment", "").doc["metadata"]["name"]);
    let items = [
        ("DATABASE_URL", "databaseUrl"),
        ("QBO_SYNC_QBO_CLIENT_SECRET", "qboClientSecret"),
        ("QBO_SYNC_WEBHOOK_VERIFIER_TOKEN", "webhookVerifierToken"),
        ("QBO_SYNC_TOKEN_KEY", "tokenKey"),
        ("QBO_SYNC_TOKEN_KEY_PREVIOUS", "tokenKeyPrevious"),
    ];
    let env = list(&container["env"]);
    for entry in env {
        assert!(
            entry.get("value").is_none(),
            "no literal env values: {entry}"
        );
        assert!(entry["valueFrom"]["secretKeyRef"].is_object(), "{entry}");
    }
    for (name, item) in items {
        let item = &v["secrets"][item];
        let found = env.iter().find(|e| e["name"] == name);
        if s(&item["key"]).is_empty() {
            assert!(found.is_none(), "{name} is left unset");
            continue;
        }
        let reference =
            &found.unwrap_or_else(|| panic!("{name} in env"))["valueFrom"]["secretKeyRef"];
        let secret = [
            s(&item["existingSecret"]),
            s(&v["secrets"]["existingSecret"]),
            fullname,
        ]
        .into_iter()
        .find(|n| !n.is_empty())
        .unwrap();
        assert_eq!(reference["name"], secret, "{name}'s Secret");
        assert_eq!(reference["key"], item["key"], "{name}'s key");
    }
}

/// gRPC probes: liveness asks for the name that ignores the database, readiness for one that
/// follows it. With TLS on, kubelet's gRPC probe cannot connect, so HTTP probes stand in.
pub fn check_probes(v: &Value, container: &Value, grpc_port: i64) {
    let (startup, liveness, readiness) = (
        &container["startupProbe"],
        &container["livenessProbe"],
        &container["readinessProbe"],
    );
    if flag(v, "tls.enabled") {
        assert_eq!(liveness["httpGet"]["path"], "/healthz");
        assert_eq!(startup["httpGet"]["path"], "/healthz");
        assert_eq!(readiness["httpGet"]["path"], "/readyz");
        for probe in [startup, liveness, readiness] {
            assert_eq!(probe["httpGet"]["port"], "http");
            assert!(probe.get("grpc").is_none());
        }
    } else {
        for probe in [startup, liveness, readiness] {
            assert_eq!(int(&probe["grpc"]["port"]), grpc_port, "{probe}");
            assert!(probe.get("httpGet").is_none() && probe.get("exec").is_none());
        }
        assert_eq!(liveness["grpc"]["service"], LIVENESS_SERVICE);
        assert_eq!(startup["grpc"]["service"], LIVENESS_SERVICE);
        let ready = s(&readiness["grpc"]["service"]);
        assert!(
            ready.is_empty() || SERVICE_NAMES.contains(&ready),
            "{ready}"
        );
    }
    for probe in [startup, liveness, readiness] {
        assert!(int(&probe["periodSeconds"]) >= 1 && int(&probe["failureThreshold"]) >= 1);
    }
}

/// The grace period covers preStop's sleep, the service's drain and a margin.
pub fn check_shutdown(pod: &Value, container: &Value, settings: &BTreeMap<String, String>) {
    let sleep = int(&container["lifecycle"]["preStop"]["sleep"]["seconds"]);
    let drain = parse_duration(&settings["QBO_SYNC_SHUTDOWN_GRACE"])
        .unwrap()
        .as_secs() as i64;
    let period = int(&pod["terminationGracePeriodSeconds"]);
    assert!(sleep >= 1, "endpoints need time to drop the pod");
    assert!(
        period > sleep + drain,
        "{period}s must exceed {sleep}s + {drain}s"
    );
}

pub fn check_security(pod: &Value, container: &Value) {
    let pod_context = &pod["securityContext"];
    assert_eq!(pod_context["runAsNonRoot"], true);
    assert!(int(&pod_context["runAsUser"]) > 0);
    assert_eq!(pod_context["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["automountServiceAccountToken"], false);
    let context = &container["securityContext"];
    assert_eq!(context["runAsNonRoot"], true);
    assert_eq!(context["allowPrivilegeEscalation"], false);
    assert_eq!(context["readOnlyRootFilesystem"], true);
    assert_ne!(context["privileged"], true);
    assert!(list(&context["capabilities"]["drop"]).contains(&"ALL".into()));
    assert!(context["capabilities"].get("add").is_none());
}

/// The callers file comes from a Secret volume mounted as a directory (a subPath mount would
/// never see an updated Secret); the read-only root gets a writable /tmp.
pub fn check_volumes(
    pod: &Value,
    container: &Value,
    settings: &BTreeMap<String, String>,
    v: &Value,
) {
    let mounts = list(&container["volumeMounts"]);
    let volumes = list(&pod["volumes"]);
    for mount in mounts {
        assert!(mount.get("subPath").is_none(), "no subPath mounts: {mount}");
        assert!(volumes.iter().any(|vol| vol["name"] == mount["name"]));
    }
    let callers = volumes
        .iter()
        .find(|vol| vol["name"] == "callers")
        .expect("callers volume");
    let item = &callers["secret"]["items"][0];
    assert_eq!(item["key"], v["secrets"]["callers"]["key"]);
    let mount = mounts.iter().find(|m| m["name"] == "callers").unwrap();
    assert_eq!(mount["readOnly"], true);
    assert_eq!(
        settings["QBO_SYNC_CALLERS_FILE"],
        format!("{}/{}", s(&mount["mountPath"]), s(&item["path"]))
    );
    let tmp = mounts
        .iter()
        .find(|m| m["mountPath"] == "/tmp")
        .expect("/tmp");
    let tmp_volume = volumes
        .iter()
        .find(|vol| vol["name"] == tmp["name"])
        .unwrap();
    assert!(tmp_volume["emptyDir"].is_object());
    if flag(v, "tls.enabled") {
        let tls = volumes
            .iter()
            .find(|vol| vol["name"] == "tls")
            .expect("tls volume");
        assert_eq!(tls["secret"]["secretName"], v["tls"]["existingSecret"]);
        let dir = s(&mounts.iter().find(|m| m["name"] == "tls").unwrap()["mountPath"]);
        assert_eq!(settings["QBO_SYNC_TLS_CERT"], format!("{dir}/tls.crt"));
        assert_eq!(settings["QBO_SYNC_TLS_KEY"], format!("{dir}/tls.key"));
        let ca = settings.get("QBO_SYNC_TLS_CLIENT_CA");
        assert_eq!(ca.is_some(), flag(v, "tls.clientCA"));
    } else {
        assert!(!settings.keys().any(|k| k.starts_with("QBO_SYNC_TLS_")));
    }
}
