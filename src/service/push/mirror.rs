//! Bulk pushes decide from the mirror.
//!
//! Looking each customer up costs one to three QBO queries, so a backfill of thousands would
//! spend QBO's 500 requests a minute on lookups. Once enough pushes of a tenant wait
//! (`QBO_SYNC_PUSH_MIRROR_BACKLOG`), the company's customers are read whole into the mirror
//! once (1,000 a page, one replica at a time under a lease) and every push of the backlog
//! decides from it for `QBO_SYNC_PUSH_MIRROR_MAX_AGE`. Interactive pushes always look up live.
//! From the mirror, a customer's candidates are the mirrored names holding its lookup word as
//! a word (through the words' index) or sharing its name key.

use std::{collections::HashMap, time::Duration};

use uuid::Uuid;

use super::{Item, PushError, Pusher, names::blocking_words};
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
            // Pages stream in Id order, a few in flight; the company is never held whole.
            let mut pager = qbo
                .customer_pager(tenant, true, Lane::Background)
                .read_ahead(4);
            while let Some(page) = pager.next_page().await? {
                let rows: Vec<MirroredCustomer> =
                    page.customers.iter().map(super::mirrored).collect();
                let mut conn = pool.acquire().await.map_err(StoreError::from)?;
                store::mirror::upsert_mirrored_customers(&mut conn, tenant, &rows).await?;
                drop(conn);
                store::mirror::extend_refresh(pool, tenant, &token, REFRESH_LEASE).await?;
            }
            Ok::<_, PushError>(())
        };
        let outcome = read.await;
        let done = outcome.is_ok().then_some(started);
        store::mirror::end_refresh(pool, tenant, &token, done).await?;
        outcome
    }

    /// Each item's candidates from the mirror: the mirrored names sharing its name key or one
    /// of its blocking words. Like a search engine skipping stop words, a word held by more
    /// than [`COMMON_WORD`] mirrored names does not block (`supplies`, `construction`) unless
    /// the name has no rarer one; so a customer meets the few names that share its rare words
    /// instead of thousands. Three queries for the whole group.
    pub(super) async fn similar_in_mirror(
        &self,
        tenant: &TenantId,
        items: &[Item],
    ) -> Result<Vec<(Vec<QboCustomer>, bool)>, PushError> {
        let names = items
            .iter()
            .map(|i| i.target.customer.display_name.as_str());
        let words: Vec<Vec<String>> = names.clone().map(blocking_words).collect();
        let keys: Vec<String> = names
            .map(|n| matching::customer_keys(n, None).name_key)
            .collect();
        let mut all: Vec<String> = words.iter().flatten().cloned().collect();
        all.sort();
        all.dedup();
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let counts: HashMap<String, i64> = store::mirror::word_counts(&mut conn, tenant, &all)
            .await?
            .into_iter()
            .collect();
        let chosen: Vec<Vec<String>> = words.iter().map(|w| rare_words(w, &counts)).collect();
        let mut union: Vec<String> = chosen.iter().flatten().cloned().collect();
        union.sort();
        union.dedup();
        let rows = store::mirror::similar_mirrored(&mut conn, tenant, &union, &keys).await?;
        let truncated =
            i64::try_from(rows.len()).unwrap_or(i64::MAX) >= store::mirror::SIMILAR_LIMIT;
        Ok(chosen
            .iter()
            .zip(&keys)
            .map(|(words, key)| {
                let found = rows
                    .iter()
                    .filter(|r| {
                        r.name_key == *key || r.name_words.iter().any(|w| words.contains(w))
                    })
                    .map(customer_of)
                    .collect();
                (found, truncated)
            })
            .collect())
    }
}

/// A word held by more mirrored names than this does not block on its own.
const COMMON_WORD: i64 = 200;

/// The words a name blocks on: those no more common than [`COMMON_WORD`], or else its rarest
/// word (a name made only of common words still meets the names holding its rarest one).
fn rare_words(words: &[String], counts: &HashMap<String, i64>) -> Vec<String> {
    let held: Vec<(&String, i64)> = words
        .iter()
        .filter_map(|w| counts.get(w).map(|c| (w, *c)))
        .collect();
    let rare: Vec<String> = held
        .iter()
        .filter(|(_, c)| *c <= COMMON_WORD)
        .map(|(w, _)| (*w).clone())
        .collect();
    if !rare.is_empty() {
        return rare;
    }
    held.iter()
        .min_by_key(|(_, c)| *c)
        .map(|(w, _)| vec![(*w).clone()])
        .unwrap_or_default()
}

/// A mirrored customer as the QBO client returns customers.
pub(crate) fn customer_of(row: &MirroredCustomer) -> QboCustomer {
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
        realm: row.realm.clone(),
    }
}
