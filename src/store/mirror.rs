//! The mirror of each tenant's QBO customers (`qbo_customers`), as last read from QBO, with
//! the matcher's keys.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tracing::instrument;

use super::{
    StoreError,
    match_keys::{keys_text, mirrored_keys_text},
};
use crate::{
    domain::{RealmId, TenantId},
    matching::BlockingKey,
};

/// One QBO customer as the mirror keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct MirroredCustomer {
    /// The QBO company it was read from.
    pub realm: RealmId,
    /// QBO Id.
    pub qbo_id: String,
    /// SyncToken when read.
    pub sync_token: String,
    /// DisplayName.
    pub display_name: String,
    /// `Parent:Job` for sub-customers.
    pub fully_qualified_name: Option<String>,
    /// Parent's Id for a sub-customer.
    pub parent_qbo_id: Option<String>,
    /// Whether it is a sub-customer.
    pub is_job: bool,
    /// Depth, 0 at the top.
    pub level: i32,
    /// Active in QBO.
    pub active: bool,
    /// Company name.
    pub company_name: Option<String>,
    /// First name.
    pub given_name: Option<String>,
    /// Last name.
    pub family_name: Option<String>,
    /// Primary e-mail.
    pub email: Option<String>,
    /// Primary phone.
    pub phone: Option<String>,
    /// QBO's LastUpdatedTime.
    pub qbo_last_updated_at: Option<DateTime<Utc>>,
    /// The matcher's name key.
    pub name_key: String,
    /// The matcher's e-mail key.
    pub email_key: Option<String>,
    /// The normalizer version of the keys.
    pub normalizer_version: i32,
    /// The name's words, lower case (see `service::push::name_words`).
    pub name_words: Vec<String>,
}

