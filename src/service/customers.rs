//! What happens when Digit reports customers, and where a customer stands.

use std::collections::HashMap;

use sqlx::{PgConnection, PgPool};

use super::candidates::mirror_candidates;
use super::push::{PUSH_CUSTOMER_JOB, push_dedupe_key, push_job, update_job};
use crate::{
    domain::{DigitCustomer, DigitCustomerId, Link, LinkState, TenantId},
    store::{self, StoreError, customers::Upserted, reviews::StoredCandidate},
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
        let mut outcomes = self
            .upsert(tenant, &[customer], skip_push, Source::Interactive)
            .await?;
        outcomes.pop().ok_or_else(|| {
            CustomerError::Store(StoreError::Corrupt("a batch of one gave no outcome".into()))
        })
    }

    /// Records several customers in one transaction, with the jobs they need, and answers for
    /// each in the order given; the caller has checked them already. A few statements serve
    /// the whole batch. An id given more than once is recorded as if the customers were
    /// upserted one after the other: the last one stays, and each answer says what its own
    /// write found.
    ///
    /// # Errors
    /// [`CustomerError::Store`] when the store fails; nothing is changed then.
    pub async fn upsert_customers(
        &self,
        tenant: &TenantId,
        customers: &[DigitCustomer],
        skip_push: bool,
    ) -> Result<Vec<UpsertOutcome>, CustomerError> {
        let customers: Vec<&DigitCustomer> = customers.iter().collect();
        self.upsert(tenant, &customers, skip_push, Source::Bulk)
            .await
    }

    /// Records `customers` in one transaction: one round of statements per occurrence of the
    /// most repeated id (one round when the ids are distinct), since one statement cannot
    /// write a row twice.
    async fn upsert(
        &self,
        tenant: &TenantId,
        customers: &[&DigitCustomer],
        skip_push: bool,
        source: Source,
    ) -> Result<Vec<UpsertOutcome>, CustomerError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let mut outcomes: Vec<Option<UpsertOutcome>> = vec![None; customers.len()];
        for round in rounds(customers) {
            let batch: Vec<&DigitCustomer> = round.iter().map(|&i| customers[i]).collect();
            let done = upsert_in(&mut tx, tenant, &batch, skip_push, source).await?;
            for (index, outcome) in round.into_iter().zip(done) {
                outcomes[index] = Some(outcome);
            }
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(outcomes.into_iter().flatten().collect())
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

/// Splits positions into rounds of distinct ids, in order: the n-th occurrence of an id goes
/// into round n.
fn rounds(customers: &[&DigitCustomer]) -> Vec<Vec<usize>> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(customers.len());
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    for (index, customer) in customers.iter().enumerate() {
        let occurrence = seen.entry(customer.id.as_str()).or_insert(0);
        if rounds.len() <= *occurrence {
            rounds.push(Vec::new());
        }
        rounds[*occurrence].push(index);
        *occurrence += 1;
    }
    rounds
}

/// Records customers of distinct ids, each step one statement whatever their number: the
/// rows, their links, their jobs, then what waits for those not linked.
async fn upsert_in(
    conn: &mut PgConnection,
    tenant: &TenantId,
    customers: &[&DigitCustomer],
    skip_push: bool,
    source: Source,
) -> Result<Vec<UpsertOutcome>, CustomerError> {
    let upserted = store::customers::upsert_digit_customers(conn, tenant, customers).await?;
    let ids: Vec<String> = customers.iter().map(|c| c.id.as_str().to_owned()).collect();
    let mut links: HashMap<String, Link> = store::links::get_links(conn, tenant, &ids)
        .await?
        .into_iter()
        .map(|link| (link.digit_customer_id.as_str().to_owned(), link))
        .collect();
    let linked: Vec<bool> = ids.iter().map(|id| links.contains_key(id)).collect();
    let push_queued = if skip_push {
        vec![false; customers.len()]
    } else {
        queue_jobs(conn, tenant, customers, &upserted, &linked, source).await?
    };
    let states = states_in(conn, tenant, customers, &linked).await?;
    Ok(ids
        .iter()
        .zip(upserted)
        .zip(states.into_iter().zip(push_queued))
        .map(|((id, done), (state, push_queued))| UpsertOutcome {
            state,
            created: done.created,
            push_queued,
            link: links.remove(id),
        })
        .collect())
}

/// Queues, in one statement and in the customers' order, a push for each new, active customer
/// ("create in Digit first": the push looks for it in QBO as the matcher would before it
/// creates anything, so a customer someone already created in QBO is linked, not duplicated)
/// and a sparse update to QBO for each linked customer whose name, e-mail or phone changed.
/// Returns, per customer, whether a push was queued.
async fn queue_jobs(
    conn: &mut PgConnection,
    tenant: &TenantId,
    customers: &[&DigitCustomer],
    upserted: &[Upserted],
    linked: &[bool],
    source: Source,
) -> Result<Vec<bool>, CustomerError> {
    let priority = match source {
        Source::Interactive => store::jobs::PRIORITY_INTERACTIVE,
        Source::Bulk => store::jobs::PRIORITY_BACKGROUND,
    };
    let (mut owners, mut jobs) = (Vec::new(), Vec::new());
    for (index, customer) in customers.iter().enumerate() {
        let done = upserted[index];
        if done.created && customer.active {
            owners.push(index);
            jobs.push(push_job(&customer.id, priority));
        } else if !done.created && done.qbo_fields_changed && linked[index] {
            owners.push(index);
            jobs.push(update_job(&customer.id, priority));
        }
    }
    let queued = store::jobs::enqueue_each(conn, tenant, &jobs).await?;
    let mut push_queued = vec![false; customers.len()];
    for ((index, job), id) in owners.into_iter().zip(&jobs).zip(queued) {
        push_queued[index] = job.kind == PUSH_CUSTOMER_JOB && id.is_some();
    }
    Ok(push_queued)
}

/// Where each customer stands, as [`status_in`] says for one, with one read for those not
/// linked (made after their pushes were queued).
async fn states_in(
    conn: &mut PgConnection,
    tenant: &TenantId,
    customers: &[&DigitCustomer],
    linked: &[bool],
) -> Result<Vec<LinkState>, CustomerError> {
    let unlinked: Vec<usize> = (0..customers.len()).filter(|&i| !linked[i]).collect();
    let ids: Vec<&str> = unlinked.iter().map(|&i| customers[i].id.as_str()).collect();
    let push_keys: Vec<String> = unlinked
        .iter()
        .map(|&i| push_dedupe_key(&customers[i].id))
        .collect();
    let waiting = store::customers::waiting_for(conn, tenant, &ids, &push_keys).await?;
    let mut states = vec![LinkState::Linked; customers.len()];
    for (index, waits) in unlinked.into_iter().zip(waiting) {
        states[index] = if waits.open_review {
            LinkState::PendingReview
        } else if waits.live_push {
            LinkState::PendingPush
        } else {
            LinkState::Unlinked
        };
    }
    Ok(states)
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
