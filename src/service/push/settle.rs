//! Creating customers in QBO and settling what QBO answers.
//!
//! * Created (or replayed by QBO for the same `requestid`) → linked, `created_in_qbo`.
//! * Answer lost → the client looked the name up before resending; a customer found that way
//!   is ours → linked, `created_in_qbo`.
//! * 6240 Duplicate Name Exists, held by
//!   - an active customer the matcher accepts as this one → linked, `duplicate_name_recovery`;
//!   - an inactive customer → review: reactivate it and link, or create anew;
//!   - a vendor or employee → created as `Name (c)` (then `(c2)`, `(c3)`), reason recorded;
//!   - anything else → review.
//!
//! Never a silent duplicate, never a job stuck on a name.

use std::sync::Arc;

use super::{
    MAX_QUALIFIED_NAMES, PushError, PushResult, Pushed, Pusher, qbo_display_name, qualified_name,
};
use crate::{
    domain::{LinkMethod, TenantId},
    matching::{self, Decision},
    quickbooks::{
        BatchCreate, CreateOutcome, Lane, NameHolder, NewCustomer, QboCustomer, QboError, RequestId,
    },
    store::{
        customers::PushTarget,
        links::NewLink,
        reviews::{ReviewKind, StoredCandidate},
    },
};

/// A create to make: the name tried, its variant (0: the Digit name, n: `(cn)`), and why the
/// name differs from Digit's.
struct Attempt {
    base: String,
    variant: u32,
    notes: Vec<String>,
}

/// The first reason of a link to a customer qbo-sync created.
const CREATED: &str = "created in QuickBooks by qbo-sync";
/// The same, when the create's answer was lost and the customer found by name.
const FOUND_AFTER_LOST_ANSWER: &str =
    "created in QuickBooks by qbo-sync (found by name after the create's answer was lost)";

impl Attempt {
    /// The link's reasons: `first`, then why the name differs from Digit's.
    fn reasons(&self, first: &str) -> Vec<String> {
        let mut reasons = vec![first.to_owned()];
        reasons.extend(self.notes.iter().cloned());
        reasons
    }

    fn first(target: &PushTarget) -> Self {
        let (base, note) = qbo_display_name(&target.customer.display_name);
        Self {
            base,
            variant: 0,
            notes: note.into_iter().collect(),
        }
    }

    fn name(&self) -> String {
        qualified_name(&self.base, self.variant)
    }

    fn request_id(&self, tenant: &TenantId, target: &PushTarget) -> RequestId {
        RequestId::for_create_variant(
            tenant,
            &target.customer.id,
            target.push_generation,
            self.variant,
        )
    }

    fn customer(&self, target: &PushTarget) -> NewCustomer {
        let c = &target.customer;
        NewCustomer {
            display_name: self.name(),
            company_name: c.company_name.clone(),
            given_name: c.given_name.clone(),
            family_name: c.family_name.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            parent_id: None,
        }
    }
}

