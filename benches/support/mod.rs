//! What the load tests share: replicas of the real service in this process, against the QBO
//! simulator over HTTP and a fresh PostgreSQL database.

use std::{str::FromStr, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use qbo_sim::Simulator;
use qbo_sync::{
    app::{App, Listeners, Migrations},
    config::Config,
    pgcluster::FreshDatabase,
    proto::v1::{
        self as pb, connection_service_client::ConnectionServiceClient,
        customer_sync_service_client::CustomerSyncServiceClient,
    },
    shutdown::Shutdown,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// The OAuth redirect the replicas use.
pub const REDIRECT: &str = "https://digit.example/qbo/callback";

/// One replica of the service, in this process.
pub struct Replica {
    /// Its gRPC channel.
    pub channel: Channel,
    shutdown: Shutdown,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Replica {
    /// A CustomerSyncService client with room for large messages.
    pub fn customers(&self) -> CustomerSyncServiceClient<Channel> {
        CustomerSyncServiceClient::new(self.channel.clone())
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
    }

    /// Shuts the replica down (5 s grace).
    pub async fn stop(self) {
        self.shutdown.trigger(Duration::from_secs(5));
        let _ = self.server.await;
    }
}

/// The token key the replicas share.
pub fn token_key() -> String {
    STANDARD.encode([42u8; 32])
}

/// A replica against the simulator and the database, with `workers` worker loops and QBO's
/// rate window set to `window` (shrunk to scale time against a time-scaled simulator).
pub async fn replica(
    sim: &Simulator,
    db: &FreshDatabase,
    workers: usize,
    window: Duration,
) -> anyhow::Result<Replica> {
    let config = sim.config();
    let window = format!("{}ms", window.as_millis());
    let workers = workers.to_string();
    let args = vec![
        "--qbo-base-url".to_owned(),
        sim.base_url(),
        "--qbo-token-url".to_owned(),
        sim.token_url(),
        "--qbo-revoke-url".to_owned(),
        sim.revoke_url(),
        "--qbo-client-id".to_owned(),
        config.client_id.clone(),
        "--qbo-client-secret".to_owned(),
        config.client_secret.clone(),
        "--token-key".to_owned(),
        token_key(),
        "--qbo-rate-window".to_owned(),
        window,
        "--workers".to_owned(),
        workers,
        "--log-format".to_owned(),
        "pretty".to_owned(),
        "--log-filter".to_owned(),
        "warn".to_owned(),
        "--max-message-bytes".to_owned(),
        (64 << 20).to_string(),
        // Runs come only from the scenario, not from the automatic schedule.
        "--auto-sync-interval".to_owned(),
        "0".to_owned(),
        // The bench measures sync and push, not authentication.
        "--insecure-no-auth".to_owned(),
    ];
    let config = Config::from_args(args)?;
    let pool = PgPoolOptions::new()
        .max_connections(30)
        .connect_with(PgConnectOptions::from_str(&db.url)?)
        .await?;
    let listeners = Listeners {
        grpc: TcpListener::bind("127.0.0.1:0").await?,
        http: TcpListener::bind("127.0.0.1:0").await?,
    };
    let shutdown = Shutdown::new();
    let app = App::build(config, listeners, pool, Migrations::Apply, shutdown.clone()).await?;
    let addr = app.grpc_addr();
    let server = tokio::spawn(app.run());
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    Ok(Replica {
        channel,
        shutdown,
        server,
    })
}

/// Connects `tenant` to the simulator's `realm`.
pub async fn connect(
    r: &Replica,
    sim: &Simulator,
    tenant: &str,
    realm: &str,
) -> anyhow::Result<()> {
    let code = sim.issue_authorization_code(realm, REDIRECT);
    ConnectionServiceClient::new(r.channel.clone())
        .connect_company(pb::ConnectCompanyRequest {
            tenant_id: tenant.into(),
            realm_id: realm.into(),
            environment: pb::QboEnvironment::Sandbox as i32,
            authorization_code: code,
            redirect_uri: REDIRECT.into(),
            refresh_token: String::new(),
            ..Default::default()
        })
        .await?;
    Ok(())
}

/// The realm id of the `i`th company.
pub fn realm_of(i: usize) -> String {
    format!("91303500{i:08}")
}
