//! `BatchUpsertCustomers`' use case against PostgreSQL's own bulk load, in one run.
//!
//! 100,000 customers of one tenant, recorded in batches of 1,000 through
//! `Customers::upsert_customers` (the use case behind the RPC; the gRPC layer is left out, so
//! the figure is the store's), one batch after the other, each its own transaction:
//!
//! * `copy`: the baseline: the same rows, with the same matching keys, sent with one `COPY`
//!   into `digit_customers` of a fresh database (building the rows' text is timed too);
//! * `rows`: new customers, `skip_push` (the same rows as `copy`, into a fresh database);
//! * `push`: new customers, their pushes queued (a backfill: rows and 100,000 jobs);
//! * `again`: the `push` tenant's customers sent again, a tenth of them linked beforehand and
//!   renamed now (updates to QBO queued), the rest unchanged.
//!
//! Each upsert figure is printed as customers per second and as a ratio to `copy` (goal: at
//! least 0.25).
//!
//! Run: `cargo bench --bench batch_upsert`. `QBO_BENCH_CUSTOMERS` (default 100,000) changes
//! the count.

use std::time::{Duration, Instant};

use qbo_sync::{
    domain::{DigitCustomer, DigitCustomerId, TenantId},
    matching::customer_keys,
    pgcluster::fresh_database,
    service::customers::Customers,
    store::match_keys,
};
use sqlx::PgPool;

const BATCH: usize = 1_000;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let count: usize = std::env::var("QBO_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    runtime.block_on(run(count))
}

async fn run(count: usize) -> anyhow::Result<()> {
    println!(
        "== batch_upsert: {count} customers of one tenant, batches of {BATCH}, through \
         Customers::upsert_customers (no gRPC), against one COPY of the same rows =="
    );
    let customers = generate(count, "");

    let copy_db = fresh_database().await?;
    let copy = copy_rows(&copy_db.pool, &tenant("bench-copy")?, &customers).await?;
    report("copy", count, copy, copy);

    let db = fresh_database().await?;
    let service = Customers::new(db.pool.clone());
    let rows = upsert_all(&service, &tenant("bench-rows")?, &customers, true).await?;
    report("rows", count, rows, copy);

    let pushed = tenant("bench-push")?;
    let push = upsert_all(&service, &pushed, &customers, false).await?;
    report("push", count, push, copy);
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE tenant_id = $1")
        .bind(pushed.as_str())
        .fetch_one(&db.pool)
        .await?;
    println!("        {jobs} push jobs queued");

    // A tenth linked (to customers of the tenant's company), then renamed: each of those
    // queues an update.
    sqlx::query(
        "INSERT INTO connections (tenant_id, realm_id, environment, state)
         VALUES ($1, 'bench-realm', 'sandbox', 'disconnected')",
    )
    .bind(pushed.as_str())
    .execute(&db.pool)
    .await?;
    sqlx::query(
        "INSERT INTO links (tenant_id, realm_id, digit_customer_id, qbo_customer_id, method,
                            linked_by)
         SELECT tenant_id, 'bench-realm', id, 'q' || id, 'manual', 'bench' FROM digit_customers
         WHERE tenant_id = $1 AND right(id, 1) = '0'",
    )
    .bind(pushed.as_str())
    .execute(&db.pool)
    .await?;
    let renamed = generate(count, " (renamed)");
    let again = upsert_all(&service, &pushed, &renamed, false).await?;
    report("again", count, again, copy);
    let updates: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND kind = 'update_qbo_customer'",
    )
    .bind(pushed.as_str())
    .fetch_one(&db.pool)
    .await?;
    println!("        {updates} update jobs queued\n");
    Ok(())
}

fn tenant(name: &str) -> anyhow::Result<TenantId> {
    Ok(TenantId::parse(name.to_owned())?)
}

