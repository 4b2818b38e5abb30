//! The worker loops of one replica, their heartbeats, the rescue sweep and the wake-ups.

use std::{
    collections::HashSet,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::FutureExt;
use rand::Rng;
use sqlx::PgPool;
use tokio::sync::Notify;
use tracing::{Instrument, debug, error, info, warn};
use uuid::Uuid;

use super::{Handlers, JobOutcome, handlers::run_of};
use crate::{
    config::WorkerConfig,
    domain::TenantId,
    error::error_chain,
    shutdown::Shutdown,
    store::{
        StoreError,
        jobs::{self, ClaimedJob},
        notify,
    },
};

/// The pool's knobs (see [`WorkerConfig`] for their meaning and defaults).
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Worker loops per replica.
    pub workers: usize,
    /// Lease of a claimed job; heartbeats renew it every third of it.
    pub lease: Duration,
    /// Longest wait between claims when no wake-up comes.
    pub poll_interval: Duration,
    /// First retry delay after a failed attempt (doubled per attempt, with jitter).
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// How long finished jobs are kept.
    pub retention: Duration,
    /// After this many interactive claims in a row, a worker loop looks for background work
    /// first (`0`: interactive work always first); see
    /// [`crate::config::QboConfig::background_turn`].
    pub background_turn: u32,
}

impl WorkerSettings {
    /// The settings of a configuration.
    #[must_use]
    pub fn from_config(config: &WorkerConfig, background_turn: u32) -> Self {
        Self {
            background_turn,
            workers: config.workers,
            lease: config.job_lease.max(Duration::from_secs(1)),
            poll_interval: config.job_poll_interval.max(Duration::from_millis(10)),
            backoff_base: config.job_backoff_base,
            backoff_max: config.job_backoff_max.max(config.job_backoff_base),
            retention: config.job_retention,
        }
    }

    /// The delay before attempt `attempts + 1`: exponential, capped, with equal jitter.
    #[must_use]
    pub fn retry_delay(&self, attempts: i32) -> Duration {
        let step = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        let full = self
            .backoff_base
            .saturating_mul(1u32 << step)
            .min(self.backoff_max);
        let half = full / 2;
        half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
    }
}

/// What one [`Worker::try_run_next`] did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The kind run.
    pub kind: String,
    /// Each job and its outcome.
    pub outcomes: Vec<(Uuid, JobOutcome)>,
}

