//! Shared pieces of the ConnectionService tests: a server pointed at the simulator, request
//! builders, and readers of what is stored (decrypted with the test key, as another replica
//! would).

use base64::{Engine, engine::general_purpose::STANDARD};
use qbo_sim::{Simulator, SimulatorConfig};
use qbo_sync::proto::v1 as pb;
use secrecy::ExposeSecret;
use tonic::Status;
use tonic_types::StatusExt;

use crate::{
    helpers::TestApp,
    qbo_harness::{REDIRECT, cipher},
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
        ..Default::default()
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
    stored_refresh_token_of(app, tenant, REALM).await
}

/// The refresh token of a tenant connected to `realm`, decrypted from its row.
pub async fn stored_refresh_token_of(app: &TestApp, tenant: &str, realm: &str) -> String {
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT refresh_token_enc FROM connections WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    cipher()
        .open(tenant, realm, &sealed)
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
