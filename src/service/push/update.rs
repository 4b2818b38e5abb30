//! Sending a linked customer's changed name, e-mail or phone to QBO as a sparse update.
//!
//! The update reads the QBO customer first (its current SyncToken and fields), sends only the
//! fields that differ, and on 5010 the client reads again, reapplies and retries. A rename
//! QBO refuses because the name is taken (6240) goes to a person as a review item: neither
//! side is renamed behind anyone's back.

use super::{MAX_QUALIFIED_NAMES, PushError, Pusher, mirrored, qbo_display_name, qualified_name};
use crate::{
    domain::{DigitCustomerId, TenantId},
    quickbooks::{CustomerPatch, Lane, QboCustomer, QboError},
    store::{
        self, StoreError,
        customers::PushTarget,
        reviews::{ReviewKind, StoredCandidate},
    },
};

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Updated {
    /// QBO now shows the customer's current fields.
    Updated,
    /// QBO showed them already.
    Unchanged,
    /// The customer is not linked (any more): nothing to update.
    NotLinked,
    /// The linked QBO customer is gone (merged away or removed).
    QboCustomerMissing,
    /// The new name is taken in QBO: a person decides.
    ToReview,
}

impl Pusher {
    /// Sends the customer's current name, e-mail and phone to its linked QBO customer.
    ///
    /// # Errors
    /// [`PushError`] when the store or QBO fails; nothing is half done then.
    pub async fn update(
        &self,
        tenant: &TenantId,
        id: &DigitCustomerId,
        lane: Lane,
    ) -> Result<Updated, PushError> {
        let qbo = self.client()?;
        let Some(target) = self.target(tenant, id).await? else {
            return Ok(Updated::NotLinked);
        };
        let Some(qbo_id) = target.linked_qbo_id.clone() else {
            return Ok(Updated::NotLinked);
        };
        let current = match qbo.read_customer(tenant, &qbo_id, lane).await {
            Ok(current) => current,
            Err(QboError::NotFound) => return Ok(Updated::QboCustomerMissing),
            Err(e) => return Err(e.into()),
        };
        let patch = patch_for(&target, &current);
        if patch == CustomerPatch::default() {
            return Ok(Updated::Unchanged);
        }
        match qbo
            .update_customer(tenant, &qbo_id, &current.sync_token, &patch, lane)
            .await
        {
            Ok(updated) => {
                let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
                store::mirror::upsert_mirrored_customers(&mut conn, tenant, &[mirrored(&updated)])
                    .await?;
                Ok(Updated::Updated)
            }
            Err(QboError::DuplicateName { .. }) => {
                let reason = "renaming the linked QuickBooks customer failed: another \
                              QuickBooks customer, vendor or employee holds the new name; \
                              rename one of them";
                let candidate = StoredCandidate {
                    qbo_customer_id: current.id.clone(),
                    display_name: current.display_name.clone(),
                    active: current.active,
                    score: 1.0,
                    reasons: vec!["the linked QuickBooks customer".into()],
                };
                self.review(
                    tenant,
                    id,
                    ReviewKind::RenameCollision,
                    reason,
                    &[candidate],
                )
                .await?;
                Ok(Updated::ToReview)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn target(
        &self,
        tenant: &TenantId,
        id: &DigitCustomerId,
    ) -> Result<Option<PushTarget>, PushError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let ids = [id.to_string()];
        Ok(store::customers::load_push_targets(&mut conn, tenant, &ids)
            .await?
            .pop())
    }
}

/// The fields QBO shows differently from Digit (an e-mail or phone Digit no longer has is
/// left alone: a sparse update cannot tell "remove" from "not mine").
fn patch_for(target: &PushTarget, current: &QboCustomer) -> CustomerPatch {
    let c = &target.customer;
    let (name, _) = qbo_display_name(&c.display_name);
    let differs = |want: &Option<String>, have: &Option<String>| {
        want.as_ref().filter(|w| have.as_ref() != Some(*w)).cloned()
    };
    // A customer created as `Name (c)` (a vendor held `Name`) keeps that name.
    let same_name =
        (0..=MAX_QUALIFIED_NAMES).any(|v| qualified_name(&name, v) == current.display_name);
    CustomerPatch {
        display_name: (!same_name).then_some(name),
        email: differs(&c.email, &current.email),
        phone: differs(&c.phone, &current.phone),
        ..CustomerPatch::default()
    }
}
