//! Load test of the QBO client against the simulator enforcing QBO's limits.
//!
//! * reads 100,000 customers through the pager (ten pages in flight) and reports the request
//!   rate reached as a fraction of the 500-per-window ceiling (goal: at least 0.9 with zero
//!   limit violations);
//! * pushes 3,000 new customers with single creates and with batches, reporting creates per
//!   (real QBO) minute against the best the documented limits allow: 500/min single,
//!   40 batches × 30 items = 1,200/min batched.
//!
//! The read runs first at the real 60 s window (it is only ~100 requests), then again with the
//! other parts on a window shortened to `QBO_BENCH_WINDOW_SECS` (default 6) on both the
//! simulator and the client, with the same counts, so they take about a minute instead of ten;
//! their rates are reported per window, one window standing for one real minute. The scaled
//! reads (pages of 1,000, then of 100) space requests 12 ms apart, so they also show whether
//! the simulator answers a page quickly enough at any STARTPOSITION.
//! Run: `cargo bench --bench qbo_throughput`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use qbo_sim::{FaultConfig, SimStats, Simulator, SimulatorConfig};
use qbo_sync::{
    crypto::TokenCipher,
    domain::{DigitCustomerId, RealmId, TenantId},
    pgcluster::fresh_database,
    quickbooks::{
        BatchCreate, CreateOutcome, Lane, NewCustomer, QboClient, RequestId,
        settings::default_qbo_config,
    },
};
use secrecy::SecretString;
use serde_json::json;

const CUSTOMERS: usize = 100_000;
const CREATES: usize = 3_000;
const WORKERS: usize = 8;

