//! The invoice service's preflight (`ValidateInvoiceCustomer`): may this customer be
//! invoiced in QuickBooks now, and if not, what exactly fixes it.
//!
//! A linked customer's answer comes from one indexed read (its link, the linked QBO customer,
//! the connection). Any other costs a second read (the customer, an open review item, a
//! waiting push) and, when it is not linked, its candidates from the mirror. With `repair`, a customer that is not
//! linked (or whose push waits) is pushed now on the interactive lane, within the caller's
//! deadline: a safe match found in QuickBooks is linked, a customer QuickBooks lacks is
//! created. A push job is queued first, so a repair cut short by the deadline is finished by
//! the worker; nothing is left half done.

use std::time::Duration;

use sqlx::PgPool;

use super::{
    candidates::mirror_candidates,
    push::{Pushed, Pusher, push_dedupe_key, push_job},
};
use crate::{
    domain::{DigitCustomerId, TenantId},
    quickbooks::Lane,
    store::{self, StoreError, jobs::PRIORITY_INTERACTIVE, reviews::StoredCandidate},
};

/// The most candidates a "not linked" answer lists.
const MAX_CANDIDATES: usize = 3;

/// What stands between the customer and an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Nothing: invoice it.
    None,
    /// Digit never reported the customer.
    UnknownCustomer,
    /// Not linked to a QBO customer.
    NotLinked,
    /// A person must choose its QBO customer.
    PendingReview,
    /// qbo-sync is creating it in QBO.
    PendingPush,
    /// The linked QBO customer is inactive.
    QboCustomerInactive,
    /// QBO no longer has the linked customer.
    QboCustomerMissing,
    /// The tenant has no connected company.
    CompanyNotConnected,
    /// The connection needs a person to connect the company again.
    ConnectionNeedsReauth,
}

/// The preflight's answer.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The problem (`None` when the invoice may go).
    pub problem: Problem,
    /// One sentence: what fixes it.
    pub action: String,
    /// The linked QBO customer, when linked.
    pub qbo_customer_id: Option<String>,
    /// Its display name, when known.
    pub qbo_display_name: Option<String>,
    /// For NOT_LINKED: the best candidates.
    pub candidates: Vec<StoredCandidate>,
    /// For PENDING_REVIEW: the open item.
    pub review_item_id: Option<uuid::Uuid>,
    /// This call fixed the problem.
    pub repaired: bool,
}

type Facts = store::preflight::PreflightFacts;

/// The preflight use case.
#[derive(Debug, Clone)]
pub struct Preflight {
    pool: PgPool,
    pusher: Option<Pusher>,
}

impl Preflight {
    /// The preflight over the store; it repairs only with a pusher (a replica that can call
    /// QBO).
    #[must_use]
    pub fn new(pool: PgPool, pusher: Option<Pusher>) -> Self {
        Self { pool, pusher }
    }

    /// Answers whether the customer may be invoiced, repairing within `deadline` when asked
    /// (a link the repair makes names `caller` in the audit trail).
    ///
    /// # Errors
    /// [`StoreError`] when the database fails (a "no" is an answer, not an error).
    pub async fn validate(
        &self,
        tenant: &TenantId,
        digit: &DigitCustomerId,
        repair: bool,
        deadline: Duration,
        caller: &str,
    ) -> Result<Verdict, StoreError> {
        let facts = self.facts(tenant, digit).await?;
        let verdict = verdict(&facts);
        let fixable = matches!(verdict.problem, Problem::NotLinked | Problem::PendingPush);
        if repair
            && fixable
            && let Some(pusher) = &self.pusher
        {
            let pusher = pusher.acting_as(caller);
            return self.repair(&pusher, tenant, digit, deadline, verdict).await;
        }
        if verdict.problem == Problem::NotLinked {
            let candidates = self.candidates(tenant, digit, &facts).await?;
            return Ok(Verdict {
                action: not_linked_action(!candidates.is_empty()),
                candidates,
                ..verdict
            });
        }
        Ok(verdict)
    }

    /// The fast path's one read for a linked customer; the full read for any other.
    async fn facts(&self, tenant: &TenantId, digit: &DigitCustomerId) -> Result<Facts, StoreError> {
        if let Some(linked) = store::preflight::linked_facts(&self.pool, tenant, digit).await? {
            return Ok(linked);
        }
        store::preflight::preflight_facts(&self.pool, tenant, digit, &push_dedupe_key(digit)).await
    }

