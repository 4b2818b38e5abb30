//! Fault injection and the enforced limits.

use std::time::Duration;

use qbo_sim::{DropStyle, FaultConfig, SimulatorConfig, ThrottleStyle};
use reqwest::StatusCode;
use serde_json::json;

use crate::env::{Env, REALM};

#[tokio::test]
async fn rate_limit_violations_are_refused_and_counted() {
    let config = SimulatorConfig {
        max_requests_per_window: 5,
        rate_window: Duration::from_secs(2),
        ..SimulatorConfig::default()
    };
    let env = Env::with_config(config).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(env.get("customer/1", &[]).await.0);
    }
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(throttled, 2, "{statuses:?}");
    assert_eq!(env.sim.stats().limit_violations.rate, 2);
    // The window rolls: after it passes, requests are served again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_ne!(
        env.get("customer/1", &[]).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn concurrency_limit_is_enforced_and_counted() {
    let config = SimulatorConfig {
        max_concurrent: 2,
        ..SimulatorConfig::default()
    };
    let env = Env::with_config(config).await;
    env.sim.set_faults(FaultConfig {
        latency: Duration::from_secs(1),
        ..FaultConfig::default()
    });
    let calls = (0..6).map(|_| env.get("customer/1", &[]));
    let statuses: Vec<StatusCode> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(throttled, 4, "{statuses:?}");
    let stats = env.sim.stats();
    assert_eq!(stats.limit_violations.concurrency, 4);
    assert_eq!(stats.max_concurrency_seen, 2);
}

#[tokio::test]
async fn unenforced_limits_still_count_violations() {
    let config = SimulatorConfig {
        max_concurrent: 1,
        enforce_limits: false,
        ..SimulatorConfig::default()
    };
    let env = Env::with_config(config).await;
    env.sim.set_faults(FaultConfig {
        latency: Duration::from_secs(1),
        ..FaultConfig::default()
    });
    let calls = (0..3).map(|_| env.get("customer/1", &[]));
    let statuses: Vec<StatusCode> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert!(statuses.iter().all(|s| *s != StatusCode::TOO_MANY_REQUESTS));
    let stats = env.sim.stats();
    assert_eq!(stats.limit_violations.concurrency, 2);
    assert_eq!(stats.max_concurrency_seen, 3);
}