struct Bench {
    sim: Simulator,
    client: Arc<QboClient>,
    tenant: TenantId,
    window: Duration,
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let window_secs: u64 = std::env::var("QBO_BENCH_WINDOW_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    println!("QBO client throughput against the simulator enforcing QBO's per-realm limits");
    println!("(500 requests / 40 batches per window, 10 concurrent); simulated latency 40 ms + up");
    println!("to 40 ms jitter per call; {WORKERS} workers\n");
    let real = setup(Duration::from_secs(60)).await?;
    println!("== real limits: 500 requests per 60 s window ==");
    seed(&real)?;
    read_all(&real, 1000).await?;
    finish(real).await;
    let scaled = setup(Duration::from_secs(window_secs)).await?;
    println!(
        "\n== same counts on a {window_secs} s window (one window stands for one real minute) =="
    );
    seed(&scaled)?;
    read_all(&scaled, 1000).await?;
    // The same read in ten times as many smaller pages: long enough for the fixed costs of a
    // 101-call run (the count before, the last page's latency after) to wash out.
    read_all(&scaled, 100).await?;
    sustained(&scaled).await?;
    push_single(&scaled).await?;
    push_batch(&scaled).await?;
    finish(scaled).await;
    Ok(())
}

async fn finish(bench: Bench) {
    let violations = bench.sim.stats().limit_violations;
    println!(
        "limit violations counted by the simulator in this part: {} ({violations:?})",
        violations.total()
    );
    bench.sim.shutdown().await;
}

async fn setup(window: Duration) -> anyhow::Result<Bench> {
    let sim_config = SimulatorConfig {
        rate_window: window,
        ..SimulatorConfig::default()
    };
    let sim = Simulator::start(sim_config.clone()).await?;
    sim.set_faults(FaultConfig {
        latency: Duration::from_millis(40),
        latency_jitter: Duration::from_millis(40),
        ..FaultConfig::default()
    });
    let db = fresh_database().await?;
    let mut config = default_qbo_config();
    config.qbo_base_url = sim.base_url();
    config.qbo_token_url = sim.token_url();
    config.qbo_client_id = sim_config.client_id.clone();
    config.qbo_client_secret = Some(SecretString::from(sim_config.client_secret.clone()));
    config.qbo_rate_window = window;
    // Backoff scaled with the window, as everything else.
    config.qbo_backoff_base = Duration::from_millis(100);
    let cipher = TokenCipher::new(1, &SecretString::from(STANDARD.encode([7u8; 32])))?;
    let client = Arc::new(QboClient::new(&config, db.pool.clone(), cipher)?);
    let tenant = TenantId::parse("bench-tenant")?;
    let realm = RealmId::parse("4620816365000000001")?;
    let code = sim.issue_authorization_code(realm.as_str(), "https://bench.example/cb");
    client
        .tokens()
        .connect_with_code(
            &tenant,
            &realm,
            "sandbox",
            &SecretString::from(code),
            "https://bench.example/cb",
            qbo_sync::store::connections::RealmChange::Refuse,
        )
        .await?;
    Ok(Bench {
        sim,
        client,
        tenant,
        window,
    })
}

fn seed(bench: &Bench) -> anyhow::Result<()> {
    let started = Instant::now();
    let customers: Vec<_> = (0..CUSTOMERS)
        .map(|i| json!({"DisplayName": format!("Seeded Customer {i:06}"), "CompanyName": "Bench Co", "Active": i % 10 != 0}))
        .collect();
    bench
        .sim
        .seed_customers("4620816365000000001", json!(customers))?;
    println!(
        "seeded {CUSTOMERS} customers (10% inactive) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn report(bench: &Bench, what: &str, requests: u64, elapsed: Duration, before: &SimStats) {
    let window = bench.window.as_secs_f64();
    let per_window = requests as f64 / elapsed.as_secs_f64() * window;
    // A run shorter than the window is measured against the pro-rata ceiling.
    let violations = bench.sim.stats().limit_violations.total() - before.limit_violations.total();
    println!(
        "{what}: {requests} requests in {:.2} s = {per_window:.0} per window = {:.3} of the 500 ceiling; violations {violations}",
        elapsed.as_secs_f64(),
        per_window / 500.0
    );
}

async fn read_all(bench: &Bench, page_size: u32) -> anyhow::Result<()> {
    let before = bench.sim.stats();
    let started = Instant::now();
    let total = bench
        .client
        .count_customers(&bench.tenant, true, Lane::Background)
        .await?;
    // Pages stream in Id order with up to ten requests in flight, so at most ten pages are in
    // memory at once. Pages are handed out in order, so a slow one holds back the refill: it
    // takes more in flight than the other parts' eight independent workers to keep the
    // pacing busy.
    let mut pager = bench
        .client
        .customer_pager(&bench.tenant, true, Lane::Background)
        .page_size(page_size)
        .read_ahead(10);
    let mut read = 0u64;
    while let Some(page) = pager.next_page().await? {
        read += page.customers.len() as u64;
    }
    let elapsed = started.elapsed();
    let requests = bench.sim.stats().requests - before.requests;
    assert_eq!(read, total, "every customer read once");
    report(
        bench,
        &format!("read {total} customers, MAXRESULTS {page_size}"),
        requests,
        elapsed,
        &before,
    );
    report_arrivals(bench, started);
    Ok(())
}

/// The rate at which the calls arrived at the simulator, first to last arrival: what its limits
/// see, without the count's round trip before the pages and the last page's latency after them
/// (fixed costs that weigh on a run shorter than one window).
fn report_arrivals(bench: &Bench, since: Instant) {
    let arrivals: Vec<Instant> = bench
        .sim
        .requests()
        .iter()
        .map(|r| r.received_at)
        .filter(|at| *at >= since)
        .collect();
    let (Some(first), Some(last)) = (arrivals.iter().min(), arrivals.iter().max()) else {
        return;
    };
    let span = last.duration_since(*first).as_secs_f64();
    if arrivals.len() < 2 || span <= 0.0 {
        return;
    }
    let per_window = (arrivals.len() - 1) as f64 / span * bench.window.as_secs_f64();
    println!(
        "  arrivals at the simulator: {} in {span:.2} s = {per_window:.0} per window = {:.3} of the ceiling",
        arrivals.len(),
        per_window / 500.0
    );
}

/// 1,000 small queries (first page, MAXRESULTS 10): what the limiter reaches when the server
/// answers quickly, as QBO does for a page.
async fn sustained(bench: &Bench) -> anyhow::Result<()> {
    let before = bench.sim.stats();
    let started = Instant::now();
    let next = Arc::new(AtomicU32::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (client, tenant, next) = (bench.client.clone(), bench.tenant.clone(), next.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::SeqCst) < 1000 {
                    client
                        .query_customers_page_sized(&tenant, 1, 10, true, Lane::Background)
                        .await?;
                }
                Ok::<_, qbo_sync::quickbooks::QboError>(())
            })
        })
        .collect();
    for worker in futures::future::join_all(workers).await {
        worker??;
    }
    let requests = bench.sim.stats().requests - before.requests;
    report(
        bench,
        "sustained: 1000 small queries",
        requests,
        started.elapsed(),
        &before,
    );
    Ok(())
}

