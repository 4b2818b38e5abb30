//! The job queue and worker pool on real PostgreSQL, with a job kind registered by the test
//! (the queue is the thing under test, so its handler only records what it was asked to do).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use qbo_sync::{
    domain::TenantId,
    pgcluster::{FreshDatabase, fresh_database},
    shutdown::Shutdown,
    store::jobs::{self, ClaimedJob, NewJob, PRIORITY_BACKGROUND, PRIORITY_INTERACTIVE},
    worker::{Handlers, JobHandler, JobOutcome, Worker, WorkerSettings},
};
use uuid::Uuid;

use crate::helpers::eventually;

const KIND: &str = "test_job";

/// What the test handler does with each job.
#[derive(Clone, Copy)]
enum Behaviour {
    Succeed,
    Fail,
    Throttle,
    Hang,
    Panic,
}

#[derive(Clone)]
struct Recorder {
    behaviour: Behaviour,
    runs: Arc<Mutex<Vec<Uuid>>>,
}

impl Recorder {
    fn new(behaviour: Behaviour) -> Self {
        Self {
            behaviour,
            runs: Arc::default(),
        }
    }

    fn runs(&self) -> Vec<Uuid> {
        self.runs.lock().unwrap().clone()
    }
}

impl JobHandler for Recorder {
    fn run<'a>(
        &'a self,
        _: &'a TenantId,
        jobs: &'a [ClaimedJob],
    ) -> BoxFuture<'a, Vec<JobOutcome>> {
        async move {
            self.runs.lock().unwrap().extend(jobs.iter().map(|j| j.id));
            match self.behaviour {
                Behaviour::Succeed => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    jobs.iter().map(|_| JobOutcome::Done).collect()
                }
                Behaviour::Fail => jobs
                    .iter()
                    .map(|_| JobOutcome::Retry {
                        error: "boom".into(),
                    })
                    .collect(),
                Behaviour::Throttle => jobs
                    .iter()
                    .map(|_| JobOutcome::Throttled {
                        retry_in: Duration::from_secs(30),
                        why: "throttled".into(),
                    })
                    .collect(),
                Behaviour::Hang => std::future::pending().await,
                Behaviour::Panic => panic!("handler bug"),
            }
        }
        .boxed()
    }
}

fn settings(workers: usize, lease: Duration, poll: Duration) -> WorkerSettings {
    WorkerSettings {
        workers,
        lease,
        poll_interval: poll,
        backoff_base: Duration::from_secs(10),
        backoff_max: Duration::from_secs(600),
        retention: Duration::from_secs(3600),
        background_turn: 4,
    }
}

