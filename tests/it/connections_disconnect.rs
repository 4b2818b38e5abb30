//! ConnectionService: disconnecting, and starting without (or with a bad) token key.

use qbo_sim::{Simulator, SimulatorConfig};
use qbo_sync::{
    app::{App, Listeners, Migrations},
    config::Config,
    pgcluster::fresh_database,
    proto::v1 as pb,
    shutdown::Shutdown,
};
use tokio::net::TcpListener;
use tonic::Code;

use crate::{
    connections_support::{
        REALM, by_code, connect, get, raw_rows, reason, refresh_elsewhere, start,
        stored_refresh_token, token_key, token_outcome,
    },
    helpers::TestApp,
    qbo_harness::REDIRECT,
};

async fn disconnect(app: &TestApp, tenant: &str) -> Result<pb::Connection, tonic::Status> {
    app.connections()
        .disconnect_company(pb::DisconnectCompanyRequest {
            tenant_id: tenant.into(),
        })
        .await
        .map(|r| r.into_inner().connection.unwrap())
}

/// A Digit customer of the tenant linked to QBO customer 1 of its company, written directly.
async fn insert_link(app: &TestApp, tenant: &str) {
    sqlx::query("INSERT INTO digit_customers (tenant_id, id, display_name) VALUES ($1, 'c1', 'X')")
        .bind(tenant)
        .execute(&app.db.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO links (tenant_id, realm_id, digit_customer_id, qbo_customer_id, method,
                            linked_by)
         SELECT $1, realm_id, 'c1', '1', 'manual', 'test' FROM connections WHERE tenant_id = $1",
    )
    .bind(tenant)
    .execute(&app.db.pool)
    .await
    .unwrap();
}

async fn stored_token_columns(app: &TestApp, tenant: &str) -> (bool, bool, bool) {
    sqlx::query_as(
        "SELECT access_token_enc IS NOT NULL, refresh_token_enc IS NOT NULL,
                access_token_expires_at IS NOT NULL
         FROM connections WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn disconnect_revokes_at_qbo_erases_tokens_and_keeps_links() {
    let (sim, app) = start().await;
    let code = sim.issue_authorization_code(REALM, REDIRECT);
    connect(&app, by_code("tenant-a", REALM, code)).await;
    insert_link(&app, "tenant-a").await;
    let refresh = stored_refresh_token(&app, "tenant-a").await;

    let connection = disconnect(&app, "tenant-a").await.unwrap();
    assert_eq!(connection.state(), pb::ConnectionState::Disconnected);
    assert_eq!(connection.last_error, "");
    assert_eq!(connection.refresh_token_expires_at, None);
    assert_eq!(token_outcome(&sim, "revoked"), 1);
    // Intuit (the simulator) no longer honours the token.
    assert_eq!(
        refresh_elsewhere(&sim, &refresh).await,
        (400, Some("invalid_grant".into()))
    );
    assert_eq!(
        stored_token_columns(&app, "tenant-a").await,
        (false, false, false)
    );
    let links: i64 = sqlx::query_scalar("SELECT count(*) FROM links WHERE tenant_id = 'tenant-a'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(links, 1, "links survive a disconnect");
    assert_eq!(get(&app, "tenant-a").await.unwrap(), connection);

    // Again: nothing more is called or changed.
    let again = disconnect(&app, "tenant-a").await.unwrap();
    assert_eq!(again, connection);
    assert_eq!(token_outcome(&sim, "revoked"), 1);

    // A fresh consent connects the tenant again.
    let code = sim.issue_authorization_code(REALM, REDIRECT);
    let back = connect(&app, by_code("tenant-a", REALM, code)).await;
    assert_eq!(back.state(), pb::ConnectionState::Connected);
    assert_eq!(
        stored_token_columns(&app, "tenant-a").await,
        (true, true, true)
    );
}

#[tokio::test]
async fn disconnect_goes_on_when_the_revoke_endpoint_is_down() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://{}/v2/oauth2/tokens/revoke",
            listener.local_addr().unwrap()
        )
    };
    let key = token_key();
    let app = TestApp::spawn_against(&sim, Some(&key), &[("--qbo-revoke-url", &closed)]).await;
    let code = sim.issue_authorization_code(REALM, REDIRECT);
    connect(&app, by_code("tenant-a", REALM, code)).await;
    let connection = disconnect(&app, "tenant-a").await.unwrap();
    assert_eq!(connection.state(), pb::ConnectionState::Disconnected);
    assert!(
        connection.last_error.contains("revocation not confirmed"),
        "{}",
        connection.last_error
    );
    assert_eq!(
        stored_token_columns(&app, "tenant-a").await,
        (false, false, false)
    );
    assert!(!raw_rows(&app).await.contains("rt-"));
}

