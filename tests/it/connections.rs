//! ConnectionService end to end: the real server, real PostgreSQL, and the QBO simulator's
//! OAuth endpoints over HTTP. Tokens are read back only by decrypting the stored columns with
//! the test key, as another replica would.

use base64::{Engine, engine::general_purpose::STANDARD};
use qbo_sync::{
    domain::TenantId,
    proto::v1 as pb,
    quickbooks::{Lane, QboClient, QboError},
    simulator::{Simulator, SimulatorConfig},
};
use secrecy::ExposeSecret;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::{
    helpers::TestApp,
    qbo_harness::{REDIRECT, cipher, client_config},
};

pub const REALM: &str = "9130350000000101";

/// The key `qbo_harness::cipher()` opens.
pub fn token_key() -> String {
    STANDARD.encode([42u8; 32])
}

pub async fn start() -> (Simulator, TestApp) {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let app = TestApp::spawn_against(&sim, Some(&token_key()), &[]).await;
    (sim, app)
}

pub fn by_code(tenant: &str, realm: &str, code: String) -> pb::ConnectCompanyRequest {
    pb::ConnectCompanyRequest {
        tenant_id: tenant.into(),
        realm_id: realm.into(),
        environment: pb::QboEnvironment::Sandbox as i32,
        authorization_code: code,
        redirect_uri: REDIRECT.into(),
        refresh_token: String::new(),
    }
}

pub fn by_refresh_token(tenant: &str, realm: &str, token: String) -> pb::ConnectCompanyRequest {
    pb::ConnectCompanyRequest {
        tenant_id: tenant.into(),
        realm_id: realm.into(),
        environment: pb::QboEnvironment::Production as i32,
        refresh_token: token,
        ..Default::default()
    }
}

pub async fn connect(app: &TestApp, request: pb::ConnectCompanyRequest) -> pb::Connection {
    app.connections()
        .connect_company(request)
        .await
        .unwrap()
        .into_inner()
        .connection
        .unwrap()
}

pub async fn get(app: &TestApp, tenant: &str) -> Result<pb::Connection, Status> {
    app.connections()
        .get_connection(pb::GetConnectionRequest {
            tenant_id: tenant.into(),
        })
        .await
        .map(|r| r.into_inner().connection.unwrap())
}

pub fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .unwrap()
        .reason
        .clone()
}

/// The tenant's refresh token, decrypted from its row.
pub async fn stored_refresh_token(app: &TestApp, tenant: &str) -> String {
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT refresh_token_enc FROM connections WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    cipher()
        .open(tenant, REALM, &sealed)
        .unwrap()
        .expose_secret()
        .to_owned()
}

