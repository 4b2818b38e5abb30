//! `qbo-sync dev`: the whole service on one machine with nothing but cargo and the PostgreSQL
//! binaries. It finds PostgreSQL (or starts a private cluster in the data directory), starts
//! the QBO simulator in-process with a demo company, connects the demo tenant, records its
//! Digit customers, and serves with a generated caller token.
//!
//! It lives in the binary, not the library: the simulator is never part of the service.

mod demo;
mod secrets;
pub mod sim;

use std::{
    net::{SocketAddr, TcpListener as StdListener},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use clap::Args;
use qbo_sim::{Simulator, SimulatorConfig};
use qbo_sync::{
    app::{App, Listeners, Migrations},
    config::Config,
    ctl::{GlobalArgs, Session},
    pgcluster,
    proto::v1 as pb,
    shutdown::{self, Shutdown},
    store, telemetry,
};
use secrecy::SecretString;

/// The redirect URI the demo connection's authorization code is issued for.
const REDIRECT: &str = "http://127.0.0.1/qbo/callback";
/// The database dev mode keeps its data in, on whichever server it uses.
const DATABASE: &str = "qbo_sync_dev";

/// `qbo-sync dev` options.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where the private PostgreSQL cluster, the generated secrets and the simulator's
    /// company are kept between runs.
    #[arg(long, env = "QBO_SYNC_DEV_DIR", default_value = ".qbo-sync-dev")]
    data_dir: PathBuf,
    /// A PostgreSQL server to use instead of a private cluster (used when it answers).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The gRPC address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    grpc_addr: SocketAddr,
    /// The HTTP address (metrics, health, webhooks).
    #[arg(long, default_value = "127.0.0.1:9090")]
    http_addr: SocketAddr,
}

/// Runs dev mode until Ctrl-C or SIGTERM; the private cluster is stopped on the way out,
/// whatever happened.
///
/// # Errors
/// When PostgreSQL cannot be found or started, or the service cannot start.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let data_dir = args.data_dir.canonicalize()?;
    let (server_url, cluster) = find_postgres(args.database_url.as_deref(), &data_dir).await?;
    let outcome = serve(&args, &data_dir, &server_url, cluster.is_some()).await;
    if let Some(dir) = cluster {
        let stopped = tokio::task::spawn_blocking(move || pgcluster::stop_cluster_in(&dir)).await;
        match stopped {
            Ok(Ok(())) => println!(
                "PostgreSQL stopped; its data stays in {}",
                data_dir.display()
            ),
            Ok(Err(e)) => eprintln!("qbo-sync dev: stopping PostgreSQL: {e:#}"),
            Err(e) => eprintln!("qbo-sync dev: stopping PostgreSQL: {e}"),
        }
    }
    outcome
}

/// The server to use and, when dev mode started it, the private cluster's directory.
async fn find_postgres(
    preferred: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<(String, Option<PathBuf>)> {
    if let Some(url) = preferred
        && pgcluster::server_answers(url)
    {
        return Ok((url.to_owned(), None));
    }
    let dir = data_dir.join("postgres");
    let url = tokio::task::spawn_blocking(move || {
        let port = match pgcluster::running_port(&dir) {
            Some(port) => port,
            None => free_port()?,
        };
        pgcluster::start_cluster_in(&dir, port)
    })
    .await??;
    Ok((url, Some(data_dir.join("postgres"))))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Creates the dev database on the server if it is missing; returns its URL.
async fn dev_database(server_url: &str) -> anyhow::Result<String> {
    let admin = sqlx::PgPool::connect(server_url)
        .await
        .context("connecting to PostgreSQL")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DATABASE)
            .fetch_one(&admin)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
            .execute(&admin)
            .await
            .context("creating the dev database")?;
    }
    admin.close().await;
    let base = server_url
        .rsplit_once('/')
        .map_or(server_url, |(base, _)| base);
    Ok(format!("{base}/{DATABASE}"))
}

async fn serve(
    args: &DevArgs,
    data_dir: &Path,
    server_url: &str,
    private: bool,
) -> anyhow::Result<()> {
    let database_url = dev_database(server_url).await?;
    let sim = Simulator::start(SimulatorConfig::default()).await?;
    let saved_company = data_dir.join("qbo-company.json");
    let restored = demo::seed_company(&sim, &saved_company)?;
    let secrets = secrets::load_or_create(data_dir)?;
    let config = dev_config(args, &sim, &database_url, &secrets)?;
    let place = if private {
        format!(
            "a private cluster in {}",
            data_dir.join("postgres").display()
        )
    } else {
        "the server at DATABASE_URL".to_owned()
    };
    let telemetry = telemetry::init(&config.log, &config.traces)?;
    let demo = Demo {
        sim: &sim,
        saved_company: &saved_company,
        place: &place,
        restored,
        secrets: &secrets,
    };
    let served = serve_demo(config, &demo).await;
    telemetry.shutdown().await;
    let saved = demo::save_company(&sim, &saved_company);
    sim.shutdown().await;
    served.and(saved)
}

/// What the banner and the saving of the simulator's company need.
struct Demo<'a> {
    sim: &'a Simulator,
    saved_company: &'a Path,
    place: &'a str,
    restored: bool,
    secrets: &'a secrets::DevSecrets,
}

