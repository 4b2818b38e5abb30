//! Digit customers.

use sqlx::PgConnection;
use tracing::instrument;

use super::{
    StoreError,
    match_keys::{digit_keys_text, keys_text},
};
use crate::{
    domain::{DigitCustomer, DigitCustomerId, TenantId},
    matching::{self, BlockingKey},
};

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upserted {
    /// The customer was not known before.
    pub created: bool,
    /// A field QBO holds too (name, e-mail, phone) differs from what was stored.
    pub qbo_fields_changed: bool,
}

/// Inserts Digit customers, or updates the stored ones with the same ids, each with its
/// matching key for the current normalizer version, in one statement. Returns what happened to
/// each, in the order given.
///
/// The ids must be distinct: one statement cannot write a row twice (the database refuses).
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.digit_customers.upsert", skip_all, fields(count = customers.len()), err(level = "debug"))]
pub async fn upsert_digit_customers(
    conn: &mut PgConnection,
    tenant: &TenantId,
    customers: &[&DigitCustomer],
) -> Result<Vec<Upserted>, StoreError> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let column = |field: fn(&DigitCustomer) -> Option<&str>| -> Vec<Option<&str>> {
        customers.iter().map(|c| field(c)).collect()
    };
    let name_keys: Vec<String> = customers
        .iter()
        .map(|c| matching::customer_keys(&c.display_name, c.email.as_deref()).name_key)
        .collect();
    // Every CTE reads the snapshot from before the write, so `old` holds the previous values;
    // xmax = 0 only on a freshly inserted row. Rows are written in id order, so two batches
    // sharing customers lock them in the same order and cannot deadlock.
    let rows: Vec<(bool, bool)> = sqlx::query_as(
        "WITH input AS (
             SELECT * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                  $7::text[], $8::text[], $9::bool[], $10::text[], $12::text[])
                 WITH ORDINALITY AS t(id, display_name, company_name, given_name, family_name,
                                      email, phone, active, name_key, match_keys, n)),
         old AS (
             SELECT c.id, c.display_name, c.email, c.phone
             FROM digit_customers c JOIN input ON c.tenant_id = $1 AND c.id = input.id),
         written AS (
             INSERT INTO digit_customers
                 (tenant_id, id, display_name, company_name, given_name, family_name, email, phone,
                  active, name_key, normalizer_version, match_keys)
             SELECT $1, id, display_name, company_name, given_name, family_name, email, phone,
                    active, name_key, $11, string_to_array(match_keys, ' ')::int8[]
             FROM input ORDER BY id
             ON CONFLICT (tenant_id, id) DO UPDATE SET
                 display_name = EXCLUDED.display_name, company_name = EXCLUDED.company_name,
                 given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name,
                 email = EXCLUDED.email, phone = EXCLUDED.phone, active = EXCLUDED.active,
                 name_key = EXCLUDED.name_key, normalizer_version = EXCLUDED.normalizer_version,
                 match_keys = EXCLUDED.match_keys, updated_at = now()
             RETURNING id, (xmax = 0) AS created)
         SELECT written.created,
                (old.display_name, old.email, old.phone)
                    IS DISTINCT FROM (input.display_name, input.email, input.phone)
         FROM input JOIN written ON written.id = input.id LEFT JOIN old ON old.id = input.id
         ORDER BY input.n",
    )
    .bind(tenant.as_str())
    .bind(customers.iter().map(|c| c.id.as_str()).collect::<Vec<_>>())
    .bind(
        customers
            .iter()
            .map(|c| c.display_name.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(column(|c| c.company_name.as_deref()))
    .bind(column(|c| c.given_name.as_deref()))
    .bind(column(|c| c.family_name.as_deref()))
    .bind(column(|c| c.email.as_deref()))
    .bind(column(|c| c.phone.as_deref()))
    .bind(customers.iter().map(|c| c.active).collect::<Vec<_>>())
    .bind(&name_keys)
    .bind(i32::try_from(matching::NORMALIZER_VERSION).unwrap_or(i32::MAX))
    .bind(
        customers
            .iter()
            .map(|c| digit_keys_text(tenant.as_str(), c))
            .collect::<Vec<_>>(),
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(created, qbo_fields_changed)| Upserted {
            created,
            qbo_fields_changed,
        })
        .collect())
}

/// What waits for a Digit customer that is not linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// A review item is open for it.
    pub open_review: bool,
    /// Its push job (`push_key`) is queued, running or parked.
    pub live_push: bool,
}

