//! The PostgreSQL store. All SQL of the service lives below this module, one file per
//! aggregate; every query filters by tenant.

pub mod connections;
pub mod customers;
mod error;
pub mod jobs;
pub mod links;
pub mod match_keys;
pub mod mirror;
pub mod notify;
pub mod preflight;
pub mod qbo_limits;
pub mod reviews;
pub mod stats;
pub mod sync_runs;

pub use error::StoreError;

use std::{str::FromStr, time::Duration};

use secrecy::ExposeSecret;
use sqlx::{
    ConnectOptions, Connection,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
};
use tracing::instrument;

use crate::config::DatabaseConfig;

/// The embedded migrations (`migrations/`).
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// Builds the connection pool. Connections are made lazily, so the service can start (and
/// report NOT_SERVING) while PostgreSQL is down.
///
/// # Errors
/// [`StoreError::Config`] when the URL cannot be parsed.
pub fn connect_lazy(config: &DatabaseConfig) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(config.database_url.expose_secret())
        .map_err(|e| {
            StoreError::Config(format!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))
        })?
        .application_name("qbo-sync")
        .options([(
            "statement_timeout",
            format!("{}", config.db_statement_timeout.as_millis()),
        )])
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
    Ok(PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(config.db_acquire_timeout)
        // sqlx pings every connection it hands out, a second round trip for each one-query
        // request (the preflight's). A connection used within the last moment is known to be
        // alive; only one that sat idle longer is pinged (as HikariCP's alive-bypass window
        // does). A connection that broke meanwhile fails its query and is discarded.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_IDLE_AFTER {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options))
}

/// How long a pooled connection may sit idle before it is pinged on its way out of the pool.
const PING_IDLE_AFTER: Duration = Duration::from_millis(500);

/// Applies pending migrations under sqlx's advisory lock, so replicas starting together
/// migrate once.
///
/// # Errors
/// [`StoreError::Migrate`] when a migration fails or the database is unreachable.
#[instrument(name = "db.migrations.run", skip_all, err(level = "debug"))]
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Counts the embedded migrations not yet applied to the database.
///
/// # Errors
/// [`StoreError::Database`] when the database cannot be read.
#[instrument(name = "db.migrations.pending", skip_all, err(level = "debug"))]
pub async fn pending_migrations(pool: &PgPool) -> Result<usize, StoreError> {
    let table_exists: bool =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(pool)
            .await?;
    let applied: Vec<i64> = if table_exists {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?
    } else {
        Vec::new()
    };
    Ok(MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .count())
}

/// Whether the database answers a trivial query now.
///
/// # Errors
/// [`StoreError::Database`] when it does not.
#[instrument(name = "db.ping", skip_all, err(level = "debug"))]
pub async fn ping(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}
