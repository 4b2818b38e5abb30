//! Bulk pushes decide from the mirror.
//!
//! Looking each customer up costs one to three QBO queries, so a backfill of thousands would
//! spend QBO's 500 requests a minute on lookups. Once enough pushes of a tenant wait
//! (`QBO_SYNC_PUSH_MIRROR_BACKLOG`), the company's customers are read whole into the mirror
//! once (1,000 a page, one replica at a time under a lease) and every push of the backlog
//! decides from it for `QBO_SYNC_PUSH_MIRROR_MAX_AGE`. Interactive pushes always look up live.
//! From the mirror, a customer's candidates are the mirrored names holding its lookup word as
//! a word (through the words' index) or sharing its name key.

use std::time::Duration;

use uuid::Uuid;

use super::{Item, PushError, Pusher, lookup_word};
use crate::{
    domain::TenantId,
    matching,
    quickbooks::{Lane, QboCustomer},
    store::{self, StoreError, mirror::MirroredCustomer},
};

/// Lease of the mirror read; renewed after every page.
const REFRESH_LEASE: Duration = Duration::from_secs(120);

/// Where a push finds the QBO customers that may be its customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// Ask QBO for each customer.
    Live,
    /// The mirror, read whole recently.
    Mirror,
}

/// Settings of the bulk path.
#[derive(Debug, Clone, Copy)]
pub struct PushSettings {
    /// Waiting pushes from which a bulk push decides from the mirror.
    pub mirror_backlog: i64,
    /// The oldest mirror a bulk push decides from.
    pub mirror_max_age: Duration,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            mirror_backlog: 100,
            mirror_max_age: Duration::from_secs(600),
        }
    }
}

impl Pusher {
    /// Live for interactive pushes and small backlogs; the mirror (read first when stale)
    /// for bulk ones. [`PushError::MirrorBusy`] while another replica reads the mirror.
    pub(super) async fn source(
        &self,
        tenant: &TenantId,
        lane: Lane,
        group: usize,
    ) -> Result<Source, PushError> {
        if lane == Lane::Interactive {
            return Ok(Source::Live);
        }
        let age = store::mirror::mirror_age(&self.pool, tenant).await?;
        if age.is_some_and(|a| a <= self.settings.mirror_max_age) {
            return Ok(Source::Mirror);
        }
        let waiting =
            store::jobs::queued_count(&self.pool, tenant, super::PUSH_CUSTOMER_JOB).await?;
        if waiting + i64::try_from(group).unwrap_or(0) < self.settings.mirror_backlog {
            return Ok(Source::Live);
        }
        self.refresh_mirror(tenant).await?;
        Ok(Source::Mirror)
    }

    /// Reads every QBO customer of the tenant (inactive ones too) into the mirror, page by
    /// page, under a lease so one replica reads while the others wait.
    async fn refresh_mirror(&self, tenant: &TenantId) -> Result<(), PushError> {
        let qbo = self.client()?;
        let token = Uuid::new_v4().to_string();
        let pool = &self.pool;
        let Some(started) =
            store::mirror::begin_refresh(pool, tenant, &token, REFRESH_LEASE).await?
        else {
            return Err(PushError::MirrorBusy);
        };
        let read = async {
            let mut start = 1;
            loop {
                let page = qbo
                    .query_customers_page(tenant, start, true, Lane::Background)
                    .await?;
                let rows: Vec<MirroredCustomer> =
                    page.customers.iter().map(super::mirrored).collect();
                let mut conn = pool.acquire().await.map_err(StoreError::from)?;
                store::mirror::upsert_mirrored_customers(&mut conn, tenant, &rows).await?;
                drop(conn);
                store::mirror::extend_refresh(pool, tenant, &token, REFRESH_LEASE).await?;
                if !page.more {
                    return Ok::<_, PushError>(());
                }
                start += u32::try_from(page.customers.len()).unwrap_or(u32::MAX);
            }
        };
        let outcome = read.await;
        let done = outcome.is_ok().then_some(started);
        store::mirror::end_refresh(pool, tenant, &token, done).await?;
        outcome
    }

    /// Each item's candidates from the mirror: names holding its lookup word (ignoring case)
    /// or sharing its name key. One query for the whole group.
    pub(super) async fn similar_in_mirror(
        &self,
        tenant: &TenantId,
        items: &[Item],
    ) -> Result<Vec<Vec<QboCustomer>>, PushError> {
        let words: Vec<Option<String>> = items
            .iter()
            .map(|i| lookup_word(&i.target.customer.display_name).map(|w| w.to_lowercase()))
            .collect();
        let keys: Vec<String> = items
            .iter()
            .map(|i| matching::customer_keys(&i.target.customer.display_name, None).name_key)
            .collect();
        let all_words: Vec<String> = words.iter().flatten().cloned().collect();
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let rows = store::mirror::similar_mirrored(&mut conn, tenant, &all_words, &keys).await?;
        Ok(words
            .iter()
            .zip(&keys)
            .map(|(word, key)| {
                rows.iter()
                    .filter(|r| {
                        r.name_key == *key
                            || word.as_ref().is_some_and(|w| r.name_words.contains(w))
                    })
                    .map(customer_of)
                    .collect()
            })
            .collect())
    }
}

fn customer_of(row: &MirroredCustomer) -> QboCustomer {
    QboCustomer {
        id: row.qbo_id.clone(),
        sync_token: row.sync_token.clone(),
        display_name: row.display_name.clone(),
        fully_qualified_name: row.fully_qualified_name.clone(),
        parent_id: row.parent_qbo_id.clone(),
        is_job: row.is_job,
        level: row.level,
        active: row.active,
        company_name: row.company_name.clone(),
        given_name: row.given_name.clone(),
        family_name: row.family_name.clone(),
        email: row.email.clone(),
        phone: row.phone.clone(),
        last_updated: row.qbo_last_updated_at,
        deleted: false,
    }
}