/// Says, in one query, what waits for each of the tenant's customers `ids`, whose push jobs'
/// dedupe keys are `push_keys` (one per id); in the order given.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.digit_customers.waiting", skip_all, fields(count = ids.len()), err(level = "debug"))]
pub async fn waiting_for(
    conn: &mut PgConnection,
    tenant: &TenantId,
    ids: &[&str],
    push_keys: &[String],
) -> Result<Vec<Waiting>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(bool, bool)> = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM review_items r WHERE r.tenant_id = $1
                        AND r.digit_customer_id = t.id AND r.state = 'open'),
                EXISTS (SELECT 1 FROM jobs j WHERE j.tenant_id = $1 AND j.dedupe_key = t.key
                        AND j.state IN ('queued', 'running', 'parked'))
         FROM UNNEST($2::text[], $3::text[]) WITH ORDINALITY AS t(id, key, n)
         ORDER BY t.n",
    )
    .bind(tenant.as_str())
    .bind(ids)
    .bind(push_keys)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(open_review, live_push)| Waiting {
            open_review,
            live_push,
        })
        .collect())
}

/// Loads one Digit customer of the tenant.
///
/// # Errors
/// [`StoreError::Database`] when the read fails; [`StoreError::Corrupt`] when a stored id is invalid.
#[instrument(name = "db.digit_customers.get", skip_all, err(level = "debug"))]
pub async fn get_digit_customer(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &DigitCustomerId,
) -> Result<Option<DigitCustomer>, StoreError> {
    let row: Option<CustomerRow> = sqlx::query_as(
        "SELECT id, display_name, company_name, given_name, family_name, email, phone, active
         FROM digit_customers WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(conn)
    .await?;
    row.map(CustomerRow::into_domain).transpose()
}

/// A Digit customer as a push sees it.
#[derive(Debug, Clone)]
pub struct PushTarget {
    /// The customer.
    pub customer: DigitCustomer,
    /// Its push generation (part of the create's deterministic request id).
    pub push_generation: i32,
    /// The QBO customer it is linked to, if any.
    pub linked_qbo_id: Option<String>,
    /// Whether a review item is open for it.
    pub open_review: bool,
}

/// Loads the customers a push is about, with their link and review state, in one query.
/// Ids the tenant does not have are left out.
///
/// # Errors
/// [`StoreError::Database`] when the read fails; [`StoreError::Corrupt`] when a stored id is invalid.
#[instrument(
    name = "db.digit_customers.push_targets",
    skip_all,
    err(level = "debug")
)]
pub async fn load_push_targets(
    conn: &mut PgConnection,
    tenant: &TenantId,
    ids: &[String],
) -> Result<Vec<PushTarget>, StoreError> {
    let rows: Vec<PushTargetRow> = sqlx::query_as(
        "SELECT c.id, c.display_name, c.company_name, c.given_name, c.family_name, c.email,
                c.phone, c.active, c.push_generation, l.qbo_customer_id AS linked_qbo_id,
                EXISTS (SELECT 1 FROM review_items r WHERE r.tenant_id = c.tenant_id
                        AND r.digit_customer_id = c.id AND r.state = 'open') AS open_review
         FROM digit_customers c
         LEFT JOIN links l ON l.tenant_id = c.tenant_id AND l.digit_customer_id = c.id
         WHERE c.tenant_id = $1 AND c.id = ANY($2)",
    )
    .bind(tenant.as_str())
    .bind(ids)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(PushTarget {
                push_generation: row.push_generation,
                linked_qbo_id: row.linked_qbo_id,
                open_review: row.open_review,
                customer: row.customer.into_domain()?,
            })
        })
        .collect()
}

/// The tenant's unlinked, active Digit customers whose name key is one of `keys`: the twins
/// the matcher must see to keep "unique on both sides" true for one customer's decision.
///
/// # Errors
/// [`StoreError::Database`] when the read fails; [`StoreError::Corrupt`] when a stored id is invalid.
#[instrument(
    name = "db.digit_customers.by_name_keys",
    skip_all,
    err(level = "debug")
)]
pub async fn unlinked_customers_with_keys(
    conn: &mut PgConnection,
    tenant: &TenantId,
    keys: &[String],
) -> Result<Vec<DigitCustomer>, StoreError> {
    let rows: Vec<CustomerRow> = sqlx::query_as(
        "SELECT c.id, c.display_name, c.company_name, c.given_name, c.family_name, c.email,
                c.phone, c.active
         FROM digit_customers c
         WHERE c.tenant_id = $1 AND c.name_key = ANY($2) AND c.active
           AND NOT EXISTS (SELECT 1 FROM links l WHERE l.tenant_id = c.tenant_id
                           AND l.digit_customer_id = c.id)
         LIMIT 1000",
    )
    .bind(tenant.as_str())
    .bind(keys)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(CustomerRow::into_domain).collect()
}

