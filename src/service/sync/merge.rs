//! Following a QBO merge. Merging two customers in QuickBooks leaves one of them (the
//! survivor) and makes the other (the absorbed) disappear; a link to the absorbed customer must
//! follow it to the survivor, or a person must decide when the survivor is linked to someone
//! else already. QBO says so only through its webhook (a CDC answer shows the absorbed customer
//! gone or inactive, never where it went), so this runs from the webhook handler.

use super::{SyncError, Syncs};
use crate::{
    domain::{DigitCustomerId, QboCustomerId, TenantId},
    store::{
        self, StoreError,
        links::{BlockedRepoint, MergeRepoint},
        reviews::{ReviewKind, StoredCandidate},
    },
};

/// Who follows merges, in `links.linked_by` and the audit trail.
const MERGE_ACTOR: &str = "qbo-sync:webhook";

/// How far a chain of merges (A into B, then B into C) is followed.
const MAX_CHAIN: usize = 16;

/// What following a merge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The Digit customer's link now points at the survivor (the final one of a chain).
    Repointed {
        /// The Digit customer.
        digit: String,
        /// Where its link points now.
        survivor: String,
    },
    /// The link was left as it is and a review item asks a person.
    SentToReview {
        /// The Digit customer.
        digit: String,
    },
    /// No link pointed at the absorbed customer; the mirror records the merge.
    NotLinked,
    /// This merge was followed before; nothing changed.
    AlreadyFollowed,
    /// The merge names one customer on both sides, or closes a cycle: ignored.
    Ignored,
}

impl Syncs {
    /// Follows QBO's merge of `absorbed` into `survivor`, in one transaction: the link of the
    /// absorbed customer moves to the survivor (method `merge_repoint`, a `repoint` audit event),
    /// unless the survivor is linked to another Digit customer or a person rejected that pair,
    /// in which case a review item is opened and the link stays; the mirrored absorbed customer
    /// is marked missing and merged into the survivor. When the survivor was itself merged
    /// away since (events come out of order), the link follows the chain to its end.
    /// Idempotent: following the same merge again changes nothing.
    ///
    /// # Errors
    /// [`SyncError::Store`]; nothing was changed.
    pub async fn repoint_merged(
        &self,
        tenant: &TenantId,
        absorbed: &QboCustomerId,
        survivor: &QboCustomerId,
    ) -> Result<MergeOutcome, SyncError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        store::links::lock_merges(&mut tx, tenant).await?;
        if store::mirror::merged_into(&mut tx, tenant, absorbed.as_str())
            .await?
            .is_some()
        {
            return Ok(MergeOutcome::AlreadyFollowed);
        }
        let Some(last) = end_of_chain(&mut tx, tenant, absorbed, survivor).await? else {
            tracing::warn!(tenant = %tenant, absorbed = %absorbed, survivor = %survivor,
                "QBO merge ignored: it names one customer on both sides or closes a cycle");
            return Ok(MergeOutcome::Ignored);
        };
        let mut reason = format!("QuickBooks merged {absorbed} into {survivor}");
        if last != *survivor {
            reason.push_str(&format!(", which it merged into {last} since"));
        }
        let reasons = [reason.clone()];
        let outcome = store::links::repoint_merged_link(
            &mut tx,
            tenant,
            absorbed,
            &last,
            &reasons,
            MERGE_ACTOR,
        )
        .await?;
        let outcome = match outcome {
            MergeRepoint::NotLinked => MergeOutcome::NotLinked,
            MergeRepoint::Repointed { digit } => MergeOutcome::Repointed {
                digit,
                survivor: last.to_string(),
            },
            MergeRepoint::Blocked(blocked) => {
                let digit = blocked.digit.clone();
                open_merge_review(&mut tx, tenant, blocked, absorbed, &last, &reason).await?;
                MergeOutcome::SentToReview { digit }
            }
        };
        store::mirror::mark_merged(&mut tx, tenant, absorbed.as_str(), last.as_str()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(tenant = %tenant, absorbed = %absorbed, survivor = %last,
            outcome = ?outcome, "QBO merge followed");
        Ok(outcome)
    }
}

/// The survivor at the end of the chain of recorded merges starting at `survivor`; `None` when
/// the chain comes back to `absorbed` (or is longer than any real one).
async fn end_of_chain(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    absorbed: &QboCustomerId,
    survivor: &QboCustomerId,
) -> Result<Option<QboCustomerId>, StoreError> {
    let mut last = survivor.clone();
    for _ in 0..MAX_CHAIN {
        if last == *absorbed {
            return Ok(None);
        }
        match store::mirror::merged_into(conn, tenant, last.as_str()).await? {
            None => return Ok(Some(last)),
            Some(next) => {
                last = QboCustomerId::parse(next)
                    .map_err(|e| StoreError::Corrupt(format!("merged_into_qbo_id: {e}")))?;
            }
        }
    }
    Ok(None)
}

/// Asks a person about a link that could not follow a merge, with the survivor as the
/// candidate (a customer with an open item keeps it).
async fn open_merge_review(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    blocked: BlockedRepoint,
    absorbed: &QboCustomerId,
    survivor: &QboCustomerId,
    reason: &str,
) -> Result<(), StoreError> {
    let BlockedRepoint {
        digit,
        survivor_linked_to,
        score,
    } = blocked;
    let why = match survivor_linked_to {
        Some(other) => format!(
            "{reason}; Digit customer {digit} is linked to {absorbed}, and {survivor} is linked \
             to Digit customer {other}: choose which Digit customer {survivor} is"
        ),
        None => format!(
            "{reason}; Digit customer {digit} is linked to {absorbed}, and a person rejected \
             {survivor} for it: confirm or unlink"
        ),
    };
    let candidate = survivor_candidate(conn, tenant, survivor, score, reason).await?;
    let digit = DigitCustomerId::parse(digit)
        .map_err(|e| StoreError::Corrupt(format!("link digit id: {e}")))?;
    store::reviews::open_review_item(conn, tenant, &digit, ReviewKind::Match, &why, &[candidate])
        .await?;
    Ok(())
}

/// The survivor as a review candidate, named from the mirror when it holds it (one it does
/// not hold yet is taken as active: QBO has just merged into it).
async fn survivor_candidate(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    survivor: &QboCustomerId,
    score: f64,
    reason: &str,
) -> Result<StoredCandidate, StoreError> {
    let (display_name, active) = store::mirror::mirrored_name(conn, tenant, survivor.as_str())
        .await?
        .unwrap_or_else(|| (String::new(), true));
    Ok(StoredCandidate {
        qbo_customer_id: survivor.to_string(),
        display_name,
        active,
        score,
        reasons: vec![reason.to_owned()],
    })
}