#[tokio::test]
async fn throttle_styles() {
    let env = Env::start().await;
    let styles = [
        (ThrottleStyle::Json429, 429),
        (ThrottleStyle::Xml429, 429),
        (ThrottleStyle::Forbidden403, 403),
        (ThrottleStyle::Fault200, 200),
        (ThrottleStyle::LowerCase429, 429),
    ];
    for (style, expected) in styles {
        env.sim.set_faults(FaultConfig {
            throttle_rate: 1.0,
            throttle_style: style,
            retry_after_secs: Some(7),
            ..FaultConfig::default()
        });
        let response = env
            .http
            .get(env.url("customer/1"))
            .bearer_auth(&env.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "{style:?}");
        assert_eq!(response.headers()["retry-after"], "7");
        let body = response.text().await.unwrap();
        match style {
            ThrottleStyle::Xml429 => assert!(
                body.contains(r#"<Fault type="SERVICE"><Error code="3001">"#),
                "{body}"
            ),
            ThrottleStyle::LowerCase429 => {
                assert!(body.contains(r#""fault":{"error":[{"#), "{body}")
            }
            ThrottleStyle::Forbidden403 => assert!(body.contains("ThrottleExceeded"), "{body}"),
            _ => assert!(body.contains(r#""code":"3001""#), "{body}"),
        }
    }
    assert_eq!(env.sim.stats().injected_throttles, 5);
    assert_eq!(env.sim.stats().limit_violations.total(), 0);
}

#[tokio::test]
async fn server_errors_and_lowercase_faults() {
    let env = Env::start().await;
    env.sim.set_faults(FaultConfig {
        server_error_rate: 1.0,
        server_error_status: 500,
        ..FaultConfig::default()
    });
    let (status, body) = env.get("customer/1", &[]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["Fault"]["type"], "SystemFault");
    env.sim.set_faults(FaultConfig {
        server_error_rate: 1.0,
        server_error_html: true,
        ..FaultConfig::default()
    });
    let (status, body) = env.get("customer/1", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.as_str().unwrap().starts_with("<html>"));
    env.sim.set_faults(FaultConfig {
        lowercase_faults: true,
        ..FaultConfig::default()
    });
    env.create("Taken").await;
    let (status, body) = env
        .post("customer", &[], &json!({"DisplayName": "Taken"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["fault"]["error"][0]["code"], "6240");
    assert!(
        body["fault"]["error"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("Id=1")
    );
}

#[tokio::test]
async fn a_seeded_rate_gives_the_same_faults_every_run() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let env = Env::start().await;
        env.sim.set_faults(FaultConfig {
            throttle_rate: 0.3,
            server_error_rate: 0.2,
            seed: 7,
            ..FaultConfig::default()
        });
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(env.get("customer/1", &[]).await.0.as_u16());
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].contains(&429) && runs[0].contains(&503) && runs[0].contains(&400));
}

#[tokio::test]
async fn dropped_answers_commit_the_create_and_replay_by_requestid() {
    let env = Env::start().await;
    env.sim.set_faults(FaultConfig {
        drop_response_after_create: 1,
        ..FaultConfig::default()
    });
    let send = || {
        env.http
            .post(env.url("customer"))
            .query(&[("requestid", "uncertain-1")])
            .bearer_auth(&env.token)
            .json(&json!({"DisplayName": "Uncertain Co"}))
            .send()
    };
    let outcome = match send().await {
        Ok(response) => response.bytes().await.map(|_| ()),
        Err(error) => Err(error),
    };
    assert!(
        outcome.is_err(),
        "the client must not get a complete answer"
    );
    assert_eq!(
        env.sim.customers(REALM).len(),
        1,
        "the create was committed"
    );
    let retry = send().await.unwrap();
    assert_eq!(retry.status(), StatusCode::OK);
    let body: serde_json::Value = retry.json().await.unwrap();
    assert_eq!(body["Customer"]["Id"], "1");
    let stats = env.sim.stats();
    assert_eq!(
        (stats.creates, stats.dropped_responses, stats.replays),
        (1, 1, 1)
    );
    assert_eq!(env.sim.requests()[0].status, 0);
}

#[tokio::test]
async fn hanging_answers_time_the_client_out() {
    let env = Env::start().await;
    env.sim.set_faults(FaultConfig {
        drop_response_after_create: 1,
        drop_style: DropStyle::Hang(Duration::from_secs(30)),
        ..FaultConfig::default()
    });
    let result = env
        .http
        .post(env.url("customer"))
        .bearer_auth(&env.token)
        .timeout(Duration::from_millis(300))
        .json(&json!({"DisplayName": "Slow Co"}))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    assert_eq!(env.sim.customers(REALM).len(), 1);
    env.sim.shutdown().await;
}

#[tokio::test]
async fn a_dropped_batch_gives_no_status_at_all() {
    let env = Env::start().await;
    env.sim.set_faults(FaultConfig {
        drop_response_after_create: 1,
        ..FaultConfig::default()
    });
    let body = json!({"BatchItemRequest": [{"bId": "1", "operation": "create", "Customer": {"DisplayName": "Batch Lost"}}]});
    let result = env
        .http
        .post(env.url("batch"))
        .bearer_auth(&env.token)
        .json(&body)
        .send()
        .await;
    assert!(result.is_err(), "not even a status line reaches the client");
    assert_eq!(env.sim.customers(REALM).len(), 1);
    // The next request on a fresh connection is answered normally.
    assert_eq!(env.get("customer/1", &[]).await.0, StatusCode::OK);
}

#[tokio::test]
async fn time_scaled_windows_roll_faster() {
    let config = SimulatorConfig {
        max_requests_per_window: 3,
        ..SimulatorConfig::default()
    }
    .time_scaled(30);
    assert_eq!(config.rate_window, Duration::from_secs(2));
    let env = Env::with_config(config).await;
    for _ in 0..3 {
        assert_ne!(
            env.get("customer/1", &[]).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(
        env.get("customer/1", &[]).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_ne!(
        env.get("customer/1", &[]).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let log = env.sim.requests();
    let span = log.last().unwrap().received_at - log[0].received_at;
    assert!(span >= Duration::from_millis(2100));
    assert_eq!(env.sim.config().max_requests_per_window, 3);
}
