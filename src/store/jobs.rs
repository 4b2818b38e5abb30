//! The durable job queue, shared by every replica.
//!
//! * **Claim**: one `UPDATE … RETURNING` over a `FOR UPDATE SKIP LOCKED` sub-select, so two
//!   workers never take one job. A claim counts an attempt and takes a lease (`locked_until`)
//!   under a claim token (`locked_by`); only the token's holder can finish the job.
//! * **Order**: `(priority, fair_at)`. `fair_at` is set at enqueue to the later of the queue's
//!   head and the tenant's last queued job plus a step (start-time fair queuing), so a tenant's
//!   backlog interleaves with other tenants' jobs instead of standing in front of them.
//!   Workers may also ask for background work first ([`claim_next_job_from`]) on its turn, so
//!   a stream of interactive jobs cannot hold background jobs back for as long as it lasts.
//! * **Outcomes**: done; retry (an attempt spent, backoff decided by the caller, dead once the
//!   attempts are spent); dead at once; rescheduled without spending an attempt (QBO
//!   throttled); parked with the whole tenant (not connected) and queued again on reconnect.
//! * **Leases**: heartbeats extend them; a sweep puts back jobs whose lease ran out (the
//!   replica died); shutdown releases its jobs at once, attempts given back.
//! * **Wake-up**: every enqueue notifies [`JOBS_CHANNEL`] in the caller's transaction, so
//!   workers hear of a job when (and only if) the business write commits.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tracing::instrument;
use uuid::Uuid;

use super::StoreError;
use crate::domain::TenantId;

/// Priority of interactive work (a single push, a preflight repair): runs first.
pub const PRIORITY_INTERACTIVE: i16 = 0;
/// Priority of background work (bulk pushes, full-sync pages).
pub const PRIORITY_BACKGROUND: i16 = 10;
/// The LISTEN/NOTIFY channel workers wait on.
pub const JOBS_CHANNEL: &str = "qbo_sync_jobs";
/// The fair-queuing step between two jobs of one tenant. Only the order matters: it is a
/// tie-breaker in virtual time, not a delay.
const FAIR_STEP_MICROS: i64 = 1_000;

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// The job's kind, e.g. `push_customer`.
    pub kind: &'a str,
    /// Its arguments.
    pub payload: serde_json::Value,
    /// Lower runs first.
    pub priority: i16,
    /// Jobs with the same key are one job while queued, running or parked.
    pub dedupe_key: Option<String>,
    /// Whether the job calls QBO (then it is parked while the tenant is not connected).
    pub needs_connection: bool,
}

/// A claimed job, running under `token` until it is finished or its lease runs out.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    /// The job's id.
    pub id: Uuid,
    /// Its tenant (stored values are checked at enqueue).
    pub tenant_id: String,
    /// Its kind.
    pub kind: String,
    /// Its arguments.
    pub payload: serde_json::Value,
    /// Its priority.
    pub priority: i16,
    /// Attempts made, this one included.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// The claim token that finishes it.
    pub locked_by: String,
}

impl ClaimedJob {
    /// Whether this attempt is the last one allowed.
    #[must_use]
    pub fn is_last_attempt(&self) -> bool {
        self.attempts >= self.max_attempts
    }
}

/// Enqueues a job unless a live job with the same dedupe key exists, and notifies the
/// workers when the caller's transaction commits. Returns the new job's id, or `None` when an
/// identical job was already waiting, running or parked.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.jobs.enqueue", skip_all, fields(kind = job.kind), err(level = "debug"))]
pub async fn enqueue_job(
    conn: &mut PgConnection,
    tenant: &TenantId,
    job: &NewJob<'_>,
) -> Result<Option<Uuid>, StoreError> {
    let queued = enqueue_each(conn, tenant, std::slice::from_ref(job)).await?;
    Ok(queued.into_iter().next().flatten())
}

