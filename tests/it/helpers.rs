//! `TestApp`: the real server on port-0 listeners, over a fresh database reached through a
//! TCP proxy the test can cut, with generated gRPC clients over a real socket.

use std::{
    net::SocketAddr,
    path::PathBuf,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use qbo_sim::Simulator;
pub use qbo_sync::pgcluster::fresh_database;
use qbo_sync::{
    app::{App, Listeners, Migrations},
    config::Config,
    pgcluster::{self, FreshDatabase},
    proto::v1::{
        connection_service_client::ConnectionServiceClient,
        customer_sync_service_client::CustomerSyncServiceClient,
    },
    shutdown::Shutdown,
    worker::Worker,
};
use sha2::{Digest, Sha256};
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use tonic_health::pb::health_client::HealthClient;

/// The caller every `TestApp` knows unless a test brings its own callers file: every scope,
/// every tenant.
pub const TEST_CALLER: &str = "test-caller";
/// The test caller's bearer token.
pub const TEST_TOKEN: &str = "test-token-3f9a1c";

/// A channel whose calls carry an `authorization` header (or none).
pub type AuthChannel = InterceptedService<Channel, Bearer>;

/// Adds a fixed `authorization` header to every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// `authorization: Bearer <token>`, or no header at all.
    pub fn token(token: Option<&str>) -> Self {
        Self(token.map(|t| format!("Bearer {t}").parse().unwrap()))
    }

    /// `authorization: <value>` as given, to test malformed headers.
    pub fn header(value: &str) -> Self {
        Self(Some(value.parse().unwrap()))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// One `[[caller]]` of a callers file written by a test.
pub struct TestCaller<'a> {
    pub name: &'a str,
    pub token: &'a str,
    pub scopes: &'a [&'a str],
    pub tenants: &'a [&'a str],
}