impl Pusher {
    /// Creates the customers (one call, or batches of up to 30) and settles each answer.
    pub(super) async fn create_all(
        &self,
        tenant: &TenantId,
        items: &[super::Item],
        lane: Lane,
    ) -> Vec<PushResult> {
        let qbo = match self.client() {
            Ok(qbo) => Arc::clone(qbo),
            Err(e) => return super::fail_all(items.len(), e),
        };
        let attempts: Vec<Attempt> = items.iter().map(|i| Attempt::first(&i.target)).collect();
        let answers = if let [only] = items {
            let attempt = &attempts[0];
            let request_id = attempt.request_id(tenant, &only.target);
            vec![
                qbo.create_customer(tenant, &attempt.customer(&only.target), &request_id, lane)
                    .await,
            ]
        } else {
            let batch: Vec<BatchCreate> = items
                .iter()
                .zip(&attempts)
                .map(|(item, attempt)| BatchCreate {
                    request_id: attempt.request_id(tenant, &item.target),
                    customer: attempt.customer(&item.target),
                })
                .collect();
            match qbo.batch_create_customers(tenant, &batch, lane).await {
                Ok(answers) => answers,
                Err(e) => return super::fail_all(items.len(), e.into()),
            }
        };
        let mut results: Vec<Option<PushResult>> = items.iter().map(|_| None).collect();
        // Plain creates are linked together (a few statements for a whole batch); the rest
        // are settled one by one.
        let mut created = Vec::new();
        for (at, ((item, attempt), answer)) in items.iter().zip(attempts).zip(answers).enumerate() {
            match answer {
                Ok(CreateOutcome::Created(customer)) => {
                    created.push((at, customer, attempt.reasons(CREATED)));
                }
                Ok(CreateOutcome::FoundAfterUncertain(customer)) => {
                    created.push((at, customer, attempt.reasons(FOUND_AFTER_LOST_ANSWER)));
                }
                other => {
                    let settled = self
                        .settle(tenant, &item.target, attempt, other, lane)
                        .await;
                    results[at] = Some(settled.map_err(Arc::new));
                }
            }
        }
        if !created.is_empty() {
            let linked = self.link_created(tenant, items, &created).await;
            for ((at, _, _), result) in created.iter().zip(linked) {
                results[*at] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Ok(Pushed::Skipped("not decided"))))
            .collect()
    }

    /// Links customers QBO created (or replayed) to their Digit customers, in one transaction.
    async fn link_created(
        &self,
        tenant: &TenantId,
        items: &[super::Item],
        created: &[(usize, QboCustomer, Vec<String>)],
    ) -> Vec<PushResult> {
        let links: Vec<NewLink<'_>> = created
            .iter()
            .map(|(at, customer, reasons)| NewLink {
                digit: &items[*at].target.customer.id,
                qbo: &customer.id,
                method: LinkMethod::CreatedInQbo,
                score: 1.0,
                reasons,
                normalizer_version: 0,
                linked_by: &self.actor,
                reason: "created in QuickBooks",
                run_id: None,
                on_behalf_of: None,
            })
            .collect();
        let customers: Vec<&QboCustomer> = created.iter().map(|(_, c, _)| c).collect();
        match self.link_many(tenant, &links, &customers).await {
            Ok(results) => results.into_iter().map(|r| r.map_err(Arc::new)).collect(),
            Err(e) => super::fail_all(links.len(), e),
        }
    }

    /// Settles one create's answer, creating under a qualified name while a vendor or
    /// employee holds the name.
    async fn settle(
        &self,
        tenant: &TenantId,
        target: &PushTarget,
        mut attempt: Attempt,
        mut answer: Result<CreateOutcome, QboError>,
        lane: Lane,
    ) -> Result<Pushed, PushError> {
        loop {
            match answer? {
                CreateOutcome::Created(customer) => {
                    return self
                        .link_one_created(tenant, target, &customer, attempt.reasons(CREATED))
                        .await;
                }
                CreateOutcome::FoundAfterUncertain(customer) => {
                    let reasons = attempt.reasons(FOUND_AFTER_LOST_ANSWER);
                    return self
                        .link_one_created(tenant, target, &customer, reasons)
                        .await;
                }
                CreateOutcome::NameTaken {
                    holder: _,
                    customer: Some(customer),
                } => return self.name_held_by_customer(tenant, target, &customer).await,
                CreateOutcome::NameTaken {
                    holder,
                    customer: None,
                } => {
                    if attempt.variant >= MAX_QUALIFIED_NAMES {
                        count_duplicate_name("names_exhausted");
                        return self.names_exhausted(tenant, target, &holder).await;
                    }
                    count_duplicate_name("qualified_name");
                    attempt.variant += 1;
                    attempt.notes.push(format!(
                        "QuickBooks has a {} named '{}': created as '{}'",
                        holder.kind.entity().to_lowercase(),
                        holder.display_name,
                        attempt.name()
                    ));
                    let qbo = self.client()?;
                    let request_id = attempt.request_id(tenant, target);
                    answer = qbo
                        .create_customer(tenant, &attempt.customer(target), &request_id, lane)
                        .await;
                }
            }
        }
    }