/// Enqueues jobs in the order given, one statement for each priority and connection need
/// among them (one in all for a batch of one kind of work), each unless a live job with its
/// dedupe key exists (an earlier job of the same call included), and notifies the workers
/// when the caller's transaction commits. Returns, per job, the new job's id, or `None` when
/// it was not queued.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.jobs.enqueue_each", skip_all, fields(count = jobs.len()), err(level = "debug"))]
pub async fn enqueue_each(
    conn: &mut PgConnection,
    tenant: &TenantId,
    jobs: &[NewJob<'_>],
) -> Result<Vec<Option<Uuid>>, StoreError> {
    let mut queued = vec![None; jobs.len()];
    let mut classes: Vec<(i16, bool)> = jobs
        .iter()
        .map(|j| (j.priority, j.needs_connection))
        .collect();
    classes.sort_unstable();
    classes.dedup();
    for class in classes {
        let members: Vec<usize> = (0..jobs.len())
            .filter(|&i| (jobs[i].priority, jobs[i].needs_connection) == class)
            .collect();
        let kinds: Vec<&str> = members.iter().map(|&i| jobs[i].kind).collect();
        let payloads: Vec<&serde_json::Value> = members.iter().map(|&i| &jobs[i].payload).collect();
        let keys: Vec<Option<&str>> = members
            .iter()
            .map(|&i| jobs[i].dedupe_key.as_deref())
            .collect();
        let inserted = insert_jobs(conn, tenant, class, &kinds, &payloads, &keys).await?;
        for (n, id) in inserted {
            if let Some(&index) = usize::try_from(n - 1).ok().and_then(|n| members.get(n)) {
                queued[index] = Some(id);
            }
        }
    }
    Ok(queued)
}

/// Enqueues jobs of one kind and priority in one statement (fair order kept: they follow the
/// tenant's queued jobs one step apart), skipping those whose dedupe key is live, and
/// notifies the workers when the caller's transaction commits. Returns how many were queued.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.jobs.enqueue_many", skip_all, fields(kind, count = jobs.len()), err(level = "debug"))]
pub async fn enqueue_jobs(
    conn: &mut PgConnection,
    tenant: &TenantId,
    kind: &str,
    priority: i16,
    jobs: &[(serde_json::Value, Option<String>)],
) -> Result<u64, StoreError> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let kinds = vec![kind; jobs.len()];
    let payloads: Vec<&serde_json::Value> = jobs.iter().map(|(p, _)| p).collect();
    let keys: Vec<Option<&str>> = jobs.iter().map(|(_, k)| k.as_deref()).collect();
    let ids = insert_jobs(conn, tenant, (priority, true), &kinds, &payloads, &keys).await?;
    Ok(u64::try_from(ids.len()).unwrap_or(u64::MAX))
}

/// The one statement that queues jobs: each gets its place in the fair order (after the
/// queue's head and the tenant's last queued job, one step apart, in the order given), a live
/// dedupe key skips it, and the workers are notified when the caller's transaction commits.
/// Returns the queued jobs' positions in the input (from 1) and ids; the tuple is (priority,
/// needs connection), shared by the jobs since the fair order is kept per priority.
async fn insert_jobs(
    conn: &mut PgConnection,
    tenant: &TenantId,
    (priority, needs_connection): (i16, bool),
    kinds: &[&str],
    payloads: &[&serde_json::Value],
    keys: &[Option<&str>],
) -> Result<Vec<(i64, Uuid)>, StoreError> {
    Ok(sqlx::query_as(
        "WITH head AS (
             SELECT GREATEST(
                 COALESCE((SELECT min(fair_at) FROM jobs WHERE state = 'queued' AND priority = $3),
                          clock_timestamp()),
                 COALESCE((SELECT max(fair_at) FROM jobs
                           WHERE state = 'queued' AND tenant_id = $1 AND priority = $3)
                          + $7 * interval '1 microsecond', '-infinity')) AS fair_at),
         input AS (
             SELECT gen_random_uuid() AS id, t.*
             FROM UNNEST($2::text[], $4::jsonb[], $5::text[]) WITH ORDINALITY
                 AS t(kind, payload, key, n)),
         inserted AS (
             INSERT INTO jobs (id, tenant_id, kind, payload, state, priority, dedupe_key,
                               needs_connection, fair_at)
             SELECT input.id, $1, input.kind, input.payload, 'queued', $3, input.key, $6,
                    head.fair_at + (input.n - 1) * $7 * interval '1 microsecond'
             FROM head, input ORDER BY input.n
             ON CONFLICT (tenant_id, dedupe_key)
                 WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running', 'parked')
             DO NOTHING
             RETURNING id)
         SELECT input.n, input.id FROM inserted JOIN input USING (id),
                LATERAL pg_notify($8, '') AS notified",
    )
    .bind(tenant.as_str())
    .bind(kinds)
    .bind(priority)
    .bind(payloads)
    .bind(keys)
    .bind(needs_connection)
    .bind(FAIR_STEP_MICROS)
    .bind(JOBS_CHANNEL)
    .fetch_all(conn)
    .await?)
}