fn new_items(bench: &Bench, prefix: &str) -> Vec<BatchCreate> {
    (0..CREATES)
        .map(|i| BatchCreate {
            request_id: RequestId::for_create(
                &bench.tenant,
                &DigitCustomerId::parse(format!("{prefix}-{i}")).expect("id"),
                0,
            ),
            customer: NewCustomer {
                display_name: format!("{prefix} New Customer {i:05}"),
                ..NewCustomer::default()
            },
        })
        .collect()
}

fn report_creates(
    bench: &Bench,
    what: &str,
    created: usize,
    elapsed: Duration,
    ceiling: f64,
    before: &SimStats,
) {
    // One shortened window stands for one real minute.
    let per_minute = created as f64 / elapsed.as_secs_f64() * bench.window.as_secs_f64();
    let stats = bench.sim.stats();
    println!(
        "{what}: {created} creates in {:.1} s = {per_minute:.0} creates per real minute = {:.3} of the {ceiling:.0}/min limit; requests {}, violations {}",
        elapsed.as_secs_f64(),
        per_minute / ceiling,
        stats.requests - before.requests,
        stats.limit_violations.total() - before.limit_violations.total()
    );
}

async fn push_single(bench: &Bench) -> anyhow::Result<()> {
    let items = Arc::new(new_items(bench, "S"));
    let before = bench.sim.stats();
    let started = Instant::now();
    let next = Arc::new(AtomicU32::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (client, tenant, next, items) = (
                bench.client.clone(),
                bench.tenant.clone(),
                next.clone(),
                items.clone(),
            );
            tokio::spawn(async move {
                let mut created = 0;
                while let Some(item) = items.get(next.fetch_add(1, Ordering::SeqCst) as usize) {
                    let outcome = client
                        .create_customer(
                            &tenant,
                            &item.customer,
                            &item.request_id,
                            Lane::Background,
                        )
                        .await?;
                    created += usize::from(matches!(outcome, CreateOutcome::Created(_)));
                }
                Ok::<_, qbo_sync::quickbooks::QboError>(created)
            })
        })
        .collect();
    let mut created = 0;
    for worker in futures::future::join_all(workers).await {
        created += worker??;
    }
    report_creates(
        bench,
        "single creates",
        created,
        started.elapsed(),
        500.0,
        &before,
    );
    Ok(())
}

async fn push_batch(bench: &Bench) -> anyhow::Result<()> {
    let items = new_items(bench, "B");
    let before = bench.sim.stats();
    let started = Instant::now();
    // Batches of 30 from several workers, so the batch pacing (not latency) is the bound.
    let chunks: Vec<Vec<BatchCreate>> = items.chunks(30).map(<[BatchCreate]>::to_vec).collect();
    let chunks = Arc::new(chunks);
    let next = Arc::new(AtomicU32::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (client, tenant, next, chunks) = (
                bench.client.clone(),
                bench.tenant.clone(),
                next.clone(),
                chunks.clone(),
            );
            tokio::spawn(async move {
                let mut created = 0;
                while let Some(chunk) = chunks.get(next.fetch_add(1, Ordering::SeqCst) as usize) {
                    let results = client
                        .batch_create_customers(&tenant, chunk, Lane::Background)
                        .await?;
                    created += results
                        .iter()
                        .filter(|r| matches!(r, Ok(CreateOutcome::Created(_))))
                        .count();
                }
                Ok::<_, qbo_sync::quickbooks::QboError>(created)
            })
        })
        .collect();
    let mut created = 0;
    for worker in futures::future::join_all(workers).await {
        created += worker??;
    }
    report_creates(
        bench,
        "batch creates (30 per batch)",
        created,
        started.elapsed(),
        1200.0,
        &before,
    );
    Ok(())
}