    async fn link_one_created(
        &self,
        tenant: &TenantId,
        target: &PushTarget,
        customer: &QboCustomer,
        reasons: Vec<String>,
    ) -> Result<Pushed, PushError> {
        let link = NewLink {
            digit: &target.customer.id,
            qbo: &customer.id,
            method: LinkMethod::CreatedInQbo,
            score: 1.0,
            reasons: &reasons,
            normalizer_version: 0,
            linked_by: &self.actor,
            reason: "created in QuickBooks",
            run_id: None,
            on_behalf_of: None,
        };
        self.link(tenant, link, Some(customer)).await
    }

    /// QBO refused the name because this customer holds it: link it when the matcher is sure
    /// it is the same one, otherwise a person decides.
    async fn name_held_by_customer(
        &self,
        tenant: &TenantId,
        target: &PushTarget,
        holder: &QboCustomer,
    ) -> Result<Pushed, PushError> {
        let candidate = |score: f64, reasons: Vec<String>| StoredCandidate {
            qbo_customer_id: holder.id.clone(),
            display_name: holder.display_name.clone(),
            active: holder.active,
            score,
            reasons,
        };
        if !holder.active {
            count_duplicate_name("review_inactive_holder");
            let reason = "QuickBooks refused to create this customer: an inactive QuickBooks \
                          customer holds the name. Reactivate it and link, or create this \
                          customer under another name";
            let candidates = [candidate(
                0.9,
                vec!["holds the same name (inactive)".into()],
            )];
            return self
                .review(
                    tenant,
                    &target.customer.id,
                    ReviewKind::Reactivate,
                    reason,
                    &candidates,
                )
                .await;
        }
        let decision = self
            .match_against(
                tenant,
                std::slice::from_ref(holder),
                [&target.customer].into_iter(),
            )
            .await?
            .remove(target.customer.id.as_str());
        match decision {
            Some(Decision::AutoLink { score, reasons, .. }) => {
                count_duplicate_name("linked");
                let mut all = vec![
                    "QuickBooks refused the create: the name exists already (6240)".to_owned(),
                ];
                all.extend(reasons);
                let link = NewLink {
                    digit: &target.customer.id,
                    qbo: &holder.id,
                    method: LinkMethod::DuplicateNameRecovery,
                    score,
                    reasons: &all,
                    normalizer_version: matching::NORMALIZER_VERSION,
                    linked_by: &self.actor,
                    reason: "QuickBooks said the name exists; the holder is this customer",
                    run_id: None,
                    on_behalf_of: None,
                };
                self.link(tenant, link, Some(holder)).await
            }
            Some(Decision::AlreadyLinked { .. }) => {
                count_duplicate_name("already_linked");
                Ok(Pushed::AlreadyLinked)
            }
            other => {
                count_duplicate_name("review_uncertain");
                let why = match other {
                    Some(Decision::Review { reason, .. }) => reason,
                    _ => "the names are not certainly the same customer".to_owned(),
                };
                let reason = format!(
                    "QuickBooks refused to create this customer: a QuickBooks customer holds the \
                     name, and qbo-sync cannot be sure it is this one ({why})"
                );
                let candidates = [candidate(0.8, vec!["holds the same name".into()])];
                self.review(
                    tenant,
                    &target.customer.id,
                    ReviewKind::NameCollision,
                    &reason,
                    &candidates,
                )
                .await
            }
        }
    }

    async fn names_exhausted(
        &self,
        tenant: &TenantId,
        target: &PushTarget,
        holder: &NameHolder,
    ) -> Result<Pushed, PushError> {
        let reason = format!(
            "QuickBooks refused to create this customer: a {} holds the name, and so do the \
             qualified names tried; choose a name",
            holder.kind.entity().to_lowercase()
        );
        self.review(
            tenant,
            &target.customer.id,
            ReviewKind::NameCollision,
            &reason,
            &[],
        )
        .await
    }
}

/// Counts how a "Duplicate Name Exists" (6240) answer was resolved.
fn count_duplicate_name(resolution: &'static str) {
    metrics::counter!("qbo_sync_duplicate_name_total", "resolution" => resolution).increment(1);
}
