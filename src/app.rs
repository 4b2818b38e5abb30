//! The one place that wires the service together: `App::build` takes every dependency as a
//! parameter (listeners, pool, shutdown), so tests run the real server on port-0 listeners.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use axum::Router;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    auth::{Authenticator, INSECURE_CALLER, load_callers_file, watch_callers_file},
    config::{Config, SecurityConfig},
    crypto::{CryptoError, TokenCipher},
    grpc::{
        auth::AuthLayer,
        connection::ConnectionApi,
        customer_sync::CustomerSyncApi,
        middleware::{RpcLayer, served_rpcs},
    },
    http::{self, WebhookEndpoint},
    proto::{
        self,
        v1::{
            connection_service_server::ConnectionServiceServer,
            customer_sync_service_server::CustomerSyncServiceServer,
        },
    },
    quickbooks::QboClient,
    service::{
        connections::{Connections, Unconfigured},
        customers::Customers,
        links::Links,
        preflight::Preflight,
        push::{PushSettings, Pusher},
        reviews::Reviews,
        sync::{SyncEngine, SyncSettings, Syncs, run_schedule},
        webhooks::QboNotifications,
    },
    shutdown::Shutdown,
    store,
    worker::{Worker, WorkerSettings, qbo_handlers},
};

/// The gRPC services whose health is reported one by one (besides the overall "").
pub const SERVICE_NAMES: [&str; 2] = [
    "qbosync.v1.CustomerSyncService",
    "qbosync.v1.ConnectionService",
];

/// The health service name that answers SERVING from start until the server stops, whatever
/// the database does. Kubernetes' liveness probe asks for it, so an outage of PostgreSQL makes
/// replicas unready (the overall "" and [`SERVICE_NAMES`] follow the database) but never gets
/// them restarted.
pub const LIVENESS_SERVICE: &str = "liveness";

/// How long past the hard deadline shutdown waits for the worker loops to release the jobs
/// they still run (one UPDATE each, itself bounded by the pool's acquire timeout).
const RELEASE_WAIT: Duration = Duration::from_secs(3);

/// What to do about migrations at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Apply pending migrations (under sqlx's advisory lock).
    Apply,
    /// Refuse to start when some are pending (`--no-migrate`).
    RequireCurrent,
}

/// The listeners the app serves on, bound by the caller (port 0 in tests).
#[derive(Debug)]
pub struct Listeners {
    /// gRPC.
    pub grpc: TcpListener,
    /// HTTP: `/metrics`, `/healthz`, `/readyz`, `POST /webhooks/qbo`.
    pub http: TcpListener,
}

impl Listeners {
    /// Binds both addresses of the configuration.
    ///
    /// # Errors
    /// When an address cannot be bound.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let grpc = TcpListener::bind(config.server.grpc_addr)
            .await
            .with_context(|| format!("binding the gRPC address {}", config.server.grpc_addr))?;
        let http = TcpListener::bind(config.server.http_addr)
            .await
            .with_context(|| format!("binding the HTTP address {}", config.server.http_addr))?;
        Ok(Self { grpc, http })
    }
}

/// Who may call, and how the gRPC listener is secured.
struct Access {
    authenticator: Authenticator,
    /// The callers file and the contents loaded at start, for the reload task.
    callers_file: Option<(PathBuf, Vec<u8>)>,
    tls: Option<ServerTlsConfig>,
}

/// A built, not yet running, service.
pub struct App {
    config: Config,
    listeners: Listeners,
    pool: PgPool,
    connections: Connections,
    syncs: Syncs,
    preflight: Preflight,
    worker: Option<Arc<Worker>>,
    /// The QBO client, when configured: its token cache follows connection changes.
    qbo: Option<Arc<QboClient>>,
    access: Access,
    shutdown: Shutdown,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
}