/// The Digit customers of the tenant with a live (queued, running or parked) job of `kind`.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.jobs.live_customers", skip_all, err(level = "debug"))]
pub async fn customers_with_live_jobs(
    conn: &mut PgConnection,
    tenant: &TenantId,
    kind: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT payload->>'digit_customer_id' FROM jobs
         WHERE tenant_id = $1 AND kind = $2 AND state IN ('queued', 'running', 'parked')
           AND payload ? 'digit_customer_id'",
    )
    .bind(tenant.as_str())
    .bind(kind)
    .fetch_all(conn)
    .await?)
}

/// The state of the live (queued, running or parked) job with this dedupe key, if any.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.jobs.live_state", skip_all, err(level = "debug"))]
pub async fn live_job_state(
    conn: &mut PgConnection,
    tenant: &TenantId,
    dedupe_key: &str,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT state FROM jobs WHERE tenant_id = $1 AND dedupe_key = $2
                AND state IN ('queued', 'running', 'parked')",
    )
    .bind(tenant.as_str())
    .bind(dedupe_key)
    .fetch_optional(conn)
    .await?)
}

/// Cancels the job with this dedupe key if it has not started (queued or parked); returns
/// whether one was.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.jobs.cancel_waiting", skip_all, err(level = "debug"))]
pub async fn cancel_waiting_job(
    conn: &mut PgConnection,
    tenant: &TenantId,
    dedupe_key: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'cancelled', finished_at = clock_timestamp(),
                updated_at = clock_timestamp()
         WHERE tenant_id = $1 AND dedupe_key = $2 AND state IN ('queued', 'parked')",
    )
    .bind(tenant.as_str())
    .bind(dedupe_key)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Whether a job with this dedupe key is queued, running or parked.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.jobs.live", skip_all, err(level = "debug"))]
pub async fn has_live_job(
    conn: &mut PgConnection,
    tenant: &TenantId,
    dedupe_key: &str,
) -> Result<bool, StoreError> {
    Ok(live_job_state(conn, tenant, dedupe_key).await?.is_some())
}

const CLAIMED_COLUMNS: &str =
    "id, tenant_id, kind, payload, priority, attempts, max_attempts, locked_by";

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Claims the first due job of one of `kinds`, in fair order, under `token` for `lease`.
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
pub async fn claim_next_job(
    pool: &PgPool,
    kinds: &[String],
    token: &str,
    lease: Duration,
) -> Result<Option<ClaimedJob>, StoreError> {
    claim_next_job_from(pool, kinds, token, lease, i16::MIN).await
}

/// Claims the first due job of one of `kinds` whose priority is `min_priority` or lower
/// (a larger number), in fair order, under `token` for `lease`: with
/// [`PRIORITY_BACKGROUND`], background work only, which the worker pool asks for on
/// background work's turn.
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.jobs.claim", skip_all, err(level = "debug"))]
pub async fn claim_next_job_from(
    pool: &PgPool,
    kinds: &[String],
    token: &str,
    lease: Duration,
    min_priority: i16,
) -> Result<Option<ClaimedJob>, StoreError> {
    let sql = format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $2,
                locked_until = clock_timestamp() + $3 * interval '1 microsecond',
                heartbeat_at = clock_timestamp(), updated_at = clock_timestamp()
         WHERE id = (SELECT id FROM jobs
                     WHERE state = 'queued' AND priority >= $4
                       AND run_at <= clock_timestamp() AND kind = ANY($1)
                     ORDER BY priority, fair_at, id
                     LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING {CLAIMED_COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(kinds)
        .bind(token)
        .bind(micros(lease))
        .bind(min_priority)
        .fetch_optional(pool)
        .await?)
}

/// Claims up to `limit` more due jobs of the same tenant, kind and priority under the same
/// token, so a worker can serve them in one QBO batch (one lane: a background push never rides
/// an interactive group, nor the other way round).
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.jobs.claim_more", skip_all, err(level = "debug"))]
pub async fn claim_more_jobs(
    pool: &PgPool,
    first: &ClaimedJob,
    limit: i64,
    lease: Duration,
) -> Result<Vec<ClaimedJob>, StoreError> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    let sql = format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $3,
                locked_until = clock_timestamp() + $5 * interval '1 microsecond',
                heartbeat_at = clock_timestamp(), updated_at = clock_timestamp()
         WHERE id IN (SELECT id FROM jobs
                      WHERE state = 'queued' AND tenant_id = $1 AND kind = $2
                        AND priority = $6 AND run_at <= clock_timestamp()
                      ORDER BY fair_at, id
                      LIMIT $4 FOR UPDATE SKIP LOCKED)
         RETURNING {CLAIMED_COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(&first.tenant_id)
        .bind(&first.kind)
        .bind(&first.locked_by)
        .bind(limit)
        .bind(micros(lease))
        .bind(first.priority)
        .fetch_all(pool)
        .await?)
}

