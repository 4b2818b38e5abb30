//! `qbo-sync sim` (hidden): the QBO simulator as a process of its own, with the admin HTTP
//! API of `qbo_sim::admin_http` on a second loopback port. The chaos suite runs it beside
//! real `qbo-sync serve` replicas. It prints one JSON line naming its URLs, then serves
//! until SIGTERM or Ctrl-C.

use std::{io::Write as _, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Args;
use qbo_sim::{Simulator, SimulatorConfig, admin_http};
use qbo_sync::{config::parse_duration, shutdown};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// `qbo-sync sim` options: where to listen and the per-realm limits.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// The QBO API (and OAuth endpoints) listener.
    #[arg(long, default_value = "127.0.0.1:0")]
    api_addr: SocketAddr,
    /// The admin API listener (keep it on loopback: it has no authentication).
    #[arg(long, default_value = "127.0.0.1:0")]
    admin_addr: SocketAddr,
    /// QBO's rolling rate window (shrink it together with the service's to run faster).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    rate_window: Duration,
    /// Requests per realm per window.
    #[arg(long, default_value_t = 500)]
    requests_per_window: u32,
    /// Batch requests per realm per window.
    #[arg(long, default_value_t = 40)]
    batches_per_window: u32,
    /// Requests per realm in flight at once.
    #[arg(long, default_value_t = 10)]
    max_concurrent: u32,
    /// Lifetime of an access token.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    access_token_ttl: Duration,
}

/// Runs the simulator and its admin API until a signal.
///
/// # Errors
/// When a listener cannot be bound.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let config = SimulatorConfig {
        rate_window: args.rate_window,
        max_requests_per_window: args.requests_per_window,
        max_batches_per_window: args.batches_per_window,
        max_concurrent: args.max_concurrent,
        access_token_ttl: args.access_token_ttl,
        ..SimulatorConfig::default()
    };
    let api = TcpListener::bind(args.api_addr)
        .await
        .with_context(|| format!("binding the QBO API on {}", args.api_addr))?;
    let admin = TcpListener::bind(args.admin_addr)
        .await
        .with_context(|| format!("binding the admin API on {}", args.admin_addr))?;
    let admin_addr = admin.local_addr()?;
    let sim = Arc::new(Simulator::start_on(config, api).await?);
    let announce = serde_json::json!({
        "base_url": sim.base_url(),
        "token_url": sim.token_url(),
        "revoke_url": sim.revoke_url(),
        "admin_url": format!("http://{admin_addr}"),
        "client_id": sim.config().client_id,
        "client_secret": sim.config().client_secret,
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{announce}")?;
    out.flush()?;
    drop(out);
    let stop = CancellationToken::new();
    let server = tokio::spawn(admin_http::serve(Arc::clone(&sim), admin, stop.clone()));
    shutdown::signal().await;
    stop.cancel();
    server.await.context("the admin API task")??;
    Ok(())
}