/// Every Digit customer of the tenant, in id order (what a full sync matches).
///
/// # Errors
/// [`StoreError::Database`] when the read fails; [`StoreError::Corrupt`] when a stored id is invalid.
#[instrument(name = "db.digit_customers.all", skip_all, err(level = "debug"))]
pub async fn all_digit_customers(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Vec<DigitCustomer>, StoreError> {
    let rows: Vec<CustomerRow> = sqlx::query_as(
        "SELECT id, display_name, company_name, given_name, family_name, email, phone, active
         FROM digit_customers WHERE tenant_id = $1 ORDER BY id",
    )
    .bind(tenant.as_str())
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(CustomerRow::into_domain).collect()
}

/// A Digit customer whose keys must be recomputed, and its tenant.
#[derive(Debug, Clone)]
pub struct StaleCustomer {
    /// Its tenant.
    pub tenant_id: String,
    /// The customer.
    pub customer: DigitCustomer,
}

/// Up to `limit` Digit customers whose matching keys an older normalizer than `version`
/// computed, or whose blocking keys were never computed.
///
/// # Errors
/// [`StoreError::Database`] when the read fails; [`StoreError::Corrupt`] when a stored id is invalid.
#[instrument(name = "db.digit_customers.stale_keys", skip_all, err(level = "debug"))]
pub async fn stale_key_customers(
    conn: &mut PgConnection,
    version: i32,
    limit: i64,
) -> Result<Vec<StaleCustomer>, StoreError> {
    let rows: Vec<StaleRow> = sqlx::query_as(
        "SELECT tenant_id, id, display_name, company_name, given_name, family_name, email, phone,
                active
         FROM digit_customers WHERE normalizer_version < $1 OR match_keys IS NULL LIMIT $2",
    )
    .bind(version)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(StaleCustomer {
                tenant_id: r.tenant_id,
                customer: r.row.into_domain()?,
            })
        })
        .collect()
}

/// Recomputed keys of one Digit customer.
#[derive(Debug, Clone)]
pub struct FreshCustomerKeys {
    /// Its tenant.
    pub tenant_id: String,
    /// Its id.
    pub id: String,
    /// The name key.
    pub name_key: String,
    /// The matcher's blocking keys (what it is stored under, see
    /// [`crate::matching::DigitBlockingKeys::stored`]).
    pub match_keys: Vec<BlockingKey>,
}

/// Writes recomputed keys under `version`, in one statement.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.digit_customers.set_keys", skip_all, fields(count = rows.len()), err(level = "debug"))]
pub async fn set_customer_keys(
    conn: &mut PgConnection,
    rows: &[FreshCustomerKeys],
    version: i32,
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        "UPDATE digit_customers c SET name_key = t.key, normalizer_version = $4,
                match_keys = string_to_array(t.mkeys, ' ')::int8[]
         FROM UNNEST($1::text[], $2::text[], $3::text[], $5::text[]) AS t(tenant, id, key, mkeys)
         WHERE c.tenant_id = t.tenant AND c.id = t.id
           AND (c.normalizer_version < $4 OR c.match_keys IS NULL)",
    )
    .bind(rows.iter().map(|r| r.tenant_id.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.name_key.clone()).collect::<Vec<_>>())
    .bind(version)
    .bind(
        rows.iter()
            .map(|r| keys_text(&r.tenant_id, &r.match_keys))
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

#[derive(sqlx::FromRow)]
struct StaleRow {
    tenant_id: String,
    #[sqlx(flatten)]
    row: CustomerRow,
}

#[derive(sqlx::FromRow)]
struct PushTargetRow {
    #[sqlx(flatten)]
    customer: CustomerRow,
    push_generation: i32,
    linked_qbo_id: Option<String>,
    open_review: bool,
}

#[derive(sqlx::FromRow)]
pub(super) struct CustomerRow {
    pub(super) id: String,
    display_name: String,
    company_name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    active: bool,
}

impl CustomerRow {
    pub(super) fn into_domain(self) -> Result<DigitCustomer, StoreError> {
        Ok(DigitCustomer {
            id: DigitCustomerId::parse(self.id)
                .map_err(|e| StoreError::Corrupt(format!("digit customer id: {e}")))?,
            display_name: self.display_name,
            company_name: self.company_name,
            given_name: self.given_name,
            family_name: self.family_name,
            email: self.email,
            phone: self.phone,
            active: self.active,
        })
    }
}