/// Writes customers into the mirror in one statement (arrays, not a round trip each),
/// replacing what was stored for the same ids, and clears `missing` for them (unless QBO
/// merged them away). Each row keeps the company it was read from.
///
/// # Errors
/// [`StoreError::Conflict`] on `qbo_customers_connection_fkey` when a customer's company is no
/// longer the tenant's (it reconnected to another company since the read), so nothing read
/// from the old company lands beside the new one; [`StoreError::Database`] otherwise.
#[instrument(name = "db.qbo_customers.upsert", skip_all, fields(count = customers.len()), err(level = "debug"))]
pub async fn upsert_mirrored_customers(
    conn: &mut PgConnection,
    tenant: &TenantId,
    customers: &[MirroredCustomer],
) -> Result<(), StoreError> {
    if customers.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&MirroredCustomer) -> Option<String>| -> Vec<Option<String>> {
        customers.iter().map(f).collect()
    };
    sqlx::query(
        "INSERT INTO qbo_customers (tenant_id, realm_id, qbo_id, sync_token, display_name, fully_qualified_name,
             parent_qbo_id, is_job, level, active, company_name, given_name, family_name, email,
             phone, qbo_last_updated_at, name_key, email_key, normalizer_version, name_words,
             match_keys, missing, mirrored_at)
         SELECT $1, realm, id, token, name, fqn, parent, job, lvl, act, company, given, family, mail,
                tel, updated, nkey, ekey, nver, string_to_array(words, ' '),
                string_to_array(mkeys, ' ')::int8[], false, now()
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[],
             $8::int4[], $9::bool[], $10::text[], $11::text[], $12::text[], $13::text[],
             $14::text[], $15::timestamptz[], $16::text[], $17::text[], $18::int4[], $19::text[],
             $20::text[], $21::text[])
             AS t(id, token, name, fqn, parent, job, lvl, act, company, given, family, mail, tel,
                  updated, nkey, ekey, nver, words, realm, mkeys)
         ON CONFLICT (tenant_id, qbo_id) DO UPDATE SET realm_id = EXCLUDED.realm_id,
             sync_token = EXCLUDED.sync_token, display_name = EXCLUDED.display_name,
             fully_qualified_name = EXCLUDED.fully_qualified_name,
             parent_qbo_id = EXCLUDED.parent_qbo_id, is_job = EXCLUDED.is_job,
             level = EXCLUDED.level, active = EXCLUDED.active,
             company_name = EXCLUDED.company_name, given_name = EXCLUDED.given_name,
             family_name = EXCLUDED.family_name, email = EXCLUDED.email, phone = EXCLUDED.phone,
             qbo_last_updated_at = EXCLUDED.qbo_last_updated_at, name_key = EXCLUDED.name_key,
             email_key = EXCLUDED.email_key, normalizer_version = EXCLUDED.normalizer_version,
             name_words = EXCLUDED.name_words, match_keys = EXCLUDED.match_keys,
             -- A customer QBO merged away stays missing even if QBO still returns it (inactive).
             missing = qbo_customers.merged_into_qbo_id IS NOT NULL, mirrored_at = now()",
    )
    .bind(tenant.as_str())
    .bind(col(|c| Some(c.qbo_id.clone())))
    .bind(col(|c| Some(c.sync_token.clone())))
    .bind(col(|c| Some(c.display_name.clone())))
    .bind(col(|c| c.fully_qualified_name.clone()))
    .bind(col(|c| c.parent_qbo_id.clone()))
    .bind(customers.iter().map(|c| c.is_job).collect::<Vec<_>>())
    .bind(customers.iter().map(|c| c.level).collect::<Vec<_>>())
    .bind(customers.iter().map(|c| c.active).collect::<Vec<_>>())
    .bind(col(|c| c.company_name.clone()))
    .bind(col(|c| c.given_name.clone()))
    .bind(col(|c| c.family_name.clone()))
    .bind(col(|c| c.email.clone()))
    .bind(col(|c| c.phone.clone()))
    .bind(
        customers
            .iter()
            .map(|c| c.qbo_last_updated_at)
            .collect::<Vec<_>>(),
    )
    .bind(col(|c| Some(c.name_key.clone())))
    .bind(col(|c| c.email_key.clone()))
    .bind(
        customers
            .iter()
            .map(|c| c.normalizer_version)
            .collect::<Vec<_>>(),
    )
    .bind(col(|c| Some(c.name_words.join(" "))))
    .bind(col(|c| Some(c.realm.as_str().to_owned())))
    .bind(
        customers
            .iter()
            .map(|c| mirrored_keys_text(tenant.as_str(), c))
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the lease to read the tenant's whole mirror from QBO, unless another reader holds
/// it. Returns the database time the read starts at (what "fresh" will be measured from).
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.mirror_state.begin_refresh", skip_all, err(level = "debug"))]
pub async fn begin_refresh(
    pool: &PgPool,
    tenant: &TenantId,
    token: &str,
    lease: Duration,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO mirror_state (tenant_id, refreshing_by, refreshing_until)
         VALUES ($1, $2, clock_timestamp() + $3 * interval '1 microsecond')
         ON CONFLICT (tenant_id) DO UPDATE SET refreshing_by = EXCLUDED.refreshing_by,
             refreshing_until = EXCLUDED.refreshing_until
         WHERE mirror_state.refreshing_until IS NULL OR mirror_state.refreshing_until < clock_timestamp()
         RETURNING clock_timestamp()",
    )
    .bind(tenant.as_str())
    .bind(token)
    .bind(micros(lease))
    .fetch_optional(pool)
    .await?)
}