impl App {
    /// Checks or applies migrations and prepares the service.
    ///
    /// # Errors
    /// When there is no callers file and `--insecure-no-auth` was not given, when the callers
    /// file or the TLS files are not acceptable, when the token key is malformed, when
    /// migrations fail, or when they are pending under [`Migrations::RequireCurrent`].
    pub async fn build(
        config: Config,
        listeners: Listeners,
        pool: PgPool,
        migrations: Migrations,
        shutdown: Shutdown,
    ) -> anyhow::Result<Self> {
        // Before migrations: a bad key, callers file or certificate must stop the start
        // before anything changes.
        let access = build_access(&config.security)?;
        let qbo = build_qbo(&config, &pool)?;
        if config.qbo.webhook_verifier_token.is_none() {
            tracing::warn!(
                "QBO_SYNC_WEBHOOK_VERIFIER_TOKEN is not set: POST /webhooks/qbo answers 503"
            );
        }
        let connections = Connections::new(pool.clone(), qbo.clone());
        let syncs = Syncs::new(pool.clone());
        let engine = SyncEngine::new(
            pool.clone(),
            qbo.clone(),
            SyncSettings {
                apply_chunk: config.push.sync_apply_chunk.max(1),
                ..SyncSettings::default()
            },
        );
        let push = PushSettings {
            mirror_backlog: config.push.push_mirror_backlog,
            mirror_max_age: config.push.push_mirror_max_age,
        };
        let pusher = qbo
            .is_ok()
            .then(|| Pusher::new(pool.clone(), qbo.clone()).with_settings(push));
        let preflight = Preflight::new(pool.clone(), pusher.clone());
        // Without a QBO client this replica runs no QBO jobs; they wait for one that can.
        let worker = pusher.map(|pusher| {
            let handlers = qbo_handlers(pusher, engine, config.qbo.qbo_batch_size);
            let settings =
                WorkerSettings::from_config(&config.worker, config.qbo.background_turn());
            Arc::new(Worker::new(pool.clone(), handlers, settings))
        });
        match migrations {
            Migrations::Apply => store::migrate(&pool).await.context("applying migrations")?,
            Migrations::RequireCurrent => {
                let pending = store::pending_migrations(&pool)
                    .await
                    .context("checking migrations")?;
                anyhow::ensure!(
                    pending == 0,
                    "{pending} migrations are pending and --no-migrate was given; run `qbo-sync migrate`"
                );
            }
        }
        let grpc_addr = listeners.grpc.local_addr()?;
        let http_addr = listeners.http.local_addr()?;
        Ok(Self {
            config,
            listeners,
            pool,
            connections,
            syncs,
            preflight,
            worker,
            qbo: qbo.ok(),
            access,
            shutdown,
            grpc_addr,
            http_addr,
        })
    }

    /// This replica's worker, when it can run QBO jobs. Tests call
    /// [`Worker::try_run_next`] on it (with `--workers 0`, so the pool leaves the queue alone).
    #[must_use]
    pub fn worker(&self) -> Option<Arc<Worker>> {
        self.worker.clone()
    }

    /// The address the gRPC server listens on.
    #[must_use]
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The address the HTTP server listens on.
    #[must_use]
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Serves until the shutdown's soft token is cancelled, then drains in-flight RPCs until
    /// the hard token.
    ///
    /// # Errors
    /// When a server fails.
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            config,
            listeners,
            pool,
            connections,
            syncs,
            preflight,
            worker,
            qbo,
            access,
            shutdown,
            ..
        } = self;
        if let Some(qbo) = qbo {
            // Another replica's disconnect or reconnect drops this one's cached token at once.
            let stop = shutdown.soft.clone();
            shutdown
                .tracker
                .spawn(async move { qbo.tokens().forget_on_change(stop).await });
        }
        if let Some((path, loaded)) = access.callers_file.clone() {
            shutdown.tracker.spawn(watch_callers_file(
                path,
                loaded,
                access.authenticator.clone(),
                config.security.callers_reload_interval,
                shutdown.soft.clone(),
            ));
        }
        if let Some(worker) = worker.filter(|w| w.settings().workers > 0) {
            shutdown.tracker.spawn(worker.run(shutdown.clone()));
            shutdown.tracker.spawn(run_schedule(
                syncs.clone(),
                config.push.auto_sync_interval,
                shutdown.soft.clone(),
            ));
        }
        shutdown
            .tracker
            .spawn(crate::service::gauges::publish_store_gauges(
                pool.clone(),
                config.server.metrics_interval,
                shutdown.soft.clone(),
            ));
        let (reporter, health_service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
            .await;
        let database_up = Arc::new(AtomicBool::new(false));
        shutdown.tracker.spawn(watch_database(
            pool.clone(),
            reporter.clone(),
            Arc::clone(&database_up),
            config.server.health_interval,
            shutdown.clone(),
        ));
        let notifications = QboNotifications::new(pool.clone(), syncs.clone());
        let webhooks =
            WebhookEndpoint::new(config.qbo.webhook_verifier_token.clone(), notifications)
                .following_caller_traces(config.traces.endpoint().is_some());
        let router = http::router(Arc::clone(&database_up), webhooks);
        let http = serve_http(listeners.http, router, shutdown.clone());
        let customer_sync = CustomerSyncApi::new(
            Customers::new(pool.clone()),
            syncs,
            Links::new(pool.clone()),
            Reviews::new(pool),
            preflight,
        );
        let grpc = serve_grpc(
            &config,
            listeners.grpc,
            (customer_sync, ConnectionApi::new(connections)),
            health_service,
            access,
            shutdown.clone(),
        );
        let (grpc, http) = tokio::join!(grpc, http);
        // Health goes NOT_SERVING before the drain starts (see watch_database), and stays so.
        set_all(&reporter, ServingStatus::NotServing).await;
        shutdown.tracker.close();
        tokio::select! {
            () = shutdown.tracker.wait() => {}
            () = shutdown.hard.cancelled() => {
                // At the hard deadline the worker loops release their running jobs for another
                // replica: returning now would end the process before those writes land, and
                // the jobs would wait out their lease instead. Their release is bounded.
                let released = tokio::time::timeout(RELEASE_WAIT, shutdown.tracker.wait()).await;
                if released.is_err() {
                    tracing::warn!("hard shutdown: background tasks abandoned");
                }
            }
        }
        grpc?;
        http
    }
}

