//! The matcher's blocking keys as stored (`match_keys` of `qbo_customers` and
//! `digit_customers`), and the reads that decide one Digit customer from them: the customers
//! sharing a key with it, each key's postings read in the batch's order and no further than
//! the batch reads them.

use std::collections::HashMap;

use sqlx::{Connection, PgConnection, Postgres, Transaction};
use tracing::instrument;

use super::{StoreError, customers::CustomerRow, mirror::MirrorRow};
use crate::{
    domain::{DigitCustomer, TenantId},
    matching::{self, BlockingKey, DigitCustomerRecord, FUZZY_POSTING_CAP, QboCustomerRecord},
    store::mirror::MirroredCustomer,
};

// Each key is probed on its own through the GIN index, its holders read in the batch's order
// and no further than the batch reads them. The tenant is part of every stored key already;
// its test is written `(tenant_id = $1) IS TRUE` so that the planner never intersects each
// probe with the tenant's whole range of the tenant btree indexes (it would read every row id
// of the tenant once per key).

/// Rows read by one scan for all keys before the keys are probed one by one instead.
const WIDE_READ: i64 = 2_000;

/// How far the batch reads one exact key's postings (the matcher's group cap).
const EXACT_READ: i32 = 100;
/// How far a fuzzy key's postings are read: one past the cap tells a crowded key.
const FUZZY_READ: i32 = FUZZY_POSTING_CAP as i32 + 1;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// A key as stored: mixed with the tenant, so a GIN posting list holds one tenant's
/// customers. For one tenant the mixing is a bijection (xor with a constant, then the
/// splitmix64 finalizer), so two keys are equal stored exactly when they are equal.
pub(crate) fn stored_key(tenant: &str, key: BlockingKey) -> i64 {
    let seed = tenant.bytes().fold(FNV_OFFSET, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    });
    let mut z = seed ^ key.as_u64();
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as i64
}

fn stored(tenant: &str, keys: &[BlockingKey]) -> Vec<i64> {
    keys.iter().map(|k| stored_key(tenant, *k)).collect()
}

/// Stored keys as the text a write statement splits (`string_to_array(.., ' ')::int8[]`):
/// rows of different lengths cannot travel as one two-dimensional array.
pub(crate) fn keys_text(tenant: &str, keys: &[BlockingKey]) -> String {
    let parts: Vec<String> = stored(tenant, keys).iter().map(i64::to_string).collect();
    parts.join(" ")
}

/// The stored keys of a mirrored customer, as [`keys_text`].
pub(crate) fn mirrored_keys_text(tenant: &str, c: &MirroredCustomer) -> String {
    keys_text(tenant, &matching::qbo_blocking_keys(&qbo_record(c)))
}

/// The `match_keys` stored with a Digit customer of `tenant` (for bulk loads that write rows
/// as the store would).
#[must_use]
pub fn digit_stored_keys(tenant: &TenantId, c: &DigitCustomer) -> Vec<i64> {
    stored(
        tenant.as_str(),
        &matching::digit_blocking_keys(&digit_record(c)).stored,
    )
}

/// The stored keys of a Digit customer, as [`keys_text`].
pub(crate) fn digit_keys_text(tenant: &str, c: &DigitCustomer) -> String {
    keys_text(
        tenant,
        &matching::digit_blocking_keys(&digit_record(c)).stored,
    )
}

/// A mirrored customer as the matcher reads it (the mirror keeps no id marker).
#[must_use]
pub fn qbo_record(m: &MirroredCustomer) -> QboCustomerRecord {
    QboCustomerRecord {
        id: m.qbo_id.clone(),
        sync_token: Some(m.sync_token.clone()),
        display_name: m.display_name.clone(),
        fully_qualified_name: m.fully_qualified_name.clone(),
        parent_id: m.parent_qbo_id.clone(),
        is_job: m.is_job,
        active: m.active,
        company_name: m.company_name.clone(),
        given_name: m.given_name.clone(),
        family_name: m.family_name.clone(),
        email: m.email.clone(),
        phone: m.phone.clone(),
        digit_marker: None,
    }
}

/// A Digit customer as the matcher reads it.
#[must_use]
pub fn digit_record(c: &DigitCustomer) -> DigitCustomerRecord {
    DigitCustomerRecord {
        id: c.id.to_string(),
        display_name: c.display_name.clone(),
        company_name: c.company_name.clone(),
        given_name: c.given_name.clone(),
        family_name: c.family_name.clone(),
        email: c.email.clone(),
        phone: c.phone.clone(),
    }
}

