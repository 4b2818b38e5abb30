//! The durable job queue (enqueueing; the worker that claims jobs comes with the sync engine).

use sqlx::PgConnection;
use tracing::instrument;
use uuid::Uuid;

use super::StoreError;
use crate::domain::TenantId;

/// Priority of interactive work (a single push, a preflight repair): runs first.
pub const PRIORITY_INTERACTIVE: i16 = 0;
/// Priority of background work (full-sync pages).
pub const PRIORITY_BACKGROUND: i16 = 10;

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// The job's kind, e.g. `push_customer`.
    pub kind: &'a str,
    /// Its arguments.
    pub payload: serde_json::Value,
    /// Lower runs first.
    pub priority: i16,
    /// Jobs with the same key are one job while queued or running.
    pub dedupe_key: Option<String>,
}

/// Enqueues a job unless a live job with the same dedupe key exists.
/// Returns the new job's id, or `None` when an identical job was already waiting or running.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.jobs.enqueue", skip_all, fields(kind = job.kind), err)]
pub async fn enqueue_job(
    conn: &mut PgConnection,
    tenant: &TenantId,
    job: &NewJob<'_>,
) -> Result<Option<Uuid>, StoreError> {
    let id: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO jobs (id, tenant_id, kind, payload, state, priority, dedupe_key)
         VALUES ($1, $2, $3, $4, 'queued', $5, $6)
         ON CONFLICT (tenant_id, dedupe_key) WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running')
         DO NOTHING
         RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(tenant.as_str())
    .bind(job.kind)
    .bind(&job.payload)
    .bind(job.priority)
    .bind(&job.dedupe_key)
    .fetch_optional(conn)
    .await?;
    Ok(id)
}

/// Whether a job with this dedupe key is queued or running.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.jobs.live", skip_all, err)]
pub async fn has_live_job(
    conn: &mut PgConnection,
    tenant: &TenantId,
    dedupe_key: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE tenant_id = $1 AND dedupe_key = $2 AND state IN ('queued', 'running'))",
    )
    .bind(tenant.as_str())
    .bind(dedupe_key)
    .fetch_one(conn)
    .await?)
}