/// `count` customers in id order; every tenth gets `suffix` on its name (the others are the
/// same whatever the suffix). Names, e-mails and phones vary as Digit's do.
fn generate(count: usize, suffix: &str) -> Vec<DigitCustomer> {
    const FORMS: [&str; 5] = ["Ltd", "LLC", "Inc.", "& Sons", "GmbH"];
    const TRADES: [&str; 6] = [
        "Plumbing",
        "Bakery",
        "Consulting",
        "Supplies",
        "Landscaping",
        "Café",
    ];
    (0..count)
        .map(|i| {
            let renamed = if i % 10 == 0 { suffix } else { "" };
            let person = i % 4 == 0;
            DigitCustomer {
                id: DigitCustomerId::parse(format!("c{i:07}")).expect("valid id"),
                display_name: format!(
                    "Northwind {} {i} {}{renamed}",
                    TRADES[i % TRADES.len()],
                    FORMS[i % FORMS.len()]
                ),
                company_name: (!person).then(|| format!("Northwind {i}")),
                given_name: person.then(|| "Ada".to_owned()),
                family_name: person.then(|| format!("Byron-{i}")),
                email: (i % 3 != 0).then(|| format!("billing{i}@northwind{}.example", i % 97)),
                phone: (i % 2 == 0).then(|| format!("+1 555 {:07}", i)),
                active: i % 50 != 0,
            }
        })
        .collect()
}

async fn upsert_all(
    service: &Customers,
    tenant: &TenantId,
    customers: &[DigitCustomer],
    skip_push: bool,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for batch in customers.chunks(BATCH) {
        let outcomes = service.upsert_customers(tenant, batch, skip_push).await?;
        anyhow::ensure!(outcomes.len() == batch.len(), "one outcome per customer");
    }
    Ok(started.elapsed())
}

/// One `COPY` of the rows `upsert_customers` would write, keys included.
async fn copy_rows(
    pool: &PgPool,
    tenant: &TenantId,
    customers: &[DigitCustomer],
) -> anyhow::Result<Duration> {
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    let mut text = String::with_capacity(customers.len() * 160);
    for c in customers {
        let keys = customer_keys(&c.display_name, c.email.as_deref());
        let fields = [
            Some(tenant.as_str()),
            Some(c.id.as_str()),
            Some(c.display_name.as_str()),
            c.company_name.as_deref(),
            c.given_name.as_deref(),
            c.family_name.as_deref(),
            c.email.as_deref(),
            c.phone.as_deref(),
            Some(if c.active { "t" } else { "f" }),
            Some(keys.name_key.as_str()),
        ];
        for field in fields {
            push_copy_field(&mut text, field);
            text.push('\t');
        }
        text.push_str(&keys.normalizer_version.to_string());
        text.push('\t');
        let stored: Vec<String> = match_keys::digit_stored_keys(tenant, c)
            .iter()
            .map(i64::to_string)
            .collect();
        text.push('{');
        text.push_str(&stored.join(","));
        text.push('}');
        text.push('\n');
    }
    let mut copy = conn
        .copy_in_raw(
            "COPY digit_customers (tenant_id, id, display_name, company_name, given_name,
                 family_name, email, phone, active, name_key, normalizer_version, match_keys)
                 FROM STDIN",
        )
        .await?;
    copy.send(text.into_bytes()).await?;
    let written = copy.finish().await?;
    let took = started.elapsed();
    anyhow::ensure!(written == customers.len() as u64, "every row copied");
    Ok(took)
}

/// A field of COPY's text format: `\N` for NULL, backslash escapes for the rest.
fn push_copy_field(out: &mut String, field: Option<&str>) {
    let Some(value) = field else {
        out.push_str("\\N");
        return;
    };
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
}

fn report(name: &str, count: usize, took: Duration, copy: Duration) {
    let rate = count as f64 / took.as_secs_f64();
    let copy_rate = count as f64 / copy.as_secs_f64();
    println!(
        "{name:>6}: {:.2} s, {rate:.0} customers/s; ratio to COPY {:.3}",
        took.as_secs_f64(),
        rate / copy_rate
    );
}