fn worker(db: &FreshDatabase, recorder: &Recorder, s: WorkerSettings) -> Arc<Worker> {
    let handlers = Handlers::new().with(KIND, Arc::new(recorder.clone()));
    Arc::new(Worker::new(db.pool.clone(), handlers, s))
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

async fn enqueue(
    db: &FreshDatabase,
    tenant_id: &str,
    priority: i16,
    key: Option<&str>,
) -> Option<Uuid> {
    let mut conn = db.pool.acquire().await.unwrap();
    let job = NewJob {
        kind: KIND,
        payload: serde_json::json!({}),
        priority,
        dedupe_key: key.map(str::to_owned),
        needs_connection: false,
    };
    jobs::enqueue_job(&mut conn, &tenant(tenant_id), &job)
        .await
        .unwrap()
}

async fn state_of(db: &FreshDatabase, id: Uuid) -> (String, i32, Option<String>, Option<String>) {
    sqlx::query_as("SELECT state, attempts, last_error, locked_by FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn count_in(db: &FreshDatabase, state: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = $1")
        .bind(state)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn two_replicas_never_run_one_job_twice() {
    let db = fresh_database().await.unwrap();
    let recorder = Recorder::new(Behaviour::Succeed);
    for i in 0..300 {
        enqueue(
            &db,
            &format!("tenant-{}", i % 3),
            PRIORITY_INTERACTIVE,
            None,
        )
        .await;
    }
    let s = settings(4, Duration::from_secs(30), Duration::from_millis(50));
    let shutdown = Shutdown::new();
    let replicas = [worker(&db, &recorder, s.clone()), worker(&db, &recorder, s)];
    let pools: Vec<_> = replicas
        .iter()
        .map(|w| tokio::spawn(Arc::clone(w).run(shutdown.clone())))
        .collect();
    let finished = eventually(Duration::from_secs(60), || async {
        count_in(&db, "succeeded").await == 300
    })
    .await;
    shutdown.trigger(Duration::from_secs(5));
    for pool in pools {
        pool.await.unwrap();
    }
    assert!(finished, "every job ran");
    let mut runs: HashMap<Uuid, usize> = HashMap::new();
    for id in recorder.runs() {
        *runs.entry(id).or_default() += 1;
    }
    assert_eq!(runs.len(), 300);
    assert!(runs.values().all(|n| *n == 1), "a job ran twice");
}

#[tokio::test]
async fn failures_back_off_then_the_job_is_dead_with_its_last_error() {
    let db = fresh_database().await.unwrap();
    let recorder = Recorder::new(Behaviour::Fail);
    let w = worker(
        &db,
        &recorder,
        settings(1, Duration::from_secs(30), Duration::from_secs(1)),
    );
    let id = enqueue(&db, "t", PRIORITY_INTERACTIVE, None).await.unwrap();
    sqlx::query("UPDATE jobs SET max_attempts = 3 WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await
        .unwrap();
    let mut delays = Vec::new();
    for attempt in 1..=3 {
        assert!(
            w.try_run_next().await.unwrap().is_some(),
            "attempt {attempt}"
        );
        let delay: f64 = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM run_at - now())::float8 FROM jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        delays.push(delay);
        assert!(
            w.try_run_next().await.unwrap().is_none(),
            "backing off: not due"
        );
        sqlx::query("UPDATE jobs SET run_at = now() WHERE id = $1 AND state = 'queued'")
            .bind(id)
            .execute(&db.pool)
            .await
            .unwrap();
    }
    // Equal jitter over 10 s, 20 s: each delay lies in [half, full] of its step.
    assert!((4.9..=10.1).contains(&delays[0]), "{delays:?}");
    assert!((9.9..=20.1).contains(&delays[1]), "{delays:?}");
    let (state, attempts, error, locked_by) = state_of(&db, id).await;
    assert_eq!((state.as_str(), attempts), ("dead", 3));
    assert_eq!(error.as_deref(), Some("boom"));
    assert!(locked_by.is_none());
    assert!(
        w.try_run_next().await.unwrap().is_none(),
        "dead jobs are not run"
    );
}

#[test]
fn retry_delays_grow_and_are_capped() {
    let s = WorkerSettings {
        backoff_base: Duration::from_secs(10),
        backoff_max: Duration::from_secs(60),
        ..settings(1, Duration::from_secs(60), Duration::from_secs(1))
    };
    for _ in 0..50 {
        let first = s.retry_delay(1);
        assert!(first >= Duration::from_secs(5) && first <= Duration::from_secs(10));
        let late = s.retry_delay(30);
        assert!(late >= Duration::from_secs(30) && late <= Duration::from_secs(60));
    }
}

#[tokio::test]
async fn a_throttled_job_keeps_its_attempts() {
    let db = fresh_database().await.unwrap();
    let recorder = Recorder::new(Behaviour::Throttle);
    let w = worker(
        &db,
        &recorder,
        settings(1, Duration::from_secs(30), Duration::from_secs(1)),
    );
    let id = enqueue(&db, "t", PRIORITY_INTERACTIVE, None).await.unwrap();
    for _ in 0..5 {
        w.try_run_next().await.unwrap().unwrap();
        sqlx::query("UPDATE jobs SET run_at = now() WHERE id = $1")
            .bind(id)
            .execute(&db.pool)
            .await
            .unwrap();
    }
    let (state, attempts, _, _) = state_of(&db, id).await;
    assert_eq!((state.as_str(), attempts), ("queued", 0));
    let throttled: i32 = sqlx::query_scalar("SELECT throttled FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(throttled, 5);
}

#[tokio::test]
async fn a_dedupe_key_holds_one_live_job_and_frees_when_it_is_done() {
    let db = fresh_database().await.unwrap();
    let recorder = Recorder::new(Behaviour::Succeed);
    let w = worker(
        &db,
        &recorder,
        settings(1, Duration::from_secs(30), Duration::from_secs(1)),
    );
    assert!(
        enqueue(&db, "t", PRIORITY_INTERACTIVE, Some("push:c1"))
            .await
            .is_some()
    );
    assert!(
        enqueue(&db, "t", PRIORITY_INTERACTIVE, Some("push:c1"))
            .await
            .is_none()
    );
    // The same key of another tenant is another job.
    assert!(
        enqueue(&db, "u", PRIORITY_INTERACTIVE, Some("push:c1"))
            .await
            .is_some()
    );
    while w.try_run_next().await.unwrap().is_some() {}
    assert!(
        enqueue(&db, "t", PRIORITY_INTERACTIVE, Some("push:c1"))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn a_job_enqueued_in_a_rolled_back_transaction_does_not_exist() {
    let db = fresh_database().await.unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    let job = NewJob {
        kind: KIND,
        payload: serde_json::json!({}),
        priority: PRIORITY_INTERACTIVE,
        dedupe_key: None,
        needs_connection: false,
    };
    jobs::enqueue_job(&mut tx, &tenant("t"), &job)
        .await
        .unwrap()
        .unwrap();
    tx.rollback().await.unwrap();
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(total, 0);
}

#[tokio::test]
async fn notify_wakes_an_idle_worker_long_before_its_poll() {
    let db = fresh_database().await.unwrap();
    let recorder = Recorder::new(Behaviour::Succeed);
    let w = worker(
        &db,
        &recorder,
        settings(1, Duration::from_secs(30), Duration::from_secs(60)),
    );
    let shutdown = Shutdown::new();
    let pool = tokio::spawn(Arc::clone(&w).run(shutdown.clone()));
    // Let the loop find the queue empty and go to sleep for its 60 s poll.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = enqueue(&db, "t", PRIORITY_INTERACTIVE, None).await.unwrap();
    let woke = eventually(Duration::from_secs(5), || async {
        state_of(&db, id).await.0 == "succeeded"
    })
    .await;
    shutdown.trigger(Duration::from_secs(1));
    pool.await.unwrap();
    assert!(woke, "the NOTIFY woke the worker");
}

#[tokio::test]
async fn shutdown_releases_running_jobs_at_once_without_spending_attempts() {
    let db = fresh_database().await.unwrap();
    let recorder = Recorder::new(Behaviour::Hang);
    let w = worker(
        &db,
        &recorder,
        settings(1, Duration::from_secs(30), Duration::from_millis(50)),
    );
    let id = enqueue(&db, "t", PRIORITY_INTERACTIVE, None).await.unwrap();
    let shutdown = Shutdown::new();
    let pool = tokio::spawn(Arc::clone(&w).run(shutdown.clone()));
    assert!(
        eventually(Duration::from_secs(5), || async {
            state_of(&db, id).await.0 == "running"
        })
        .await
    );
    let started = std::time::Instant::now();
    shutdown.trigger(Duration::from_millis(200));
    pool.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded by the grace period"
    );
    let (state, attempts, _, locked_by) = state_of(&db, id).await;
    assert_eq!((state.as_str(), attempts), ("queued", 0));
    assert!(locked_by.is_none());
    let due: bool = sqlx::query_scalar("SELECT run_at <= now() FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(due, "released for another replica at once, no backoff");
}

#[tokio::test]
async fn the_job_of_a_replica_that_died_is_rescued_after_its_lease() {
    let db = fresh_database().await.unwrap();
    let id = enqueue(&db, "t", PRIORITY_INTERACTIVE, None).await.unwrap();
    let kinds = vec![KIND.to_owned()];
    // The dead replica: claimed with a short lease, never heard from again.
    jobs::claim_next_job(&db.pool, &kinds, "dead:1", Duration::from_millis(300))
        .await
        .unwrap()
        .unwrap();
    let recorder = Recorder::new(Behaviour::Succeed);
    let w = worker(
        &db,
        &recorder,
        settings(1, Duration::from_secs(1), Duration::from_millis(50)),
    );
    let shutdown = Shutdown::new();
    let pool = tokio::spawn(Arc::clone(&w).run(shutdown.clone()));
    let done = eventually(Duration::from_secs(10), || async {
        state_of(&db, id).await.0 == "succeeded"
    })
    .await;
    shutdown.trigger(Duration::from_secs(1));
    pool.await.unwrap();
    assert!(done, "rescued and finished");
    assert_eq!(recorder.runs(), vec![id]);
    assert_eq!(
        state_of(&db, id).await.1,
        2,
        "the dead replica's attempt counts"
    );
}

#[tokio::test]
async fn heartbeats_keep_a_long_job_from_being_rescued() {
    let db = fresh_database().await.unwrap();
    let id = enqueue(&db, "t", PRIORITY_INTERACTIVE, None).await.unwrap();
    let recorder = Recorder::new(Behaviour::Hang);
    let w = worker(
        &db,
        &recorder,
        settings(1, Duration::from_millis(600), Duration::from_millis(50)),
    );
    let shutdown = Shutdown::new();
    let pool = tokio::spawn(Arc::clone(&w).run(shutdown.clone()));
    // Several leases long: without heartbeats the sweep would put it back and rerun it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (state, attempts, _, _) = state_of(&db, id).await;
    shutdown.trigger(Duration::from_millis(100));
    pool.await.unwrap();
    assert_eq!((state.as_str(), attempts), ("running", 1));
    assert_eq!(recorder.runs().len(), 1);
}

#[tokio::test]
async fn a_panicking_handler_costs_an_attempt_not_the_worker() {
    let db = fresh_database().await.unwrap();
    let recorder = Recorder::new(Behaviour::Panic);
    let w = worker(
        &db,
        &recorder,
        settings(1, Duration::from_secs(30), Duration::from_secs(1)),
    );
    let id = enqueue(&db, "t", PRIORITY_INTERACTIVE, None).await.unwrap();
    let report = w.try_run_next().await.unwrap().unwrap();
    assert!(matches!(report.outcomes[0].1, JobOutcome::Retry { .. }));
    let (state, attempts, error, _) = state_of(&db, id).await;
    assert_eq!((state.as_str(), attempts), ("queued", 1));
    assert!(error.unwrap().contains("panicked"));
}

#[tokio::test]
async fn one_tenants_backlog_does_not_stand_in_front_of_another_tenant() {
    let db = fresh_database().await.unwrap();
    for _ in 0..200 {
        enqueue(&db, "big", PRIORITY_INTERACTIVE, None).await;
    }
    let small = enqueue(&db, "small", PRIORITY_INTERACTIVE, None)
        .await
        .unwrap();
    let kinds = vec![KIND.to_owned()];
    let mut order = Vec::new();
    for i in 0..3 {
        let job =
            jobs::claim_next_job(&db.pool, &kinds, &format!("w:{i}"), Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap();
        order.push(job.id);
    }
    assert!(
        order.contains(&small),
        "the small tenant's job is among the first claims"
    );
}

#[tokio::test]
async fn interactive_jobs_run_before_background_ones() {
    let db = fresh_database().await.unwrap();
    for _ in 0..20 {
        enqueue(&db, "t", PRIORITY_BACKGROUND, None).await;
    }
    let urgent = enqueue(&db, "t", PRIORITY_INTERACTIVE, None).await.unwrap();
    let kinds = vec![KIND.to_owned()];
    let first = jobs::claim_next_job(&db.pool, &kinds, "w:1", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.id, urgent);
}

/// Runs every queued job with one worker loop and returns their priorities in run order.
async fn run_order(db: &FreshDatabase, turn: u32, total: usize) -> Vec<i16> {
    let recorder = Recorder::new(Behaviour::Succeed);
    let s = WorkerSettings {
        background_turn: turn,
        ..settings(1, Duration::from_secs(30), Duration::from_millis(50))
    };
    let w = worker(db, &recorder, s);
    let shutdown = Shutdown::new();
    let pool = tokio::spawn(Arc::clone(&w).run(shutdown.clone()));
    let finished = eventually(Duration::from_secs(60), || async {
        count_in(db, "succeeded").await == i64::try_from(total).unwrap()
    })
    .await;
    shutdown.trigger(Duration::from_secs(1));
    pool.await.unwrap();
    assert!(finished, "every job ran");
    let priorities: HashMap<Uuid, i16> = sqlx::query_as("SELECT id, priority FROM jobs")
        .fetch_all(&db.pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    recorder.runs().iter().map(|id| priorities[id]).collect()
}

#[tokio::test]
async fn background_work_gets_its_turn_while_interactive_work_keeps_coming() {
    let db = fresh_database().await.unwrap();
    // Background work queued first, then more interactive work than the test will let run
    // before the background work is done: strict priority would run all 40 interactive jobs
    // first.
    for _ in 0..8 {
        enqueue(&db, "t", PRIORITY_BACKGROUND, None).await;
    }
    for _ in 0..40 {
        enqueue(&db, "t", PRIORITY_INTERACTIVE, None).await;
    }
    let order = run_order(&db, 4, 48).await;
    // After every four interactive claims, one background claim: the eighth background job
    // runs as the 40th job, and no run of interactive jobs is longer than four.
    let last_background = order
        .iter()
        .rposition(|p| *p == PRIORITY_BACKGROUND)
        .unwrap();
    assert_eq!(last_background, 39, "{order:?}");
    let longest = order
        .split(|p| *p == PRIORITY_BACKGROUND)
        .take(8)
        .map(<[i16]>::len)
        .max()
        .unwrap();
    assert_eq!(longest, 4, "{order:?}");
}

#[tokio::test]
async fn with_no_background_share_interactive_work_always_goes_first() {
    let db = fresh_database().await.unwrap();
    for _ in 0..5 {
        enqueue(&db, "t", PRIORITY_BACKGROUND, None).await;
    }
    for _ in 0..20 {
        enqueue(&db, "t", PRIORITY_INTERACTIVE, None).await;
    }
    let order = run_order(&db, 0, 25).await;
    assert!(
        order[..20].iter().all(|p| *p == PRIORITY_INTERACTIVE),
        "{order:?}"
    );
}

#[tokio::test]
async fn a_group_holds_one_priority_only() {
    let db = fresh_database().await.unwrap();
    let interactive = enqueue(&db, "t", PRIORITY_INTERACTIVE, None).await.unwrap();
    for _ in 0..5 {
        enqueue(&db, "t", PRIORITY_BACKGROUND, None).await;
    }
    let kinds = vec![KIND.to_owned()];
    let first = jobs::claim_next_job(&db.pool, &kinds, "w:1", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.id, interactive);
    let more = jobs::claim_more_jobs(&db.pool, &first, 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(more.is_empty(), "background jobs rode an interactive group");
    let background = jobs::claim_next_job_from(
        &db.pool,
        &kinds,
        "w:2",
        Duration::from_secs(30),
        PRIORITY_BACKGROUND,
    )
    .await
    .unwrap()
    .unwrap();
    let more = jobs::claim_more_jobs(&db.pool, &background, 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(more.len(), 4);
    assert!(more.iter().all(|j| j.priority == PRIORITY_BACKGROUND));
}
