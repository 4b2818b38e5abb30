//! Sync runs (`sync_runs`): at most one queued or running per tenant, each with its counters
//! and the checkpoint a replica taking the run over goes on from.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tracing::instrument;
use uuid::Uuid;

use super::{
    StoreError,
    jobs::{self, NewJob},
};
use crate::domain::TenantId;

/// The job kind that runs a sync run.
pub const SYNC_RUN_JOB: &str = "sync_run";

/// A run as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SyncRunRow {
    /// The run's id.
    pub id: Uuid,
    /// Its tenant.
    pub tenant_id: String,
    /// `full` or `incremental`.
    pub mode: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    /// Changes nothing, only plans.
    pub dry_run: bool,
    /// Never creates customers in QBO.
    pub link_only: bool,
    /// The caller's key, if any.
    pub idempotency_key: Option<String>,
    /// Who asked for it.
    pub requested_by: String,
    /// `api`, `schedule` or `webhook`.
    pub trigger: String,
    /// QBO customers read.
    pub qbo_customers_read: i64,
    /// Digit customers considered.
    pub digit_customers_considered: i64,
    /// Linked before the run.
    pub already_linked: i64,
    /// Linked by the run (planned, for a dry run).
    pub auto_linked: i64,
    /// Sent to review by the run (planned, for a dry run).
    pub queued_for_review: i64,
    /// Created in QBO by the run's pushes (planned, for a dry run).
    pub pushed_to_qbo: i64,
    /// Links whose QBO customer is gone or inactive.
    pub conflicts: i64,
    /// Customers that could not be handled.
    pub errors: i64,
    /// A dry run's plan (the first actions, up to the cap).
    pub planned_actions: sqlx::types::Json<serde_json::Value>,
    /// Every planned action, beyond the cap too.
    pub planned_total: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// `read`, `apply` or `push`.
    pub phase: String,
    /// STARTPOSITION of the next page to read.
    pub read_position: i32,
    /// When the read began.
    pub read_started_at: Option<DateTime<Utc>>,
    /// The last Digit customer id applied.
    pub apply_cursor: String,
    /// CancelSyncRun asked it to stop.
    pub cancel_requested: bool,
    /// Requested.
    pub created_at: DateTime<Utc>,
    /// Started by a worker.
    pub started_at: Option<DateTime<Utc>>,
    /// Ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl SyncRunRow {
    /// Whether the run has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "succeeded" | "failed" | "cancelled")
    }
}

const COLUMNS: &str =
    "id, tenant_id, mode, state, dry_run, link_only, idempotency_key, requested_by,
    trigger, qbo_customers_read, digit_customers_considered, already_linked, auto_linked,
    queued_for_review, pushed_to_qbo, conflicts, errors, planned_actions, planned_total, error,
    phase, read_position, read_started_at, apply_cursor, cancel_requested, created_at,
    started_at, finished_at, updated_at";

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    /// `full` or `incremental`.
    pub mode: &'a str,
    /// Only plan.
    pub dry_run: bool,
    /// Never create in QBO.
    pub link_only: bool,
    /// The caller's key.
    pub idempotency_key: Option<&'a str>,
    /// Who asks.
    pub requested_by: &'a str,
    /// `api`, `schedule` or `webhook`.
    pub trigger: &'a str,
    /// The job's priority.
    pub priority: i16,
}

/// What asking for a run found.
#[derive(Debug, Clone)]
pub enum Created {
    /// A new run, queued with its job.
    New(SyncRunRow),
    /// The run made earlier under the same idempotency key.
    SameKey(SyncRunRow),
    /// Another run of the tenant is queued or running.
    AlreadyRunning(SyncRunRow),
}