/// Presents a refresh token at the simulator's token endpoint, as another app instance would;
/// returns the HTTP status and the OAuth `error`, if any.
pub async fn refresh_elsewhere(sim: &Simulator, token: &str) -> (u16, Option<String>) {
    let config = sim.config();
    let response = reqwest::Client::new()
        .post(sim.token_url())
        .basic_auth(&config.client_id, Some(&config.client_secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    let error = body["error"].as_str().map(str::to_owned);
    (status, error)
}

/// Every connections row as PostgreSQL prints it, bytea in hex and escape formats too.
pub async fn raw_rows(app: &TestApp) -> String {
    sqlx::query_scalar(
        "SELECT coalesce(string_agg(c::text || encode(coalesce(c.refresh_token_enc, ''), 'escape')
                 || encode(coalesce(c.access_token_enc, ''), 'escape'), E'\\n'), '')
         FROM connections c",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

pub fn token_outcome(sim: &Simulator, outcome: &str) -> u64 {
    sim.stats()
        .token_outcomes
        .get(outcome)
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn connect_by_code_stores_encrypted_tokens_that_work() {
    let (sim, app) = start().await;
    let code = sim.issue_authorization_code(REALM, REDIRECT);
    let connection = connect(&app, by_code("tenant-a", REALM, code.clone())).await;
    assert_eq!(connection.tenant_id, "tenant-a");
    assert_eq!(connection.realm_id, REALM);
    assert_eq!(connection.environment(), pb::QboEnvironment::Sandbox);
    assert_eq!(connection.state(), pb::ConnectionState::Connected);
    assert!(connection.connected_at.is_some() && connection.updated_at.is_some());
    assert!(connection.refresh_token_expires_at.is_some());
    assert_eq!(connection.last_error, "");
    assert_eq!(get(&app, "tenant-a").await.unwrap(), connection);

    // At rest the tokens are ciphertext: neither they nor the code show in any column.
    let refresh = stored_refresh_token(&app, "tenant-a").await;
    assert!(refresh.starts_with("rt-"), "{refresh}");
    let rows = raw_rows(&app).await;
    for secret in [refresh.as_str(), code.as_str(), "rt-", "at-"] {
        assert!(!rows.contains(secret), "{secret} stored in clear: {rows}");
    }

    // The stored tokens are the live ones: another replica calls QBO with them.
    let client = QboClient::new(
        &client_config(&sim, sim.config()),
        app.db.pool.clone(),
        cipher(),
    )
    .unwrap();
    let tenant = TenantId::parse("tenant-a").unwrap();
    assert_eq!(
        client
            .count_customers(&tenant, true, Lane::Interactive)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn connect_by_refresh_token_stores_the_rotated_token() {
    let (sim, app) = start().await;
    let given = sim.issue_refresh_token(REALM);
    let connection = connect(&app, by_refresh_token("tenant-a", REALM, given.clone())).await;
    assert_eq!(connection.state(), pb::ConnectionState::Connected);
    assert_eq!(connection.environment(), pb::QboEnvironment::Production);
    let stored = stored_refresh_token(&app, "tenant-a").await;
    assert_ne!(stored, given, "the rotated token must be stored");
    assert!(!raw_rows(&app).await.contains(&given));
    // Validating it spent the given token: Intuit rotates refresh tokens.
    assert_eq!(
        refresh_elsewhere(&sim, &given).await,
        (400, Some("invalid_grant".into()))
    );
}

#[tokio::test]
async fn a_superseded_refresh_token_turns_the_connection_needs_reauth() {
    let (sim, app) = start().await;
    let code = sim.issue_authorization_code(REALM, REDIRECT);
    connect(&app, by_code("tenant-a", REALM, code)).await;
    // Another app instance refreshes with our token, so ours is superseded.
    let ours = stored_refresh_token(&app, "tenant-a").await;
    assert_eq!(refresh_elsewhere(&sim, &ours).await.0, 200);
    // An API call meets a dead access token, refreshes, and hears invalid_grant.
    sim.expire_access_tokens(REALM);
    let client = QboClient::new(
        &client_config(&sim, sim.config()),
        app.db.pool.clone(),
        cipher(),
    )
    .unwrap();
    let tenant = TenantId::parse("tenant-a").unwrap();
    let error = client
        .count_customers(&tenant, true, Lane::Interactive)
        .await
        .unwrap_err();
    assert!(matches!(error, QboError::NeedsReauth), "{error:?}");

    let connection = get(&app, "tenant-a").await.unwrap();
    assert_eq!(connection.state(), pb::ConnectionState::NeedsReauth);
    assert!(
        connection.last_error.contains("invalid_grant"),
        "{}",
        connection.last_error
    );
    assert!(!connection.last_error.contains("rt-"));

    // Connecting again (same tenant, fresh consent) replaces the dead connection.
    let code = sim.issue_authorization_code(REALM, REDIRECT);
    let again = connect(&app, by_code("tenant-a", REALM, code)).await;
    assert_eq!(again.state(), pb::ConnectionState::Connected);
    assert_eq!(again.last_error, "");
    let at = |c: &pb::Connection| c.connected_at.map(|t| (t.seconds, t.nanos)).unwrap();
    assert!(at(&again) > at(&connection));
}

#[tokio::test]
async fn refused_credentials_store_nothing() {
    let (sim, app) = start().await;
    // A code nobody issued.
    let status = app
        .connections()
        .connect_company(by_code("tenant-a", REALM, "code-forged".into()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("invalid_grant"), "{status:?}");
    let violations = status.get_error_details().bad_request().unwrap().clone();
    assert_eq!(violations.field_violations[0].field, "authorization_code");
    // A code issued for another redirect URI.
    let code = sim.issue_authorization_code(REALM, "https://elsewhere.example/cb");
    let status = app
        .connections()
        .connect_company(by_code("tenant-a", REALM, code))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // A refresh token already spent.
    let token = sim.issue_refresh_token(REALM);
    assert_eq!(refresh_elsewhere(&sim, &token).await.0, 200);
    let status = app
        .connections()
        .connect_company(by_refresh_token("tenant-a", REALM, token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = status.get_error_details().bad_request().unwrap().clone();
    assert_eq!(violations.field_violations[0].field, "refresh_token");

    let status = get(&app, "tenant-a").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(raw_rows(&app).await, "");
}

#[tokio::test]
async fn a_wrong_client_secret_is_a_failed_precondition() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let key = token_key();
    let app = TestApp::spawn_against(
        &sim,
        Some(&key),
        &[("--qbo-client-secret", "not-the-secret")],
    )
    .await;
    let code = sim.issue_authorization_code(REALM, REDIRECT);
    let status = app
        .connections()
        .connect_company(by_code("tenant-a", REALM, code))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "QBO_CLIENT_CREDENTIALS_REJECTED");
    assert!(status.message().contains("invalid_client"), "{status:?}");
    assert!(!status.message().contains("not-the-secret"));
    assert_eq!(token_outcome(&sim, "invalid_client"), 1);
    assert_eq!(
        get(&app, "tenant-a").await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_unavailable() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    // A port that was just free: nothing listens there.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://{}/oauth2/v1/tokens/bearer",
            listener.local_addr().unwrap()
        )
    };
    let key = token_key();
    let app = TestApp::spawn_against(&sim, Some(&key), &[("--qbo-token-url", &closed)]).await;
    let code = sim.issue_authorization_code(REALM, REDIRECT);
    let status = app
        .connections()
        .connect_company(by_code("tenant-a", REALM, code))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), "QBO_UNAVAILABLE");
    assert_eq!(
        get(&app, "tenant-a").await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn a_company_connected_to_another_tenant_is_refused() {
    let (sim, app) = start().await;
    let code = sim.issue_authorization_code(REALM, REDIRECT);
    connect(&app, by_code("tenant-a", REALM, code)).await;
    let issued = token_outcome(&sim, "issued");

    let code_b = sim.issue_authorization_code(REALM, REDIRECT);
    let status = app
        .connections()
        .connect_company(by_code("tenant-b", REALM, code_b.clone()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "REALM_CONNECTED_TO_ANOTHER_TENANT");
    assert!(!status.message().contains("tenant-a"), "{status:?}");
    // Refused before the token endpoint: tenant B's code is not spent.
    assert_eq!(token_outcome(&sim, "issued"), issued);
    assert_eq!(
        get(&app, "tenant-b").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        get(&app, "tenant-a").await.unwrap().state(),
        pb::ConnectionState::Connected
    );

    // Once tenant A lets go, tenant B may connect the company (with the same code).
    app.connections()
        .disconnect_company(pb::DisconnectCompanyRequest {
            tenant_id: "tenant-a".into(),
        })
        .await
        .unwrap();
    let connection = connect(&app, by_code("tenant-b", REALM, code_b)).await;
    assert_eq!(connection.state(), pb::ConnectionState::Connected);
}

#[tokio::test]
async fn tenants_see_only_their_own_connection() {
    let (sim, app) = start().await;
    let code = sim.issue_authorization_code(REALM, REDIRECT);
    connect(&app, by_code("tenant-a", REALM, code)).await;
    let status = get(&app, "tenant-b").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "CONNECTION_NOT_FOUND");
    assert!(!status.message().contains(REALM), "{status:?}");
    let status = app
        .connections()
        .disconnect_company(pb::DisconnectCompanyRequest {
            tenant_id: "tenant-b".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        get(&app, "tenant-a").await.unwrap().state(),
        pb::ConnectionState::Connected
    );
}
