//! Scenario 2: PostgreSQL restarted (`pg_ctl stop -m fast`, 1.5 s, `pg_ctl start`) during a
//! full sync and during preflight load. The cluster is a private one the test starts (never the shared server).
//! Health goes NOT_SERVING and back to SERVING by itself, the sync completes, no RPC hangs
//! past its deadline, and the LISTEN connections subscribe again (a push is picked up by its
//! NOTIFY although the replicas poll only every 30 s).

use std::{
    collections::BTreeMap,
    net::TcpListener as StdListener,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use qbo_sync::{pgcluster, proto::v1 as pb};
use sqlx::postgres::PgPoolOptions;
use tokio::{task::JoinHandle, time::Instant};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use super::{
    checks::{Figures, end_state},
    env::{ChaosEnv, Profile, TENANT},
};

/// A private cluster in a temporary directory, stopped and removed by [`Cluster::stop`].
struct Cluster {
    dir: PathBuf,
    port: u16,
    url: String,
}

impl Cluster {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("qbo-sync-chaos-pg-{}", uuid::Uuid::new_v4()));
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let start_dir = dir.clone();
        let server =
            tokio::task::spawn_blocking(move || pgcluster::start_cluster_in(&start_dir, port))
                .await
                .unwrap()
                .expect("a private PostgreSQL cluster");
        let admin = sqlx::PgPool::connect(&server).await.unwrap();
        sqlx::query("CREATE DATABASE chaos")
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let url = format!("{}/chaos", server.rsplit_once('/').unwrap().0);
        Self { dir, port, url }
    }

    /// `pg_ctl stop -m fast` (sessions cut with 57P01), a pause longer than the replicas'
    /// health interval so the outage is seen, and `pg_ctl start` with the same options: a
    /// restart that lasts. Returns how long the database was away.
    async fn restart(&self) -> Duration {
        let (dir, port) = (self.dir.clone(), self.port);
        let started = Instant::now();
        let stop_dir = dir.clone();
        tokio::task::spawn_blocking(move || pgcluster::stop_cluster_in(&stop_dir))
            .await
            .unwrap()
            .expect("pg_ctl stop -m fast");
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        tokio::task::spawn_blocking(move || pgcluster::start_cluster_in(&dir, port))
            .await
            .unwrap()
            .expect("pg_ctl start");
        started.elapsed()
    }

    async fn stop(self) {
        let dir = self.dir.clone();
        let _ = tokio::task::spawn_blocking(move || pgcluster::stop_cluster_in(&dir)).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Records each replica's health changes, polled every 100 ms.
struct HealthLog {
    stop: CancellationToken,
    channels: Vec<tonic::transport::Channel>,
    tasks: Vec<JoinHandle<Vec<ServingStatus>>>,
}

impl HealthLog {
    fn start(env: &ChaosEnv) -> Self {
        let stop = CancellationToken::new();
        let tasks = env
            .replicas
            .iter()
            .map(|r| {
                let channel = r.channel.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut seen: Vec<ServingStatus> = Vec::new();
                    while !stop.is_cancelled() {
                        let now = health_of(channel.clone()).await;
                        if seen.last() != Some(&now) {
                            seen.push(now);
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    seen
                })
            })
            .collect();
        let channels = env.replicas.iter().map(|r| r.channel.clone()).collect();
        Self {
            stop,
            channels,
            tasks,
        }
    }

    /// The changes seen, once every replica answers SERVING again (or 30 s have passed): the
    /// work watched can end before a replica's health check has seen the database back.
    async fn finish(self) -> Vec<Vec<ServingStatus>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        for channel in &self.channels {
            while health_of(channel.clone()).await != ServingStatus::Serving
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        // Long enough for the logging tasks, polling every 100 ms, to see it too.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.stop.cancel();
        let mut all = Vec::new();
        for t in self.tasks {
            all.push(t.await.unwrap());
        }
        all
    }
}

async fn health_of(channel: tonic::transport::Channel) -> ServingStatus {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut request = tonic::Request::new(tonic_health::pb::HealthCheckRequest::default());
    request.set_timeout(Duration::from_secs(1));
    match tokio::time::timeout(Duration::from_secs(2), client.check(request)).await {
        Ok(Ok(r)) => {
            ServingStatus::try_from(r.into_inner().status).unwrap_or(ServingStatus::Unknown)
        }
        _ => ServingStatus::Unknown,
    }
}

/// Preflight callers: `callers` loops of ValidateInvoiceCustomer with a 1 s deadline until
/// `stop`; counts the codes and the calls that outlived their deadline by over a second.
async fn preflight_load(
    env: &ChaosEnv,
    callers: usize,
    linked: u64,
    stop: CancellationToken,
) -> (BTreeMap<String, u64>, u64) {
    let codes = Arc::new(Mutex::new(BTreeMap::new()));
    let hangs = Arc::new(Mutex::new(0u64));
    let mut tasks = Vec::new();
    for k in 0..callers {
        let mut client = env.client(k % env.replicas.len());
        let (codes, hangs, stop) = (Arc::clone(&codes), Arc::clone(&hangs), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = k as u64;
            while !stop.is_cancelled() {
                i = (i + 7) % linked;
                let mut request = tonic::Request::new(pb::ValidateInvoiceCustomerRequest {
                    tenant_id: TENANT.into(),
                    digit_customer_id: format!("d-{i}"),
                    repair: false,
                });
                request.set_timeout(Duration::from_secs(1));
                let started = Instant::now();
                let answer = tokio::time::timeout(
                    Duration::from_secs(5),
                    client.validate_invoice_customer(request),
                )
                .await;
                let code = match answer {
                    Ok(Ok(_)) => Code::Ok,
                    Ok(Err(s)) => s.code(),
                    Err(_) => Code::DeadlineExceeded,
                };
                if started.elapsed() > Duration::from_secs(2) {
                    *hangs.lock().unwrap() += 1;
                }
                *codes
                    .lock()
                    .unwrap()
                    .entry(format!("{code:?}"))
                    .or_default() += 1;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let codes = codes.lock().unwrap().clone();
    let hangs = *hangs.lock().unwrap();
    (codes, hangs)
}

/// Whether a replica's health went NOT_SERVING (or stopped answering) and came back.
fn flipped_and_back(seen: &[ServingStatus]) -> bool {
    let down = seen.iter().position(|s| *s != ServingStatus::Serving);
    down.is_some_and(|at| seen[at..].contains(&ServingStatus::Serving))
        && seen.last() == Some(&ServingStatus::Serving)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_are_survived() {
    let profile = Profile::from_env(1, 1_000);
    let n = profile.customers;
    let cluster = Cluster::start().await;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&cluster.url)
        .await
        .unwrap();
    // Polling only every 30 s: a job picked up sooner was woken by its NOTIFY.
    let extra = [("QBO_SYNC_JOB_POLL_INTERVAL", "30s")];
    let mut env = ChaosEnv::start(&cluster.url, pool, &extra).await;
    let started = Instant::now();
    env.seed(n).await;
    let mut fig = Figures {
        scenario: "PostgreSQL restart",
        rounds: 2,
        customers: n,
        ..Figures::default()
    };

    // During a full sync.
    let health = HealthLog::start(&env);
    let run = env.trigger_full_sync("chaos-pg-sync").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let took = cluster.restart().await;
    fig.faults += 1;
    let (state, error) = env.wait_run(&run, Duration::from_secs(300)).await;
    assert_eq!(state, "succeeded", "the sync after the restart: {error:?}");
    let during_sync = health.finish().await;

    // During preflight load.
    let health = HealthLog::start(&env);
    let stop = CancellationToken::new();
    let load = {
        let stop = stop.clone();
        let env = &env;
        async move { preflight_load(env, 4, n * 9 / 10, stop).await }
    };
    let outage = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let took = cluster.restart().await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        stop.cancel();
        took
    };
    let ((codes, hangs), took_2) = tokio::join!(load, outage);
    fig.faults += 1;
    let during_load = health.finish().await;

    // Subscribed again: a push is woken by NOTIFY, long before the 30 s poll.
    let woke = listen_resubscribed(&env).await;
    assert!(
        env.wait_queue_drained(Duration::from_secs(120)).await,
        "jobs left"
    );
    end_state(&env, &mut fig, &Default::default()).await;
    fig.secs = started.elapsed().as_secs_f64();
    println!(
        "restarts took {:.1} s and {:.1} s; health during the sync {:?}, during the load {:?}; \
         preflight answers {codes:?}, past their deadline {hangs}; a push after the restarts ran in {:.1} s",
        took.as_secs_f64(),
        took_2.as_secs_f64(),
        during_sync,
        during_load,
        woke.as_secs_f64()
    );
    let all_flipped = during_sync
        .iter()
        .chain(&during_load)
        .all(|s| flipped_and_back(s));
    let bad_codes: u64 = codes
        .iter()
        .filter(|(c, _)| {
            !matches!(
                c.as_str(),
                "Ok" | "Unavailable" | "DeadlineExceeded" | "Cancelled"
            )
        })
        .map(|(_, n)| n)
        .sum();
    env.stop(!all_flipped || hangs > 0).await;
    cluster.stop().await;
    fig.assert_clean();
    assert!(
        all_flipped,
        "health must go NOT_SERVING and come back: {during_sync:?} {during_load:?}"
    );
    assert_eq!(hangs, 0, "RPCs past their deadline");
    assert_eq!(bad_codes, 0, "preflight answers: {codes:?}");
    assert!(
        woke < Duration::from_secs(10),
        "the push waited {woke:?}: LISTEN not subscribed again"
    );
}

/// Pushes one new customer and returns how long until it is linked.
async fn listen_resubscribed(env: &ChaosEnv) -> Duration {
    // Give the replicas a moment to see the database back (their health interval).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    env.client(0)
        .upsert_customer(pb::UpsertCustomerRequest {
            tenant_id: TENANT.into(),
            customer: Some(pb::DigitCustomer {
                id: "after-restart".into(),
                display_name: super::names::name(900_000),
                ..Default::default()
            }),
            skip_push: false,
        })
        .await
        .expect("upsert after the restarts");
    loop {
        let linked: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM links WHERE tenant_id = $1 AND digit_customer_id = 'after-restart')",
        )
        .bind(TENANT)
        .fetch_one(&env.pool)
        .await
        .unwrap();
        if linked || started.elapsed() > Duration::from_secs(40) {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
