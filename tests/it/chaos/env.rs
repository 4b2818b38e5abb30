//! One chaos environment: PostgreSQL (a database the test owns), the simulator as its own
//! process, two `qbo-sync serve` replicas, a connected tenant and its callers.

use std::{path::PathBuf, time::Duration};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use qbo_sync::proto::v1::{
    self as pb, connection_service_client::ConnectionServiceClient,
    customer_sync_service_client::CustomerSyncServiceClient,
};
use sqlx::PgPool;
use tonic::{Code, Status};

use super::{
    names,
    replica::{Replica, ReplicaEnv},
    sim::{SimLimits, SimProcess},
};
use crate::helpers::{AuthChannel, Bearer, TEST_CALLER, TEST_TOKEN, TestCaller, write_callers};

pub const TENANT: &str = "chaos";
pub const REALM: &str = "9130359999000001";

/// The sizes a run uses: the CI profile by default, the full one by environment.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub rounds: u32,
    pub customers: u64,
    pub seed: u64,
}

impl Profile {
    /// `CHAOS_ROUNDS`, `CHAOS_CUSTOMERS` and `CHAOS_SEED`, or the given CI defaults.
    pub fn from_env(rounds: u32, customers: u64) -> Self {
        let read = |key: &str| std::env::var(key).ok().and_then(|v| v.parse::<u64>().ok());
        Self {
            rounds: read("CHAOS_ROUNDS").map_or(rounds, |r| u32::try_from(r).unwrap_or(rounds)),
            customers: read("CHAOS_CUSTOMERS").unwrap_or(customers),
            seed: read("CHAOS_SEED").unwrap_or_else(rand::random),
        }
    }
}

/// The limits of the simulator and the service: QBO's, over a window ten times shorter.
pub const LIMITS: SimLimits = SimLimits {
    rate_window: Duration::from_secs(6),
    requests_per_window: 500,
    batches_per_window: 40,
};

/// A running environment.
pub struct ChaosEnv {
    pub sim: SimProcess,
    pub replicas: Vec<Replica>,
    pub pool: PgPool,
    pub dir: PathBuf,
    /// Names of the customers seeded in QBO (their keys are not creates of the service).
    pub seeded_qbo: Vec<String>,
    /// Secrets the replicas were given or handed: none may reach their logs.
    secrets: Vec<String>,
}