#[tokio::test]
async fn never_connected_tenants_are_not_found() {
    let (_sim, app) = start().await;
    let status = get(&app, "tenant-x").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "CONNECTION_NOT_FOUND");
    let status = disconnect(&app, "tenant-x").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "CONNECTION_NOT_FOUND");
}

#[tokio::test]
async fn without_a_token_key_the_service_runs_but_does_not_connect() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let app = TestApp::spawn_against(&sim, None, &[]).await;
    let code = sim.issue_authorization_code(REALM, REDIRECT);
    let status = app
        .connections()
        .connect_company(by_code("tenant-a", REALM, code))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "TOKEN_KEY_NOT_CONFIGURED");
    assert!(
        status.message().contains("QBO_SYNC_TOKEN_KEY"),
        "{status:?}"
    );
    assert_eq!(sim.stats().per_endpoint.get("oauth.token"), None);
    assert_eq!(raw_rows(&app).await, "");
    assert_eq!(
        get(&app, "tenant-a").await.unwrap_err().code(),
        Code::NotFound
    );

    // A connection stored by a replica that had the key can still be disconnected: its
    // tokens cannot be read (so not revoked) but are erased, and the note says so.
    sqlx::query(
        "INSERT INTO connections (tenant_id, realm_id, environment, state, refresh_token_enc,
             access_token_enc, access_token_expires_at)
         VALUES ('tenant-b', $1, 'sandbox', 'connected', '\\x01ff', '\\x01ff', now())",
    )
    .bind(REALM)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let connection = disconnect(&app, "tenant-b").await.unwrap();
    assert_eq!(connection.state(), pb::ConnectionState::Disconnected);
    assert!(
        connection.last_error.contains("no token key"),
        "{}",
        connection.last_error
    );
    assert_eq!(
        stored_token_columns(&app, "tenant-b").await,
        (false, false, false)
    );
    assert_eq!(sim.stats().per_endpoint.get("oauth.revoke"), None);
}

async fn build_with(flags: &[&str]) -> anyhow::Result<App> {
    let db = fresh_database().await?;
    // Authentication is not what these start-ups are about.
    let config = Config::from_args(
        ["--insecure-no-auth"]
            .into_iter()
            .chain(flags.iter().copied()),
    )?;
    let listeners = Listeners {
        grpc: TcpListener::bind("127.0.0.1:0").await?,
        http: TcpListener::bind("127.0.0.1:0").await?,
    };
    App::build(
        config,
        listeners,
        db.pool.clone(),
        Migrations::Apply,
        Shutdown::new(),
    )
    .await
}

#[tokio::test]
async fn a_malformed_token_key_refuses_to_start() {
    let error = build_with(&["--token-key", "c2hvcnQ="])
        .await
        .err()
        .expect("a short key must refuse to start");
    assert!(
        error.to_string().contains("QBO_SYNC_TOKEN_KEY is invalid"),
        "{error:#}"
    );
    let key = token_key();
    let error = build_with(&["--token-key", &key, "--qbo-token-key-previous", "1:AAAA"])
        .await
        .err()
        .expect("a bad previous key must refuse to start");
    assert!(
        error.to_string().contains("QBO_SYNC_TOKEN_KEY_PREVIOUS"),
        "{error:#}"
    );
    // The binary says so and exits non-zero, before touching the database.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_qbo-sync"))
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .args(["--database-url", "postgres://nobody@127.0.0.1:1/none"])
        .args(["--token-key", "not base64!", "--insecure-no-auth"])
        .env_remove("QBO_SYNC_TOKEN_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("QBO_SYNC_TOKEN_KEY is invalid"), "{stderr}");
    assert!(!stderr.contains("not base64!"), "the key leaked: {stderr}");
}
