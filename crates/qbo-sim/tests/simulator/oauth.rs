//! The token endpoint, rotation, invalid_grant, expiry and the bearer check.

use std::time::Duration;

use qbo_sim::{Simulator, SimulatorConfig};
use reqwest::StatusCode;
use serde_json::Value;

use crate::env::{Env, REALM};

const REDIRECT: &str = "https://app.example/callback";

async fn token_call(sim: &Simulator, secret: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(sim.token_url())
        .basic_auth("sim-client-id", Some(secret))
        .form(form)
        .send()
        .await
        .expect("token call");
    let status = response.status();
    assert!(response.headers().contains_key("intuit_tid"));
    (status, response.json().await.expect("json body"))
}

async fn api_status(sim: &Simulator, token: &str) -> (StatusCode, Value) {
    let url = format!("{}/v3/company/{REALM}/query", sim.base_url());
    let response = reqwest::Client::new()
        .get(url)
        .query(&[("query", "select count(*) from Customer")])
        .bearer_auth(token)
        .send()
        .await
        .expect("api call");
    let status = response.status();
    (status, response.json().await.expect("json body"))
}

#[tokio::test]
async fn code_exchange_refresh_rotation_and_invalid_grant() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let code = sim.issue_authorization_code(REALM, REDIRECT);
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
    ];
    let (status, first) = token_call(&sim, "sim-client-secret", &grant).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["token_type"], "bearer");
    assert_eq!(first["expires_in"], 3600);
    assert!(first["x_refresh_token_expires_in"].as_u64().unwrap() > 0);
    let access = first["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api_status(&sim, &access).await.0, StatusCode::OK);

    // Refreshing rotates: the new refresh token works, the superseded one is invalid_grant.
    let old_refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", old_refresh.as_str()),
    ];
    let (status, second) = token_call(&sim, "sim-client-secret", &refresh).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let (status, body) = token_call(&sim, "sim-client-secret", &refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let newest = second["refresh_token"].as_str().unwrap();
    let (status, third) = token_call(
        &sim,
        "sim-client-secret",
        &[("grant_type", "refresh_token"), ("refresh_token", newest)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let latest_access = third["access_token"].as_str().unwrap();
    assert_eq!(api_status(&sim, latest_access).await.0, StatusCode::OK);

    // A code works once; exchanging it again also ends every token descending from it.
    let (status, body) = token_call(&sim, "sim-client-secret", &grant).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let latest = [
        ("grant_type", "refresh_token"),
        ("refresh_token", third["refresh_token"].as_str().unwrap()),
    ];
    assert_eq!(
        token_call(&sim, "sim-client-secret", &latest).await.1["error"],
        "invalid_grant"
    );
    assert_eq!(
        api_status(&sim, latest_access).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Unknown tokens and wrong client credentials.
    let unknown = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "never-issued"),
    ];
    assert_eq!(
        token_call(&sim, "sim-client-secret", &unknown).await.1["error"],
        "invalid_grant"
    );
    let (status, body) = token_call(&sim, "wrong-secret", &refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let outcomes = sim.stats().token_outcomes;
    assert_eq!(outcomes["issued"], 3);
    assert_eq!(outcomes["invalid_grant"], 4);
    assert_eq!(outcomes["invalid_client"], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn redirect_uri_must_match_the_authorization() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let code = sim.issue_authorization_code(REALM, REDIRECT);
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", "https://evil.example/"),
    ];
    assert_eq!(
        token_call(&sim, "sim-client-secret", &grant).await.1["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn access_tokens_expire_with_the_clock_and_on_demand() {
    let env = Env::start().await;
    assert_eq!(api_status(&env.sim, &env.token).await.0, StatusCode::OK);
    env.sim.advance_clock(Duration::from_secs(3601));
    let (status, body) = api_status(&env.sim, &env.token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The observed 401 body: lower-cased envelope, code 3200, type AUTHENTICATION.
    assert_eq!(body["fault"]["error"][0]["code"], "3200");
    assert_eq!(body["fault"]["type"], "AUTHENTICATION");
    assert!(body["time"].is_i64());

    let fresh = env.sim.issue_access_token(REALM);
    assert_eq!(api_status(&env.sim, &fresh).await.0, StatusCode::OK);
    env.sim.expire_access_tokens(REALM);
    assert_eq!(
        api_status(&env.sim, &fresh).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(env.sim.stats().unauthorized, 2);
}

#[tokio::test]
async fn tokens_are_bound_to_their_realm_and_required() {
    let env = Env::start().await;
    let other = env.sim.issue_access_token("other-realm");
    assert_eq!(
        api_status(&env.sim, &other).await.0,
        StatusCode::UNAUTHORIZED
    );
    let url = format!("{}/v3/company/{REALM}/customer/1", env.sim.base_url());
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("intuit_tid"));
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_the_connection() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let refresh = sim.issue_refresh_token(REALM);
    let (_, pair) = token_call(
        &sim,
        "sim-client-secret",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    let access = pair["access_token"].as_str().unwrap();
    let newest = pair["refresh_token"].as_str().unwrap();
    let response = reqwest::Client::new()
        .post(sim.revoke_url())
        .basic_auth("sim-client-id", Some("sim-client-secret"))
        .json(&serde_json::json!({"token": newest}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(api_status(&sim, access).await.0, StatusCode::UNAUTHORIZED);
    let again = [("grant_type", "refresh_token"), ("refresh_token", newest)];
    assert_eq!(
        token_call(&sim, "sim-client-secret", &again).await.1["error"],
        "invalid_grant"
    );
}