/// Creates a run and the job that runs it in one transaction, unless the idempotency key was
/// used before (that run is returned) or another run of the tenant is active (that one is).
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.sync_runs.create", skip_all, err(level = "debug"))]
pub async fn create_run(
    pool: &PgPool,
    tenant: &TenantId,
    run: &NewRun<'_>,
) -> Result<Created, StoreError> {
    // The active run may finish between the failed insert and the read: try again then.
    for _ in 0..3 {
        let mut tx = pool.begin().await?;
        if let Some(key) = run.idempotency_key
            && let Some(found) = by_key(&mut tx, tenant, key).await?
        {
            return Ok(Created::SameKey(found));
        }
        let id = Uuid::new_v4();
        let inserted: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO sync_runs (id, tenant_id, mode, state, dry_run, link_only,
                                    idempotency_key, requested_by, trigger)
             VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(id)
        .bind(tenant.as_str())
        .bind(run.mode)
        .bind(run.dry_run)
        .bind(run.link_only)
        .bind(run.idempotency_key)
        .bind(run.requested_by)
        .bind(run.trigger)
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_some() {
            let job = NewJob {
                kind: SYNC_RUN_JOB,
                payload: serde_json::json!({ "run_id": id }),
                priority: run.priority,
                dedupe_key: Some(format!("sync_run:{id}")),
                needs_connection: true,
            };
            let job_id = jobs::enqueue_job(&mut tx, tenant, &job).await?;
            sqlx::query("UPDATE sync_runs SET job_id = $2 WHERE id = $1")
                .bind(id)
                .bind(job_id)
                .execute(&mut *tx)
                .await?;
            let row = fetch(&mut tx, id)
                .await?
                .ok_or(StoreError::Stale { entity: "sync run" })?;
            tx.commit().await?;
            return Ok(Created::New(row));
        }
        if let Some(key) = run.idempotency_key
            && let Some(found) = by_key(&mut tx, tenant, key).await?
        {
            return Ok(Created::SameKey(found));
        }
        if let Some(active) = active_run(&mut tx, tenant).await? {
            return Ok(Created::AlreadyRunning(active));
        }
    }
    Err(StoreError::Stale { entity: "sync run" })
}

async fn by_key(
    conn: &mut PgConnection,
    tenant: &TenantId,
    key: &str,
) -> Result<Option<SyncRunRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sync_runs WHERE tenant_id = $1 AND idempotency_key = $2"
    ))
    .bind(tenant.as_str())
    .bind(key)
    .fetch_optional(conn)
    .await?)
}

async fn fetch(conn: &mut PgConnection, id: Uuid) -> Result<Option<SyncRunRow>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM sync_runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// The tenant's queued or running run, if any.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.sync_runs.active", skip_all, err(level = "debug"))]
pub async fn active_run(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Option<SyncRunRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sync_runs WHERE tenant_id = $1 AND state IN ('queued', 'running')"
    ))
    .bind(tenant.as_str())
    .fetch_optional(conn)
    .await?)
}

/// One run of the tenant.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.sync_runs.get", skip_all, err(level = "debug"))]
pub async fn get_run(
    pool: &PgPool,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<SyncRunRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sync_runs WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Marks a queued run running (a run taken over stays running) and returns it; `None` when it
/// does not exist.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.sync_runs.start", skip_all, err(level = "debug"))]
pub async fn start_run(pool: &PgPool, id: Uuid) -> Result<Option<SyncRunRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "UPDATE sync_runs SET state = CASE WHEN state = 'queued' THEN 'running' ELSE state END,
                started_at = coalesce(started_at, now()),
                read_started_at = coalesce(read_started_at, now()), updated_at = clock_timestamp()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// What one page or chunk adds to a run's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// QBO customers read.
    pub qbo_customers_read: i64,
    /// Digit customers considered.
    pub digit_customers_considered: i64,
    /// Linked before the run.
    pub already_linked: i64,
    /// Linked by the run.
    pub auto_linked: i64,
    /// Sent to review.
    pub queued_for_review: i64,
    /// Created in QBO.
    pub pushed_to_qbo: i64,
    /// Links whose QBO customer is gone or inactive.
    pub conflicts: i64,
    /// Customers not handled because of an error.
    pub errors: i64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        self.qbo_customers_read += o.qbo_customers_read;
        self.digit_customers_considered += o.digit_customers_considered;
        self.already_linked += o.already_linked;
        self.auto_linked += o.auto_linked;
        self.queued_for_review += o.queued_for_review;
        self.pushed_to_qbo += o.pushed_to_qbo;
        self.conflicts += o.conflicts;
        self.errors += o.errors;
    }
}

/// Where a run goes on from after this step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint<'a> {
    /// Still reading: the next page starts here.
    Read(i32),
    /// Applying: the last Digit customer done.
    Apply(&'a str),
    /// Waiting for the run's pushes.
    Push,
    /// Counters only.
    Same,
}

