//! One Digit customer decided from the mirror (`service::decide::decide_from_mirror`, what a
//! push from the mirror, `GetLinkStatus` and the preflight run) on a tenant of 100,000
//! mirrored QBO customers in PostgreSQL, against a floor measured in the same run: one
//! indexed `SELECT` of the same table by `name_key`.
//!
//! Names come from the matching bench's generator (syllable words, an industry, a legal
//! form). The tenant also holds 10,000 Digit customers; the decisions are of 3,000 of them, a
//! third each: exact names (in capitals or as written), variants (a typo, an e-mail only), and
//! new names. Every write goes through the store's real write paths (keys computed as the
//! service computes them), then the tables are vacuumed and analysed.
//!
//! Run: `cargo bench --bench decide` (a few minutes, most of it loading). Figures are
//! latencies on one connection, one decision at a time; goal: p99 ≤ 2 ms.

use std::time::{Duration, Instant};

use qbo_sync::{
    domain::{DigitCustomer, DigitCustomerId, RealmId, TenantId},
    matching::{Decision, customer_keys},
    pgcluster::fresh_database,
    quickbooks::QboCustomer,
    service::{decide::decide_from_mirror, push::mirrored},
    store,
};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

const QBO_COUNT: usize = 100_000;
const DIGIT_COUNT: usize = 10_000;
const DECISIONS: usize = 3_000;
const WARM_UP: usize = 300;
const TENANT: &str = "bench-decide";
const REALM: &str = "bench-decide-realm";

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ten", "ra", "vis", "do", "bel", "sar", "quin", "fo", "lun", "gra", "pe",
    "tor", "ney", "zu", "mar", "cen", "ol", "bri", "han", "dex", "po", "sil", "var", "ith", "mon",
    "el", "ru", "shan", "tek",
];
const INDUSTRY: &[&str] = &[
    "Plumbing",
    "Electric",
    "Bakery",
    "Consulting",
    "Logistics",
    "Dental",
    "Roofing",
    "Design",
    "Supply",
    "Catering",
];
const LEGAL: &[&str] = &["", "", "Inc", "LLC", "Ltd", "Corp", "Co", "GmbH"];

fn word(rng: &mut StdRng) -> String {
    let n = rng.random_range(2..4);
    let mut w: String = (0..n)
        .map(|_| *SYLLABLES.choose(rng).expect("syllables"))
        .collect();
    w[..1].make_ascii_uppercase();
    w
}

fn company(rng: &mut StdRng) -> String {
    let legal = *LEGAL.choose(rng).expect("legal");
    let industry = *INDUSTRY.choose(rng).expect("industry");
    format!("{} {} {industry} {legal}", word(rng), word(rng))
        .trim_end()
        .to_string()
}

fn qbo_customers(rng: &mut StdRng) -> Vec<QboCustomer> {
    let realm = RealmId::parse(REALM.to_owned()).expect("realm");
    (0..QBO_COUNT)
        .map(|i| QboCustomer {
            id: (i + 1).to_string(),
            sync_token: "0".into(),
            display_name: company(rng),
            fully_qualified_name: None,
            parent_id: None,
            is_job: false,
            level: 0,
            active: rng.random_bool(0.97),
            company_name: None,
            given_name: None,
            family_name: None,
            email: rng.random_bool(0.6).then(|| format!("ap{i}@example.test")),
            phone: None,
            last_updated: None,
            deleted: false,
            realm: realm.clone(),
        })
        .collect()
}

fn typo(name: &str, rng: &mut StdRng) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    let at = rng.random_range(1..chars.len().min(6));
    chars.swap(at, at + 1);
    chars.into_iter().collect()
}