/// Serves until Ctrl-C, saving the simulator's company every few seconds.
async fn serve_demo(config: Config, demo: &Demo<'_>) -> anyhow::Result<()> {
    let pool = store::connect_lazy(&config.database)?;
    let listeners = Listeners::bind(&config).await?;
    let shutdown = Shutdown::new();
    let grace = config.server.shutdown_grace;
    let app = App::build(config, listeners, pool, Migrations::Apply, shutdown.clone()).await?;
    let (grpc, http) = (app.grpc_addr(), app.http_addr());
    let server = tokio::spawn(app.run());
    let prepared = prepare_tenant(grpc, &demo.secrets.caller_token, demo.sim).await;
    if let Err(e) = prepared {
        shutdown.trigger(grace);
        let _ = server.await;
        return Err(e.context("preparing the demo tenant"));
    }
    print_banner(
        grpc,
        http,
        demo.place,
        demo.sim,
        demo.restored,
        &demo.secrets.caller_token,
    );
    // The simulator keeps its company in memory: saved every few seconds and at the end, so
    // the next start (even after a kill) seeds the ids the database knows.
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let stop = shutdown::signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = demo::save_company(demo.sim, demo.saved_company) {
                    tracing::warn!(error = %format!("{e:#}"), "saving the simulator's company");
                }
            }
            () = &mut stop => break,
        }
    }
    println!("shutting down: draining RPCs and jobs");
    shutdown.trigger(grace);
    server.await.context("the server task")?
}

/// The service's configuration for dev mode: the simulator as QBO, the generated secrets,
/// human-readable logs.
fn dev_config(
    args: &DevArgs,
    sim: &Simulator,
    database_url: &str,
    secrets: &secrets::DevSecrets,
) -> anyhow::Result<Config> {
    let sim_config = sim.config();
    let flags: Vec<(&str, String)> = vec![
        ("--database-url", database_url.to_owned()),
        ("--grpc-addr", args.grpc_addr.to_string()),
        ("--http-addr", args.http_addr.to_string()),
        ("--qbo-base-url", sim.base_url()),
        ("--qbo-token-url", sim.token_url()),
        ("--qbo-revoke-url", sim.revoke_url()),
        ("--qbo-client-id", sim_config.client_id.clone()),
        ("--qbo-client-secret", sim_config.client_secret.clone()),
        ("--token-key", secrets.token_key.clone()),
        ("--callers-file", secrets.callers_file.display().to_string()),
        ("--log-format", "pretty".to_owned()),
        ("--log-filter", "info,qbo_sim=warn".to_owned()),
    ];
    let args: Vec<String> = flags
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect();
    Config::from_args(args).context("dev mode's configuration")
}

/// Connects the demo tenant to the simulator's company (a fresh authorization code each
/// start: the simulator forgets tokens) and records its Digit customers, through the
/// service's own API and the operator client's session.
async fn prepare_tenant(grpc: SocketAddr, token: &str, sim: &Simulator) -> anyhow::Result<()> {
    let args = GlobalArgs {
        addr: format!("http://{grpc}"),
        token: Some(SecretString::from(token.to_owned())),
        tenant: Some(demo::TENANT.into()),
        json: false,
        timeout: Duration::from_secs(30),
        ca_file: None,
        cert_file: None,
        key_file: None,
    };
    let mut session = Session::connect(&args)
        .await
        .context("connecting to the service")?;
    let code = sim.issue_authorization_code(demo::REALM, REDIRECT);
    let connect = session.request(pb::ConnectCompanyRequest {
        tenant_id: demo::TENANT.into(),
        realm_id: demo::REALM.into(),
        environment: pb::QboEnvironment::Sandbox.into(),
        authorization_code: code,
        redirect_uri: REDIRECT.into(),
        ..Default::default()
    });
    session
        .connections
        .connect_company(connect)
        .await
        .context("connecting the demo company")?;
    let all = demo::digit_customers();
    for chunk in all.chunks(500) {
        let batch = chunk
            .iter()
            .map(|(id, name)| pb::DigitCustomer {
                id: id.clone(),
                display_name: name.clone(),
                ..Default::default()
            })
            .collect();
        // Recorded only: the first sync decides what to link and what to push.
        let upsert = session.request(pb::BatchUpsertCustomersRequest {
            tenant_id: demo::TENANT.into(),
            customers: batch,
            skip_push: true,
        });
        session
            .customers
            .batch_upsert_customers(upsert)
            .await
            .context("recording the demo's Digit customers")?;
    }
    Ok(())
}

fn print_banner(
    grpc: SocketAddr,
    http: SocketAddr,
    database: &str,
    sim: &Simulator,
    restored: bool,
    token: &str,
) {
    let company = if restored {
        "restored from the last run"
    } else {
        "seeded with the demo company"
    };
    println!(
        "\nqbo-sync dev is running\n\
         \n  gRPC (reflection on)  {grpc}\n  HTTP                  http://{http}/metrics, /healthz, /readyz\n\
         \n  PostgreSQL            {database}, database {DATABASE}\n\
         \n  QBO simulator         {} ({company})\n  tenant                {} connected to company {}\n\
         \n  caller token          {token}\n\
         \nThe story: QuickBooks has 'Acme Corp' and Digit 'ACME corp'; a sibling, a vendor holding a\n\
         name, an inactive customer and {} ordinary customers (a few only in Digit). Try, in another terminal:\n\
         \n  export QBO_SYNC_ADDR=http://{grpc} QBO_SYNC_TOKEN={token} QBO_SYNC_TENANT={}\n\
         \n  1. a full sync (link, push, review), with its progress:\n    cargo run -- ctl sync\n\
         \n  2. where 'ACME corp' stands:\n    cargo run -- ctl status acme\n\
         \n  3. the invoice preflight:\n    cargo run -- ctl validate acme\n\
         \nCtrl-C stops it; the data stays for the next run.\n",
        sim.base_url(),
        demo::TENANT,
        demo::REALM,
        demo::digit_customers().len() - demo::STORY.len(),
        demo::TENANT,
    );
    for (id, name, what) in demo::STORY {
        println!("  {id:<20} {name:<30} {what}");
    }
    println!();
}
