//! Bulk pushes decide from the mirror.
//!
//! Looking each customer up costs one to three QBO queries, so a backfill of thousands would
//! spend QBO's 500 requests a minute on lookups. Once enough pushes of a tenant wait
//! (`QBO_SYNC_PUSH_MIRROR_BACKLOG`), the company's customers are read whole into the mirror
//! once (1,000 a page, one replica at a time under a lease) and every push of the backlog
//! decides from it for `QBO_SYNC_PUSH_MIRROR_MAX_AGE`. Interactive pushes always look up live.
//! From the mirror, each customer is decided as the batch matcher would decide it over the
//! whole mirror (`service::decide`), through the stored blocking keys.

use std::{sync::Arc, time::Duration};

use uuid::Uuid;

use super::{Item, PushError, Pusher, before_create, fail_all};
use crate::{
    domain::TenantId,
    matching::Decision,
    quickbooks::{Lane, QboCustomer},
    service::decide::{decide_from_mirror, lookalikes},
    store::{self, StoreError, match_keys::digit_record, mirror::MirroredCustomer},
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

    /// Each item decided from the mirror as the batch matcher would decide it
    /// ([`decide_from_mirror`]); a customer the matcher finds nothing for is still held back
    /// when a mirrored customer has a similar name ([`lookalikes`]).
    pub(super) async fn decide_in_mirror(
        &self,
        tenant: &TenantId,
        items: &[Item],
    ) -> Vec<Result<Decision, Arc<PushError>>> {
        let mut conn = match self.pool.acquire().await {
            Ok(conn) => conn,
            Err(e) => return fail_all(items.len(), StoreError::from(e).into()),
        };
        let mut decided = Vec::with_capacity(items.len());
        for item in items {
            let customer = &item.target.customer;
            let me = digit_record(customer);
            let found = match decide_from_mirror(&mut conn, tenant, &me).await {
                Ok(d) if d.decision == Decision::Unmatched => {
                    lookalikes(&mut conn, tenant, &me, &d)
                        .await
                        .map(|(seen, truncated)| {
                            let seen: Vec<QboCustomer> = seen.iter().map(customer_of).collect();
                            before_create(customer, &seen, truncated)
                        })
                }
                Ok(d) => Ok(d.decision),
                Err(e) => Err(e),
            };
            decided.push(found.map_err(|e| Arc::new(e.into())));
        }
        decided
    }
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
