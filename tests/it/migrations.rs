use std::process::Command;

use qbo_sync::{
    app::{App, Listeners, Migrations},
    config::Config,
    pgcluster,
    shutdown::Shutdown,
};
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::helpers::{empty_database, fresh_database};

async fn listeners() -> Listeners {
    Listeners {
        grpc: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        http: TcpListener::bind("127.0.0.1:0").await.unwrap(),
    }
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let db = fresh_database().await.expect("fresh database");
    assert_eq!(
        qbo_sync::store::pending_migrations(&db.pool).await.unwrap(),
        0
    );
    // Running them again changes nothing and fails nothing.
    qbo_sync::store::migrate(&db.pool)
        .await
        .expect("second run");
    qbo_sync::store::migrate(&db.pool).await.expect("third run");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(applied as usize, qbo_sync::store::MIGRATOR.iter().count());
}

#[tokio::test]
async fn no_migrate_refuses_to_start_while_migrations_are_pending() {
    let (pool, _) = empty_database().await;
    let config = Config::from_args(["--insecure-no-auth"]).unwrap();
    let refused = App::build(
        config.clone(),
        listeners().await,
        pool.clone(),
        Migrations::RequireCurrent,
        Shutdown::new(),
    )
    .await;
    let message = format!("{:#}", refused.err().expect("refused"));
    assert!(message.contains("pending"), "{message}");

    App::build(
        config.clone(),
        listeners().await,
        pool.clone(),
        Migrations::Apply,
        Shutdown::new(),
    )
    .await
    .expect("applies");
    App::build(
        config,
        listeners().await,
        pool,
        Migrations::RequireCurrent,
        Shutdown::new(),
    )
    .await
    .expect("now current");
}

#[tokio::test]
async fn the_migrate_command_applies_everything() {
    let (pool, url) = empty_database().await;
    let output = Command::new(env!("CARGO_BIN_EXE_qbo-sync"))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("QBO_SYNC_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(qbo_sync::store::pending_migrations(&pool).await.unwrap(), 0);
    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(
        logs.contains("\"migrations applied\""),
        "JSON log line expected: {logs}"
    );
    assert!(!logs.contains(&url), "the database URL is never logged");
}

#[tokio::test]
async fn serve_with_no_migrate_exits_with_a_clear_error() {
    let (_, url) = empty_database().await;
    let output = Command::new(env!("CARGO_BIN_EXE_qbo-sync"))
        .args([
            "serve",
            "--no-migrate",
            "--insecure-no-auth",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("migrations are pending") && stderr.contains("qbo-sync migrate"),
        "{stderr}"
    );
}

#[tokio::test]
async fn link_events_are_append_only() {
    let db = fresh_database().await.expect("fresh database");
    sqlx::query("INSERT INTO link_events (tenant_id, digit_customer_id, action, actor) VALUES ('t', 'c', 'link', 'test')")
        .execute(&db.pool)
        .await
        .unwrap();
    let update = sqlx::query("UPDATE link_events SET actor = 'someone else'")
        .execute(&db.pool)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM link_events")
        .execute(&db.pool)
        .await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

#[test]
fn a_private_cluster_starts_when_no_server_answers() {
    // Port 1 never has PostgreSQL; the private cluster gets a port no other test uses.
    const PORT: u16 = 55_433;
    let url = pgcluster::ensure_server_with(Some("postgres://postgres@127.0.0.1:1/postgres"), PORT)
        .expect("private cluster");
    assert_eq!(
        url,
        format!("postgres://postgres@127.0.0.1:{PORT}/postgres")
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let one: i32 = runtime.block_on(async {
        let pool = PgPool::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .unwrap()
    });
    assert_eq!(one, 1);
    pgcluster::stop_private_cluster(PORT).expect("stops");
}

/// The migration that gives links and the mirror their company: rows of a connected tenant
/// take its realm; a link of a tenant without a connection (no company can be named) is
/// archived with an audit event, never lost; mirror rows without a company are dropped (a
/// cache the next sync rebuilds).
#[tokio::test]
async fn links_and_the_mirror_take_their_tenants_company() {
    const REALM_MIGRATION: i64 = 20_261_204_000_001;
    let (pool, _) = empty_database().await;
    let before: Vec<_> = qbo_sync::store::MIGRATOR
        .iter()
        .filter(|m| m.version < REALM_MIGRATION)
        .cloned()
        .collect();
    let earlier = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(before),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    earlier.run(&pool).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO connections (tenant_id, realm_id, environment, state)
             VALUES ('t1', 'realm-1', 'sandbox', 'connected');
         INSERT INTO digit_customers (tenant_id, id, display_name)
             VALUES ('t1', 'c1', 'A'), ('t2', 'c2', 'B');
         INSERT INTO qbo_customers (tenant_id, qbo_id, sync_token, display_name, fully_qualified_name)
             VALUES ('t1', '1', '0', 'A', 'A'), ('t2', '2', '0', 'B', 'B');
         INSERT INTO links (tenant_id, digit_customer_id, qbo_customer_id, method, linked_by)
             VALUES ('t1', 'c1', '1', 'manual', 'x'), ('t2', 'c2', '2', 'manual', 'y');",
    )
    .execute(&pool)
    .await
    .unwrap();

    qbo_sync::store::migrate(&pool).await.unwrap();

    let links: Vec<(String, String, String)> =
        sqlx::query_as("SELECT tenant_id, digit_customer_id, realm_id FROM links")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(links, [("t1".into(), "c1".into(), "realm-1".into())]);
    let mirror: Vec<(String, String)> =
        sqlx::query_as("SELECT tenant_id, realm_id FROM qbo_customers")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(mirror, [("t1".into(), "realm-1".into())]);
    let archived: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT tenant_id, digit_customer_id, qbo_customer_id, realm_id FROM archived_links",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(archived, [("t2".into(), "c2".into(), "2".into(), None)]);
    let event: (String, String, String) = sqlx::query_as(
        "SELECT action, actor, before->>'qbo_customer_id' FROM link_events
         WHERE tenant_id = 't2' AND digit_customer_id = 'c2'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(event, ("archive".into(), "migration".into(), "2".into()));
}
