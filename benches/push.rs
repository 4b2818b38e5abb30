//! Load tests of the job queue, the worker pool and the push, on real PostgreSQL, against the
//! simulator enforcing QBO's per-realm limits (time-scaled) over real HTTP, through the real
//! server. Each scenario prints its figure next to the baseline or ceiling measured or given
//! in the same run.
//!
//! * `queue`: no-op jobs claimed and completed per second by one replica (a figure to compare
//!   later changes with);
//! * `push`: 10,000 new Digit customers reported through `BatchUpsertCustomers`, pushed to QBO;
//!   creates per (scaled) minute against the best the documented limits allow (40 batches of
//!   30 a minute: 1,200), and the limit violations the simulator counted;
//! * `fairness`: 20 tenants with 5,000 queued pushes each on two replicas while one more tenant
//!   pushes one customer a second; that tenant's push latency p50/p99 (goal p99 ≤ 5 s).
//!
//! Run: `cargo bench --bench push` (all), or `cargo bench --bench push -- queue|push|fairness`.
//! `QBO_BENCH_WINDOW_SECS` (default 6) is the simulator's and the client's rate window: one
//! window stands for one real minute.

mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{FutureExt, future::BoxFuture};
use qbo_sim::{FaultConfig, Simulator, SimulatorConfig};
use qbo_sync::{
    domain::TenantId,
    pgcluster::{FreshDatabase, fresh_database},
    proto::v1 as pb,
    shutdown::Shutdown,
    store::jobs::{self, ClaimedJob, NewJob, PRIORITY_BACKGROUND},
    worker::{Handlers, JobHandler, JobOutcome, Worker, WorkerSettings},
};

use support::{connect, realm_of, replica};

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    runtime.block_on(async {
        if wants("queue") {
            queue_overhead().await?;
        }
        if wants("push") {
            push_throughput().await?;
        }
        if wants("fairness") {
            fairness().await?;
        }
        Ok(())
    })
}

fn window() -> Duration {
    Duration::from_secs(
        std::env::var("QBO_BENCH_WINDOW_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(6),
    )
}

// ---------------------------------------------------------------------------------------------
// queue

struct Noop;

impl JobHandler for Noop {
    fn run<'a>(
        &'a self,
        _: &'a TenantId,
        jobs: &'a [ClaimedJob],
    ) -> BoxFuture<'a, Vec<JobOutcome>> {
        std::future::ready(jobs.iter().map(|_| JobOutcome::Done).collect()).boxed()
    }
}

async fn queue_overhead() -> anyhow::Result<()> {
    const JOBS: i64 = 20_000;
    const WORKERS: usize = 8;
    println!("== queue: {JOBS} no-op jobs, one replica, {WORKERS} worker loops ==");
    let db = fresh_database().await?;
    let mut conn = db.pool.acquire().await?;
    let enqueue_started = Instant::now();
    for i in 0..JOBS {
        let tenant = TenantId::parse(format!("tenant-{}", i % 50))?;
        let job = NewJob {
            kind: "noop",
            payload: serde_json::json!({}),
            priority: PRIORITY_BACKGROUND,
            dedupe_key: None,
            needs_connection: false,
        };
        jobs::enqueue_job(&mut conn, &tenant, &job).await?;
    }
    drop(conn);
    let enqueue = enqueue_started.elapsed();
    let settings = WorkerSettings {
        workers: WORKERS,
        lease: Duration::from_secs(60),
        poll_interval: Duration::from_millis(200),
        backoff_base: Duration::from_secs(10),
        backoff_max: Duration::from_secs(600),
        retention: Duration::from_secs(3600),
        background_turn: 4,
    };
    let worker = Arc::new(Worker::new(
        db.pool.clone(),
        Handlers::new().with("noop", Arc::new(Noop)),
        settings,
    ));
    let shutdown = Shutdown::new();
    let started = Instant::now();
    let pool = tokio::spawn(Arc::clone(&worker).run(shutdown.clone()));
    loop {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'")
            .fetch_one(&db.pool)
            .await?;
        if done == JOBS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    shutdown.trigger(Duration::from_secs(5));
    pool.await?;
    println!(
        "enqueued {JOBS} one by one in {:.2} s ({:.0} jobs/s, one round trip each)",
        enqueue.as_secs_f64(),
        JOBS as f64 / enqueue.as_secs_f64()
    );
    println!(
        "claimed and completed {JOBS} in {:.2} s: {:.0} jobs/s ({:.2} ms per job per loop)\n",
        took.as_secs_f64(),
        JOBS as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 * WORKERS as f64 / JOBS as f64
    );
    Ok(())
}

fn simulator_config() -> SimulatorConfig {
    SimulatorConfig::default()
        .time_scaled(u32::try_from(60 / window().as_secs().max(1)).unwrap_or(10))
}

fn latency() -> FaultConfig {
    FaultConfig {
        latency: Duration::from_millis(40),
        latency_jitter: Duration::from_millis(40),
        ..FaultConfig::default()
    }
}

/// Links of one tenant (all tenants with `None`).
async fn linked(db: &FreshDatabase, tenant: Option<&str>) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM links WHERE $1::text IS NULL OR tenant_id = $1")
            .bind(tenant)
            .fetch_one(&db.pool)
            .await?,
    )
}