/// Extends the reader's lease (after each page).
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(
    name = "db.mirror_state.extend_refresh",
    skip_all,
    err(level = "debug")
)]
pub async fn extend_refresh(
    pool: &PgPool,
    tenant: &TenantId,
    token: &str,
    lease: Duration,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE mirror_state SET refreshing_until = clock_timestamp() + $3 * interval '1 microsecond'
         WHERE tenant_id = $1 AND refreshing_by = $2",
    )
    .bind(tenant.as_str())
    .bind(token)
    .bind(micros(lease))
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends a read: with `refreshed_at` when it completed, without when it failed.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.mirror_state.end_refresh", skip_all, err(level = "debug"))]
pub async fn end_refresh(
    pool: &PgPool,
    tenant: &TenantId,
    token: &str,
    refreshed_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE mirror_state SET refreshing_by = NULL, refreshing_until = NULL,
                refreshed_at = COALESCE($3, refreshed_at)
         WHERE tenant_id = $1 AND refreshing_by = $2",
    )
    .bind(tenant.as_str())
    .bind(token)
    .bind(refreshed_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// How long ago the tenant's mirror was last read whole; `None` when never.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.mirror_state.age", skip_all, err(level = "debug"))]
pub async fn mirror_age(pool: &PgPool, tenant: &TenantId) -> Result<Option<Duration>, StoreError> {
    let secs: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM clock_timestamp() - refreshed_at)::float8
         FROM mirror_state WHERE tenant_id = $1 AND refreshed_at IS NOT NULL",
    )
    .bind(tenant.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(secs.map(|s| Duration::from_secs_f64(s.max(0.0))))
}

/// Mirrored customers whose name key is one of `keys` or whose name holds one of `words`
/// (lower case, through the words' index): what a live push's lookup in QBO would return, where
/// a push from the mirror looks for similar names before it creates.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.qbo_customers.similar", skip_all, err(level = "debug"))]
pub async fn similar_mirrored(
    conn: &mut PgConnection,
    tenant: &TenantId,
    words: &[String],
    keys: &[String],
) -> Result<Vec<MirroredCustomer>, StoreError> {
    let rows: Vec<MirrorRow> = sqlx::query_as(
        "SELECT realm_id, qbo_id, sync_token, display_name, fully_qualified_name, parent_qbo_id, is_job,
                level, active, company_name, given_name, family_name, email, phone,
                qbo_last_updated_at, name_key, email_key, normalizer_version, name_words
         FROM qbo_customers
         WHERE tenant_id = $1 AND NOT missing AND (name_key = ANY($2) OR name_words && $3)
         LIMIT $4",
    )
    .bind(tenant.as_str())
    .bind(keys)
    .bind(words)
    .bind(SIMILAR_LIMIT)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(MirrorRow::into_domain).collect()
}

/// The most rows [`similar_mirrored`] returns.
pub const SIMILAR_LIMIT: i64 = 10_000;

