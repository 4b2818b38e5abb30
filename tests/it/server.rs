use qbo_sync::proto::v1 as pb;
use tonic::Code;

use crate::helpers::TestApp;

#[tokio::test]
async fn excess_rpcs_are_shed_but_probes_still_answer() {
    let app = TestApp::spawn_with(&["--max-concurrent-requests", "0"]).await;
    let status = app
        .customers()
        .get_link_status(pb::GetLinkStatusRequest {
            tenant_id: "t1".into(),
            digit_customer_id: "c1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("overloaded"));
    let health = app
        .health()
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await;
    assert!(health.is_ok(), "health is never shed: {health:?}");
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let app = TestApp::spawn_with(&["--max-message-bytes", "1024"]).await;
    let customers = (0..100)
        .map(|i| pb::DigitCustomer {
            id: format!("c{i}"),
            display_name: "n".repeat(50),
            ..Default::default()
        })
        .collect();
    let status = app
        .customers()
        .batch_upsert_customers(pb::BatchUpsertCustomersRequest {
            tenant_id: "t1".into(),
            customers,
            skip_push: true,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
}

#[tokio::test]
async fn metrics_are_exported() {
    let app = TestApp::spawn().await;
    let _ = app
        .customers()
        .get_link_status(pb::GetLinkStatusRequest {
            tenant_id: "t1".into(),
            digit_customer_id: "nobody".into(),
        })
        .await;
    let body = reqwest::get(format!("http://{}/metrics", app.http_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("qbo_sync_grpc_requests_total"), "{body}");
    assert!(body.contains("GetLinkStatus"), "{body}");
}