/// One replica's worker: claims and runs jobs; [`Worker::run`] runs the whole pool.
pub struct Worker {
    pool: PgPool,
    handlers: Handlers,
    kinds: Vec<String>,
    settings: WorkerSettings,
    /// A prefix of every claim token, so the logs tell which replica held a job.
    replica: String,
    /// Claim tokens of the jobs running now (heartbeats and shutdown release use them).
    held: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("replica", &self.replica)
            .field("kinds", &self.kinds)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker over the queue in `pool`, running the kinds of `handlers`.
    #[must_use]
    pub fn new(pool: PgPool, handlers: Handlers, settings: WorkerSettings) -> Self {
        let replica = Uuid::new_v4().simple().to_string()[..12].to_owned();
        Self {
            kinds: handlers.kinds(),
            pool,
            handlers,
            settings,
            replica,
            held: Mutex::new(HashSet::new()),
        }
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> &WorkerSettings {
        &self.settings
    }

    /// Claims the next due job (and, for handlers that batch, more of the same tenant and
    /// kind), runs it and records the outcomes. `None` when no job was due. Tests call this
    /// instead of sleeping.
    ///
    /// # Errors
    /// [`StoreError`] when claiming or recording fails (a job whose outcome could not be
    /// recorded is retried after its lease runs out).
    pub async fn try_run_next(&self) -> Result<Option<RunReport>, StoreError> {
        let Some(group) = self.claim(false).await? else {
            return Ok(None);
        };
        let token = group[0].locked_by.clone();
        let report = self.run_group(group).await;
        self.forget(&token);
        report.map(Some)
    }

    /// Claims a group; on background work's turn, background work first when there is some.
    async fn claim(&self, background_first: bool) -> Result<Option<Vec<ClaimedJob>>, StoreError> {
        let token = format!("{}:{}", self.replica, Uuid::new_v4().simple());
        let lease = self.settings.lease;
        let (pool, kinds) = (&self.pool, &self.kinds);
        let mut first = None;
        if background_first {
            first =
                jobs::claim_next_job_from(pool, kinds, &token, lease, jobs::PRIORITY_BACKGROUND)
                    .await?;
        }
        if first.is_none() {
            first = jobs::claim_next_job(pool, kinds, &token, lease).await?;
        }
        let Some(first) = first else {
            return Ok(None);
        };
        self.hold(&token);
        let size = self
            .handlers
            .get(&first.kind)
            .map_or(1, |h| h.group_size().max(1));
        let more = i64::try_from(size - 1).unwrap_or(0);
        let mut group = vec![first];
        match jobs::claim_more_jobs(&self.pool, &group[0], more, lease).await {
            Ok(extra) => group.extend(extra),
            // The first job is ours already; run it alone rather than lose the claim.
            Err(e) => warn!(error = %error_chain(&e), "claiming more jobs failed"),
        }
        Ok(Some(group))
    }

    async fn run_group(&self, group: Vec<ClaimedJob>) -> Result<RunReport, StoreError> {
        let kind = group[0].kind.clone();
        let span = job_span(&group);
        let outcomes = self.outcomes_of(&group).instrument(span.clone()).await;
        metrics::counter!("qbo_sync_job_runs_total", "kind" => kind.clone()).increment(1);
        self.record(&group, &outcomes).instrument(span).await?;
        Ok(RunReport {
            kind,
            outcomes: group.iter().map(|j| j.id).zip(outcomes).collect(),
        })
    }

    /// Runs the handler, turning a panic or a missing handler into outcomes, never a crash.
    async fn outcomes_of(&self, group: &[ClaimedJob]) -> Vec<JobOutcome> {
        let first = &group[0];
        let Some(handler) = self.handlers.get(&first.kind) else {
            return dead_all(group, format!("no handler for job kind '{}'", first.kind));
        };
        let Ok(tenant) = TenantId::parse(first.tenant_id.clone()) else {
            return dead_all(group, "the job's tenant id is invalid".into());
        };
        let run = AssertUnwindSafe(handler.run(&tenant, group)).catch_unwind();
        match run.await {
            Ok(outcomes) if outcomes.len() == group.len() => outcomes,
            Ok(outcomes) => {
                error!(kind = %first.kind, got = outcomes.len(), want = group.len(), "handler answered for the wrong number of jobs");
                retry_all(group, "the handler answered for the wrong number of jobs")
            }
            Err(_) => {
                error!(kind = %first.kind, "job handler panicked");
                retry_all(group, "the job handler panicked")
            }
        }
    }

    async fn record(
        &self,
        group: &[ClaimedJob],
        outcomes: &[JobOutcome],
    ) -> Result<(), StoreError> {
        let token = &group[0].locked_by;
        let mut done = Vec::new();
        for (job, outcome) in group.iter().zip(outcomes) {
            metrics::counter!("qbo_sync_job_outcomes_total", "kind" => job.kind.clone(), "outcome" => outcome.label())
                .increment(1);
            metrics::histogram!("qbo_sync_job_attempts", "kind" => job.kind.clone())
                .record(f64::from(job.attempts));
            match outcome {
                JobOutcome::Done => done.push(job.id),
                JobOutcome::Retry { error } => {
                    let delay = self.settings.retry_delay(job.attempts);
                    let dead =
                        jobs::fail_job(&self.pool, job.id, token, error, delay, false).await?;
                    log_failure(job, error, dead);
                    if dead {
                        count_dead(job);
                    }
                }
                JobOutcome::Dead { error } => {
                    jobs::fail_job(&self.pool, job.id, token, error, Duration::ZERO, true).await?;
                    log_failure(job, error, true);
                    count_dead(job);
                }
                JobOutcome::Throttled { retry_in, why } => {
                    jobs::reschedule_jobs(&self.pool, &[job.id], token, why, *retry_in, true)
                        .await?;
                }
                JobOutcome::Later { retry_in, why } => {
                    jobs::reschedule_jobs(&self.pool, &[job.id], token, why, *retry_in, false)
                        .await?;
                }
                JobOutcome::Parked { why } => {
                    let parked =
                        jobs::park_tenant_jobs(&self.pool, &job.tenant_id, &[job.id], token, why)
                            .await?;
                    info!(tenant = %job.tenant_id, parked, %why, "tenant's QBO jobs parked");
                }
            }
        }
        if !done.is_empty() {
            let finished = jobs::complete_jobs(&self.pool, &done, token).await?;
            if finished < done.len() as u64 {
                warn!(
                    lost = done.len() as u64 - finished,
                    "jobs finished after their lease was taken over"
                );
            }
        }
        Ok(())
    }

    fn hold(&self, token: &str) {
        if let Ok(mut held) = self.held.lock() {
            held.insert(token.to_owned());
        }
    }

    fn forget(&self, token: &str) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(token);
        }
    }

    fn held_tokens(&self) -> Vec<String> {
        self.held
            .lock()
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Runs the pool until shutdown: the worker loops, the wake-up listener, heartbeats and
    /// the rescue sweep. Returns when every loop has stopped and the jobs still running at
    /// the hard deadline have been released.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let wake = Arc::new(Notify::new());
        let side = shutdown.soft.child_token();
        let listener = tokio::spawn(listen(self.pool.clone(), Arc::clone(&wake), side.clone()));
        let beats = tokio::spawn(Arc::clone(&self).heartbeats(shutdown.clone()));
        let sweep = tokio::spawn(Arc::clone(&self).maintenance(side.clone()));
        let loops: Vec<_> = (0..self.settings.workers)
            .map(|_| tokio::spawn(Arc::clone(&self).work_loop(Arc::clone(&wake), shutdown.clone())))
            .collect();
        info!(
            workers = self.settings.workers,
            kinds = ?self.kinds,
            replica = %self.replica,
            "worker pool started"
        );
        for handle in loops {
            let _ = handle.await;
        }
        side.cancel();
        beats.abort();
        let _ = tokio::join!(listener, sweep);
        info!("worker pool stopped");
    }

    async fn work_loop(self: Arc<Self>, wake: Arc<Notify>, shutdown: Shutdown) {
        let mut idle_errors = 0u32;
        let turn = self.settings.background_turn;
        let mut interactive_in_a_row = 0u32;
        while !shutdown.soft.is_cancelled() {
            // Registered before claiming, so a wake-up during the claim is not lost.
            let woken = wake.notified();
            let offered = turn > 0 && interactive_in_a_row >= turn;
            match self.claim(offered).await {
                Ok(Some(group)) => {
                    idle_errors = 0;
                    // An offered turn that found no background work counts as taken.
                    if offered || group[0].priority > jobs::PRIORITY_INTERACTIVE {
                        interactive_in_a_row = 0;
                    } else {
                        interactive_in_a_row = interactive_in_a_row.saturating_add(1);
                    }
                    self.run_claimed(group, &shutdown).await;
                }
                Ok(None) => {
                    idle_errors = 0;
                    tokio::select! {
                        () = woken => {}
                        () = tokio::time::sleep(self.settings.poll_interval) => {}
                        () = shutdown.soft.cancelled() => {}
                    }
                }
                Err(e) => {
                    idle_errors += 1;
                    warn!(error = %error_chain(&e), "claiming a job failed; retrying");
                    // Backs off from a quarter second, never past the poll interval, and
                    // stops at once when the listener subscribes again (the database is back)
                    // or a job is announced: a long nap here held new jobs after a restart.
                    tokio::select! {
                        () = woken => {}
                        () = tokio::time::sleep(error_nap(idle_errors, self.settings.poll_interval)) => {}
                        () = shutdown.soft.cancelled() => {}
                    }
                }
            }
        }
    }

    /// Runs one claimed group; at the hard deadline the run is dropped and its jobs released.
    async fn run_claimed(&self, group: Vec<ClaimedJob>, shutdown: &Shutdown) {
        let token = group[0].locked_by.clone();
        tokio::select! {
            result = self.run_group(group) => {
                if let Err(e) = result {
                    warn!(error = %error_chain(&e), "recording a job's outcome failed; its lease will run out and it will run again");
                }
            }
            () = shutdown.hard.cancelled() => {
                match jobs::release_jobs(&self.pool, std::slice::from_ref(&token)).await {
                    Ok(released) => info!(released, "shutdown: running jobs released"),
                    Err(e) => warn!(error = %error_chain(&e), "shutdown: releasing jobs failed; their lease will run out"),
                }
            }
        }
        self.forget(&token);
    }

    /// Renews the leases of running jobs every third of the lease, until the hard deadline.
    async fn heartbeats(self: Arc<Self>, shutdown: Shutdown) {
        let every = self.settings.lease / 3;
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.hard.cancelled() => return,
            }
            let tokens = self.held_tokens();
            if tokens.is_empty() {
                continue;
            }
            if let Err(e) = jobs::heartbeat_jobs(&self.pool, &tokens, self.settings.lease).await {
                warn!(error = %error_chain(&e), "job heartbeat failed");
            }
        }
    }

    /// Puts back jobs whose lease ran out and prunes old finished jobs.
    async fn maintenance(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let every = (self.settings.lease / 2).max(Duration::from_millis(500));
        let mut rounds = 0u64;
        loop {
            match jobs::rescue_expired_jobs(&self.pool).await {
                Ok(0) => {}
                Ok(rescued) => warn!(rescued, "jobs of a stopped worker put back in the queue"),
                Err(e) => debug!(error = %error_chain(&e), "rescue sweep failed"),
            }
            if rounds.is_multiple_of(120)
                && let Err(e) = jobs::prune_finished_jobs(&self.pool, self.settings.retention).await
            {
                debug!(error = %error_chain(&e), "pruning finished jobs failed");
            }
            rounds += 1;
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.cancelled() => return,
            }
        }
    }
}

