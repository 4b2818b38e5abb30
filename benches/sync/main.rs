//! Load tests of sync runs: the real service in this process against the QBO simulator with
//! QBO's real limits (500 requests and 40 batches a minute per company, 10 in flight) and its
//! latency on, over real HTTP, and real PostgreSQL. Each figure is printed next to the floor
//! the limits allow, measured in the same run.
//!
//! * `full-10k`, `full-100k`: one tenant with N QBO × N Digit customers: 90 % of them the same
//!   customers under other spellings (case, legal form, punctuation), 10 % only in QBO and
//!   10 % only in Digit (those are pushed). `TriggerSync FULL` until SUCCEEDED: wall time ÷
//!   the floor (the requests the run needs ÷ the rate the limits allow), the time of each
//!   phase, the matcher alone on the same data, and memory;
//! * `incremental`: on the 100k tenant, an incremental run after 999 QBO customers changed (1,000 is CDC's
//!   cap, at which the service must assume the answer was cut and read in full);
//! * `tenants`: many tenants' full syncs at once on 1, 2 and 3 replicas sharing one database:
//!   tenants synced per hour (see [`tenants`]).
//!
//! Run: `cargo bench --bench sync` (all), or `cargo bench --bench sync -- full-10k`;
//! `SYNC_BENCH_FULL_SIZES=1000,10000 cargo bench --bench sync -- full` for other sizes.

#[path = "../support/mod.rs"]
mod support;
mod tenants;

use std::time::{Duration, Instant};

use qbo_sim::{FaultConfig, Simulator, SimulatorConfig};
use qbo_sync::{
    matching::{self, DigitCustomerRecord, MatchContext, QboCustomerRecord},
    pgcluster::{FreshDatabase, fresh_database},
    proto::v1 as pb,
};
use serde_json::json;

use support::{Replica, connect, realm_of, replica};

const TENANT: &str = "sync-tenant";

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    runtime.block_on(async {
        // `SYNC_BENCH_FULL_SIZES=1000,10000,30000` runs full syncs of those sizes instead (the
        // report's chart of time against tenant size).
        if let Ok(list) = std::env::var("SYNC_BENCH_FULL_SIZES") {
            if wants("full") {
                for n in list.split(',') {
                    let n: u64 = n.trim().parse().map_err(|_| {
                        anyhow::anyhow!("SYNC_BENCH_FULL_SIZES={list} is not a list of sizes")
                    })?;
                    full_sync(n).await?;
                }
            }
        } else {
            if wants("full-10k") {
                full_sync(10_000).await?;
            }
            if wants("full-100k") {
                full_sync(100_000).await?;
            }
        }
        if wants("incremental") {
            incremental(100_000).await?;
        }
        if wants("tenants") {
            tenants::tenants(&tenants::Settings::from_env()?).await?;
        }
        Ok(())
    })
}

/// A pronounceable eight-letter word drawn from `seed` (consonants and vowels in turn: 121
/// million words). Random letters make names as unlike each other as real ones: names built
/// from a few syllables look alike to the matcher, which rightly holds back a name that is
/// merely close to another one, and this load test is about throughput, not such near-twins.
fn word(seed: u64) -> String {
    const CONSONANTS: &[u8; 21] = b"bcdfghjklmnpqrstvwxyz";
    const VOWELS: &[u8; 5] = b"aeiou";
    let mut h = mix(seed, 0x5EED);
    let mut out = String::with_capacity(8);
    for k in 0..8 {
        let letter = if k % 2 == 0 {
            CONSONANTS[(h % 21) as usize]
        } else {
            VOWELS[(h % 5) as usize]
        };
        h = h / 21 + mix(h, k);
        out.push(if k == 0 {
            letter.to_ascii_uppercase() as char
        } else {
            letter as char
        });
    }
    out
}

/// A scrambled index, so neighbouring customers do not share words.
fn mix(i: u64, salt: u64) -> u64 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt).wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 20
}

const FORMS: [(&str, &str); 4] = [
    ("Inc.", "inc"),
    ("LLC", ", L.L.C."),
    ("Corporation", "Corp."),
    ("& Sons", "and sons"),
];

/// The base name of customer `i` of group `set` (QBO's customers, or those only Digit has).
fn base(i: u64, set: u64) -> String {
    let seed = i * 2 + set;
    format!("{} {}", word(seed), word(seed + 1_000_000_007))
}