/// Opens the transaction one decision reads in: one snapshot for all its reads (a customer
/// linked or mirrored between two of them cannot make the reads disagree), read only, and
/// with generic plans, so that the decision's few statements, prepared once per connection,
/// are not planned again for each customer's keys (planning them cost more than running
/// them). Both settings end with the transaction; the caller drops it (a
/// ROLLBACK queued for the next statement) or commits it.
///
/// # Errors
/// [`StoreError::Database`] when the transaction cannot begin.
#[instrument(name = "db.decision.begin", skip_all, err(level = "debug"))]
pub async fn begin_decision(
    conn: &mut PgConnection,
) -> Result<Transaction<'_, Postgres>, StoreError> {
    // One round trip: the simple query is sent with the first read.
    Ok(conn
        .begin_with(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
             SET LOCAL plan_cache_mode = force_generic_plan",
        )
        .await?)
}

/// Mirrored customers found by their keys, and what the search learnt on the way.
#[derive(Debug, Default)]
pub struct QboNeighbours {
    /// In the batch's order (by QBO id), each with the Digit customer it is linked to.
    pub customers: Vec<(MirroredCustomer, Option<String>)>,
    /// The fuzzy keys asked for that more than [`FUZZY_POSTING_CAP`] mirrored customers hold:
    /// the batch skips them.
    pub crowded: Vec<BlockingKey>,
}

/// The tenant's mirrored customers (QBO still has them) holding one of `exact` among the first
/// hundred of its holders by QBO id, or one of `fuzzy` that at most [`FUZZY_POSTING_CAP`] hold;
/// ordered by QBO id, as the batch reads the mirror.
///
/// # Errors
/// [`StoreError::Database`] when the read fails; [`StoreError::Corrupt`] on an invalid row.
#[instrument(name = "db.qbo_customers.by_match_keys", skip_all,
    fields(exact = exact.len(), fuzzy = fuzzy.len()), err(level = "debug"))]
pub async fn qbo_sharing_keys(
    conn: &mut PgConnection,
    tenant: &TenantId,
    exact: &[BlockingKey],
    fuzzy: &[BlockingKey],
) -> Result<QboNeighbours, StoreError> {
    let fuzzy_stored = stored(tenant.as_str(), fuzzy);
    let mut keys = stored(tenant.as_str(), exact);
    let mut limits = vec![EXACT_READ; keys.len()];
    keys.extend(&fuzzy_stored);
    limits.extend(std::iter::repeat_n(FUZZY_READ, fuzzy_stored.len()));
    // Most keys are held by a few customers: one scan of the index for all of them, the
    // holders counted here in the batch's order. Only when that read is large are the keys
    // probed one by one, each stopping at its limit.
    let wide: Vec<WideRow> = sqlx::query_as(
        "SELECT q.realm_id, q.qbo_id, q.sync_token, q.display_name, q.fully_qualified_name,
                q.parent_qbo_id, q.is_job, q.level, q.active, q.company_name, q.given_name,
                q.family_name, q.email, q.phone, q.qbo_last_updated_at, q.name_key, q.email_key,
                q.normalizer_version, q.name_words,
                (SELECT l.digit_customer_id FROM links l
                 WHERE l.tenant_id = q.tenant_id AND l.qbo_customer_id = q.qbo_id) AS linked_to,
                q.match_keys
         FROM qbo_customers q
         WHERE q.match_keys && $2 AND (q.tenant_id = $1) IS TRUE AND NOT q.missing
         ORDER BY q.qbo_id LIMIT $3",
    )
    .bind(tenant.as_str())
    .bind(&keys)
    .bind(WIDE_READ + 1)
    .fetch_all(&mut *conn)
    .await?;
    if i64::try_from(wide.len()).unwrap_or(i64::MAX) <= WIDE_READ {
        let (kept, crowded_stored) = first_holders(wide, &keys, &limits, &fuzzy_stored);
        let crowded = fuzzy
            .iter()
            .zip(&fuzzy_stored)
            .filter(|(_, s)| crowded_stored.contains(s))
            .map(|(k, _)| *k)
            .collect();
        let customers = kept
            .into_iter()
            .map(|r| Ok((r.row.into_domain()?, r.linked_to)))
            .collect::<Result<_, StoreError>>()?;
        return Ok(QboNeighbours { customers, crowded });
    }
    probe_each_key(conn, tenant, fuzzy, &keys, &limits, &fuzzy_stored).await
}