    async fn candidates(
        &self,
        tenant: &TenantId,
        digit: &DigitCustomerId,
        facts: &Facts,
    ) -> Result<Vec<StoredCandidate>, StoreError> {
        let Some(name) = facts.display_name.as_deref() else {
            return Ok(Vec::new());
        };
        let mut found = mirror_candidates(&self.pool, tenant, digit, name).await?;
        found.truncate(MAX_CANDIDATES);
        Ok(found)
    }

    /// Pushes the customer now, within `deadline`; a push job is queued first so that a
    /// repair the deadline cuts short is finished by the worker.
    async fn repair(
        &self,
        pusher: &Pusher,
        tenant: &TenantId,
        digit: &DigitCustomerId,
        deadline: Duration,
        before: Verdict,
    ) -> Result<Verdict, StoreError> {
        let job = push_job(digit, PRIORITY_INTERACTIVE);
        let mut conn = self.pool.acquire().await?;
        store::jobs::enqueue_job(&mut conn, tenant, &job).await?;
        drop(conn);
        let attempt = tokio::time::timeout(
            deadline,
            pusher.push(tenant, std::slice::from_ref(digit), Lane::Interactive),
        )
        .await;
        let pushed = match attempt {
            Ok(mut results) => results.pop(),
            Err(_) => None,
        };
        let after = verdict(&self.facts(tenant, digit).await?);
        match (pushed, after.problem) {
            (Some(Ok(Pushed::Linked { .. })), Problem::None) => Ok(Verdict {
                repaired: true,
                ..after
            }),
            (_, Problem::PendingPush | Problem::NotLinked) => Ok(Verdict {
                problem: Problem::PendingPush,
                action: "qbo-sync is linking or creating this customer in QuickBooks now: \
                         retry in a few seconds"
                    .into(),
                ..before
            }),
            _ => Ok(after),
        }
    }
}

fn not_linked_action(has_candidates: bool) -> String {
    if has_candidates {
        "Link the customer to its QuickBooks customer (LinkCustomers with one of the candidates), \
         or validate with repair to let qbo-sync decide"
            .into()
    } else {
        "The customer is not in QuickBooks yet: validate with repair (or UpsertCustomer) and \
         qbo-sync creates it"
            .into()
    }
}

fn verdict(f: &Facts) -> Verdict {
    let answer = |problem: Problem, action: &str| Verdict {
        problem,
        action: action.to_owned(),
        qbo_customer_id: f.qbo_id.clone(),
        qbo_display_name: f.qbo_name.clone(),
        candidates: Vec::new(),
        review_item_id: None,
        repaired: false,
    };
    if !f.known {
        return answer(
            Problem::UnknownCustomer,
            "Report the customer to qbo-sync (UpsertCustomer) before invoicing it",
        );
    }
    match f.connection.as_deref() {
        Some("connected") => {}
        Some("needs_reauth") => {
            return answer(
                Problem::ConnectionNeedsReauth,
                "QuickBooks refused the company's authorisation: an administrator must connect \
                 the company again (ConnectCompany)",
            );
        }
        _ => {
            return answer(
                Problem::CompanyNotConnected,
                "Connect the tenant's QuickBooks company (ConnectCompany) before invoicing",
            );
        }
    }
    if f.qbo_id.is_some() {
        return match (f.qbo_active, f.qbo_missing) {
            (Some(true), Some(false)) => answer(Problem::None, ""),
            (Some(false), Some(false)) => answer(
                Problem::QboCustomerInactive,
                "The linked QuickBooks customer is inactive: reactivate it in QuickBooks, or link \
                 another one (LinkCustomers with replace_existing)",
            ),
            _ => answer(
                Problem::QboCustomerMissing,
                "QuickBooks no longer has the linked customer (merged or removed): link the one \
                 that replaced it (LinkCustomers with replace_existing), or run a sync",
            ),
        };
    }
    if let Some(id) = f.review_id {
        return Verdict {
            review_item_id: Some(id),
            ..answer(
                Problem::PendingReview,
                "A person must choose this customer's QuickBooks customer: resolve the review \
                 item (ResolveReviewItem)",
            )
        };
    }
    if f.pushing {
        return answer(
            Problem::PendingPush,
            "qbo-sync is creating this customer in QuickBooks: retry in a few seconds",
        );
    }
    answer(Problem::NotLinked, &not_linked_action(false))
}
