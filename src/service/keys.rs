//! Keeps the matching keys stored with customers (`name_key`, `email_key`, the mirror's
//! words) in step with the normalizer: when `NORMALIZER_VERSION` changes, the rows an older
//! version keyed are recomputed in the background, a batch at a time, by every replica's
//! schedule loop (two replicas recomputing the same row write the same keys).

use sqlx::PgPool;

use super::push::name_words;
use crate::{
    matching::{self, NORMALIZER_VERSION},
    store::{self, StoreError, mirror::FreshKeys},
};

/// Rows recomputed per statement.
pub const KEY_BATCH: i64 = 1_000;

/// Recomputes up to `batches` batches of stale keys in each table; returns how many rows it
/// updated (0 once every row carries the current version).
///
/// # Errors
/// [`StoreError`] when the database fails; what was written stays written.
pub async fn recompute_stale_keys(pool: &PgPool, batches: usize) -> Result<u64, StoreError> {
    let version = i32::try_from(NORMALIZER_VERSION).unwrap_or(i32::MAX);
    let mut updated = 0;
    let mut conn = pool.acquire().await?;
    for _ in 0..batches {
        let customers =
            store::customers::stale_key_customers(&mut conn, version, KEY_BATCH).await?;
        let rows: Vec<(String, String, String)> = customers
            .into_iter()
            .map(|(tenant, id, name)| {
                let key = matching::customer_keys(&name, None).name_key;
                (tenant, id, key)
            })
            .collect();
        let done = store::customers::set_customer_keys(&mut conn, &rows, version).await?;
        updated += done;
        if rows.is_empty() {
            break;
        }
    }
    for _ in 0..batches {
        let stale = store::mirror::stale_key_mirror(&mut conn, version, KEY_BATCH).await?;
        let rows: Vec<FreshKeys> = stale
            .into_iter()
            .map(|s| {
                let keys = matching::customer_keys(&s.display_name, s.email.as_deref());
                FreshKeys {
                    name_words: name_words(&s.display_name),
                    tenant_id: s.tenant_id,
                    qbo_id: s.qbo_id,
                    name_key: keys.name_key,
                    email_key: keys.email_key,
                }
            })
            .collect();
        let done = store::mirror::set_mirror_keys(&mut conn, &rows, version).await?;
        updated += done;
        if rows.is_empty() {
            break;
        }
    }
    Ok(updated)
}
