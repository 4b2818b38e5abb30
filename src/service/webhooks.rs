//! QBO webhook notifications, once the HTTP edge has verified and parsed them: each realm with
//! customer changes gets one incremental sync run, and merges are followed at once. Only
//! database writes happen here (QBO must get its answer within 3 seconds); the run reads QBO.
//!
//! Intuit repeats notifications and sends them out of order, so everything here is idempotent:
//! one active run per tenant absorbs repeated triggers, and a merge is followed once.

use sqlx::PgPool;

use super::sync::{MergeOutcome, SyncError, SyncMode, SyncRequest, Syncs, Trigger};
use crate::{
    domain::{QboCustomerId, RealmId},
    store::{self, StoreError},
};

/// Who asks for the runs webhooks trigger.
const REQUESTED_BY: &str = "qbo-sync:webhook";

/// One customer event of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerEvent {
    /// The QBO company it happened in.
    pub realm: RealmId,
    /// Set when the event is a merge.
    pub merge: Option<Merge>,
}

/// QBO merged `absorbed` into `survivor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    /// The customer merged away.
    pub absorbed: QboCustomerId,
    /// The customer that remains.
    pub survivor: QboCustomerId,
}

/// What handling a notification did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handled {
    /// Runs queued.
    pub runs_queued: usize,
    /// Realms whose tenant had a run active already (it will read the changes).
    pub runs_active: usize,
    /// Realms no live tenant is connected to, or whose tenant cannot sync now.
    pub realms_skipped: usize,
    /// Links moved to a merge's survivor.
    pub links_repointed: usize,
    /// Merges sent to a person.
    pub merges_in_review: usize,
}

/// What handling a notification can fail with; nothing is lost, since QBO sends it again.
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// Queuing a run or following a merge failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// Reading the realm's tenant failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The use case behind `POST /webhooks/qbo`.
#[derive(Debug, Clone)]
pub struct QboNotifications {
    pool: PgPool,
    syncs: Syncs,
}

impl QboNotifications {
    /// The use case over the store and the sync use cases.
    #[must_use]
    pub fn new(pool: PgPool, syncs: Syncs) -> Self {
        Self { pool, syncs }
    }

    /// Follows the merges among `events`, then queues one incremental run per realm (the
    /// tenant's active run, if any, stands for it). A realm without a live tenant is skipped.
    ///
    /// # Errors
    /// [`NotificationError`] when the database fails; what was done before stays done and
    /// doing it again changes nothing.
    pub async fn handle(&self, events: &[CustomerEvent]) -> Result<Handled, NotificationError> {
        let mut handled = Handled::default();
        for (realm, merges) in by_realm(events) {
            let Some(tenant) = store::connections::live_tenant_of_realm(&self.pool, realm).await?
            else {
                tracing::debug!(realm = %realm, "QBO webhook for a realm no tenant is connected to");
                handled.realms_skipped += 1;
                continue;
            };
            for merge in merges {
                match self
                    .syncs
                    .repoint_merged(&tenant, &merge.absorbed, &merge.survivor)
                    .await?
                {
                    MergeOutcome::Repointed { .. } => handled.links_repointed += 1,
                    MergeOutcome::SentToReview { .. } => handled.merges_in_review += 1,
                    MergeOutcome::NotLinked
                    | MergeOutcome::AlreadyFollowed
                    | MergeOutcome::Ignored => {}
                }
            }
            let request = SyncRequest {
                mode: SyncMode::Incremental,
                dry_run: false,
                link_only: false,
                idempotency_key: None,
                requested_by: REQUESTED_BY.into(),
                trigger: Trigger::Webhook,
            };
            match self.syncs.trigger(&tenant, &request).await {
                Ok(t) if t.already_running => handled.runs_active += 1,
                Ok(_) => handled.runs_queued += 1,
                Err(SyncError::NotConnected { reason, .. }) => {
                    tracing::info!(tenant = %tenant, reason, "QBO webhook: no run, the company cannot sync now");
                    handled.realms_skipped += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(handled)
    }
}

/// The realms of `events` in the order first seen, each with its merges in event order.
fn by_realm(events: &[CustomerEvent]) -> Vec<(&RealmId, Vec<&Merge>)> {
    let mut realms: Vec<(&RealmId, Vec<&Merge>)> = Vec::new();
    for event in events {
        let at = match realms.iter().position(|(r, _)| *r == &event.realm) {
            Some(at) => at,
            None => {
                realms.push((&event.realm, Vec::new()));
                realms.len() - 1
            }
        };
        if let Some(merge) = &event.merge {
            realms[at].1.push(merge);
        }
    }
    realms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(realm: &str, merge: Option<(&str, &str)>) -> CustomerEvent {
        CustomerEvent {
            realm: RealmId::parse(realm).unwrap(),
            merge: merge.map(|(a, s)| Merge {
                absorbed: QboCustomerId::parse(a).unwrap(),
                survivor: QboCustomerId::parse(s).unwrap(),
            }),
        }
    }

    #[test]
    fn groups_events_by_realm_keeping_merges_in_order() {
        let events = [
            event("r1", None),
            event("r2", Some(("5", "6"))),
            event("r1", Some(("1", "2"))),
            event("r1", Some(("3", "2"))),
        ];
        let grouped: Vec<(String, Vec<String>)> = by_realm(&events)
            .into_iter()
            .map(|(r, m)| {
                let merges = m.iter().map(|m| m.absorbed.to_string()).collect();
                (r.to_string(), merges)
            })
            .collect();
        assert_eq!(
            grouped,
            [
                ("r1".to_owned(), vec!["1".to_owned(), "3".to_owned()]),
                ("r2".to_owned(), vec!["5".to_owned()]),
            ]
        );
    }
}
