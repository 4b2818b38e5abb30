//! ConnectionService end to end: the real server, real PostgreSQL, and the QBO simulator's
//! OAuth endpoints over HTTP: connecting, reading, refusals, one tenant per company.

use qbo_sim::{Simulator, SimulatorConfig};
use qbo_sync::{
    domain::TenantId,
    proto::v1 as pb,
    quickbooks::{Lane, QboClient, QboError},
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::{
    connections_support::{
        REALM, by_code, by_refresh_token, connect, get, raw_rows, reason, refresh_elsewhere, start,
        stored_refresh_token, token_key, token_outcome,
    },
    helpers::TestApp,
    qbo_harness::{REDIRECT, cipher, client_config},
};

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

#[tokio::test]
async fn two_tenants_racing_for_one_company_get_one_connection() {
    let (sim, app) = start().await;
    let (code_a, code_b) = (
        sim.issue_authorization_code(REALM, REDIRECT),
        sim.issue_authorization_code(REALM, REDIRECT),
    );
    let (mut client_a, mut client_b) = (app.connections(), app.connections());
    let (a, b) = tokio::join!(
        client_a.connect_company(by_code("tenant-a", REALM, code_a)),
        client_b.connect_company(by_code("tenant-b", REALM, code_b)),
    );
    // Whether the loser is stopped by the early check or by the unique index, it hears the
    // same answer and keeps nothing.
    let (won, lost) = match (a, b) {
        (Ok(_), Err(status)) => ("tenant-a", status),
        (Err(status), Ok(_)) => ("tenant-b", status),
        other => panic!("exactly one must win: {other:?}"),
    };
    assert_eq!(lost.code(), Code::FailedPrecondition, "{lost:?}");
    assert_eq!(reason(&lost), "REALM_CONNECTED_TO_ANOTHER_TENANT");
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT tenant_id, state FROM connections")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, [(won.to_owned(), "connected".to_owned())]);
}