/// Digit customer `i`: the first `DECISIONS` are the probes, a third each exact, variant and
/// new; the rest are a mix of the same kinds.
fn digit_customer(i: usize, qbo: &[QboCustomer], rng: &mut StdRng) -> DigitCustomer {
    let q = &qbo[rng.random_range(0..qbo.len())];
    let (display_name, email) = match i % 3 {
        0 if rng.random_bool(0.5) => (q.display_name.to_uppercase(), None),
        0 => (q.display_name.clone(), None),
        1 if rng.random_bool(0.5) => (typo(&q.display_name, rng), q.email.clone()),
        1 => (format!("{} Holdings", word(rng)), q.email.clone()),
        _ => (company(rng), None),
    };
    DigitCustomer {
        id: DigitCustomerId::parse(format!("d{i:06}")).expect("id"),
        display_name,
        company_name: None,
        given_name: None,
        family_name: None,
        email,
        phone: None,
        active: true,
    }
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    println!(
        "== decide: one Digit customer decided from a mirror of {QBO_COUNT} QBO customers \
         ({DIGIT_COUNT} Digit customers stored), {DECISIONS} decisions =="
    );
    let db = fresh_database().await?;
    let tenant = TenantId::parse(TENANT.to_owned())?;
    let mut rng = StdRng::seed_from_u64(20_261_205);
    let qbo = qbo_customers(&mut rng);
    let digit: Vec<DigitCustomer> = (0..DIGIT_COUNT)
        .map(|i| digit_customer(i, &qbo, &mut rng))
        .collect();
    load(&db.pool, &tenant, &qbo, &digit).await?;

    let mut conn = db.pool.acquire().await?;
    let probes = &digit[..DECISIONS];
    for c in probes.iter().take(WARM_UP) {
        let me = store::match_keys::digit_record(c);
        decide_from_mirror(&mut conn, &tenant, &me).await?;
    }
    let mut took = Vec::with_capacity(DECISIONS);
    let mut by_kind: [Vec<Duration>; 4] = Default::default();
    let mut seen = Vec::with_capacity(DECISIONS);
    for c in probes {
        let me = store::match_keys::digit_record(c);
        let start = Instant::now();
        let decided = decide_from_mirror(&mut conn, &tenant, &me).await?;
        let elapsed = start.elapsed();
        took.push(elapsed);
        seen.push(decided.seen.len());
        by_kind[match decided.decision {
            Decision::AutoLink { .. } => 0,
            Decision::Review { .. } => 1,
            Decision::Unmatched => 2,
            Decision::AlreadyLinked { .. } => 3,
        }]
        .push(elapsed);
    }
    let kinds = by_kind.each_ref().map(Vec::len);
    let floor = floor(&mut conn, &tenant, probes).await?;
    seen.sort_unstable();
    println!(
        "QBO customers read per decision: median {}, p99 {}, max {}",
        seen[seen.len() / 2],
        seen[seen.len() * 99 / 100],
        seen[seen.len() - 1]
    );
    let (decide, base) = (Figures::of(took), Figures::of(floor));
    println!(
        "decisions: {} auto-link, {} review, {} unmatched",
        kinds[0], kinds[1], kinds[2]
    );
    println!("one decision     {decide}");
    // Where the tail is: a decision that links reads its rivals too.
    for (name, times) in ["auto-link", "review", "unmatched"].iter().zip(by_kind) {
        if !times.is_empty() {
            println!("  {name:<14} {}", Figures::of(times));
        }
    }
    println!("floor (name_key) {base}");
    println!(
        "ratio: p50 {:.1}x, p99 {:.1}x the floor; goal p99 <= 2 ms: {}",
        ratio(decide.p50, base.p50),
        ratio(decide.p99, base.p99),
        if decide.p99 <= Duration::from_millis(2) {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "load average (1, 5, 15 min): {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    Ok(())
}

/// The floor: one indexed `SELECT` of the mirror by the probe's `name_key`, rows read.
async fn floor(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    probes: &[DigitCustomer],
) -> anyhow::Result<Vec<Duration>> {
    let mut took = Vec::with_capacity(probes.len());
    for c in probes {
        let key = customer_keys(&c.display_name, None).name_key;
        let start = Instant::now();
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT qbo_id, display_name FROM qbo_customers
             WHERE tenant_id = $1 AND name_key = $2 AND NOT missing",
        )
        .bind(tenant.as_str())
        .bind(&key)
        .fetch_all(&mut *conn)
        .await?;
        took.push(start.elapsed());
        std::hint::black_box(rows);
    }
    Ok(took)
}

async fn load(
    pool: &sqlx::PgPool,
    tenant: &TenantId,
    qbo: &[QboCustomer],
    digit: &[DigitCustomer],
) -> anyhow::Result<()> {
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO connections (tenant_id, realm_id, environment, state)
         VALUES ($1, $2, 'sandbox', 'disconnected')",
    )
    .bind(tenant.as_str())
    .bind(REALM)
    .execute(pool)
    .await?;
    let mut conn = pool.acquire().await?;
    for chunk in qbo.chunks(1_000) {
        let rows: Vec<_> = chunk.iter().map(mirrored).collect();
        store::mirror::upsert_mirrored_customers(&mut conn, tenant, &rows).await?;
    }
    let mirrored_in = started.elapsed();
    for chunk in digit.chunks(1_000) {
        let rows: Vec<&DigitCustomer> = chunk.iter().collect();
        store::customers::upsert_digit_customers(&mut conn, tenant, &rows).await?;
    }
    sqlx::query("VACUUM ANALYZE qbo_customers")
        .execute(&mut *conn)
        .await?;
    sqlx::query("VACUUM ANALYZE digit_customers")
        .execute(&mut *conn)
        .await?;
    println!(
        "loaded through the store: {} QBO customers in {:.1} s, all in {:.1} s",
        qbo.len(),
        mirrored_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

struct Figures {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Figures {
    fn of(mut took: Vec<Duration>) -> Self {
        took.sort_unstable();
        let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
        Self {
            p50: at(0.50),
            p99: at(0.99),
            max: *took.last().expect("timings"),
        }
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}