/// How long a loop waits after its `errors`-th failed claim in a row: 250 ms doubling, at
/// most the poll interval.
fn error_nap(errors: u32, poll_interval: Duration) -> Duration {
    let doubled = Duration::from_millis(250).saturating_mul(1 << errors.saturating_sub(1).min(16));
    doubled.min(poll_interval)
}

/// Forwards NOTIFYs on the jobs channel to the idle loops; after a (re)subscription or a
/// dropped connection they look too, since announcements may have been missed (the poll
/// interval covers the time without a subscription).
async fn listen(pool: PgPool, wake: Arc<Notify>, stop: tokio_util::sync::CancellationToken) {
    notify::follow(&pool, jobs::JOBS_CHANNEL, "jobs", stop, |_| {
        wake.notify_waiters();
    })
    .await;
}

/// The span of one turn of a group of jobs (one kind, one tenant): `job.KIND` in exported
/// traces, where it starts a trace of its own. Every line logged while the jobs run names the
/// tenant, the first job and, when the jobs belong to one sync run, its `run_id`.
fn job_span(group: &[ClaimedJob]) -> tracing::Span {
    let first = &group[0];
    let span = tracing::info_span!(
        "job",
        otel.name = %format_args!("job.{}", first.kind),
        otel.kind = "consumer",
        kind = %first.kind,
        job = %first.id,
        jobs = group.len(),
        attempt = first.attempts,
        tenant = %first.tenant_id,
        run_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::record_trace_id(&span);
    if let Some(run) = run_of(first).filter(|run| group.iter().all(|j| run_of(j) == Some(*run))) {
        span.record("run_id", tracing::field::display(run));
    }
    span
}

fn log_failure(job: &ClaimedJob, error: &str, dead: bool) {
    if dead {
        warn!(job = %job.id, kind = %job.kind, tenant = %job.tenant_id, attempts = job.attempts, %error, "job dead");
    } else {
        info!(job = %job.id, kind = %job.kind, tenant = %job.tenant_id, attempts = job.attempts, %error, "job failed; will retry");
    }
}

fn dead_all(group: &[ClaimedJob], error: String) -> Vec<JobOutcome> {
    group
        .iter()
        .map(|_| JobOutcome::Dead {
            error: error.clone(),
        })
        .collect()
}

fn retry_all(group: &[ClaimedJob], error: &str) -> Vec<JobOutcome> {
    group
        .iter()
        .map(|_| JobOutcome::Retry {
            error: error.to_owned(),
        })
        .collect()
}

/// Counts a job that will not run again until a person retries it.
fn count_dead(job: &ClaimedJob) {
    metrics::counter!("qbo_sync_jobs_dead_total", "kind" => job.kind.clone()).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_claim_backs_off_from_a_quarter_second_to_the_poll_interval() {
        let poll = Duration::from_secs(30);
        let naps: Vec<u64> = (1..=10)
            .map(|n| error_nap(n, poll).as_millis() as u64)
            .collect();
        assert_eq!(
            naps,
            [
                250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000
            ]
        );
        assert_eq!(error_nap(u32::MAX, poll), poll);
        assert_eq!(
            error_nap(1, Duration::from_millis(100)),
            Duration::from_millis(100)
        );
    }
}