/// Holders of keys counted in the order read: a row is kept when it is among the first
/// `limit` holders of one of its keys.
struct Holders {
    limit: HashMap<i64, usize>,
    held: HashMap<i64, usize>,
}

impl Holders {
    fn new(keys: &[i64], limits: &[i32]) -> Self {
        let limit = keys
            .iter()
            .zip(limits)
            .map(|(k, l)| (*k, usize::try_from(*l).unwrap_or(0)))
            .collect();
        Self {
            limit,
            held: HashMap::new(),
        }
    }

    /// Counts the row's keys; whether it is among the first holders of one of them.
    fn count(&mut self, row_keys: &[i64]) -> bool {
        let mut keep = false;
        for k in row_keys {
            if let Some(l) = self.limit.get(k) {
                let n = self.held.entry(*k).or_default();
                *n += 1;
                keep |= *n <= *l;
            }
        }
        keep
    }

    fn holders(&self, key: i64) -> usize {
        self.held.get(&key).copied().unwrap_or(0)
    }
}

/// The rows (in the order read) that are among the first `limits[i]` holders of some
/// `keys[i]`, and the fuzzy keys held by more than the cap.
fn first_holders(
    rows: Vec<WideRow>,
    keys: &[i64],
    limits: &[i32],
    fuzzy: &[i64],
) -> (Vec<WideRow>, Vec<i64>) {
    let mut holders = Holders::new(keys, limits);
    let kept: Vec<WideRow> = rows
        .into_iter()
        .filter(|r| holders.count(&r.match_keys))
        .collect();
    let crowded = fuzzy
        .iter()
        .filter(|k| holders.holders(**k) > FUZZY_POSTING_CAP)
        .copied()
        .collect();
    (kept, crowded)
}

/// [`qbo_sharing_keys`] for keys many customers hold: each key probed on its own, reading no
/// further than its limit.
async fn probe_each_key(
    conn: &mut PgConnection,
    tenant: &TenantId,
    fuzzy: &[BlockingKey],
    keys: &[i64],
    limits: &[i32],
    fuzzy_stored: &[i64],
) -> Result<QboNeighbours, StoreError> {
    let rows: Vec<NeighbourRow> = sqlx::query_as(
        "WITH hit AS (
             SELECT t.k, h.qbo_id FROM UNNEST($2::int8[], $3::int4[]) AS t(k, lim)
             CROSS JOIN LATERAL (
                 SELECT q.qbo_id FROM qbo_customers q
                 WHERE q.match_keys @> ARRAY[t.k] AND (q.tenant_id = $1) IS TRUE AND NOT q.missing
                 ORDER BY q.qbo_id LIMIT t.lim) h),
         crowded AS (
             SELECT coalesce(array_agg(k), '{}') AS keys FROM (
                 SELECT k FROM hit WHERE k = ANY($4) GROUP BY k HAVING count(*) > $5) c)
         SELECT q.realm_id, q.qbo_id, q.sync_token, q.display_name, q.fully_qualified_name,
                q.parent_qbo_id, q.is_job, q.level, q.active, q.company_name, q.given_name,
                q.family_name, q.email, q.phone, q.qbo_last_updated_at, q.name_key, q.email_key,
                q.normalizer_version, q.name_words,
                (SELECT l.digit_customer_id FROM links l
                 WHERE l.tenant_id = q.tenant_id AND l.qbo_customer_id = q.qbo_id) AS linked_to,
                (SELECT keys FROM crowded) AS crowded
         FROM qbo_customers q
         WHERE q.tenant_id = $1 AND q.qbo_id IN (SELECT qbo_id FROM hit)
         ORDER BY q.qbo_id",
    )
    .bind(tenant.as_str())
    .bind(keys)
    .bind(limits)
    .bind(fuzzy_stored)
    .bind(i64::try_from(FUZZY_POSTING_CAP).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?;
    let crowded_stored: Vec<i64> = rows.first().map(|r| r.crowded.clone()).unwrap_or_default();
    let crowded = fuzzy
        .iter()
        .zip(fuzzy_stored)
        .filter(|(_, s)| crowded_stored.contains(s))
        .map(|(k, _)| *k)
        .collect();
    let customers = rows
        .into_iter()
        .map(|r| Ok((r.row.into_domain()?, r.linked_to)))
        .collect::<Result<_, StoreError>>()?;
    Ok(QboNeighbours { customers, crowded })
}

