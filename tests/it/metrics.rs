//! `/metrics` after real work: RPCs, QBO calls (throttled ones too), a token refresh, jobs,
//! a "Duplicate Name Exists" resolved, a sync run, and the store's gauges.

use std::time::Duration;

use qbo_sim::{FaultConfig, SimulatorConfig};
use qbo_sync::proto::v1 as pb;

use crate::push_support::{REALM, World, world};

async fn scrape(w: &World) -> String {
    reqwest::get(format!("http://{}/metrics", w.app.http_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Whether a sample line of `series` carries every one of `labels` (`name="value"`).
fn has_sample(text: &str, series: &str, labels: &[&str]) -> bool {
    text.lines().any(|line| {
        line.strip_prefix(series)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            && labels.iter().all(|l| line.contains(l))
    })
}

#[tokio::test]
async fn metrics_cover_rpcs_qbo_calls_jobs_syncs_and_the_store() {
    let w = world(
        SimulatorConfig::default(),
        &[("--metrics-interval", "100ms")],
    )
    .await;
    w.seed(&["Acme Corp"]);
    w.sim.add_vendor(REALM, "Bolt Supply", true);
    // A push whose name a vendor holds: 6240, resolved under a qualified name.
    w.upsert_named("v1", "Bolt Supply").await;
    w.run_jobs().await;
    // Every QBO access token dies: the next call is refused and the token refreshed.
    w.sim.expire_access_tokens(REALM);
    // Some answers are throttled; the client waits and retries.
    w.sim.set_faults(FaultConfig {
        throttle_rate: 0.5,
        seed: 7,
        ..FaultConfig::default()
    });
    let run = w.full().await;
    let state = w.finish(&run.run_id).await.state();
    assert_eq!(state, pb::SyncRunState::Succeeded);

    let expected: Vec<(&str, Vec<&str>)> = vec![
        (
            "qbo_sync_grpc_requests_total",
            vec![
                r#"rpc="/qbosync.v1.CustomerSyncService/TriggerSync""#,
                r#"code="Ok""#,
            ],
        ),
        (
            "qbo_sync_grpc_request_duration_seconds_count",
            vec![r#"rpc="/qbosync.v1.CustomerSyncService/UpsertCustomer""#],
        ),
        (
            "qbo_sync_qbo_requests_total",
            vec![r#"endpoint="qbo.query""#, r#"outcome="ok""#],
        ),
        (
            "qbo_sync_qbo_requests_total",
            vec![
                r#"endpoint="qbo.customer.create""#,
                r#"outcome="duplicate_name""#,
            ],
        ),
        ("qbo_sync_qbo_throttled_total", vec![]),
        (
            "qbo_sync_qbo_limiter_wait_seconds_count",
            vec![r#"lane="interactive""#],
        ),
        (
            "qbo_sync_qbo_token_refreshes_total",
            vec![r#"outcome="ok""#],
        ),
        (
            "qbo_sync_duplicate_name_total",
            vec![r#"resolution="qualified_name""#],
        ),
        ("qbo_sync_job_outcomes_total", vec![r#"outcome="done""#]),
        ("qbo_sync_job_attempts_count", vec![]),
        (
            "qbo_sync_sync_runs_total",
            vec![r#"mode="full""#, r#"outcome="succeeded""#],
        ),
        (
            "qbo_sync_sync_run_duration_seconds_count",
            vec![r#"mode="full""#],
        ),
        ("qbo_sync_jobs", vec![r#"state="queued""#]),
        ("qbo_sync_jobs_oldest_age_seconds", vec![r#"state="dead""#]),
        ("qbo_sync_links", vec![r#"method="created_in_qbo""#]),
        ("qbo_sync_review_items_open", vec![]),
        ("qbo_sync_review_items_oldest_age_seconds", vec![]),
        ("qbo_sync_connections", vec![r#"state="connected""#]),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let missing = loop {
        let text = scrape(&w).await;
        let missing: Vec<_> = expected
            .iter()
            .filter(|(series, labels)| !has_sample(&text, series, labels))
            .collect();
        if missing.is_empty() || tokio::time::Instant::now() > deadline {
            break missing;
        }
        // The store's gauges are read every 100 ms.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(missing.is_empty(), "missing from /metrics: {missing:?}");
}
