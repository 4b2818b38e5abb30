//! The figures the metrics endpoint publishes as gauges: the job queue, links, the review
//! queue and connections, read across tenants (they answer no caller and hold no customer
//! data).

use sqlx::PgPool;
use tracing::instrument;

use super::StoreError;

/// Jobs of one kind in one state.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueFigure {
    /// The job kind, e.g. `push_customer`.
    pub kind: String,
    /// `queued`, `running`, `parked` or `dead`.
    pub state: String,
    /// How many.
    pub jobs: i64,
    /// Age of the oldest one, in seconds.
    pub oldest_seconds: f64,
}

/// A snapshot of the store's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreFigures {
    /// Unfinished and dead jobs by kind and state.
    pub queue: Vec<QueueFigure>,
    /// Links by method.
    pub links: Vec<(String, i64)>,
    /// Open review items.
    pub review_open: i64,
    /// Age of the oldest open review item, in seconds (0 when none).
    pub review_oldest_seconds: f64,
    /// Connections by state.
    pub connections: Vec<(String, i64)>,
}

/// Reads the figures in one transaction (one snapshot).
///
/// # Errors
/// [`StoreError::Database`] when a read fails.
#[instrument(name = "db.stats.read", skip_all, err(level = "debug"))]
pub async fn read_figures(pool: &PgPool) -> Result<StoreFigures, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let queue: Vec<(String, String, i64, f64)> = sqlx::query_as(
        "SELECT kind, state, count(*),
                EXTRACT(EPOCH FROM now() - min(created_at))::float8
         FROM jobs WHERE state IN ('queued', 'running', 'parked', 'dead')
         GROUP BY kind, state",
    )
    .fetch_all(&mut *tx)
    .await?;
    let links = sqlx::query_as("SELECT method, count(*) FROM links GROUP BY method")
        .fetch_all(&mut *tx)
        .await?;
    let (review_open, review_oldest_seconds): (i64, Option<f64>) = sqlx::query_as(
        "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8
         FROM review_items WHERE state = 'open'",
    )
    .fetch_one(&mut *tx)
    .await?;
    let connections = sqlx::query_as("SELECT state, count(*) FROM connections GROUP BY state")
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(StoreFigures {
        queue: queue
            .into_iter()
            .map(|(kind, state, jobs, oldest)| QueueFigure {
                kind,
                state,
                jobs,
                oldest_seconds: oldest.max(0.0),
            })
            .collect(),
        links,
        review_open,
        review_oldest_seconds: review_oldest_seconds.unwrap_or(0.0).max(0.0),
        connections,
    })
}