/// A Digit customer found by its keys, with its link and the QBO customers a person rejected
/// for it.
#[derive(Debug, Clone)]
pub struct DigitNeighbour {
    /// The customer.
    pub customer: DigitCustomer,
    /// The QBO customer it is linked to.
    pub linked_to: Option<String>,
    /// QBO customers a person said are not this one.
    pub rejected: Vec<String>,
}

/// What [`digit_sharing_keys`] read.
#[derive(Debug, Default)]
pub struct DigitRead {
    /// The customers the batch reads for the keys, in its order (by id).
    pub customers: Vec<DigitNeighbour>,
    /// The stored keys scanned (the keys and the extra keys).
    scanned: Vec<i64>,
    /// Every holder of the scanned keys, with its stored keys, when one scan read them all
    /// (most keys); `None` when they were probed key by key.
    all_holders: Option<Vec<(DigitNeighbour, Vec<i64>)>>,
}

impl DigitRead {
    /// The unlinked customers other than `except` holding one of `keys`, when this read
    /// holds them all: what [`digit_rivals`] would read, without its round trip. `None` when
    /// the read cannot tell (a key it did not scan, or keys probed one by one).
    #[must_use]
    pub fn rivals(
        &self,
        tenant: &TenantId,
        keys: &[BlockingKey],
        except: &str,
    ) -> Option<Vec<DigitNeighbour>> {
        let all = self.all_holders.as_ref()?;
        let wanted = stored(tenant.as_str(), keys);
        if !wanted.iter().all(|k| self.scanned.contains(k)) {
            return None;
        }
        Some(
            all.iter()
                .filter(|(n, held)| {
                    n.linked_to.is_none()
                        && n.customer.id.as_str() != except
                        && held.iter().any(|k| wanted.contains(k))
                })
                .map(|(n, _)| n.clone())
                .collect(),
        )
    }
}

/// The tenant's Digit customers holding one of `keys` among the first hundred of its holders
/// by id, and those with one of `ids`; ordered by id, as the batch reads them. The holders of
/// `extra` are read in the same scan for [`DigitRead::rivals`], not returned as customers.
///
/// # Errors
/// [`StoreError::Database`] when the read fails; [`StoreError::Corrupt`] on an invalid row.
#[instrument(name = "db.digit_customers.by_match_keys", skip_all,
    fields(keys = keys.len(), extra = extra.len()), err(level = "debug"))]
pub async fn digit_sharing_keys(
    conn: &mut PgConnection,
    tenant: &TenantId,
    keys: &[BlockingKey],
    extra: &[BlockingKey],
    ids: &[String],
) -> Result<DigitRead, StoreError> {
    let keys = stored(tenant.as_str(), keys);
    let mut scanned = keys.clone();
    scanned.extend(stored(tenant.as_str(), extra));
    // One scan for all keys, holders counted here; probed key by key past the wide read.
    let wide: Vec<WideDigitRow> = sqlx::query_as(&format!(
        "SELECT {DIGIT_COLUMNS}, coalesce(c.match_keys, '{{}}') AS match_keys
         FROM digit_customers c
         WHERE (c.match_keys && $2 AND (c.tenant_id = $1) IS TRUE)
            OR (c.tenant_id = $1 AND c.id = ANY($3))
         ORDER BY c.id LIMIT $4"
    ))
    .bind(tenant.as_str())
    .bind(&scanned)
    .bind(ids)
    .bind(WIDE_READ + 1)
    .fetch_all(&mut *conn)
    .await?;
    if i64::try_from(wide.len()).unwrap_or(i64::MAX) <= WIDE_READ {
        let mut holders = Holders::new(&keys, &vec![EXACT_READ; keys.len()]);
        let mut customers = Vec::new();
        let mut all = Vec::with_capacity(wide.len());
        for r in wide {
            let counted = holders.count(&r.match_keys);
            let neighbour = r.row.into_domain()?;
            if counted || ids.iter().any(|i| i == neighbour.customer.id.as_str()) {
                customers.push(neighbour.clone());
            }
            all.push((neighbour, r.match_keys));
        }
        return Ok(DigitRead {
            customers,
            scanned,
            all_holders: Some(all),
        });
    }
    let customers = digit_where(
        conn,
        tenant,
        "c.tenant_id = $1 AND (c.id IN (SELECT h.id FROM UNNEST($2::int8[]) AS t(k) CROSS JOIN LATERAL (
             SELECT d.id FROM digit_customers d
             WHERE d.match_keys @> ARRAY[t.k] AND (d.tenant_id = $1) IS TRUE
             ORDER BY d.id LIMIT 100) h) OR c.id = ANY($3))",
        &keys,
        ids,
    )
    .await?;
    Ok(DigitRead {
        customers,
        scanned,
        all_holders: None,
    })
}