/// Adds `counts` to the run's counters and moves its checkpoint, in the caller's transaction
/// (so a step's writes and its checkpoint commit together). Returns whether the run was asked
/// to stop; `None` when the run is no longer active.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.sync_runs.progress", skip_all, err(level = "debug"))]
pub async fn record_progress(
    conn: &mut PgConnection,
    id: Uuid,
    counts: Counts,
    checkpoint: Checkpoint<'_>,
) -> Result<Option<bool>, StoreError> {
    let (phase, position, cursor): (Option<&str>, Option<i32>, Option<&str>) = match checkpoint {
        Checkpoint::Read(p) => (Some("read"), Some(p), None),
        Checkpoint::Apply(c) => (Some("apply"), None, Some(c)),
        Checkpoint::Push => (Some("push"), None, None),
        Checkpoint::Same => (None, None, None),
    };
    Ok(sqlx::query_scalar(
        "UPDATE sync_runs SET
             qbo_customers_read = qbo_customers_read + $2,
             digit_customers_considered = digit_customers_considered + $3,
             already_linked = already_linked + $4, auto_linked = auto_linked + $5,
             queued_for_review = queued_for_review + $6, pushed_to_qbo = pushed_to_qbo + $7,
             conflicts = conflicts + $8, errors = errors + $9,
             phase = coalesce($10, phase), read_position = coalesce($11, read_position),
             apply_cursor = coalesce($12, apply_cursor), updated_at = clock_timestamp()
         WHERE id = $1 AND state IN ('queued', 'running')
         RETURNING cancel_requested",
    )
    .bind(id)
    .bind(counts.qbo_customers_read)
    .bind(counts.digit_customers_considered)
    .bind(counts.already_linked)
    .bind(counts.auto_linked)
    .bind(counts.queued_for_review)
    .bind(counts.pushed_to_qbo)
    .bind(counts.conflicts)
    .bind(counts.errors)
    .bind(phase)
    .bind(position)
    .bind(cursor)
    .fetch_optional(conn)
    .await?)
}

/// Adds what a finished push did to the counters of the run that queued it (whatever state
/// the run is in: a push may end after its run).
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.sync_runs.push_counts", skip_all, err(level = "debug"))]
pub async fn add_push_counts(pool: &PgPool, id: Uuid, counts: Counts) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE sync_runs SET auto_linked = auto_linked + $2,
             queued_for_review = queued_for_review + $3, pushed_to_qbo = pushed_to_qbo + $4,
             errors = errors + $5, updated_at = clock_timestamp()
         WHERE id = $1",
    )
    .bind(id)
    .bind(counts.auto_linked)
    .bind(counts.queued_for_review)
    .bind(counts.pushed_to_qbo)
    .bind(counts.errors)
    .execute(pool)
    .await?;
    Ok(())
}

/// Sets a run's counters back to zero (a dry run taken over starts its read again).
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.sync_runs.reset", skip_all, err(level = "debug"))]
pub async fn reset_counters(pool: &PgPool, id: Uuid) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE sync_runs SET qbo_customers_read = 0, digit_customers_considered = 0,
             already_linked = 0, auto_linked = 0, queued_for_review = 0, pushed_to_qbo = 0,
             conflicts = 0, errors = 0, updated_at = clock_timestamp()
         WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Stores a dry run's plan: the first actions (`actions`) and how many there are in all.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.sync_runs.plan", skip_all, err(level = "debug"))]
pub async fn store_plan(
    pool: &PgPool,
    id: Uuid,
    counts: Counts,
    actions: &serde_json::Value,
    total: i64,
) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    record_progress(&mut conn, id, counts, Checkpoint::Same).await?;
    sqlx::query(
        "UPDATE sync_runs SET planned_actions = $2, planned_total = $3,
                updated_at = clock_timestamp()
         WHERE id = $1",
    )
    .bind(id)
    .bind(sqlx::types::Json(actions))
    .bind(total)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A run that just ended, for the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedRun {
    /// `full` or `incremental`.
    pub mode: String,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// From its start (or its creation, if it never started) to its end.
    pub duration: std::time::Duration,
}

