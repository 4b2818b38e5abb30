//! Load test of the invoice preflight: `ValidateInvoiceCustomer` (and `GetLinkStatus`) on a
//! tenant with 100,000 links, against the real `qbo-sync serve` process with caller
//! authentication on, over real gRPC connections, on real PostgreSQL; and in the same run
//! `pgbench -S` (select-only) on the same PostgreSQL with the same client count, the baseline.
//!
//! * `closed`: N callers back to back, each RPC then pgbench: achieved rate and latency, and
//!   the preflight's rate ÷ pgbench's (goal ≥ 0.5);
//! * `open`: calls paced at a fixed rate (default 2,000 a second), latency from each call's
//!   intended send time (goal: p99 ≤ 5 ms for the preflight at 2,000 a second);
//! * `replicas`: the closed loop of the preflight spread over 2, 3... `qbo-sync serve`
//!   processes on the same database (only when `PREFLIGHT_LOAD_REPLICAS` lists more than 1).
//!
//! Run: `cargo bench --bench preflight` (all), or `cargo bench --bench preflight -- open`.
//! Knobs (environment, defaults in [`Settings::from_env`]): `PREFLIGHT_LOAD_CLIENTS` (a
//! comma-separated list), `PREFLIGHT_LOAD_SECS`, `PREFLIGHT_LOAD_WARMUP_SECS`,
//! `PREFLIGHT_LOAD_RATE` (a list), `PREFLIGHT_LOAD_REPLICAS` (a list),
//! `PREFLIGHT_LOAD_OPEN_SECS`, `PREFLIGHT_LOAD_LINKS`,
//! `PREFLIGHT_LOAD_UNLINKED`, `PREFLIGHT_LOAD_CONNECTIONS`, `PREFLIGHT_LOAD_POOL`,
//! `PREFLIGHT_LOAD_PGBENCH_SCALE`.

mod load;
mod pgbench;
mod report;
mod seed;
mod server;

use std::{sync::Arc, time::Duration};

use qbo_sync::{
    pgcluster::{ensure_server, fresh_database},
    proto::v1 as pb,
};
use tonic::Request;

use load::{Failure, Outcome, closed_loop, open_loop};
use pgbench::Pgbench;
use report::{Goal, Row};
use server::{Client, Server};

/// What a run does; every field has an environment variable.
struct Settings {
    clients: Vec<usize>,
    warmup: Duration,
    window: Duration,
    rates: Vec<f64>,
    replicas: Vec<usize>,
    open_window: Duration,
    links: u64,
    unlinked: u64,
    connections: usize,
    pool: u32,
    scale: u32,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
            match std::env::var(name) {
                Ok(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{name}={v} is not a valid value")),
                Err(_) => Ok(default),
            }
        }
        fn list<T: std::str::FromStr>(name: &str, default: &str) -> anyhow::Result<Vec<T>> {
            var(name, default.to_owned())?
                .split(',')
                .map(|c| c.trim().parse::<T>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| anyhow::anyhow!("{name} is not a comma-separated list of numbers"))
        }
        let clients = list("PREFLIGHT_LOAD_CLIENTS", "16")?;
        Ok(Self {
            clients,
            warmup: Duration::from_secs(var("PREFLIGHT_LOAD_WARMUP_SECS", 3)?),
            window: Duration::from_secs(var("PREFLIGHT_LOAD_SECS", 15)?),
            rates: list("PREFLIGHT_LOAD_RATE", "2000")?,
            replicas: list("PREFLIGHT_LOAD_REPLICAS", "1")?,
            open_window: Duration::from_secs(var("PREFLIGHT_LOAD_OPEN_SECS", 30)?),
            links: var("PREFLIGHT_LOAD_LINKS", 100_000)?,
            unlinked: var("PREFLIGHT_LOAD_UNLINKED", 10_000)?,
            connections: var("PREFLIGHT_LOAD_CONNECTIONS", 4)?,
            pool: var("PREFLIGHT_LOAD_POOL", 20)?,
            scale: var("PREFLIGHT_LOAD_PGBENCH_SCALE", 10)?,
        })
    }
}

fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let modes = Modes {
        closed: wants("closed"),
        open: wants("open"),
        replicas: wants("replicas"),
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(&settings, modes))
}

/// The RPC a load sends.
#[derive(Clone, Copy)]
enum Rpc {
    /// The preflight of a linked customer (the goal's case).
    Validate,
    /// GetLinkStatus of a linked customer.
    Status,
    /// The preflight of 90 % linked customers and 10 % unlinked ones with a candidate.
    ValidateMix,
}

impl Rpc {
    fn name(self) -> &'static str {
        match self {
            Self::Validate => "ValidateInvoiceCustomer",
            Self::Status => "GetLinkStatus",
            Self::ValidateMix => "ValidateInvoiceCustomer, 10% unlinked",
        }
    }
}

