use std::time::Duration;

use http::uri::PathAndQuery;
use qbo_sync::proto::v1 as pb;
use tonic::{Code, IntoRequest, service::interceptor::InterceptedService};
use tonic_prost::ProstCodec;

use crate::helpers::{Bearer, TestApp, eventually};

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

#[tokio::test]
async fn unknown_paths_share_one_metrics_label() {
    let app = TestApp::spawn().await;
    for (path, with_token) in [
        ("/qbosync.v1.CustomerSyncService/NoSuchRpc-5e1f", true),
        ("/made.up.Service/Probe-5e1f", false),
    ] {
        let token = app.token.as_deref().filter(|_| with_token);
        let mut grpc = tonic::client::Grpc::new(InterceptedService::new(
            app.channel.clone(),
            Bearer::token(token),
        ));
        grpc.ready().await.unwrap();
        let status = grpc
            .unary::<(), (), _>(
                ().into_request(),
                PathAndQuery::from_static(path),
                ProstCodec::default(),
            )
            .await
            .unwrap_err();
        let expected = if with_token {
            Code::Unimplemented
        } else {
            Code::Unauthenticated
        };
        assert_eq!(status.code(), expected, "{path}: {status:?}");
    }
    let body = reqwest::get(format!("http://{}/metrics", app.http_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !body.contains("5e1f"),
        "an unknown path became a label: {body}"
    );
    assert!(body.contains(r#"rpc="unknown""#), "{body}");
}

#[tokio::test]
async fn a_stream_holds_its_place_in_the_limit_until_it_ends() {
    let app = TestApp::spawn_with(&["--max-concurrent-requests", "1"]).await;
    sqlx::query(
        "INSERT INTO connections (tenant_id, realm_id, environment, state)
         VALUES ('t1', 't1-realm', 'sandbox', 'connected')",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let run = app
        .customers()
        .trigger_sync(pb::TriggerSyncRequest {
            tenant_id: "t1".into(),
            mode: pb::SyncMode::Full.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    // The run stays queued (this replica runs no jobs), so its watch stays open.
    let watch = pb::WatchSyncRunRequest {
        tenant_id: "t1".into(),
        run_id: run.run_id,
    };
    let mut stream = None;
    for _ in 0..50 {
        match app.customers().watch_sync_run(watch.clone()).await {
            Ok(response) => {
                stream = Some(response.into_inner());
                break;
            }
            // The trigger's place may be given back a moment after its answer arrived.
            Err(status) if status.code() == Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
    let mut stream = stream.expect("the watch was let in");
    assert!(
        stream.message().await.unwrap().is_some(),
        "the first state arrives"
    );
    let lookup = || async {
        app.customers()
            .get_link_status(pb::GetLinkStatusRequest {
                tenant_id: "t1".into(),
                digit_customer_id: "c1".into(),
            })
            .await
            .unwrap_err()
            .code()
    };
    for _ in 0..3 {
        assert_eq!(
            lookup().await,
            Code::Unavailable,
            "the open stream holds the only place"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(stream);
    let freed = eventually(Duration::from_secs(5), || async {
        lookup().await == Code::NotFound
    })
    .await;
    assert!(
        freed,
        "the place was never given back after the stream ended"
    );
}