/// Builds the QBO client once for the process. A missing key or client secret leaves the
/// service running (connecting then says what is missing); a malformed key refuses to start:
/// it is a deployment mistake that should fail loudly now, not at the first connect.
fn build_qbo(
    config: &Config,
    pool: &PgPool,
) -> anyhow::Result<Result<Arc<QboClient>, Unconfigured>> {
    let version = config.qbo.qbo_token_key_version;
    let Some(key) = config.security.token_key.as_ref() else {
        tracing::warn!("QBO_SYNC_TOKEN_KEY is not set: ConnectCompany answers FAILED_PRECONDITION");
        return Ok(Err(Unconfigured::TokenKey));
    };
    TokenCipher::new(version, key)
        .map_err(|e| anyhow::anyhow!("QBO_SYNC_TOKEN_KEY is invalid: {e}"))?;
    let previous = config.qbo.qbo_token_key_previous.as_ref();
    let cipher = TokenCipher::from_config(Some(key), version, previous).map_err(|e| match e {
        CryptoError::BadKey => anyhow::anyhow!(
            "QBO_SYNC_TOKEN_KEY_PREVIOUS is invalid: it must be VERSION:BASE64 of 32 bytes, \
             with a version other than QBO_SYNC_TOKEN_KEY_VERSION"
        ),
        other => anyhow::anyhow!("token keys are invalid: {other}"),
    })?;
    if config.qbo.qbo_client_secret.is_none() {
        tracing::warn!(
            "QBO_SYNC_QBO_CLIENT_SECRET is not set: ConnectCompany answers FAILED_PRECONDITION"
        );
        return Ok(Err(Unconfigured::ClientSecret));
    }
    let client = QboClient::new(&config.qbo, pool.clone(), cipher)
        .context("building the QuickBooks client")?;
    Ok(Ok(Arc::new(client)))
}

/// Who may call: the callers file, or no one checked under `--insecure-no-auth`; and TLS.
fn build_access(security: &SecurityConfig) -> anyhow::Result<Access> {
    let tls = build_tls(security)?;
    match (&security.callers_file, security.insecure_no_auth) {
        (None, false) => anyhow::bail!(
            "no callers file: set QBO_SYNC_CALLERS_FILE (--callers-file), or give \
             --insecure-no-auth (QBO_SYNC_INSECURE_NO_AUTH) to serve without authentication \
             in development"
        ),
        (Some(_), true) => {
            anyhow::bail!("both a callers file and --insecure-no-auth were given; choose one")
        }
        (None, true) => {
            tracing::warn!(
                caller = INSECURE_CALLER,
                "AUTHENTICATION IS OFF (--insecure-no-auth): anyone who reaches the gRPC port \
                 may call every RPC for every tenant; never run production this way"
            );
            Ok(Access {
                authenticator: Authenticator::insecure(),
                callers_file: None,
                tls,
            })
        }
        (Some(path), false) => {
            let (callers, loaded) = load_callers_file(path)?;
            if callers.is_empty() {
                tracing::warn!("the callers file lists no caller: every RPC is refused");
            }
            tracing::info!(callers = callers.len(), "callers file loaded");
            Ok(Access {
                authenticator: Authenticator::new(callers),
                callers_file: Some((path.clone(), loaded)),
                tls,
            })
        }
    }
}