/// Which parts of the bench run.
struct Modes {
    closed: bool,
    open: bool,
    replicas: bool,
}

/// What the calls go to, and which customers exist.
struct Target {
    clients: Vec<Client>,
    links: u64,
    unlinked: u64,
}

impl Target {
    /// Call number `n`: the customer it asks about is spread over the whole tenant, and the
    /// answer is checked against what was seeded (a wrong answer is a failure).
    async fn call(&self, rpc: Rpc, n: u64) -> Result<(), Failure> {
        let mut client = self.clients[(n % self.clients.len() as u64) as usize].clone();
        let spread = n.wrapping_mul(1_000_003);
        let unlinked = matches!(rpc, Rpc::ValidateMix) && n % 10 == 9 && self.unlinked > 0;
        let (digit, qbo) = if unlinked {
            let i = spread % self.unlinked;
            (seed::unlinked_id(i), seed::qbo_id(self.links + i))
        } else {
            let i = spread % self.links;
            (seed::linked_id(i), seed::qbo_id(i))
        };
        let timeout = Duration::from_secs(10);
        let failed =
            |s: tonic::Status| Failure::Status(format!("{digit}: {:?} {}", s.code(), s.message()));
        let wrong = |answer: &dyn std::fmt::Debug| {
            Failure::Wrong(format!("{digit}: unexpected answer {answer:?}"))
        };
        match rpc {
            Rpc::Validate | Rpc::ValidateMix => {
                let mut request = Request::new(pb::ValidateInvoiceCustomerRequest {
                    tenant_id: seed::TENANT.into(),
                    digit_customer_id: digit.clone(),
                    repair: false,
                });
                request.set_timeout(timeout);
                let answer = client
                    .validate_invoice_customer(request)
                    .await
                    .map_err(failed)?
                    .into_inner();
                let right = if unlinked {
                    !answer.ok
                        && answer.problem() == pb::InvoiceCustomerProblem::NotLinked
                        && answer.candidates.first().map(|c| &c.qbo_customer_id) == Some(&qbo)
                } else {
                    answer.ok && answer.qbo_customer_id == qbo
                };
                right.then_some(()).ok_or_else(|| wrong(&answer))
            }
            Rpc::Status => {
                let mut request = Request::new(pb::GetLinkStatusRequest {
                    tenant_id: seed::TENANT.into(),
                    digit_customer_id: digit.clone(),
                });
                request.set_timeout(timeout);
                let answer = client
                    .get_link_status(request)
                    .await
                    .map_err(failed)?
                    .into_inner();
                let right = answer.state() == pb::LinkState::Linked
                    && answer.link.as_ref().map(|l| &l.qbo_customer_id) == Some(&qbo);
                right.then_some(()).ok_or_else(|| wrong(&answer))
            }
        }
    }
}

/// The CPU time the server and this load generator used during a window, in seconds.
#[derive(Clone, Copy)]
pub struct Cpu {
    server: f64,
    generator: f64,
}

/// Runs `load`, noting the CPU time the servers (together) and this process used meanwhile.
async fn metered(servers: &[&Server], load: impl Future<Output = Outcome>) -> (Outcome, Cpu) {
    let used = || servers.iter().map(|s| s.cpu_seconds()).sum::<f64>();
    let before = (used(), server::cpu_seconds("self"));
    let outcome = load.await;
    let cpu = Cpu {
        server: used() - before.0,
        generator: server::cpu_seconds("self") - before.1,
    };
    (outcome, cpu)
}

/// Runs `rpc` closed-loop with `callers` callers.
async fn closed(
    s: &Settings,
    server: &Server,
    target: &Arc<Target>,
    rpc: Rpc,
    callers: usize,
) -> (Outcome, Cpu) {
    closed_on(s, &[server], target, rpc, callers).await
}

/// [`closed`] with the calls spread over several servers.
async fn closed_on(
    s: &Settings,
    servers: &[&Server],
    target: &Arc<Target>,
    rpc: Rpc,
    callers: usize,
) -> (Outcome, Cpu) {
    let target = target.clone();
    let load = closed_loop(callers, s.warmup, s.window, move |n| {
        let target = target.clone();
        async move { target.call(rpc, n).await }
    });
    metered(servers, load).await
}

/// Runs `rpc` open-loop at `rate` calls a second.
async fn open(
    s: &Settings,
    server: &Server,
    target: &Arc<Target>,
    rpc: Rpc,
    rate: f64,
) -> (Outcome, Cpu) {
    let target = target.clone();
    let load = open_loop(rate, s.warmup, s.open_window, move |n| {
        let target = target.clone();
        async move { target.call(rpc, n).await }
    });
    metered(&[server], load).await
}

/// A point of the report's charts (`scripts/bench-report` draws them).
fn chart(chart: &str, series: &str, x: f64, y: f64) {
    println!("chart: {chart} | {series} | {x} | {y}");
}

