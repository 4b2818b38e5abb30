use std::time::Duration;

use qbo_sync::app::{LIVENESS_SERVICE, SERVICE_NAMES};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::helpers::{TestApp, eventually};

async fn status_of(app: &TestApp, service: &str) -> Option<ServingStatus> {
    let response = app
        .health()
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .ok()?;
    ServingStatus::try_from(response.into_inner().status).ok()
}

async fn all_are(app: &TestApp, want: ServingStatus) -> bool {
    for service in std::iter::once("").chain(SERVICE_NAMES) {
        if status_of(app, service).await != Some(want) {
            return false;
        }
    }
    true
}

#[tokio::test]
async fn health_follows_the_database_without_a_restart() {
    let app = TestApp::spawn().await;
    assert!(
        eventually(Duration::from_secs(5), || all_are(
            &app,
            ServingStatus::Serving
        ))
        .await,
        "SERVING at start"
    );

    app.proxy.set_up(false);
    assert!(
        eventually(Duration::from_secs(10), || all_are(
            &app,
            ServingStatus::NotServing
        ))
        .await,
        "NOT_SERVING while the database is unreachable"
    );
    // Liveness does not follow the database: an outage must not get replicas restarted.
    assert_eq!(
        status_of(&app, LIVENESS_SERVICE).await,
        Some(ServingStatus::Serving),
        "liveness stays SERVING while the database is unreachable"
    );
    let ready = reqwest::get(format!("http://{}/readyz", app.http_addr))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);

    app.proxy.set_up(true);
    assert!(
        eventually(Duration::from_secs(10), || all_are(
            &app,
            ServingStatus::Serving
        ))
        .await,
        "SERVING again once the database is back"
    );
    let ready = reqwest::get(format!("http://{}/readyz", app.http_addr))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn rpcs_fail_as_unavailable_while_the_database_is_down() {
    let app = TestApp::spawn().await;
    app.proxy.set_up(false);
    let status = app
        .customers()
        .get_link_status(qbo_sync::proto::v1::GetLinkStatusRequest {
            tenant_id: "t1".into(),
            digit_customer_id: "c1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        !status.message().contains("127.0.0.1"),
        "no internals leak: {}",
        status.message()
    );
}

#[tokio::test]
async fn unknown_services_are_reported_not_found() {
    let app = TestApp::spawn().await;
    let status = app
        .health()
        .check(HealthCheckRequest {
            service: "qbosync.v1.NoSuchService".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn shutdown_turns_health_not_serving_and_stops_the_server() {
    let app = TestApp::spawn().await;
    assert!(
        eventually(Duration::from_secs(5), || all_are(
            &app,
            ServingStatus::Serving
        ))
        .await
    );
    let mut watch = app
        .health()
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );

    app.shutdown.trigger(Duration::from_secs(5));
    // The watcher hears NOT_SERVING before its stream is closed by the drain.
    let next = watch
        .message()
        .await
        .unwrap()
        .expect("an update before the stream ends");
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    let result = tokio::time::timeout(Duration::from_secs(10), app.server)
        .await
        .expect("stops in time");
    result.unwrap().expect("clean stop");
}