/// TLS of the gRPC listener from the certificate, key and client CA files (all optional;
/// a certificate without its key, or a client CA without both, refuses to start).
fn build_tls(security: &SecurityConfig) -> anyhow::Result<Option<ServerTlsConfig>> {
    let read = |path: &PathBuf, what: &str| {
        std::fs::read(path).with_context(|| format!("reading the {what} {}", path.display()))
    };
    let (cert, key) = match (&security.tls_cert, &security.tls_key) {
        (None, None) => {
            anyhow::ensure!(
                security.tls_client_ca.is_none(),
                "QBO_SYNC_TLS_CLIENT_CA needs QBO_SYNC_TLS_CERT and QBO_SYNC_TLS_KEY as well"
            );
            return Ok(None);
        }
        (Some(_), None) => {
            anyhow::bail!("QBO_SYNC_TLS_CERT is set without QBO_SYNC_TLS_KEY: set both, or neither")
        }
        (None, Some(_)) => {
            anyhow::bail!("QBO_SYNC_TLS_KEY is set without QBO_SYNC_TLS_CERT: set both, or neither")
        }
        (Some(cert), Some(key)) => (cert, key),
    };
    let identity = Identity::from_pem(
        read(cert, "TLS certificate (QBO_SYNC_TLS_CERT)")?,
        read(key, "TLS key (QBO_SYNC_TLS_KEY)")?,
    );
    let mut tls = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &security.tls_client_ca {
        let ca = read(ca, "client CA (QBO_SYNC_TLS_CLIENT_CA)")?;
        tls = tls.client_ca_root(Certificate::from_pem(ca));
    }
    // The PEM files are parsed here, so a bad one refuses the start now.
    tonic::transport::Server::builder()
        .tls_config(tls.clone())
        .context("the TLS certificate, key or client CA is not acceptable")?;
    Ok(Some(tls))
}

async fn serve_grpc(
    config: &Config,
    listener: TcpListener,
    (customer_sync, connection): (CustomerSyncApi, ConnectionApi),
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    access: Access,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let max = config.server.max_message_bytes;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let customer_sync = CustomerSyncServiceServer::new(customer_sync)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let connection = ConnectionServiceServer::new(connection)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let soft = shutdown.soft.clone();
    let hard = shutdown.hard.clone();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = access.tls {
        builder = builder.tls_config(tls).context("configuring TLS")?;
    }
    let known = served_rpcs(proto::FILE_DESCRIPTOR_SET).context("reading our descriptors")?;
    let serve = builder
        .timeout(config.server.request_timeout)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // Metrics and the in-flight limit outside, so refused calls are counted too.
        .layer(
            RpcLayer::new(config.server.max_concurrent_requests, known)
                .exporting_traces(config.traces.endpoint().is_some()),
        )
        .layer(AuthLayer::new(access.authenticator))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(customer_sync)
        .add_service(connection)
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listener),
            soft.clone().cancelled_owned(),
        );
    tracing::info!("gRPC server listening");
    // After the soft token, tonic stops accepting and drains; the hard token cuts the drain short.
    tokio::select! {
        result = serve => result.context("gRPC server"),
        () = async { soft.cancelled().await; hard.cancelled().await } => {
            tracing::warn!("hard shutdown: in-flight RPCs abandoned");
            Ok(())
        }
    }
}

async fn serve_http(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let soft = shutdown.soft.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(soft.cancelled_owned())
        .await
        .context("HTTP server")
}

/// Pings the database every `interval` and mirrors the answer into the health service, so a
/// database outage turns the service NOT_SERVING and its return turns it SERVING, without a
/// restart. Stops (leaving NOT_SERVING) when shutdown starts.
async fn watch_database(
    pool: PgPool,
    reporter: HealthReporter,
    database_up: Arc<AtomicBool>,
    interval: Duration,
    shutdown: Shutdown,
) {
    let mut last: Option<bool> = None;
    loop {
        let up = matches!(
            tokio::time::timeout(interval.max(Duration::from_secs(1)), store::ping(&pool)).await,
            Ok(Ok(()))
        );
        if shutdown.soft.is_cancelled() {
            break;
        }
        if last != Some(up) {
            if up {
                tracing::info!("database reachable: SERVING");
            } else {
                tracing::warn!("database unreachable: NOT_SERVING");
            }
            database_up.store(up, Ordering::Relaxed);
            set_all(
                &reporter,
                if up {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                },
            )
            .await;
            last = Some(up);
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.soft.cancelled() => break,
        }
    }
    database_up.store(false, Ordering::Relaxed);
    set_all(&reporter, ServingStatus::NotServing).await;
}

async fn set_all(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in SERVICE_NAMES {
        reporter.set_service_status(name, status).await;
    }
}