/// Marks missing the tenant's mirrored customers not written since `since` (a full read that
/// began then did not see them: QBO no longer has them, e.g. merged away). Returns how many.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.qbo_customers.mark_missing", skip_all, err(level = "debug"))]
pub async fn mark_missing_before(
    conn: &mut PgConnection,
    tenant: &TenantId,
    since: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE qbo_customers SET missing = true
         WHERE tenant_id = $1 AND NOT missing AND mirrored_at < $2",
    )
    .bind(tenant.as_str())
    .bind(since)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Records that the tenant's mirror was read whole, as of `at` (when the read began).
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.mirror_state.refreshed", skip_all, err(level = "debug"))]
pub async fn set_refreshed(
    conn: &mut PgConnection,
    tenant: &TenantId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO mirror_state (tenant_id, refreshed_at) VALUES ($1, $2)
         ON CONFLICT (tenant_id) DO UPDATE
             SET refreshed_at = greatest(mirror_state.refreshed_at, EXCLUDED.refreshed_at)",
    )
    .bind(tenant.as_str())
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every mirrored customer of the tenant that QBO still has, in Id order.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.qbo_customers.all", skip_all, err(level = "debug"))]
pub async fn all_mirrored(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Vec<MirroredCustomer>, StoreError> {
    let rows: Vec<MirrorRow> = sqlx::query_as(
        "SELECT realm_id, qbo_id, sync_token, display_name, fully_qualified_name, parent_qbo_id, is_job,
                level, active, company_name, given_name, family_name, email, phone,
                qbo_last_updated_at, name_key, email_key, normalizer_version, name_words
         FROM qbo_customers WHERE tenant_id = $1 AND NOT missing ORDER BY qbo_id",
    )
    .bind(tenant.as_str())
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(MirrorRow::into_domain).collect()
}

/// The time QBO gave with the last change read (full read or CDC), if any.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.mirror_state.watermark", skip_all, err(level = "debug"))]
pub async fn cdc_watermark(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(sqlx::query_scalar::<_, Option<DateTime<Utc>>>(
        "SELECT cdc_watermark FROM mirror_state WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(conn)
    .await?
    .flatten())
}

/// Moves the tenant's CDC watermark forward to `at` (never back).
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.mirror_state.set_watermark", skip_all, err(level = "debug"))]
pub async fn set_cdc_watermark(
    conn: &mut PgConnection,
    tenant: &TenantId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO mirror_state (tenant_id, cdc_watermark) VALUES ($1, $2)
         ON CONFLICT (tenant_id) DO UPDATE
             SET cdc_watermark = greatest(mirror_state.cdc_watermark, EXCLUDED.cdc_watermark)",
    )
    .bind(tenant.as_str())
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the given QBO customers missing (QBO reported them deleted, e.g. merged away).
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.qbo_customers.mark_gone", skip_all, err(level = "debug"))]
pub async fn mark_missing(
    conn: &mut PgConnection,
    tenant: &TenantId,
    qbo_ids: &[String],
) -> Result<u64, StoreError> {
    if qbo_ids.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        "UPDATE qbo_customers SET missing = true, mirrored_at = now()
         WHERE tenant_id = $1 AND qbo_id = ANY($2) AND NOT missing",
    )
    .bind(tenant.as_str())
    .bind(qbo_ids)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// What the mirror knows of one QBO customer: (display name, active, missing).
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.qbo_customers.state", skip_all, err(level = "debug"))]
pub async fn mirrored_state(
    conn: &mut PgConnection,
    tenant: &TenantId,
    qbo_id: &str,
) -> Result<Option<(String, bool, bool)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT display_name, active, missing FROM qbo_customers
         WHERE tenant_id = $1 AND qbo_id = $2",
    )
    .bind(tenant.as_str())
    .bind(qbo_id)
    .fetch_optional(conn)
    .await?)
}

/// A mirrored customer whose keys must be recomputed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StaleKeys {
    /// Its tenant.
    pub tenant_id: String,
    /// QBO Id.
    pub qbo_id: String,
    /// DisplayName.
    pub display_name: String,
    /// Primary e-mail.
    pub email: Option<String>,
    /// Company name.
    pub company_name: Option<String>,
    /// First name.
    pub given_name: Option<String>,
    /// Last name.
    pub family_name: Option<String>,
    /// Primary phone.
    pub phone: Option<String>,
    /// `Parent:Job` for sub-customers.
    pub fully_qualified_name: Option<String>,
}

/// Up to `limit` mirrored customers whose keys an older normalizer than `version` computed, or
/// whose blocking keys were never computed.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.qbo_customers.stale_keys", skip_all, err(level = "debug"))]
pub async fn stale_key_mirror(
    conn: &mut PgConnection,
    version: i32,
    limit: i64,
) -> Result<Vec<StaleKeys>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, qbo_id, display_name, email, company_name, given_name, family_name,
                phone, fully_qualified_name
         FROM qbo_customers WHERE normalizer_version < $1 OR match_keys IS NULL LIMIT $2",
    )
    .bind(version)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Recomputed keys of one mirrored customer.
#[derive(Debug, Clone)]
pub struct FreshKeys {
    /// Its tenant.
    pub tenant_id: String,
    /// QBO Id.
    pub qbo_id: String,
    /// The name key.
    pub name_key: String,
    /// The e-mail key.
    pub email_key: Option<String>,
    /// The name's words, lower case.
    pub name_words: Vec<String>,
    /// The matcher's blocking keys.
    pub match_keys: Vec<BlockingKey>,
}