async fn run(s: &Settings, modes: Modes) -> anyhow::Result<()> {
    report::machine("before set-up");
    let db = fresh_database().await?;
    seed::seed(&db.pool, s.links, s.unlinked).await?;
    let server = Server::start(&db.url, seed::TENANT, s.pool).await?;
    let channels = server.channels(s.connections).await?;
    let target = Arc::new(Target {
        clients: channels.into_iter().map(|c| server.client(c)).collect(),
        links: s.links,
        unlinked: s.unlinked,
    });
    let admin_url = tokio::task::spawn_blocking(|| ensure_server(None)).await??;
    let pgbench = Pgbench::prepare(&admin_url, s.scale).await?;
    println!(
        "server: qbo-sync serve (its own process), auth on, {} pooled connections; client: {} \
         HTTP/2 connections; pgbench: scale {} ({} accounts), its own database, same server",
        s.pool,
        s.connections,
        s.scale,
        u64::from(s.scale) * 100_000
    );
    report::machine("after set-up");
    let mut rows = Vec::new();
    if modes.closed {
        for &callers in &s.clients {
            let base = pgbench.select_only(callers, s.window.as_secs()).await?;
            let load = format!("{callers} callers");
            rows.push(Row::baseline(&load, &base));
            for rpc in [Rpc::Validate, Rpc::Status, Rpc::ValidateMix] {
                let (outcome, cpu) = closed(s, &server, &target, rpc, callers).await;
                let goal = matches!(rpc, Rpc::Validate).then_some(Goal::Ratio(0.5));
                rows.push(Row::measured(
                    "closed",
                    rpc.name(),
                    &load,
                    outcome,
                    cpu,
                    Some(&base),
                    goal,
                ));
            }
        }
    }
    for &rate in s.rates.iter().filter(|_| modes.open) {
        let load = format!("{rate:.0}/s");
        for rpc in [Rpc::Validate, Rpc::Status] {
            let (outcome, cpu) = open(s, &server, &target, rpc, rate).await;
            if matches!(rpc, Rpc::Validate) {
                for (series, q) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)] {
                    chart("preflight-latency", series, rate, outcome.ms(q));
                }
            }
            // The goal is set at 2,000 calls a second; other rates draw the curve.
            let goal = (matches!(rpc, Rpc::Validate) && (rate - 2_000.0).abs() < 0.5)
                .then_some(Goal::P99 { ms: 5.0, rate });
            rows.push(Row::measured(
                "open",
                rpc.name(),
                &load,
                outcome,
                cpu,
                None,
                goal,
            ));
        }
    }
    if modes.replicas {
        replicas(s, &db.url, &server, &pgbench, &mut rows).await?;
    }
    report::machine("after the runs");
    report::print(&rows);
    drop(server);
    pgbench.drop_database().await?;
    db.pool.close().await;
    report::drop_database(&admin_url, &db.name).await?;
    // Shed calls are the server's right under overload (the table shows them); a wrong answer
    // never is.
    let wrong: u64 = rows.iter().map(|r| r.wrong).sum();
    anyhow::ensure!(wrong == 0, "{wrong} calls answered wrongly");
    Ok(())
}

/// The preflight's closed loop spread over 1, 2, 3... servers (the settings' list) on the same
/// database, at the largest caller count, beside pgbench's rate for the same count.
async fn replicas(
    s: &Settings,
    database_url: &str,
    first: &Server,
    pgbench: &Pgbench,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let most = s.replicas.iter().copied().max().unwrap_or(1);
    if most < 2 {
        return Ok(());
    }
    let mut others = Vec::new();
    for _ in 1..most {
        others.push(Server::start(database_url, seed::TENANT, s.pool).await?);
    }
    let callers = s.clients.iter().copied().max().unwrap_or(16);
    let base = pgbench.select_only(callers, s.window.as_secs()).await?;
    rows.push(Row::baseline(&format!("{callers} callers"), &base));
    for &n in &s.replicas {
        let servers: Vec<&Server> = std::iter::once(first)
            .chain(others.iter())
            .take(n.max(1))
            .collect();
        let mut clients = Vec::new();
        for server in &servers {
            for channel in server.channels(s.connections).await? {
                clients.push(server.client(channel));
            }
        }
        let target = Arc::new(Target {
            clients,
            links: s.links,
            unlinked: s.unlinked,
        });
        let (outcome, cpu) = closed_on(s, &servers, &target, Rpc::Validate, callers).await;
        chart(
            "preflight-replicas",
            "ValidateInvoiceCustomer",
            n as f64,
            outcome.rate(),
        );
        chart("preflight-replicas", "pgbench -S", n as f64, base.tps);
        let load = format!("{callers} callers, {} replicas", servers.len());
        rows.push(Row::measured(
            "closed",
            Rpc::Validate.name(),
            &load,
            outcome,
            cpu,
            Some(&base),
            None,
        ));
    }
    Ok(())
}