/// Marks jobs done. Only jobs still held under `token` change: a job whose lease ran out and
/// was taken over belongs to its new holder. Returns how many were finished.
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.jobs.complete", skip_all, err(level = "debug"))]
pub async fn complete_jobs(pool: &PgPool, ids: &[Uuid], token: &str) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'succeeded', finished_at = clock_timestamp(),
                locked_by = NULL, locked_until = NULL, updated_at = clock_timestamp()
         WHERE id = ANY($1) AND locked_by = $2 AND state = 'running'",
    )
    .bind(ids)
    .bind(token)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Records a failed attempt: the job runs again after `retry_in`, or is dead once its
/// attempts are spent (or at once when `permanent`), keeping `error`. Returns whether the job
/// is dead now.
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.jobs.fail", skip_all, err(level = "debug"))]
pub async fn fail_job(
    pool: &PgPool,
    id: Uuid,
    token: &str,
    error: &str,
    retry_in: Duration,
    permanent: bool,
) -> Result<bool, StoreError> {
    let dead: Option<bool> = sqlx::query_scalar(
        "UPDATE jobs SET
             state = CASE WHEN $5 OR attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
             finished_at = CASE WHEN $5 OR attempts >= max_attempts THEN clock_timestamp() END,
             run_at = clock_timestamp() + $4 * interval '1 microsecond',
             last_error = $3, locked_by = NULL, locked_until = NULL, updated_at = clock_timestamp()
         WHERE id = $1 AND locked_by = $2 AND state = 'running'
         RETURNING state = 'dead'",
    )
    .bind(id)
    .bind(token)
    .bind(error)
    .bind(micros(retry_in))
    .bind(permanent)
    .fetch_optional(pool)
    .await?;
    Ok(dead.unwrap_or(false))
}

/// Puts jobs back in the queue after `retry_in` without spending the attempt (QBO throttled
/// the call, or the job waits for others: not the job's fault). `throttled` counts it as a
/// throttle.
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.jobs.reschedule", skip_all, err(level = "debug"))]
pub async fn reschedule_jobs(
    pool: &PgPool,
    ids: &[Uuid],
    token: &str,
    why: &str,
    retry_in: Duration,
    throttled: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE jobs SET state = 'queued', attempts = greatest(attempts - 1, 0),
                throttled = throttled + $5::int, last_error = $3,
                run_at = clock_timestamp() + $4 * interval '1 microsecond',
                locked_by = NULL, locked_until = NULL, updated_at = clock_timestamp()
         WHERE id = ANY($1) AND locked_by = $2 AND state = 'running'",
    )
    .bind(ids)
    .bind(token)
    .bind(why)
    .bind(micros(retry_in))
    .bind(i32::from(throttled))
    .execute(pool)
    .await?;
    Ok(())
}

/// Parks the held jobs and every queued job of the tenant that needs QBO, attempts given
/// back: nothing is tried against QBO until [`unpark_tenant_jobs`].
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.jobs.park", skip_all, err(level = "debug"))]
pub async fn park_tenant_jobs(
    pool: &PgPool,
    tenant: &str,
    ids: &[Uuid],
    token: &str,
    why: &str,
) -> Result<u64, StoreError> {
    let parked = sqlx::query(
        "UPDATE jobs SET state = 'parked', last_error = $4, locked_by = NULL, locked_until = NULL,
                attempts = CASE WHEN state = 'running' THEN greatest(attempts - 1, 0) ELSE attempts END,
                updated_at = clock_timestamp()
         WHERE tenant_id = $1 AND needs_connection
           AND ((state = 'running' AND id = ANY($2) AND locked_by = $3) OR state = 'queued')",
    )
    .bind(tenant)
    .bind(ids)
    .bind(token)
    .bind(why)
    .execute(pool)
    .await?;
    Ok(parked.rows_affected())
}

/// Queues a tenant's parked jobs again, at once (its company was connected again), and wakes
/// the workers when the caller's transaction commits. Returns how many.
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.jobs.unpark", skip_all, err(level = "debug"))]
pub async fn unpark_tenant_jobs(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar(
        "WITH woken AS (
             UPDATE jobs SET state = 'queued', run_at = clock_timestamp(),
                    updated_at = clock_timestamp()
             WHERE tenant_id = $1 AND state = 'parked' RETURNING 1)
         SELECT count(*) FROM woken, LATERAL pg_notify($2, '') AS n",
    )
    .bind(tenant.as_str())
    .bind(JOBS_CHANNEL)
    .fetch_one(conn)
    .await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Extends the leases of the jobs held under `tokens`.
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.jobs.heartbeat", skip_all, err(level = "debug"))]
pub async fn heartbeat_jobs(
    pool: &PgPool,
    tokens: &[String],
    lease: Duration,
) -> Result<u64, StoreError> {
    let beat = sqlx::query(
        "UPDATE jobs SET locked_until = clock_timestamp() + $2 * interval '1 microsecond',
                heartbeat_at = clock_timestamp()
         WHERE locked_by = ANY($1) AND state = 'running'",
    )
    .bind(tokens)
    .bind(micros(lease))
    .execute(pool)
    .await?;
    Ok(beat.rows_affected())
}