/// Hex SHA-256, as the callers file wants tokens.
pub fn sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The TOML of a callers file listing `callers`.
pub fn callers_toml(callers: &[TestCaller<'_>]) -> String {
    let list = |items: &[&str]| {
        items
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    callers
        .iter()
        .map(|c| {
            format!(
                "[[caller]]\nname = \"{}\"\ntoken_sha256 = \"{}\"\nscopes = [{}]\ntenants = [{}]\n\n",
                c.name,
                sha256_hex(c.token),
                list(c.scopes),
                list(c.tenants)
            )
        })
        .collect()
}

/// A database with no migrations applied, and its URL.
pub async fn empty_database() -> (PgPool, String) {
    let admin_url = tokio::task::spawn_blocking(|| pgcluster::ensure_server(None))
        .await
        .unwrap()
        .unwrap();
    let admin = PgPool::connect(&admin_url).await.unwrap();
    let name = format!(
        "qbosync_test_{}_{}",
        chrono::Utc::now().timestamp(),
        uuid::Uuid::new_v4().simple()
    );
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    (PgPool::connect(&url).await.unwrap(), url)
}

/// A fresh path for a callers file (the test writes it).
pub fn callers_path() -> PathBuf {
    std::env::temp_dir().join(format!("qbo-sync-callers-{}.toml", uuid::Uuid::new_v4()))
}

/// Writes a callers file listing `callers` at a fresh path.
pub fn write_callers(callers: &[TestCaller<'_>]) -> PathBuf {
    let path = callers_path();
    std::fs::write(&path, callers_toml(callers)).unwrap();
    path
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub channel: Channel,
    pub db: FreshDatabase,
    pub proxy: DbProxy,
    pub shutdown: Shutdown,
    pub server: JoinHandle<anyhow::Result<()>>,
    /// The replica's worker when QBO is configured (run it with `try_run_next`, after
    /// starting the app with `--workers 0`).
    pub worker: Option<Arc<Worker>>,
    /// The token the clients send: [`TEST_TOKEN`], unless the test gave its own callers
    /// file or `--insecure-no-auth` (then none).
    pub token: Option<String>,
}

impl TestApp {
    /// Starts a server with the default configuration.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts a server pointed at the simulator (API, token and revoke endpoints, the app's
    /// client id and secret), with `token_key` as `--token-key` when given. `overrides` are
    /// `(flag, value)` pairs that replace those settings or add others.
    pub async fn spawn_against(
        sim: &Simulator,
        token_key: Option<&str>,
        overrides: &[(&str, &str)],
    ) -> Self {
        let config = sim.config();
        let mut pairs = vec![
            ("--qbo-base-url".to_owned(), sim.base_url()),
            ("--qbo-token-url".to_owned(), sim.token_url()),
            ("--qbo-revoke-url".to_owned(), sim.revoke_url()),
            ("--qbo-client-id".to_owned(), config.client_id.clone()),
            (
                "--qbo-client-secret".to_owned(),
                config.client_secret.clone(),
            ),
        ];
        if let Some(key) = token_key {
            pairs.push(("--token-key".to_owned(), key.to_owned()));
        }
        for (flag, value) in overrides {
            // clap refuses a flag given twice, so an override replaces the pair.
            pairs.retain(|(f, _)| f != flag);
            pairs.push(((*flag).to_owned(), (*value).to_owned()));
        }
        let args: Vec<&str> = pairs
            .iter()
            .flat_map(|(f, v)| [f.as_str(), v.as_str()])
            .collect();
        Self::spawn_with(&args).await
    }

    /// Starts a server with extra configuration flags, e.g. `["--max-concurrent-requests", "1"]`.
    /// Unless the flags bring a callers file or `--insecure-no-auth`, the server knows the
    /// all-powerful [`TEST_CALLER`] and the clients send its token. The automatic sync is off
    /// unless the flags set `--auto-sync-interval`.
    pub async fn spawn_with(flags: &[&str]) -> Self {
        init_test_logging();
        let own_access = flags
            .iter()
            .any(|f| *f == "--callers-file" || *f == "--insecure-no-auth");
        let default_callers = (!own_access).then(|| {
            write_callers(&[TestCaller {
                name: TEST_CALLER,
                token: TEST_TOKEN,
                scopes: &["validate", "read", "write", "admin"],
                tenants: &["*"],
            }])
        });
        let default_callers = default_callers.map(|p| p.to_str().unwrap().to_owned());
        let mut flags = flags.to_vec();
        if let Some(path) = &default_callers {
            flags.extend(["--callers-file", path.as_str()]);
        }
        let token = default_callers.is_some().then(|| TEST_TOKEN.to_owned());
        let db = fresh_database().await.expect("fresh database");
        let target = PgConnectOptions::from_str(&db.url).unwrap();
        let proxy = DbProxy::start(format!("{}:{}", target.get_host(), target.get_port())).await;
        let mut args = vec![
            "--health-interval",
            "100ms",
            "--db-acquire-timeout",
            "1s",
            "--log-format",
            "pretty",
        ];
        // The schedule's first look may come after a test's connect and queue a run the test
        // did not ask for: tests that want the automatic sync say so.
        if !flags.contains(&"--auto-sync-interval") {
            args.extend(["--auto-sync-interval", "0"]);
        }
        args.extend_from_slice(&flags);
        let config = Config::from_args(args).expect("test configuration");
        // The app reaches the database only through the proxy, so a test can take it away.
        let options = target.host("127.0.0.1").port(proxy.addr.port());
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(1))
            .connect_lazy_with(options);
        let listeners = Listeners {
            grpc: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            http: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let shutdown = Shutdown::new();
        let app = App::build(config, listeners, pool, Migrations::Apply, shutdown.clone())
            .await
            .expect("build app");
        let (grpc_addr, http_addr) = (app.grpc_addr(), app.http_addr());
        let worker = app.worker();
        let server = tokio::spawn(app.run());
        let channel = Channel::from_shared(format!("http://{grpc_addr}"))
            .unwrap()
            .connect()
            .await
            .expect("connect");
        Self {
            grpc_addr,
            http_addr,
            channel,
            db,
            proxy,
            shutdown,
            server,
            worker,
            token,
        }
    }

    pub fn customers(&self) -> CustomerSyncServiceClient<AuthChannel> {
        self.customers_with(Bearer::token(self.token.as_deref()))
    }

    pub fn connections(&self) -> ConnectionServiceClient<AuthChannel> {
        self.connections_with(Bearer::token(self.token.as_deref()))
    }

    /// A client sending `bearer` instead of the default token.
    pub fn customers_with(&self, bearer: Bearer) -> CustomerSyncServiceClient<AuthChannel> {
        CustomerSyncServiceClient::with_interceptor(self.channel.clone(), bearer)
    }

    /// A client sending `bearer` instead of the default token.
    pub fn connections_with(&self, bearer: Bearer) -> ConnectionServiceClient<AuthChannel> {
        ConnectionServiceClient::with_interceptor(self.channel.clone(), bearer)
    }

    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }
}

/// Builds, without running, an app with exactly `flags` (no default callers file) over a fresh
/// database: for tests of what refuses to start, and of listeners `TestApp` cannot talk to.
pub async fn build_app(flags: &[&str]) -> anyhow::Result<(App, FreshDatabase)> {
    init_test_logging();
    let db = fresh_database().await?;
    let config = Config::from_args(flags.iter().copied())?;
    let listeners = Listeners {
        grpc: TcpListener::bind("127.0.0.1:0").await?,
        http: TcpListener::bind("127.0.0.1:0").await?,
    };
    let app = App::build(
        config,
        listeners,
        db.pool.clone(),
        Migrations::Apply,
        Shutdown::new(),
    )
    .await?;
    Ok((app, db))
}

/// A TCP proxy in front of PostgreSQL. `set_up(false)` cuts every open connection and
/// refuses new ones, as an outage would; `set_up(true)` lets traffic through again.
pub struct DbProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
}

impl DbProxy {
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let accept_up = Arc::clone(&up);
        let accept_generation = generation.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let target = target.clone();
                let mut cut = accept_generation.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            generation,
        }
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.generation.send_modify(|g| *g += 1);
        }
    }
}

/// Polls `check` every 50 ms until it returns true or `within` has passed.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Logs go to the test's captured output; `RUST_LOG` picks what (default: warnings).
fn init_test_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