impl ChaosEnv {
    /// Starts the simulator and two replicas over `database_url` (migrated or not), and
    /// connects the tenant. `extra` variables override the defaults of every replica.
    pub async fn start(database_url: &str, pool: PgPool, extra: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("qbo-sync-chaos-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let sim = SimProcess::start(LIMITS).await.expect("simulator process");
        let env = replica_env(database_url, &sim, &dir, extra);
        let a = Replica::start("a", &env).await.expect("replica a");
        let b = Replica::start("b", &env).await.expect("replica b");
        let mut this = Self {
            sim,
            replicas: vec![a, b],
            pool,
            dir,
            seeded_qbo: Vec::new(),
            secrets: Vec::new(),
        };
        this.connect().await;
        this
    }

    async fn connect(&mut self) {
        let token = self.sim.refresh_token(REALM).await;
        self.secrets.extend([
            token.clone(),
            TEST_TOKEN.to_owned(),
            self.sim.urls.client_secret.clone(),
            token_key(),
        ]);
        let mut client = ConnectionServiceClient::with_interceptor(
            self.replicas[0].channel.clone(),
            Bearer::token(Some(TEST_TOKEN)),
        );
        client
            .connect_company(pb::ConnectCompanyRequest {
                tenant_id: TENANT.into(),
                realm_id: REALM.into(),
                environment: pb::QboEnvironment::Sandbox.into(),
                refresh_token: token,
                ..Default::default()
            })
            .await
            .expect("connect the tenant");
    }

    /// A client of replica `i`.
    pub fn client(&self, i: usize) -> CustomerSyncServiceClient<AuthChannel> {
        CustomerSyncServiceClient::with_interceptor(
            self.replicas[i].channel.clone(),
            Bearer::token(Some(TEST_TOKEN)),
        )
    }

    /// Seeds `n` QBO customers and `n` Digit customers (recorded without a push): 90 % of
    /// them twins written differently, the rest on one side only.
    pub async fn seed(&mut self, n: u64) {
        let twins = n * 9 / 10;
        let qbo: Vec<String> = (0..n).map(names::name).collect();
        self.sim.seed_customers(REALM, &qbo).await;
        self.seeded_qbo.extend(qbo);
        let digit: Vec<(String, String)> = (0..twins)
            .map(|i| (format!("d-{i}"), names::digit_variant(&names::name(i), i)))
            .chain((twins..n).map(|i| (format!("d-{i}"), names::name(200_000 + i))))
            .collect();
        self.record_digit(&digit).await;
    }

    /// Records Digit customers without pushing them (a sync decides), 1,000 a call.
    pub async fn record_digit(&self, customers: &[(String, String)]) {
        for chunk in customers.chunks(1_000) {
            let batch = pb::BatchUpsertCustomersRequest {
                tenant_id: TENANT.into(),
                customers: chunk
                    .iter()
                    .map(|(id, name)| pb::DigitCustomer {
                        id: id.clone(),
                        display_name: name.clone(),
                        ..Default::default()
                    })
                    .collect(),
                skip_push: true,
            };
            let answer = self.with_any_replica(|mut c| {
                let batch = batch.clone();
                async move { c.batch_upsert_customers(batch).await }
            });
            let results = answer.await.expect("record Digit customers");
            for r in results.results {
                assert_eq!(r.code, 0, "recording {}: {}", r.customer_id, r.message);
            }
        }
    }

    /// Calls the first replica that is up; UNAVAILABLE (a replica down) moves on to the
    /// next, for up to 30 seconds.
    pub async fn with_any_replica<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: Fn(CustomerSyncServiceClient<AuthChannel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut i = 0;
        loop {
            match call(self.client(i % self.replicas.len())).await {
                Err(s)
                    if s.code() == Code::Unavailable && tokio::time::Instant::now() < deadline =>
                {
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other.map(tonic::Response::into_inner),
            }
        }
    }

    /// Starts a full sync and returns its id.
    pub async fn trigger_full_sync(&self, key: &str) -> String {
        let request = pb::TriggerSyncRequest {
            tenant_id: TENANT.into(),
            mode: pb::SyncMode::Full.into(),
            idempotency_key: key.into(),
            ..Default::default()
        };
        let answer = self
            .with_any_replica(|mut c| {
                let request = request.clone();
                async move { c.trigger_sync(request).await }
            })
            .await
            .expect("trigger a full sync");
        answer.run.expect("a run").run_id
    }

    /// The run's state, read from the database.
    pub async fn run_state(&self, run: &str) -> String {
        sqlx::query_scalar("SELECT state FROM sync_runs WHERE id = $1::uuid")
            .bind(run)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Waits until the run has ended; returns its final state and error.
    pub async fn wait_run(&self, run: &str, within: Duration) -> (String, Option<String>) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (state, error): (String, Option<String>) =
                sqlx::query_as("SELECT state, error FROM sync_runs WHERE id = $1::uuid")
                    .bind(run)
                    .fetch_one(&self.pool)
                    .await
                    .unwrap();
            if !matches!(state.as_str(), "queued" | "running") {
                return (state, error);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {run} still {state} after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Replica index whose worker holds the run's job, if one does.
    pub async fn holder_of_run(&self, run: &str) -> Option<usize> {
        let token: Option<String> = sqlx::query_scalar(
            "SELECT locked_by FROM jobs WHERE kind = 'sync_run' AND state = 'running'
               AND payload::text LIKE '%' || $1 || '%'",
        )
        .bind(run)
        .fetch_optional(&self.pool)
        .await
        .unwrap()
        .flatten();
        let prefix = token?.split(':').next()?.to_owned();
        self.replicas
            .iter()
            .position(|r| r.worker_id().is_some_and(|id| id == prefix))
    }

    /// Waits until no job is queued or running (every push and run done).
    pub async fn wait_queue_drained(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let busy: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')",
            )
            .fetch_one(&self.pool)
            .await
            .unwrap_or(1);
            if busy == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops everything; the logs stay when the test failed (the directory is named). Fails
    /// when a replica's log holds a secret it was given or a customer's name (logged at info
    /// or above, where names never go).
    pub async fn stop(mut self, keep_logs: bool) {
        for r in &mut self.replicas {
            r.kill9().await;
        }
        let leaks = self.leaks();
        self.sim.stop().await;
        if keep_logs || !leaks.is_empty() {
            eprintln!("chaos logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        assert!(leaks.is_empty(), "the replicas' logs leak: {leaks:?}");
    }

    /// What the replicas' logs should never hold, one entry per file and kind.
    fn leaks(&self) -> Vec<String> {
        let mut leaks = Vec::new();
        let files = std::fs::read_dir(&self.dir).into_iter().flatten().flatten();
        for file in files.filter(|f| f.path().extension().is_some_and(|e| e == "log")) {
            let text = std::fs::read_to_string(file.path()).unwrap_or_default();
            let name = file.file_name().to_string_lossy().into_owned();
            let secrets = self
                .secrets
                .iter()
                .filter(|s| text.contains(s.as_str()))
                .count();
            if secrets > 0 {
                leaks.push(format!("{name}: {secrets} secrets"));
            }
            let names = names::names_in(&text);
            if let Some(first) = names.first() {
                leaks.push(format!(
                    "{name}: {} customer names, first {first:?}",
                    names.len()
                ));
            }
        }
        leaks
    }
}

/// The key the replicas encrypt OAuth tokens with.
fn token_key() -> String {
    STANDARD.encode([7u8; 32])
}

fn replica_env(
    database_url: &str,
    sim: &SimProcess,
    dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> ReplicaEnv {
    let callers = write_callers(&[TestCaller {
        name: TEST_CALLER,
        token: TEST_TOKEN,
        scopes: &["validate", "read", "write", "admin"],
        tenants: &["*"],
    }]);
    let u = &sim.urls;
    let window = format!("{}ms", LIMITS.rate_window.as_millis());
    let mut vars: Vec<(String, String)> = [
        ("DATABASE_URL", database_url),
        ("QBO_SYNC_CALLERS_FILE", callers.to_str().unwrap()),
        ("QBO_SYNC_TOKEN_KEY", &token_key()),
        ("QBO_SYNC_QBO_BASE_URL", &u.base_url),
        ("QBO_SYNC_QBO_TOKEN_URL", &u.token_url),
        ("QBO_SYNC_QBO_REVOKE_URL", &u.revoke_url),
        ("QBO_SYNC_QBO_CLIENT_ID", &u.client_id),
        ("QBO_SYNC_QBO_CLIENT_SECRET", &u.client_secret),
        ("QBO_SYNC_QBO_RATE_WINDOW", &window),
        ("QBO_SYNC_QBO_REQUESTS_PER_WINDOW", "500"),
        ("QBO_SYNC_QBO_BATCHES_PER_WINDOW", "40"),
        ("QBO_SYNC_QBO_TIMEOUT", "5s"),
        ("QBO_SYNC_QBO_BACKOFF_BASE", "200ms"),
        ("QBO_SYNC_QBO_BACKOFF_MAX", "5s"),
        ("QBO_SYNC_QBO_THROTTLE_BUDGET", "60s"),
        ("QBO_SYNC_JOB_LEASE", "5s"),
        ("QBO_SYNC_JOB_POLL_INTERVAL", "250ms"),
        ("QBO_SYNC_JOB_BACKOFF_BASE", "500ms"),
        ("QBO_SYNC_JOB_BACKOFF_MAX", "5s"),
        ("QBO_SYNC_HEALTH_INTERVAL", "250ms"),
        ("QBO_SYNC_AUTO_SYNC_INTERVAL", "0"),
        ("QBO_SYNC_SHUTDOWN_GRACE", "10s"),
        ("QBO_SYNC_DB_MAX_CONNECTIONS", "10"),
        ("QBO_SYNC_DB_ACQUIRE_TIMEOUT", "2s"),
        ("QBO_SYNC_METRICS_INTERVAL", "60s"),
        ("QBO_SYNC_OTLP_ENDPOINT", ""),
        ("QBO_SYNC_LOG_FORMAT", "json"),
        ("QBO_SYNC_LOG", "warn,qbo_sync::worker=info"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        vars.retain(|(key, _)| key != k);
        vars.push(((*k).to_owned(), (*v).to_owned()));
    }
    ReplicaEnv {
        vars,
        log_dir: dir.to_owned(),
    }
}
