//! What happens when Digit reports customers, and where a customer stands.

use sqlx::{PgConnection, PgPool};

use super::candidates::mirror_candidates;
use super::push::{UPDATE_CUSTOMER_JOB, push_dedupe_key, push_job, update_dedupe_key};
use crate::{
    domain::{DigitCustomer, DigitCustomerId, Link, LinkState, TenantId},
    store::{self, StoreError, customers::Upserted, jobs::NewJob, reviews::StoredCandidate},
};

/// What recording customers or reading their state can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CustomerError {
    /// The tenant has no such customer.
    #[error("customer '{id}' not found")]
    NotFound {
        /// The id asked for.
        id: DigitCustomerId,
    },
    /// The store failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who reported the customers: it sets how urgently their pushes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// One customer created or changed in Digit now (`UpsertCustomer`): pushed first.
    Interactive,
    /// A batch (`BatchUpsertCustomers`, a backfill): pushed behind interactive work, in
    /// batches, fairly across tenants.
    Bulk,
}

/// The outcome of recording one customer.
#[derive(Debug, Clone)]
pub struct UpsertOutcome {
    /// Where the customer stands now.
    pub state: LinkState,
    /// The customer was new.
    pub created: bool,
    /// This call queued a push to QBO.
    pub push_queued: bool,
    /// The link, when linked.
    pub link: Option<Link>,
}

/// Where a customer stands and why.
#[derive(Debug, Clone)]
pub struct LinkStatus {
    /// The state.
    pub state: LinkState,
    /// The link, when linked.
    pub link: Option<Link>,
    /// Candidates, best first, when a review item holds them.
    pub candidates: Vec<StoredCandidate>,
    /// One sentence for a person.
    pub explanation: String,
    /// The open review item, when pending review.
    pub review_item_id: Option<uuid::Uuid>,
}

/// The use cases of Digit's customers.
#[derive(Debug, Clone)]
pub struct Customers {
    pool: PgPool,
}

impl Customers {
    /// The use cases over the store in `pool`.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Records one customer in its own transaction, with the jobs it needs.
    ///
    /// # Errors
    /// [`CustomerError::Store`] when the store fails; nothing is changed then.
    pub async fn upsert_customer(
        &self,
        tenant: &TenantId,
        customer: &DigitCustomer,
        skip_push: bool,
    ) -> Result<UpsertOutcome, CustomerError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let outcome = upsert_in(&mut tx, tenant, customer, skip_push, Source::Interactive).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(outcome)
    }

    /// Records several customers in one transaction; the caller has checked them already.
    ///
    /// # Errors
    /// [`CustomerError::Store`] when the store fails; nothing is changed then.
    pub async fn upsert_customers(
        &self,
        tenant: &TenantId,
        customers: &[DigitCustomer],
        skip_push: bool,
    ) -> Result<Vec<UpsertOutcome>, CustomerError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let mut outcomes = Vec::with_capacity(customers.len());
        for customer in customers {
            outcomes.push(upsert_in(&mut tx, tenant, customer, skip_push, Source::Bulk).await?);
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(outcomes)
    }

    /// Says where a customer stands.
    ///
    /// # Errors
    /// [`CustomerError::NotFound`] when the tenant has no such customer; store failures.
    pub async fn link_status(
        &self,
        tenant: &TenantId,
        id: &DigitCustomerId,
    ) -> Result<LinkStatus, CustomerError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let Some(customer) = store::customers::get_digit_customer(&mut conn, tenant, id).await?
        else {
            return Err(CustomerError::NotFound { id: id.clone() });
        };
        let status = status_in(&mut conn, tenant, id).await?;
        drop(conn);
        if status.state != LinkState::Unlinked {
            return Ok(status);
        }
        // Not linked and nothing pending: what the mirror holds that looks like it, now.
        let candidates = mirror_candidates(&self.pool, tenant, id, &customer.display_name).await?;
        if candidates.is_empty() {
            return Ok(status);
        }
        Ok(LinkStatus {
            explanation: format!(
                "not linked; {}: link one by hand (LinkCustomers), or run a sync",
                if candidates.len() == 1 {
                    "1 QuickBooks customer looks like it".to_owned()
                } else {
                    format!("{} QuickBooks customers look like it", candidates.len())
                }
            ),
            candidates,
            ..status
        })
    }
}

/// A new, active customer is pushed at once ("create in Digit first"): the push looks for it
/// in QBO as the matcher would before it creates anything, so a customer someone already
/// created in QBO is linked, not duplicated. A linked customer whose name, e-mail or phone
/// changed gets a sparse update in QBO.
async fn upsert_in(
    conn: &mut PgConnection,
    tenant: &TenantId,
    customer: &DigitCustomer,
    skip_push: bool,
    source: Source,
) -> Result<UpsertOutcome, CustomerError> {
    let Upserted {
        created,
        qbo_fields_changed,
    } = store::customers::upsert_digit_customer(conn, tenant, customer).await?;
    let priority = match source {
        Source::Interactive => store::jobs::PRIORITY_INTERACTIVE,
        Source::Bulk => store::jobs::PRIORITY_BACKGROUND,
    };
    let mut push_queued = false;
    if created && !skip_push && customer.active {
        let job = push_job(&customer.id, priority);
        push_queued = store::jobs::enqueue_job(conn, tenant, &job)
            .await?
            .is_some();
    }
    let status = status_in(conn, tenant, &customer.id).await?;
    if !created && qbo_fields_changed && !skip_push && status.state == LinkState::Linked {
        let job = NewJob {
            kind: UPDATE_CUSTOMER_JOB,
            payload: serde_json::json!({ "digit_customer_id": customer.id.as_str() }),
            priority,
            dedupe_key: Some(update_dedupe_key(&customer.id)),
            needs_connection: true,
        };
        store::jobs::enqueue_job(conn, tenant, &job).await?;
    }
    Ok(UpsertOutcome {
        state: status.state,
        created,
        push_queued,
        link: status.link,
    })
}

/// Where a customer stands: linked, in review, being pushed, or none of these.
pub(crate) async fn status_in(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &DigitCustomerId,
) -> Result<LinkStatus, CustomerError> {
    if let Some(link) = store::links::get_link(conn, tenant, id).await? {
        let explanation = format!(
            "linked to QBO customer {} ({})",
            link.qbo_customer_id,
            link.method.as_str()
        );
        return Ok(LinkStatus {
            state: LinkState::Linked,
            link: Some(link),
            candidates: vec![],
            explanation,
            review_item_id: None,
        });
    }
    if let Some(review) = store::reviews::open_review_for(conn, tenant, id).await? {
        return Ok(LinkStatus {
            state: LinkState::PendingReview,
            link: None,
            explanation: format!("waiting for a person to choose: {}", review.reason),
            candidates: review.candidates,
            review_item_id: Some(review.id),
        });
    }
    let (state, explanation) =
        if store::jobs::has_live_job(conn, tenant, &push_dedupe_key(id)).await? {
            (
                LinkState::PendingPush,
                "queued to be created in QuickBooks".to_owned(),
            )
        } else {
            (
                LinkState::Unlinked,
                "not linked to a QuickBooks customer; run a sync or link it by hand".to_owned(),
            )
        };
    Ok(LinkStatus {
        state,
        link: None,
        candidates: vec![],
        explanation,
        review_item_id: None,
    })
}
