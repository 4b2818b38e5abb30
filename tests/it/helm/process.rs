//! The chart's two containers run as the kubelet would run them: the real binary with the
//! rendered args and exactly the rendered environment (the ConfigMap's settings, a test value
//! for each Secret reference), first the migration Job on an empty database, then the app with
//! `--no-migrate`, which must become ready and stop within its grace period on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use base64::Engine as _;
use serde_json::Value;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::{
    chart::{Chart, Release},
    checks::{int, list, s},
};
use crate::helpers::{TEST_CALLER, TEST_TOKEN, TestCaller, callers_toml, empty_database};

/// A test value for each Secret reference, as the Secret would hold it.
fn secret_value(name: &str, database_url: &str) -> String {
    let key = |byte: u8| base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    match name {
        "DATABASE_URL" => database_url.to_owned(),
        "QBO_SYNC_TOKEN_KEY" => key(7),
        "QBO_SYNC_TOKEN_KEY_PREVIOUS" => format!("1:{}", key(9)),
        _ => format!("test-value-of-{name}"),
    }
}

/// The container's environment: its ConfigMap, then its Secret references. The listeners
/// move to port 0 on loopback (the machine is shared) and the callers file to a temporary
/// copy of the Secret's content; nothing else differs from the rendering.
fn environment(release: &Release, container: &Value, database_url: &str) -> Vec<(String, String)> {
    let config_map = s(&container["envFrom"][0]["configMapRef"]["name"]);
    let data = release.one("ConfigMap", config_map).doc["data"].clone();
    let callers =
        std::env::temp_dir().join(format!("qbo-sync-chart-{}.toml", uuid::Uuid::new_v4()));
    let toml = callers_toml(&[TestCaller {
        name: TEST_CALLER,
        token: TEST_TOKEN,
        scopes: &["read"],
        tenants: &["*"],
    }]);
    std::fs::write(&callers, toml).unwrap();
    let mut env: Vec<(String, String)> = data
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let value = match k.as_str() {
                "QBO_SYNC_GRPC_ADDR" | "QBO_SYNC_HTTP_ADDR" => "127.0.0.1:0".to_owned(),
                "QBO_SYNC_CALLERS_FILE" => callers.to_str().unwrap().to_owned(),
                _ => s(v).to_owned(),
            };
            (k.clone(), value)
        })
        .collect();
    for entry in list(&container["env"]) {
        let name = s(&entry["name"]);
        env.push((name.to_owned(), secret_value(name, database_url)));
    }
    env
}

fn command(container: &Value, env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_qbo-sync"));
    command
        .args(list(&container["args"]).iter().map(s))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    command
}

/// Reads the app's JSON log lines until it says where it listens.
fn started(child: &mut Child) -> (String, String, mpsc::Receiver<String>) {
    let stdout = child.stdout.take().unwrap();
    let (lines, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Ok(line) = receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let event: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if event["message"] == "qbo-sync started" {
            return (
                s(&event["grpc"]).to_owned(),
                s(&event["http"]).to_owned(),
                receiver,
            );
        }
    }
    panic!("the app did not start: {:?}", child.try_wait());
}

#[tokio::test]
async fn the_rendered_job_and_app_run_the_real_binary() {
    let chart = Chart::load();
    let values = chart.values(&[&chart.example("production.yaml")]);
    let release = chart.render(&values, "qbo-sync").unwrap();
    let (pool, url) = empty_database().await;

    let job = &release.one("Job", "-migrate").doc["spec"]["template"]["spec"]["containers"][0];
    let mut migrate = command(job, &environment(&release, job, &url));
    let output = tokio::task::spawn_blocking(move || migrate.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(qbo_sync::store::pending_migrations(&pool).await.unwrap(), 0);

    let pod = &release.one("Deployment", "").doc["spec"]["template"]["spec"];
    let app = &pod["containers"][0];
    let mut child = command(app, &environment(&release, app, &url))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (grpc, http, _logs) = started(&mut child);
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let service = s(&app[probe]["grpc"]["service"]).to_owned();
        let mut serving = false;
        for _ in 0..50 {
            let request = HealthCheckRequest {
                service: service.clone(),
            };
            let answer = health.check(request).await.map(|r| r.into_inner().status);
            if answer.is_ok_and(|status| status == ServingStatus::Serving as i32) {
                serving = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(serving, "{probe} ({service}) answers SERVING");
    }
    let ready = reqwest::get(format!("http://{http}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);

    // The kubelet's SIGTERM comes after preStop's sleep; what is left of the grace period
    // must cover the drain.
    let budget = int(&pod["terminationGracePeriodSeconds"])
        - int(&app["lifecycle"]["preStop"]["sleep"]["seconds"]);
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(budget as u64),
            "still running after {budget}s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    eprintln!(
        "stopped {:?} after SIGTERM (budget {budget}s)",
        sent.elapsed()
    );
}