/// Ends an active run as `succeeded`, `failed` or `cancelled`. Returns the run when it was
/// active (`None` when it had ended already).
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.sync_runs.finish", skip_all, err(level = "debug"))]
pub async fn finish_run(
    pool: &PgPool,
    id: Uuid,
    state: &str,
    error: Option<&str>,
) -> Result<Option<FinishedRun>, StoreError> {
    let ended: Option<(String, bool, f64)> = sqlx::query_as(
        "UPDATE sync_runs SET state = $2, error = $3, finished_at = now(),
                updated_at = clock_timestamp()
         WHERE id = $1 AND state IN ('queued', 'running')
         RETURNING mode, dry_run,
                   EXTRACT(EPOCH FROM finished_at - coalesce(started_at, created_at))::float8",
    )
    .bind(id)
    .bind(state)
    .bind(error)
    .fetch_optional(pool)
    .await?;
    Ok(ended.map(|(mode, dry_run, secs)| FinishedRun {
        mode,
        dry_run,
        duration: std::time::Duration::from_secs_f64(secs.max(0.0)),
    }))
}

/// Asks a run to stop. A queued run ends `cancelled` at once (its job with it); a running one
/// is flagged and stops at its next page or chunk boundary. Returns the run as it is now, or
/// `None` when the tenant has no such run.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.sync_runs.cancel", skip_all, err(level = "debug"))]
pub async fn request_cancel(
    pool: &PgPool,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<SyncRunRow>, StoreError> {
    let mut tx = pool.begin().await?;
    let cancelled_job: Option<Option<Uuid>> = sqlx::query_scalar(
        "UPDATE sync_runs SET state = 'cancelled', cancel_requested = true, finished_at = now(),
                updated_at = clock_timestamp()
         WHERE tenant_id = $1 AND id = $2 AND state = 'queued' RETURNING job_id",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(Some(job)) = cancelled_job {
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_at = clock_timestamp(),
                    updated_at = clock_timestamp()
             WHERE id = $1 AND state IN ('queued', 'parked')",
        )
        .bind(job)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE sync_runs SET cancel_requested = true, updated_at = clock_timestamp()
         WHERE tenant_id = $1 AND id = $2 AND state = 'running' AND NOT cancel_requested",
    )
    .bind(tenant.as_str())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let row: Option<SyncRunRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sync_runs WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Cancels the run's pushes that have not started yet; returns how many.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.sync_runs.cancel_pushes", skip_all, err(level = "debug"))]
pub async fn cancel_queued_pushes(
    pool: &PgPool,
    tenant: &TenantId,
    id: Uuid,
    kind: &str,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'cancelled', finished_at = clock_timestamp(),
                updated_at = clock_timestamp()
         WHERE tenant_id = $1 AND kind = $2 AND state IN ('queued', 'parked')
           AND payload->>'run_id' = $3",
    )
    .bind(tenant.as_str())
    .bind(kind)
    .bind(id.to_string())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// How many of the run's pushes are still queued, running or parked.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.sync_runs.live_pushes", skip_all, err(level = "debug"))]
pub async fn live_pushes(
    pool: &PgPool,
    tenant: &TenantId,
    id: Uuid,
    kind: &str,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM jobs
         WHERE tenant_id = $1 AND kind = $2 AND state IN ('queued', 'running', 'parked')
           AND payload->>'run_id' = $3",
    )
    .bind(tenant.as_str())
    .bind(kind)
    .bind(id.to_string())
    .fetch_one(pool)
    .await?)
}

/// Ends, as failed, the active runs whose job is gone (dead after its attempts, cancelled by
/// an operator, or deleted), so that no run stays active forever and blocks its tenant.
/// Returns how many.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.sync_runs.fail_orphaned", skip_all, err(level = "debug"))]
pub async fn fail_orphaned_runs(pool: &PgPool) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE sync_runs r SET state = 'failed', finished_at = now(),
                updated_at = clock_timestamp(),
                error = coalesce(
                    (SELECT 'the run stopped: ' || j.last_error FROM jobs j WHERE j.id = r.job_id),
                    'the run stopped: its job is gone')
         WHERE r.state IN ('queued', 'running') AND r.job_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = r.job_id
                           AND j.state IN ('queued', 'running', 'parked'))",
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