/// QBO's name of customer `i` with legal form `form` (an index into [`FORMS`]) and Digit's
/// spelling of the same customer.
fn names(i: u64, form: u64, base: &str) -> (String, String) {
    let (qbo_form, digit_form) = FORMS[(form % 4) as usize];
    let qbo = format!("{base} {qbo_form}");
    let digit = if i.is_multiple_of(2) {
        format!("{} {digit_form}", base.to_lowercase())
    } else {
        format!("{} {digit_form}", base.to_uppercase())
    };
    (qbo, digit)
}

struct Setup {
    sim: Simulator,
    db: FreshDatabase,
    replica: Replica,
    realm: String,
    qbo: Vec<QboCustomerRecord>,
    digit: Vec<DigitCustomerRecord>,
}

async fn setup(n: u64) -> anyhow::Result<Setup> {
    let shared = n * 9 / 10;
    let only = n - shared;
    let sim = Simulator::start(SimulatorConfig::default()).await?;
    let db = fresh_database().await?;
    let replica = replica(&sim, &db, 8, Duration::from_secs(60)).await?;
    let realm = realm_of(7);
    connect(&replica, &sim, TENANT, &realm).await?;
    // QBO: the shared customers and the QBO-only ones.
    let seeded = Instant::now();
    let name = |i: u64, set: u64| names(i, i, &base(i, set));
    let qbo_names: Vec<String> = (0..shared + only).map(|i| name(i, 0).0).collect();
    // The company's customers were last changed two days ago, as an established company's are
    // (an incremental run's CDC, which starts a minute before its watermark, must not see them).
    let old = (chrono::Utc::now() - chrono::TimeDelta::days(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let meta = json!({"CreateTime": old, "LastUpdatedTime": old});
    for chunk in qbo_names.chunks(10_000) {
        let records: Vec<_> = chunk
            .iter()
            .map(|n| json!({"DisplayName": n, "Active": true, "MetaData": meta}))
            .collect();
        sim.seed_customers(&realm, json!(records))?;
    }
    println!("seeded QBO in {:.1} s", seeded.elapsed().as_secs_f64());
    // Digit: the shared customers spelled its way and the Digit-only ones, reported unpushed.
    let mut digit: Vec<(String, String)> = (0..shared)
        .map(|i| (format!("d{i:07}"), name(i, 0).1))
        .collect();
    // Those only Digit has carry a legal form, never `& Sons`: thousands of names share that
    // word, so a new one is compared with all of them, and random letters make some of them
    // close enough for the push to hold back (the push's guard, not its speed).
    digit.extend((0..only).map(|i| (format!("n{i:07}"), names(i, i % 3, &base(i, 1)).0)));
    let reported = Instant::now();
    for (k, chunk) in digit.chunks(1_000).enumerate() {
        if k % 10 == 0 {
            // A fresh database has no statistics yet: until autovacuum's next round (up to a
            // minute) the per-customer statements of BatchUpsertCustomers are planned for an
            // empty table and scan it, so a bulk load into a new database slows down
            // quadratically. Analyzing as the table grows keeps the set-up linear.
            sqlx::query("ANALYZE digit_customers")
                .execute(&db.pool)
                .await?;
        }
        if k % 20 == 0 {
            println!(
                "  reporting batch {k} at {:.1} s",
                reported.elapsed().as_secs_f64()
            );
        }
        let customers = chunk
            .iter()
            .map(|(id, name)| pb::DigitCustomer {
                id: id.clone(),
                display_name: name.clone(),
                ..Default::default()
            })
            .collect();
        replica
            .customers()
            .batch_upsert_customers(pb::BatchUpsertCustomersRequest {
                tenant_id: TENANT.into(),
                customers,
                skip_push: true,
            })
            .await?;
    }
    let qbo = sim
        .customers(&realm)
        .iter()
        .map(|c| QboCustomerRecord {
            id: c["Id"].as_str().unwrap_or_default().to_owned(),
            display_name: c["DisplayName"].as_str().unwrap_or_default().to_owned(),
            active: true,
            ..Default::default()
        })
        .collect();
    let digit = digit
        .into_iter()
        .map(|(id, display_name)| DigitCustomerRecord {
            id,
            display_name,
            ..Default::default()
        })
        .collect();
    Ok(Setup {
        sim,
        db,
        replica,
        realm,
        qbo,
        digit,
    })
}

/// The process's resident set now and its peak since the last reset, in MiB.
fn rss() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak resident set (Linux: writing 5 to clear_refs).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Timed {
    run: pb::SyncRun,
    wall: Duration,
    read: Duration,
    apply: Duration,
}

/// Triggers a run and follows it until it ends, noting when each phase ended.
async fn run_sync(s: &Setup, mode: pb::SyncMode, link_only: bool) -> anyhow::Result<Timed> {
    let started = Instant::now();
    let run = s
        .replica
        .customers()
        .trigger_sync(pb::TriggerSyncRequest {
            tenant_id: TENANT.into(),
            mode: mode.into(),
            link_only,
            ..Default::default()
        })
        .await?
        .into_inner()
        .run
        .ok_or_else(|| anyhow::anyhow!("no run"))?;
    let (mut read, mut apply) = (None, None);
    loop {
        let (phase, state): (String, String) =
            sqlx::query_as("SELECT phase, state FROM sync_runs WHERE id = $1::uuid")
                .bind(&run.run_id)
                .fetch_one(&s.db.pool)
                .await?;
        if read.is_none() && phase != "read" {
            read = Some(started.elapsed());
        }
        if apply.is_none() && phase == "push" {
            apply = Some(started.elapsed());
        }
        if !matches!(state.as_str(), "queued" | "running") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = started.elapsed();
    let run = s
        .replica
        .customers()
        .get_sync_run(pb::GetSyncRunRequest {
            tenant_id: TENANT.into(),
            run_id: run.run_id,
        })
        .await?
        .into_inner()
        .run
        .ok_or_else(|| anyhow::anyhow!("no run"))?;
    let read = read.unwrap_or(wall);
    let apply = apply.unwrap_or(wall).saturating_sub(read);
    Ok(Timed {
        run,
        wall,
        read,
        apply,
    })
}

/// The least time QBO's limits allow for `requests` calls of which `batches` are batch calls.
fn floor(requests: u64, batches: u64) -> Duration {
    let by_rate = requests as f64 * 60.0 / 500.0;
    let by_batches = batches as f64 * 60.0 / 40.0;
    Duration::from_secs_f64(by_rate.max(by_batches))
}

async fn full_sync(n: u64) -> anyhow::Result<()> {
    println!(
        "== full sync: {n} QBO x {n} Digit customers of one tenant (90 % shared, 10 % each side \
         alone); real limits: 500 requests and 40 batches a minute, 10 in flight; latency \
         40-80 ms =="
    );
    let setup_started = Instant::now();
    let s = setup(n).await?;
    println!("set up in {:.1} s", setup_started.elapsed().as_secs_f64());
    s.sim.set_faults(FaultConfig {
        latency: Duration::from_millis(40),
        latency_jitter: Duration::from_millis(40),
        ..FaultConfig::default()
    });
    let before = s.sim.stats();
    let (rss_before, _) = rss();
    reset_peak();
    let timed = run_sync(&s, pb::SyncMode::Full, false).await?;
    let (_, peak) = rss();
    let after = s.sim.stats();
    let run = &timed.run;
    anyhow::ensure!(
        run.state() == pb::SyncRunState::Succeeded,
        "run ended {:?}: {}",
        run.state(),
        run.error
    );
    let count = |stats: &qbo_sim::SimStats, endpoint: &str| {
        stats.per_endpoint.get(endpoint).copied().unwrap_or(0)
    };
    let queries = count(&after, "query") - count(&before, "query");
    let batches = count(&after, "batch") - count(&before, "batch");
    // What the run needs at least: every page (and the empty one that ends the read), and one
    // batch call per 30 customers it creates.
    let pages = n.div_ceil(1000) + 1;
    let creates = u64::try_from(run.pushed_to_qbo).unwrap_or(0);
    let needed_batches = creates.div_ceil(30);
    let floor = floor(pages + needed_batches, needed_batches);
    println!(
        "run: {} read, {} linked, {} to review, {} created in QBO, {} errors",
        run.qbo_customers_read,
        run.auto_linked,
        run.queued_for_review,
        run.pushed_to_qbo,
        run.errors
    );
    println!(
        "wall {:.1} s (read {:.1} s, match and apply {:.1} s, pushes {:.1} s); floor {:.1} s \
         ({} pages + {} batch calls at the limits); ratio {:.2}",
        timed.wall.as_secs_f64(),
        timed.read.as_secs_f64(),
        timed.apply.as_secs_f64(),
        (timed.wall - timed.read - timed.apply).as_secs_f64(),
        floor.as_secs_f64(),
        pages,
        needed_batches,
        timed.wall.as_secs_f64() / floor.as_secs_f64()
    );
    // Points of the report's charts (`scripts/bench-report` draws them).
    println!(
        "chart: full-sync | qbo-sync | {n} | {}",
        timed.wall.as_secs_f64()
    );
    println!(
        "chart: full-sync | floor (QBO's limits) | {n} | {}",
        floor.as_secs_f64()
    );
    println!(
        "QBO calls: {queries} queries, {batches} batch calls; QBO customers now {} (created \
         {}); limit violations: {} (rate {}, concurrency {}, batch {})",
        s.sim.customers(&s.realm).len(),
        after.creates - before.creates,
        after.limit_violations.total(),
        after.limit_violations.rate,
        after.limit_violations.concurrency,
        after.limit_violations.batch
    );
    let reasons: Vec<(String, i64)> = sqlx::query_as(
        "SELECT left(reason, 90), count(*) FROM review_items GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
    )
    .fetch_all(&s.db.pool)
    .await?;
    for (reason, count) in reasons {
        println!("  review: {count} x {reason}");
    }
    let started = Instant::now();
    let outcomes = matching::match_customers(&s.qbo, &s.digit, &MatchContext::default());
    let matched = started.elapsed();
    println!(
        "matcher alone on the same data: {:.2} s for {} decisions",
        matched.as_secs_f64(),
        outcomes.len()
    );
    println!(
        "memory: process RSS {rss_before:.0} MiB before the run (simulator and data loaded), \
         peak {peak:.0} MiB during it: the run added {:.0} MiB; goal for the service <= 1024 MiB\n",
        peak - rss_before
    );
    s.replica.stop().await;
    Ok(())
}

async fn incremental(n: u64) -> anyhow::Result<()> {
    const CHANGED: usize = 999;
    println!(
        "== incremental sync of {n} x {n} customers after {CHANGED} QBO customers changed (real \
         limits, latency 40-80 ms) =="
    );
    let s = setup(n).await?;
    s.sim.set_faults(FaultConfig {
        latency: Duration::from_millis(40),
        latency_jitter: Duration::from_millis(40),
        ..FaultConfig::default()
    });
    // A link-only full run first: the mirror and the watermark, with no pushes to wait for.
    let first = run_sync(&s, pb::SyncMode::Full, true).await?;
    anyhow::ensure!(
        first.run.state() == pb::SyncRunState::Succeeded,
        "{}",
        first.run.error
    );
    let customers = s.sim.customers(&s.realm);
    for (k, c) in customers.iter().step_by(37).take(CHANGED).enumerate() {
        let id = c["Id"].as_str().unwrap_or_default();
        s.sim
            .edit_customer(
                &s.realm,
                id,
                json!({"PrimaryPhone": {"FreeFormNumber": format!("555-{k:04}")}}),
            )
            .map_err(|f| anyhow::anyhow!("edit: {f:?}"))?;
    }
    let before = s.sim.stats();
    let timed = run_sync(&s, pb::SyncMode::Incremental, true).await?;
    let after = s.sim.stats();
    let run = &timed.run;
    anyhow::ensure!(run.state() == pb::SyncRunState::Succeeded, "{}", run.error);
    let requests = after.requests - before.requests;
    let floor = floor(1, 0);
    println!(
        "read {} changes with {requests} requests; wall {:.2} s (read {:.2} s, match and \
         apply {:.2} s); floor {:.2} s (one CDC call at the rate limit); ratio {:.1}",
        run.qbo_customers_read,
        timed.wall.as_secs_f64(),
        timed.read.as_secs_f64(),
        timed.apply.as_secs_f64(),
        floor.as_secs_f64(),
        timed.wall.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "(the full link-only run before it: {:.1} s)\n",
        first.wall.as_secs_f64()
    );
    s.replica.stop().await;
    Ok(())
}
