//! Many tenants at once: how many full syncs an hour 1, 2 and 3 replicas finish when they share
//! one PostgreSQL (they coordinate through it alone), each tenant its own QBO company with
//! QBO's real limits and latency. A tenant's limits bound only that tenant, and a tenant this
//! size needs fewer calls than one rate window allows, so tenants run side by side; what bounds
//! the total is the replicas' CPU, their workers and the database. Each figure is compared
//! with the first replica count's, measured in the same run.
//!
//! Knobs: `SYNC_BENCH_REPLICAS` (a list, default `1,2,3`), `SYNC_BENCH_TENANTS` (20) and
//! `SYNC_BENCH_TENANT_SIZE` (2,000 QBO × 2,000 Digit customers each).

use std::time::{Duration, Instant};

use qbo_sim::{FaultConfig, Simulator, SimulatorConfig};
use qbo_sync::{pgcluster::fresh_database, proto::v1 as pb};
use serde_json::json;

use super::{base, names};
use crate::support::{Replica, connect, realm_of, replica};

/// What the scenario runs.
pub struct Settings {
    replicas: Vec<usize>,
    tenants: usize,
    size: u64,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str, default: &str| std::env::var(name).unwrap_or(default.to_owned());
        let number = |name: &str, text: &str| {
            text.trim()
                .parse::<u64>()
                .map_err(|_| anyhow::anyhow!("{name}={text} is not a number"))
        };
        let replicas = var("SYNC_BENCH_REPLICAS", "1,2,3")
            .split(',')
            .map(|r| number("SYNC_BENCH_REPLICAS", r).map(|r| r.max(1) as usize))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            replicas,
            tenants: number("SYNC_BENCH_TENANTS", &var("SYNC_BENCH_TENANTS", "20"))? as usize,
            size: number(
                "SYNC_BENCH_TENANT_SIZE",
                &var("SYNC_BENCH_TENANT_SIZE", "2000"),
            )?,
        })
    }
}

fn tenant(t: usize) -> String {
    format!("tenant-{t:03}")
}

pub async fn tenants(s: &Settings) -> anyhow::Result<()> {
    println!(
        "== {} tenants' full syncs at once ({} QBO x {} Digit customers each, 90 % shared), on \
         {:?} replicas sharing one database; real limits per company, latency 40-80 ms ==",
        s.tenants, s.size, s.size, s.replicas
    );
    // Each tenant's run needs fewer calls than one rate window of its company allows, so
    // QBO's limits do not bound it: the baseline is the first replica count's figure.
    let mut baseline = None;
    for &count in &s.replicas {
        let wall = round(s, count).await?;
        let per_hour = s.tenants as f64 / wall.as_secs_f64() * 3600.0;
        let base = *baseline.get_or_insert(per_hour);
        println!(
            "{count} replica(s): {} tenants synced in {:.1} s: {per_hour:.0} tenants an hour, \
             {:.2}x the first count's",
            s.tenants,
            wall.as_secs_f64(),
            per_hour / base
        );
        println!("chart: sync-tenants | tenants synced an hour | {count} | {per_hour}");
    }
    println!();
    Ok(())
}

/// One round on `count` fresh replicas: seed, report, then every tenant's FULL run at once.
async fn round(s: &Settings, count: usize) -> anyhow::Result<Duration> {
    let sim = Simulator::start(SimulatorConfig::default()).await?;
    let db = fresh_database().await?;
    let mut replicas: Vec<Replica> = Vec::new();
    for _ in 0..count {
        replicas.push(replica(&sim, &db, 8, Duration::from_secs(60)).await?);
    }
    let on = |t: usize| &replicas[t % replicas.len()];
    for t in 0..s.tenants {
        seed(s, &sim, on(t), t).await?;
    }
    sqlx::query("ANALYZE").execute(&db.pool).await?;
    sim.set_faults(FaultConfig {
        latency: Duration::from_millis(40),
        latency_jitter: Duration::from_millis(40),
        ..FaultConfig::default()
    });
    let started = Instant::now();
    for t in 0..s.tenants {
        on(t)
            .customers()
            .trigger_sync(pb::TriggerSyncRequest {
                tenant_id: tenant(t),
                mode: pb::SyncMode::Full.into(),
                ..Default::default()
            })
            .await?;
    }
    loop {
        let (open, failed): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state IN ('queued', 'running')),
                    count(*) FILTER (WHERE state NOT IN ('queued', 'running', 'succeeded'))
             FROM sync_runs",
        )
        .fetch_one(&db.pool)
        .await?;
        anyhow::ensure!(failed == 0, "{failed} runs did not succeed");
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = started.elapsed();
    for r in replicas {
        r.stop().await;
    }
    Ok(wall)
}

/// Tenant `t`'s company in the simulator and its Digit customers, reported without pushes.
async fn seed(s: &Settings, sim: &Simulator, on: &Replica, t: usize) -> anyhow::Result<()> {
    let realm = realm_of(100 + t);
    connect(on, sim, &tenant(t), &realm).await?;
    let shared = s.size * 9 / 10;
    // Each tenant its own names, as separate companies have.
    let offset = t as u64 * 10_000_000;
    let name = |i: u64, set: u64| names(i, i, &base(offset + i, set));
    let records: Vec<_> = (0..s.size)
        .map(|i| json!({"DisplayName": name(i, 0).0, "Active": true}))
        .collect();
    sim.seed_customers(&realm, json!(records))?;
    let digit: Vec<pb::DigitCustomer> = (0..shared)
        .map(|i| (format!("d{i:07}"), name(i, 0).1))
        .chain(
            (0..s.size - shared)
                .map(|i| (format!("n{i:07}"), names(i, i % 3, &base(offset + i, 1)).0)),
        )
        .map(|(id, display_name)| pb::DigitCustomer {
            id,
            display_name,
            ..Default::default()
        })
        .collect();
    for chunk in digit.chunks(1_000) {
        on.customers()
            .batch_upsert_customers(pb::BatchUpsertCustomersRequest {
                tenant_id: tenant(t),
                customers: chunk.to_vec(),
                skip_push: true,
            })
            .await?;
    }
    Ok(())
}
