//! Keeps the matching keys stored with customers (`name_key`, `email_key`, the mirror's
//! words, the blocking keys `match_keys`) in step with the normalizer: when
//! `NORMALIZER_VERSION` changes, or a row's blocking keys were never computed (the rows a
//! migration added the column to), the rows are recomputed in the background, a batch at a
//! time, by every replica's schedule loop (two replicas recomputing the same row write the
//! same keys).

use sqlx::PgPool;

use super::push::name_words;
use crate::{
    matching::{self, NORMALIZER_VERSION, QboCustomerRecord},
    store::{
        self, StoreError, customers::FreshCustomerKeys, match_keys::digit_record, mirror::FreshKeys,
    },
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
        let stale = store::customers::stale_key_customers(&mut conn, version, KEY_BATCH).await?;
        let rows: Vec<FreshCustomerKeys> = stale
            .into_iter()
            .map(|s| FreshCustomerKeys {
                name_key: matching::customer_keys(&s.customer.display_name, None).name_key,
                match_keys: matching::digit_blocking_keys(&digit_record(&s.customer)).stored,
                id: s.customer.id.to_string(),
                tenant_id: s.tenant_id,
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
                // Only the names, e-mail, phone and full name make keys.
                let record = QboCustomerRecord {
                    id: s.qbo_id.clone(),
                    display_name: s.display_name.clone(),
                    fully_qualified_name: s.fully_qualified_name,
                    company_name: s.company_name,
                    given_name: s.given_name,
                    family_name: s.family_name,
                    email: s.email,
                    phone: s.phone,
                    ..QboCustomerRecord::default()
                };
                FreshKeys {
                    name_words: name_words(&s.display_name),
                    match_keys: matching::qbo_blocking_keys(&record),
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