/// Writes recomputed keys of mirrored customers under `version`, in one statement.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.qbo_customers.set_keys", skip_all, fields(count = rows.len()), err(level = "debug"))]
pub async fn set_mirror_keys(
    conn: &mut PgConnection,
    rows: &[FreshKeys],
    version: i32,
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        "UPDATE qbo_customers q SET name_key = t.nkey, email_key = t.ekey,
                name_words = string_to_array(t.words, ' '), normalizer_version = $6,
                match_keys = string_to_array(t.mkeys, ' ')::int8[]
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $7::text[])
             AS t(tenant, id, nkey, ekey, words, mkeys)
         WHERE q.tenant_id = t.tenant AND q.qbo_id = t.id
           AND (q.normalizer_version < $6 OR q.match_keys IS NULL)",
    )
    .bind(rows.iter().map(|r| r.tenant_id.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.qbo_id.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.name_key.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.email_key.clone()).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.name_words.join(" "))
            .collect::<Vec<_>>(),
    )
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

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[derive(sqlx::FromRow)]
pub(super) struct MirrorRow {
    realm_id: String,
    qbo_id: String,
    sync_token: String,
    display_name: String,
    fully_qualified_name: Option<String>,
    parent_qbo_id: Option<String>,
    is_job: bool,
    level: i32,
    active: bool,
    company_name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    qbo_last_updated_at: Option<DateTime<Utc>>,
    name_key: Option<String>,
    email_key: Option<String>,
    normalizer_version: i32,
    name_words: Vec<String>,
}

impl MirrorRow {
    pub(super) fn into_domain(self) -> Result<MirroredCustomer, StoreError> {
        Ok(MirroredCustomer {
            realm: RealmId::parse(self.realm_id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            qbo_id: self.qbo_id,
            sync_token: self.sync_token,
            display_name: self.display_name,
            fully_qualified_name: self.fully_qualified_name,
            parent_qbo_id: self.parent_qbo_id,
            is_job: self.is_job,
            level: self.level,
            active: self.active,
            company_name: self.company_name,
            given_name: self.given_name,
            family_name: self.family_name,
            email: self.email,
            phone: self.phone,
            qbo_last_updated_at: self.qbo_last_updated_at,
            name_key: self.name_key.unwrap_or_default(),
            email_key: self.email_key,
            normalizer_version: self.normalizer_version,
            name_words: self.name_words,
        })
    }
}

/// The QBO customer `qbo_id` was merged into, when a merge of it was recorded.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.qbo_customers.merged_into", skip_all, err(level = "debug"))]
pub async fn merged_into(
    conn: &mut PgConnection,
    tenant: &TenantId,
    qbo_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "SELECT merged_into_qbo_id FROM qbo_customers WHERE tenant_id = $1 AND qbo_id = $2",
    )
    .bind(tenant.as_str())
    .bind(qbo_id)
    .fetch_optional(conn)
    .await?
    .flatten())
}

/// Records that QBO merged `absorbed` into `survivor`: the mirrored absorbed customer is
/// missing and points at the survivor. Returns whether the mirror held it.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.qbo_customers.mark_merged", skip_all, err(level = "debug"))]
pub async fn mark_merged(
    conn: &mut PgConnection,
    tenant: &TenantId,
    absorbed: &str,
    survivor: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE qbo_customers SET missing = true, merged_into_qbo_id = $3, mirrored_at = now()
         WHERE tenant_id = $1 AND qbo_id = $2",
    )
    .bind(tenant.as_str())
    .bind(absorbed)
    .bind(survivor)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// One mirrored QBO customer's display name and whether it is active, if the mirror holds it.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.qbo_customers.name_of", skip_all, err(level = "debug"))]
pub async fn mirrored_name(
    conn: &mut PgConnection,
    tenant: &TenantId,
    qbo_id: &str,
) -> Result<Option<(String, bool)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT display_name, active FROM qbo_customers WHERE tenant_id = $1 AND qbo_id = $2",
    )
    .bind(tenant.as_str())
    .bind(qbo_id)
    .fetch_optional(conn)
    .await?)
}
