//! `TestApp`: the real server on port-0 listeners, over a fresh database reached through a
//! TCP proxy the test can cut, with generated gRPC clients over a real socket.

use std::{
    net::SocketAddr,
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
    pgcluster::FreshDatabase,
    proto::v1::{
        connection_service_client::ConnectionServiceClient,
        customer_sync_service_client::CustomerSyncServiceClient,
    },
    shutdown::Shutdown,
    worker::Worker,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub http_addr: SocketAddr,
    pub channel: Channel,
    pub db: FreshDatabase,
    pub proxy: DbProxy,
    pub shutdown: Shutdown,
    pub server: JoinHandle<anyhow::Result<()>>,
    /// The replica's worker when QBO is configured (run it with `try_run_next`, after
    /// starting the app with `--workers 0`).
    pub worker: Option<Arc<Worker>>,
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
    pub async fn spawn_with(flags: &[&str]) -> Self {
        init_test_logging();
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
        args.extend_from_slice(flags);
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
            http_addr,
            channel,
            db,
            proxy,
            shutdown,
            server,
            worker,
        }
    }

    pub fn customers(&self) -> CustomerSyncServiceClient<Channel> {
        CustomerSyncServiceClient::new(self.channel.clone())
    }

    pub fn connections(&self) -> ConnectionServiceClient<Channel> {
        ConnectionServiceClient::new(self.channel.clone())
    }

    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }
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