/// Releases jobs held under `tokens` at once, attempts given back and no backoff (shutdown:
/// another replica should take them now).
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.jobs.release", skip_all, err(level = "debug"))]
pub async fn release_jobs(pool: &PgPool, tokens: &[String]) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar(
        "WITH released AS (
             UPDATE jobs SET state = 'queued', attempts = greatest(attempts - 1, 0),
                    run_at = clock_timestamp(), locked_by = NULL, locked_until = NULL,
                    updated_at = clock_timestamp()
             WHERE locked_by = ANY($1) AND state = 'running' RETURNING 1)
         SELECT count(*) FROM released, LATERAL pg_notify($2, '') AS n",
    )
    .bind(tokens)
    .bind(JOBS_CHANNEL)
    .fetch_one(pool)
    .await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Puts back running jobs whose lease ran out (their replica died or hung), keeping the
/// attempt they spent; a job out of attempts is dead. Returns how many were rescued.
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.jobs.rescue", skip_all, err(level = "debug"))]
pub async fn rescue_expired_jobs(pool: &PgPool) -> Result<u64, StoreError> {
    let rescued = sqlx::query(
        "UPDATE jobs SET
             state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
             finished_at = CASE WHEN attempts >= max_attempts THEN clock_timestamp() END,
             last_error = 'the worker running it stopped answering (lease expired)',
             run_at = clock_timestamp(), locked_by = NULL, locked_until = NULL,
             updated_at = clock_timestamp()
         WHERE id IN (SELECT id FROM jobs
                      WHERE state = 'running' AND locked_until < clock_timestamp()
                      FOR UPDATE SKIP LOCKED)",
    )
    .execute(pool)
    .await?;
    if rescued.rows_affected() > 0 {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(JOBS_CHANNEL)
            .execute(pool)
            .await?;
    }
    Ok(rescued.rows_affected())
}

/// Deletes succeeded and cancelled jobs finished before `older_than` ago (dead jobs stay
/// until an operator retries or discards them).
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.jobs.prune", skip_all, err(level = "debug"))]
pub async fn prune_finished_jobs(pool: &PgPool, older_than: Duration) -> Result<u64, StoreError> {
    let pruned = sqlx::query(
        "DELETE FROM jobs WHERE state IN ('succeeded', 'cancelled')
           AND finished_at < clock_timestamp() - $1 * interval '1 microsecond'",
    )
    .bind(micros(older_than))
    .execute(pool)
    .await?;
    Ok(pruned.rows_affected())
}

/// A job as an operator or a test sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    /// Id.
    pub id: Uuid,
    /// Tenant.
    pub tenant_id: String,
    /// Kind.
    pub kind: String,
    /// `queued`, `running`, `succeeded`, `dead`, `cancelled` or `parked`.
    pub state: String,
    /// Attempts spent.
    pub attempts: i32,
    /// Times rescheduled without an attempt because QBO throttled.
    pub throttled: i32,
    /// The last error.
    pub last_error: Option<String>,
    /// When it may run next.
    pub run_at: DateTime<Utc>,
    /// Its arguments.
    pub payload: serde_json::Value,
}

/// Loads a tenant's jobs, oldest first (for operators and tests).
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.jobs.list", skip_all, err(level = "debug"))]
pub async fn list_jobs(pool: &PgPool, tenant: &TenantId) -> Result<Vec<JobRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, kind, state, attempts, throttled, last_error, run_at, payload
         FROM jobs WHERE tenant_id = $1 ORDER BY created_at, id",
    )
    .bind(tenant.as_str())
    .fetch_all(pool)
    .await?)
}

/// How many jobs of `kind` the tenant has queued (due or not).
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.jobs.queued_count", skip_all, err(level = "debug"))]
pub async fn queued_count(pool: &PgPool, tenant: &TenantId, kind: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND kind = $2 AND state = 'queued'",
    )
    .bind(tenant.as_str())
    .bind(kind)
    .fetch_one(pool)
    .await?)
}