/// The tenant's unlinked Digit customers, other than `except`, holding one of `keys` (all of
/// them): those that may link a QBO customer whose automatic-link keys these are.
///
/// # Errors
/// [`StoreError::Database`] when the read fails; [`StoreError::Corrupt`] on an invalid row.
#[instrument(name = "db.digit_customers.rivals", skip_all, err(level = "debug"))]
pub async fn digit_rivals(
    conn: &mut PgConnection,
    tenant: &TenantId,
    keys: &[BlockingKey],
    except: &str,
) -> Result<Vec<DigitNeighbour>, StoreError> {
    // The link of each holder is looked up by the links primary key (`linked_to`), and the
    // linked ones left out here: an anti-join could read the tenant's whole links range.
    let holders = digit_where(
        conn,
        tenant,
        "c.match_keys && $2 AND (c.tenant_id = $1) IS TRUE AND c.id <> ALL($3)",
        &stored(tenant.as_str(), keys),
        &[except.to_owned()],
    )
    .await?;
    Ok(holders
        .into_iter()
        .filter(|n| n.linked_to.is_none())
        .collect())
}

/// Digit customers (with link and rejections) matching `condition`, which tests the tenant
/// (`$1`) itself: keys `$2`, ids `$3`.
async fn digit_where(
    conn: &mut PgConnection,
    tenant: &TenantId,
    condition: &str,
    keys: &[i64],
    ids: &[String],
) -> Result<Vec<DigitNeighbour>, StoreError> {
    let rows: Vec<DigitNeighbourRow> = sqlx::query_as(&format!(
        "SELECT {DIGIT_COLUMNS}
         FROM digit_customers c
         WHERE {condition}
         ORDER BY c.id"
    ))
    .bind(tenant.as_str())
    .bind(keys)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(DigitNeighbourRow::into_domain)
        .collect()
}

#[derive(sqlx::FromRow)]
struct NeighbourRow {
    #[sqlx(flatten)]
    row: MirrorRow,
    linked_to: Option<String>,
    crowded: Vec<i64>,
}

#[derive(sqlx::FromRow)]
struct WideRow {
    #[sqlx(flatten)]
    row: MirrorRow,
    linked_to: Option<String>,
    match_keys: Vec<i64>,
}

/// A Digit customer with its link and rejections.
const DIGIT_COLUMNS: &str = "c.id, c.display_name, c.company_name, c.given_name, c.family_name,
    c.email, c.phone, c.active,
    (SELECT l.qbo_customer_id FROM links l
     WHERE l.tenant_id = c.tenant_id AND l.digit_customer_id = c.id) AS linked_to,
    ARRAY(SELECT r.qbo_customer_id FROM rejected_pairs r
          WHERE r.tenant_id = c.tenant_id AND r.digit_customer_id = c.id) AS rejected";

#[derive(sqlx::FromRow)]
struct WideDigitRow {
    #[sqlx(flatten)]
    row: DigitNeighbourRow,
    match_keys: Vec<i64>,
}

#[derive(sqlx::FromRow)]
struct DigitNeighbourRow {
    #[sqlx(flatten)]
    row: CustomerRow,
    linked_to: Option<String>,
    rejected: Vec<String>,
}

impl DigitNeighbourRow {
    fn into_domain(self) -> Result<DigitNeighbour, StoreError> {
        Ok(DigitNeighbour {
            customer: self.row.into_domain()?,
            linked_to: self.linked_to,
            rejected: self.rejected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_keys_differ_by_tenant_and_keep_keys_apart() {
        let keys = matching::digit_blocking_keys(&DigitCustomerRecord {
            id: "d".into(),
            display_name: "Acme Plumbing".into(),
            ..DigitCustomerRecord::default()
        });
        let all: Vec<BlockingKey> = keys.stored.iter().chain(&keys.fuzzy).copied().collect();
        let mut mine = stored("t1", &all);
        mine.sort_unstable();
        mine.dedup();
        assert_eq!(mine.len(), all.len());
        let theirs = stored("t2", &all);
        assert!(mine.iter().all(|k| !theirs.contains(k)));
        assert_eq!(keys_text("t1", &all[..2]).split(' ').count(), 2);
    }
}
