//! CDC (window, cap, deleted entries) and batch (bId correlation, per-item faults, limits).

use std::time::Duration;

use qbo_sim::{MergeVariant, SimulatorConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::env::{Env, REALM, first_error};

fn since(env: &Env, back: chrono::TimeDelta) -> String {
    (env.sim.now() - back).to_rfc3339()
}

fn cdc_customers(body: &Value) -> Vec<Value> {
    body["CDCResponse"][0]["QueryResponse"][0]["Customer"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn cdc_returns_changes_since_and_refuses_old_dates() {
    let env = Env::start().await;
    env.create("Before").await;
    env.sim.add_vendor(REALM, "Vendor Changed", true);
    env.sim.advance_clock(Duration::from_secs(1800));
    let mark = since(&env, chrono::TimeDelta::seconds(1));
    env.create("After").await;
    env.sim
        .edit_customer(REALM, "1", json!({"Active": false}))
        .unwrap();
    let (status, body) = env
        .get(
            "cdc",
            &[("entities", "Customer,Vendor"), ("changedSince", &mark)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let changed: Vec<String> = cdc_customers(&body)
        .iter()
        .map(|c| c["DisplayName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        changed,
        ["After", "Before"],
        "oldest change first; inactive ones included"
    );
    assert_eq!(
        body["CDCResponse"][0]["QueryResponse"][1],
        json!({}),
        "no vendor changed since the mark"
    );
    assert!(body["time"].is_string());

    let (status, body) = env
        .get(
            "cdc",
            &[
                ("entities", "Customer"),
                ("changedSince", &since(&env, chrono::TimeDelta::days(31))),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        first_error(&body)["Detail"]
            .as_str()
            .unwrap()
            .contains("older than fixed days")
    );
    let (status, _) = env
        .get(
            "cdc",
            &[
                ("entities", "Customer"),
                ("changedSince", &since(&env, chrono::TimeDelta::days(29))),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = env
        .get(
            "cdc",
            &[("entities", "Customer"), ("changedSince", "yesterday")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cdc_caps_an_answer_at_1000_objects() {
    let env = Env::start().await;
    let seed: Vec<Value> = (0..1500)
        .map(|i| json!({"DisplayName": format!("C{i}")}))
        .collect();
    env.sim.seed_customers(REALM, Value::Array(seed)).unwrap();
    let (_, body) = env
        .get(
            "cdc",
            &[
                ("entities", "Customer"),
                ("changedSince", &since(&env, chrono::TimeDelta::hours(1))),
            ],
        )
        .await;
    assert_eq!(cdc_customers(&body).len(), 1000);
    assert_eq!(
        body["CDCResponse"][0]["QueryResponse"][0]["maxResults"],
        1000
    );
}

#[tokio::test]
async fn cdc_reports_merged_customers_per_variant() {
    let env = Env::with_config(SimulatorConfig {
        merge_variant: MergeVariant::Deleted,
        ..SimulatorConfig::default()
    })
    .await;
    env.create("Gone").await;
    env.create("Stays").await;
    env.sim.merge_customers(REALM, "1", "2");
    let (_, body) = env
        .get(
            "cdc",
            &[
                ("entities", "Customer"),
                ("changedSince", &since(&env, chrono::TimeDelta::hours(1))),
            ],
        )
        .await;
    let entries = cdc_customers(&body);
    let deleted = entries
        .iter()
        .find(|c| c["Id"] == "1")
        .expect("absorbed appears");
    assert_eq!(deleted["status"], "Deleted");
    assert!(deleted.get("DisplayName").is_none());

    let env = Env::with_config(SimulatorConfig {
        merge_variant: MergeVariant::Missing,
        ..SimulatorConfig::default()
    })
    .await;
    env.create("Gone").await;
    env.create("Stays").await;
    env.sim.merge_customers(REALM, "1", "2");
    let (_, body) = env
        .get(
            "cdc",
            &[
                ("entities", "Customer"),
                ("changedSince", &since(&env, chrono::TimeDelta::hours(1))),
            ],
        )
        .await;
    let ids: Vec<String> = cdc_customers(&body)
        .iter()
        .map(|c| c["Id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["2"]);
    // Under the Missing and Deleted variants the name is free again.
    env.create("gone").await;
}

#[tokio::test]
async fn batch_correlates_by_bid_with_per_item_faults() {
    let env = Env::start().await;
    env.create("Existing").await;
    let body = json!({"BatchItemRequest": [
        {"bId": "b1", "operation": "create", "Customer": {"DisplayName": "New One"}},
        {"bId": "b2", "operation": "create", "Customer": {"DisplayName": "existing"}},
        {"bId": "b3", "Query": "select * from Customer where DisplayName = 'New One'"},
        {"bId": "b4", "operation": "update", "Customer": {"Id": "1", "SyncToken": "7", "sparse": true, "Notes": "x"}},
        {"bId": "b5", "operation": "delete", "Customer": {"Id": "1", "SyncToken": "0"}},
    ]});
    let (status, answer) = env.post("batch", &[], &body).await;
    assert_eq!(status, StatusCode::OK);
    let items = answer["BatchItemResponse"].as_array().unwrap();
    let by_bid = |b: &str| items.iter().find(|i| i["bId"] == b).unwrap().clone();
    assert_eq!(by_bid("b1")["Customer"]["DisplayName"], "New One");
    assert_eq!(by_bid("b2")["Fault"]["Error"][0]["code"], "6240");
    assert_eq!(by_bid("b2")["Fault"]["type"], "ValidationFault");
    assert_eq!(
        by_bid("b3")["QueryResponse"],
        json!({}),
        "items do not see each other's results"
    );
    assert_eq!(by_bid("b4")["Fault"]["Error"][0]["code"], "5010");
    assert!(by_bid("b5")["Fault"].is_object());
    assert_eq!(env.sim.stats().creates, 2);

    let too_many: Vec<Value> = (0..31)
        .map(|i| json!({"bId": i.to_string(), "Query": "select * from Customer"}))
        .collect();
    let (status, body) = env
        .post("batch", &[], &json!({"BatchItemRequest": too_many}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn batch_requests_are_limited_per_window_and_replayed_by_requestid() {
    let config = SimulatorConfig {
        max_batches_per_window: 2,
        ..SimulatorConfig::default()
    };
    let env = Env::with_config(config).await;
    let item = |name: &str| json!({"BatchItemRequest": [{"bId": "1", "operation": "create", "Customer": {"DisplayName": name}}]});
    let (_, first) = env
        .post("batch", &[("requestid", "batch-1")], &item("B1"))
        .await;
    let (_, again) = env
        .post("batch", &[("requestid", "batch-1")], &item("B1"))
        .await;
    assert_eq!(first, again);
    assert_eq!(env.sim.customers(REALM).len(), 1);
    let (status, _) = env.post("batch", &[], &item("B3")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(env.sim.stats().limit_violations.batch, 1);
}

#[tokio::test]
async fn metered_batch_items_count_toward_the_request_window() {
    let config = SimulatorConfig {
        batch_items_count_toward_rate: true,
        max_requests_per_window: 10,
        ..SimulatorConfig::default()
    };
    let env = Env::with_config(config).await;
    let items: Vec<Value> = (0..8)
        .map(|i| json!({"bId": i.to_string(), "Query": "select * from Customer"}))
        .collect();
    let (status, _) = env
        .post("batch", &[], &json!({"BatchItemRequest": items}))
        .await;
    assert_eq!(status, StatusCode::OK);
    // 8 of 10 used: two single calls fit, the third is refused.
    assert_eq!(env.get("customer/1", &[]).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(env.get("customer/1", &[]).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        env.get("customer/1", &[]).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(env.sim.stats().limit_violations.rate, 1);
}
