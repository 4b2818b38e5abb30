//! The `qbo-sync` binary: parse the command line, set up telemetry, dispatch.

#[cfg(feature = "dev")]
mod dev;

use std::{
    path::{Path, PathBuf},
    pin::Pin,
    process::ExitCode,
};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use qbo_sync::{
    app::{App, Listeners, Migrations},
    config::{Config, DatabaseConfig, LogConfig},
    error::error_chain,
    shutdown::{self, Shutdown},
    store, telemetry,
};

/// Keeps Digit customers linked to QuickBooks Online customers.
#[derive(Debug, Parser)]
#[command(name = "qbo-sync", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC service (and its HTTP side listener for metrics).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations, then exit.
    Migrate(MigrateArgs),
    /// Preview a migration offline: match Digit customers to QBO customers and print a JSON plan.
    Match {
        /// QBO customers: a JSON array of Customer objects, or a whole query response.
        #[arg(long, value_name = "FILE")]
        qbo: PathBuf,
        /// Digit customers: a JSON array of {id, display_name, company_name?, ...}.
        #[arg(long, value_name = "FILE")]
        digit: PathBuf,
    },
    /// Run everything on this machine: PostgreSQL (a private cluster unless DATABASE_URL
    /// answers), the QBO simulator with a demo company, and the service with a caller token.
    #[cfg(feature = "dev")]
    Dev(dev::DevArgs),
    /// The QBO simulator as a process of its own, with an admin API (the chaos suite's).
    #[cfg(feature = "dev")]
    #[command(hide = true)]
    Sim(dev::sim::SimArgs),
    /// Talk to a running qbo-sync over gRPC: sync with progress, status, links, reviews.
    Ctl(Box<qbo_sync::ctl::CtlArgs>),
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    config: Config,
    /// Refuse to start when migrations are pending instead of applying them.
    #[arg(long, env = "QBO_SYNC_NO_MIGRATE")]
    no_migrate: bool,
}

#[derive(Debug, Args)]
struct MigrateArgs {
    #[command(flatten)]
    database: DatabaseConfig,
    #[command(flatten)]
    log: LogConfig,
}

fn main() -> ExitCode {
    let work: Pin<Box<dyn Future<Output = anyhow::Result<()>>>> = match Cli::parse().command {
        Command::Serve(args) => Box::pin(serve(*args)),
        Command::Migrate(args) => Box::pin(migrate(args)),
        #[cfg(feature = "dev")]
        Command::Dev(args) => Box::pin(dev::run(args)),
        #[cfg(feature = "dev")]
        Command::Sim(args) => Box::pin(dev::sim::run(args)),
        // The offline matcher needs neither a runtime nor telemetry: its output is the plan.
        Command::Match { qbo, digit } => return run_match(&qbo, &digit),
        // The client has exit codes of its own (see `ctl --help`) and no telemetry.
        Command::Ctl(args) => return qbo_sync::ctl::main(*args),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("qbo-sync: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error_chain(error.as_ref()), "qbo-sync stopped with an error");
            eprintln!("qbo-sync: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_match(qbo: &Path, digit: &Path) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match qbo_sync::matching::cli::run_match(qbo, digit, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("qbo-sync match: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    telemetry::init_logging(&args.log)?;
    let pool = store::connect_lazy(&args.database)?;
    store::migrate(&pool).await.context("applying migrations")?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let telemetry = telemetry::init(&args.config.log, &args.config.traces)?;
    let served = run_server(args).await;
    // The last spans (the shutdown's own among them) leave before the process does.
    telemetry.shutdown().await;
    served
}

async fn run_server(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config;
    let pool = store::connect_lazy(&config.database)?;
    let listeners = Listeners::bind(&config).await?;
    let migrations = if args.no_migrate {
        Migrations::RequireCurrent
    } else {
        Migrations::Apply
    };
    let shutdown = Shutdown::new();
    let grace = config.server.shutdown_grace;
    let app = App::build(config, listeners, pool, migrations, shutdown.clone()).await?;
    tracing::info!(grpc = %app.grpc_addr(), http = %app.http_addr(), "qbo-sync started");
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        shutdown::signal().await;
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: NOT_SERVING, draining"
        );
        on_signal.trigger(grace);
    });
    app.run().await?;
    tracing::info!("qbo-sync stopped");
    Ok(())
}
