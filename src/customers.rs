//! What happens when Digit reports customers, and where a customer stands.

use sqlx::{PgConnection, PgPool};

use crate::{
    domain::{DigitCustomer, DigitCustomerId, Link, LinkState, TenantId},
    error::ApiError,
    store::{self, StoreError, jobs::NewJob, reviews::StoredCandidate},
};

/// The job kind that creates a Digit customer in QBO.
pub const PUSH_CUSTOMER_JOB: &str = "push_customer";

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

/// The dedupe key of a customer's push job: one live push per customer.
#[must_use]
pub fn push_dedupe_key(id: &DigitCustomerId) -> String {
    format!("push:{id}")
}

/// Records one customer in its own transaction.
///
/// # Errors
/// [`ApiError::Store`] when the store fails; nothing is changed then.
pub async fn upsert_customer(
    pool: &PgPool,
    tenant: &TenantId,
    customer: &DigitCustomer,
    skip_push: bool,
) -> Result<UpsertOutcome, ApiError> {
    let mut tx = pool.begin().await.map_err(StoreError::from)?;
    let outcome = upsert_in(&mut tx, tenant, customer, skip_push).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(outcome)
}

/// Records several customers in one transaction; the caller has checked them already.
///
/// # Errors
/// [`ApiError::Store`] when the store fails; nothing is changed then.
pub async fn upsert_customers(
    pool: &PgPool,
    tenant: &TenantId,
    customers: &[DigitCustomer],
    skip_push: bool,
) -> Result<Vec<UpsertOutcome>, ApiError> {
    let mut tx = pool.begin().await.map_err(StoreError::from)?;
    let mut outcomes = Vec::with_capacity(customers.len());
    for customer in customers {
        outcomes.push(upsert_in(&mut tx, tenant, customer, skip_push).await?);
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(outcomes)
}

/// A new, active, unlinked customer is pushed at once ("create in Digit first"). A known
/// customer is not pushed again here: an unlinked one may match a QBO customer, which only a
/// sync run can tell, and pushing it blindly could create a duplicate in QBO.
async fn upsert_in(
    conn: &mut PgConnection,
    tenant: &TenantId,
    customer: &DigitCustomer,
    skip_push: bool,
) -> Result<UpsertOutcome, ApiError> {
    let created = store::customers::upsert_digit_customer(conn, tenant, customer)
        .await?
        .created;
    let mut push_queued = false;
    if created && !skip_push && customer.active {
        let job = NewJob {
            kind: PUSH_CUSTOMER_JOB,
            payload: serde_json::json!({ "digit_customer_id": customer.id.as_str() }),
            priority: store::jobs::PRIORITY_INTERACTIVE,
            dedupe_key: Some(push_dedupe_key(&customer.id)),
        };
        push_queued = store::jobs::enqueue_job(conn, tenant, &job)
            .await?
            .is_some();
    }
    let status = status_in(conn, tenant, &customer.id).await?;
    Ok(UpsertOutcome {
        state: status.state,
        created,
        push_queued,
        link: status.link,
    })
}

/// Says where a customer stands.
///
/// # Errors
/// [`ApiError::NotFound`] when the tenant has no such customer; [`ApiError::Store`] when the store fails.
pub async fn link_status(
    pool: &PgPool,
    tenant: &TenantId,
    id: &DigitCustomerId,
) -> Result<LinkStatus, ApiError> {
    let mut conn = pool.acquire().await.map_err(StoreError::from)?;
    if store::customers::get_digit_customer(&mut conn, tenant, id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound {
            entity: "customer",
            id: id.to_string(),
        });
    }
    status_in(&mut conn, tenant, id).await
}

async fn status_in(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &DigitCustomerId,
) -> Result<LinkStatus, ApiError> {
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