// ---------------------------------------------------------------------------------------------
// push

async fn push_throughput() -> anyhow::Result<()> {
    const CUSTOMERS: usize = 10_000;
    let w = window();
    println!(
        "== push: {CUSTOMERS} new customers of one tenant, BatchUpsertCustomers in 1,000s, \
         one replica, 8 workers; {} s window stands for one minute; latency 40-80 ms ==",
        w.as_secs()
    );
    let sim = Simulator::start(simulator_config()).await?;
    sim.set_faults(latency());
    let db = fresh_database().await?;
    let r = replica(&sim, &db, 8, window()).await?;
    let (tenant, realm) = ("bulk-tenant", realm_of(1));
    connect(&r, &sim, tenant, &realm).await?;
    let started = Instant::now();
    for chunk in 0..CUSTOMERS / 1000 {
        let customers = (0..1000)
            .map(|i| pb::DigitCustomer {
                id: format!("c{chunk}-{i}"),
                display_name: format!("Pushworthy {chunk} {i:04} Supplies"),
                ..Default::default()
            })
            .collect();
        r.customers()
            .batch_upsert_customers(pb::BatchUpsertCustomersRequest {
                tenant_id: tenant.into(),
                customers,
                skip_push: false,
            })
            .await?;
    }
    let reported = started.elapsed();
    while linked(&db, Some(tenant)).await? < CUSTOMERS as i64 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = started.elapsed();
    let stats = sim.stats();
    r.stop().await;
    let windows = took.as_secs_f64() / w.as_secs_f64();
    let per_minute = CUSTOMERS as f64 / windows;
    let best = 40.0 * 30.0;
    // The floor the limits allow: every batch of 30 at 40 per window, from the first report.
    let floor_windows = (CUSTOMERS as f64 / 30.0).ceil() / 40.0;
    println!(
        "reported in {:.1} s; all {CUSTOMERS} linked after {:.1} s = {windows:.2} windows",
        reported.as_secs_f64(),
        took.as_secs_f64()
    );
    println!(
        "creates per window (minute): {per_minute:.0}; best the limits allow: {best:.0}; \
         ratio {:.3} (floor {floor_windows:.2} windows)",
        per_minute / best
    );
    println!(
        "QBO creates counted by the simulator: {}; batch calls: {}; queries: {}; limit \
         violations: {} (rate {}, concurrency {}, batch {})\n",
        stats.creates,
        stats.per_endpoint.get("batch").copied().unwrap_or(0),
        stats.per_endpoint.get("query").copied().unwrap_or(0),
        stats.limit_violations.total(),
        stats.limit_violations.rate,
        stats.limit_violations.concurrency,
        stats.limit_violations.batch,
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// fairness

async fn fairness() -> anyhow::Result<()> {
    const TENANTS: usize = 20;
    const BACKLOG: usize = 5_000;
    const PROBES: usize = 30;
    println!(
        "== fairness: {TENANTS} tenants x {BACKLOG} queued pushes on two replicas (8 workers \
         each), one more tenant pushing one customer a second ({PROBES} probes) =="
    );
    let sim = Simulator::start(simulator_config()).await?;
    sim.set_faults(latency());
    let db = fresh_database().await?;
    let a = replica(&sim, &db, 0, window()).await?;
    for t in 0..=TENANTS {
        connect(&a, &sim, &format!("tenant-{t}"), &realm_of(100 + t)).await?;
    }
    // The backlogs, written the way BatchUpsertCustomers writes them (customers and their
    // bulk push jobs), in one statement per tenant to keep the setup short.
    for t in 0..TENANTS {
        sqlx::query(
            "WITH c AS (
                 INSERT INTO digit_customers (tenant_id, id, display_name, name_key)
                 SELECT $1, 'b' || g, 'Backlog ' || $1 || ' ' || g || ' Goods',
                        'backlog ' || $1 || ' ' || g || ' goods'
                 FROM generate_series(1, $2) AS g RETURNING id)
             INSERT INTO jobs (id, tenant_id, kind, payload, state, priority, dedupe_key, fair_at)
             SELECT gen_random_uuid(), $1, 'push_customer', jsonb_build_object('digit_customer_id', id),
                    'queued', 10, 'push:' || id, now() + (row_number() OVER ()) * interval '1 ms'
             FROM c",
        )
        .bind(format!("tenant-{t}"))
        .bind(i32::try_from(BACKLOG)?)
        .execute(&db.pool)
        .await?;
    }
    a.stop().await;
    let replicas = [
        replica(&sim, &db, 8, window()).await?,
        replica(&sim, &db, 8, window()).await?,
    ];
    let probe_tenant = format!("tenant-{TENANTS}");
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(PROBES);
    for p in 0..PROBES {
        let tick = started + Duration::from_secs(p as u64);
        tokio::time::sleep_until(tick.into()).await;
        let id = format!("probe-{p}");
        let sent = Instant::now();
        replicas[p % 2]
            .customers()
            .upsert_customer(pb::UpsertCustomerRequest {
                tenant_id: probe_tenant.clone(),
                customer: Some(pb::DigitCustomer {
                    id: id.clone(),
                    display_name: format!("Probe Customer {p:03}"),
                    ..Default::default()
                }),
                skip_push: false,
            })
            .await?;
        loop {
            let done: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM links WHERE tenant_id = $1 AND digit_customer_id = $2)",
            )
            .bind(&probe_tenant)
            .bind(&id)
            .fetch_one(&db.pool)
            .await?;
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        latencies.push(sent.elapsed());
    }
    let backlog_done = linked(&db, None).await? - PROBES as i64;
    let stats = sim.stats();
    for r in replicas {
        r.stop().await;
    }
    latencies.sort();
    let pct = |q: f64| {
        latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "probe push latency (UpsertCustomer to linked): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; \
         goal p99 <= 5000 ms: ratio {:.2}",
        pct(0.5).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        latencies.last().map_or(0.0, |l| l.as_secs_f64() * 1000.0),
        pct(0.99).as_secs_f64() / 5.0
    );
    println!(
        "backlog pushes linked meanwhile: {backlog_done} of {}; limit violations: {} (rate {}, \
         concurrency {}, batch {})\n",
        TENANTS * BACKLOG,
        stats.limit_violations.total(),
        stats.limit_violations.rate,
        stats.limit_violations.concurrency,
        stats.limit_violations.batch
    );
    Ok(())
}
