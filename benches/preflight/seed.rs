//! The tenant under load, written straight into the store with set-based SQL (a service-level
//! load of 100,000 links would take minutes and measure something else): a connected
//! company, `linked` Digit customers each linked to its QBO customer in the mirror, and
//! `unlinked` Digit customers named exactly like a QBO customer nobody linked (the matcher
//! proposes it as their candidate). The matching keys are then computed by the service's own
//! key recomputation, as a replica would, so the server starts with nothing left to do in the
//! background.

use std::time::Instant;

use qbo_sync::service::keys::recompute_stale_keys;
use sqlx::PgPool;

/// The tenant under load.
pub const TENANT: &str = "load-tenant";
/// Its QBO company.
pub const REALM: &str = "9130350000000042";

/// The Digit id of linked customer `i`.
pub fn linked_id(i: u64) -> String {
    format!("d{i:07}")
}

/// The Digit id of unlinked customer `i`.
pub fn unlinked_id(i: u64) -> String {
    format!("u{i:07}")
}

/// The QBO id of the mirror's customer `i` (linked ones first, then the unlinked ones').
pub fn qbo_id(i: u64) -> String {
    (i + 1).to_string()
}

/// A company-like name for number `n`: two words of letters drawn from md5 (so customers
/// share no words, as real names mostly do not) and a legal form.
const NAME: &str = "initcap(translate(left(md5(n::text), 8), '0123456789', 'ghijklmnop')) \
    || ' ' || initcap(translate(left(md5((n + 1000000007)::text), 6), '0123456789', 'ghijklmnop')) \
    || ' LLC'";

/// Writes the tenant: `linked` linked customers and `unlinked` ones with a candidate.
pub async fn seed(pool: &PgPool, linked: u64, unlinked: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let (linked, unlinked) = (i64::try_from(linked)?, i64::try_from(unlinked)?);
    let mut tx = pool.begin().await?;
    // Tokens stay empty: the preflight without repair reads the connection's state only.
    sqlx::query(
        "INSERT INTO connections (tenant_id, realm_id, environment, state)
         VALUES ($1, $2, 'sandbox', 'connected')",
    )
    .bind(TENANT)
    .bind(REALM)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO digit_customers (tenant_id, id, display_name)
         SELECT $1, 'd' || lpad(n::text, 7, '0'), {NAME} FROM generate_series(0, $2 - 1) AS n
         UNION ALL
         SELECT $1, 'u' || lpad((n - $2)::text, 7, '0'), {NAME}
         FROM generate_series($2, $2 + $3 - 1) AS n"
    ))
    .bind(TENANT)
    .bind(linked)
    .bind(unlinked)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO qbo_customers (tenant_id, realm_id, qbo_id, sync_token, display_name,
                                    fully_qualified_name, active, qbo_last_updated_at)
         SELECT $1, $2, (n + 1)::text, '0', {NAME}, {NAME}, true, now() - interval '2 days'
         FROM generate_series(0, $3 + $4 - 1) AS n"
    ))
    .bind(TENANT)
    .bind(REALM)
    .bind(linked)
    .bind(unlinked)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO links (tenant_id, realm_id, digit_customer_id, qbo_customer_id, method,
                            reasons, linked_by)
         SELECT $1, $2, 'd' || lpad(n::text, 7, '0'), (n + 1)::text, 'auto_exact',
                '[\"same display name\"]', 'load-seed'
         FROM generate_series(0, $3 - 1) AS n",
    )
    .bind(TENANT)
    .bind(REALM)
    .bind(linked)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let written = started.elapsed();
    while recompute_stale_keys(pool, 50).await? > 0 {}
    // Fresh statistics and a visibility map, as an established tenant's tables have.
    sqlx::raw_sql("VACUUM ANALYZE").execute(pool).await?;
    println!(
        "seeded {linked} linked and {unlinked} unlinked customers in {:.1} s, matching keys in \
         {:.1} s",
        written.as_secs_f64(),
        (started.elapsed() - written).as_secs_f64()
    );
    Ok(())
}
