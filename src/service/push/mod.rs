//! "Create in Digit first": pushing new Digit customers to QBO without ever creating a
//! duplicate, and keeping linked customers' names, e-mails and phones current in QBO.
//!
//! A push never trusts an exact-name lookup: QBO happily holds `Acme Corp.` beside `ACME
//! CORPORATION`. For each customer it fetches the plausible QBO customers (DisplayName
//! containing the name's most identifying word, inactive included), shows them to the matcher
//! together with the Digit customers that share the name, and then:
//! * a safe match is linked (the matcher's method, reasons and score);
//! * a doubtful one becomes a review item, never a create;
//! * only a customer with no candidate at all is created, under a deterministic `requestid`
//!   (many at once go in batches of up to 30), and linked as `created_in_qbo`.
//!
//! What QBO answers to a create is settled in `settle.rs` (6240 Duplicate Name Exists and
//! creates whose answer was lost).

mod mirror;
mod names;
mod settle;
mod update;

use std::{collections::HashMap, sync::Arc};

use sqlx::PgPool;
use uuid::Uuid;

pub use mirror::PushSettings;
use mirror::Source;
pub(crate) use mirror::customer_of;
pub use names::{MAX_QUALIFIED_NAMES, lookup_word, name_words, qbo_display_name, qualified_name};
pub use update::Updated;

use super::connections::Unconfigured;
use crate::{
    domain::{DigitCustomer, DigitCustomerId, LinkMethod, TenantId},
    matching::{
        self, Candidate, Decision, DigitCustomerRecord, MatchContext, QboCustomerRecord,
        score::{MAX_REVIEW_SCORE, MIN_NAME_SIMILARITY, name_similarity},
    },
    quickbooks::{Lane, QboClient, QboCustomer, QboError},
    store::{
        self, StoreError,
        customers::PushTarget,
        links::{LinkInsert, NewLink},
        mirror::MirroredCustomer,
        reviews::{ReviewKind, StoredCandidate},
    },
};

/// The job kind that creates a Digit customer in QBO (or links it to the one found there).
pub const PUSH_CUSTOMER_JOB: &str = "push_customer";
/// The job kind that sends a linked customer's changed name, e-mail or phone to QBO.
pub const UPDATE_CUSTOMER_JOB: &str = "update_qbo_customer";
/// The most candidates a push's own review item lists.
const MAX_REVIEW_CANDIDATES: usize = 5;
/// Who pushes, in links and audit events.
pub const PUSH_ACTOR: &str = "qbo-sync:push";

/// The dedupe key of a customer's push job: one live push per customer.
#[must_use]
pub fn push_dedupe_key(id: &DigitCustomerId) -> String {
    format!("push:{id}")
}

/// A customer's push job at `priority` (one live push per customer, by its dedupe key).
#[must_use]
pub fn push_job(id: &DigitCustomerId, priority: i16) -> store::jobs::NewJob<'static> {
    store::jobs::NewJob {
        kind: PUSH_CUSTOMER_JOB,
        payload: serde_json::json!({ "digit_customer_id": id.as_str() }),
        priority,
        dedupe_key: Some(push_dedupe_key(id)),
        needs_connection: true,
    }
}

/// The dedupe key of a customer's update job: one live update per customer (it sends the
/// customer as it is when it runs, so later changes ride along).
#[must_use]
pub fn update_dedupe_key(id: &DigitCustomerId) -> String {
    format!("update:{id}")
}

/// A linked customer's update job at `priority` (one live update per customer, by its dedupe
/// key).
#[must_use]
pub fn update_job(id: &DigitCustomerId, priority: i16) -> store::jobs::NewJob<'static> {
    store::jobs::NewJob {
        kind: UPDATE_CUSTOMER_JOB,
        payload: serde_json::json!({ "digit_customer_id": id.as_str() }),
        priority,
        dedupe_key: Some(update_dedupe_key(id)),
        needs_connection: true,
    }
}

/// What a push can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// This replica has no QBO client (no token key or client secret configured).
    #[error("QuickBooks is not configured on this replica: {}", .0.message())]
    Unconfigured(Unconfigured),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// QBO failed.
    #[error(transparent)]
    Qbo(#[from] QboError),
    /// Another replica is reading the tenant's QBO customers into the mirror; the push
    /// waits for it rather than read them twice.
    #[error("another replica is reading the company's customers into the mirror")]
    MirrorBusy,
}

/// A push's result for one customer; a failure may be shared by the customers of a group.
pub type PushResult = Result<Pushed, Arc<PushError>>;

/// What a push did for one customer.
#[derive(Debug, Clone, PartialEq)]
pub enum Pushed {
    /// It was linked already: nothing to do.
    AlreadyLinked,
    /// Nothing to do, and why (gone, inactive, waiting for a person).
    Skipped(&'static str),
    /// Linked to this QBO customer (found there, or created).
    Linked {
        /// The QBO customer.
        qbo_id: String,
        /// How.
        method: LinkMethod,
    },
    /// A person must decide: this review item says what.
    ToReview {
        /// The open review item.
        review_item_id: Uuid,
    },
}

/// The push use cases.
#[derive(Debug, Clone)]
pub struct Pusher {
    pool: PgPool,
    qbo: Result<Arc<QboClient>, Unconfigured>,
    settings: PushSettings,
    /// Who the links and audit events of this pusher name.
    actor: String,
}

/// One customer on its way to QBO.
struct Item {
    /// Position in the caller's list.
    at: usize,
    target: PushTarget,
}

impl Pusher {
    /// The use cases over the store and (when configured) the QBO client.
    #[must_use]
    pub fn new(pool: PgPool, qbo: Result<Arc<QboClient>, Unconfigured>) -> Self {
        Self {
            pool,
            qbo,
            settings: PushSettings::default(),
            actor: PUSH_ACTOR.to_owned(),
        }
    }

    /// The same pusher acting for a caller: its links and audit events name `actor` (a
    /// preflight repair names the caller who asked for it).
    #[must_use]
    pub fn acting_as(&self, actor: &str) -> Self {
        Self {
            actor: actor.to_owned(),
            ..self.clone()
        }
    }

    /// The same use cases with other settings.
    #[must_use]
    pub fn with_settings(mut self, settings: PushSettings) -> Self {
        self.settings = settings;
        self
    }

    fn client(&self) -> Result<&Arc<QboClient>, PushError> {
        self.qbo.as_ref().map_err(|u| PushError::Unconfigured(*u))
    }

    /// Pushes customers of one tenant; one result per id, in order. Each customer ends
    /// linked, in review, or skipped; an error leaves it as it was (a retry is safe: creates
    /// are idempotent by request id and looked up again before anything is resent).
    pub async fn push(
        &self,
        tenant: &TenantId,
        ids: &[DigitCustomerId],
        lane: Lane,
    ) -> Vec<PushResult> {
        let mut results: Vec<Option<PushResult>> = ids.iter().map(|_| None).collect();
        let items = match self.items(tenant, ids, &mut results).await {
            Ok(items) => items,
            Err(e) => return fail_all(ids.len(), e),
        };
        let decisions = match self.client() {
            Ok(_) if items.is_empty() => Vec::new(),
            Ok(qbo) => match self.source(tenant, lane, items.len()).await {
                Ok(source) => self.decide(qbo, tenant, &items, lane, source).await,
                Err(e) => fail_all(items.len(), e),
            },
            Err(e) => fail_all(items.len(), e),
        };
        let mut creates = Vec::new();
        for (item, decision) in items.into_iter().zip(decisions) {
            match decision {
                Ok(Decision::Unmatched) => creates.push(item),
                Ok(decision) => {
                    let applied = self.apply(tenant, &item.target, decision).await;
                    results[item.at] = Some(applied.map_err(Arc::new));
                }
                Err(e) => results[item.at] = Some(Err(e)),
            }
        }
        if !creates.is_empty() {
            let created = self.create_all(tenant, &creates, lane).await;
            for (item, result) in creates.iter().zip(created) {
                results[item.at] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Ok(Pushed::Skipped("not decided"))))
            .collect()
    }

    /// Loads the customers and settles those with nothing to push.
    async fn items(
        &self,
        tenant: &TenantId,
        ids: &[DigitCustomerId],
        results: &mut [Option<PushResult>],
    ) -> Result<Vec<Item>, PushError> {
        let wanted: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let mut targets: HashMap<String, PushTarget> =
            store::customers::load_push_targets(&mut conn, tenant, &wanted)
                .await?
                .into_iter()
                .map(|t| (t.customer.id.to_string(), t))
                .collect();
        let mut items = Vec::new();
        for (at, id) in ids.iter().enumerate() {
            let settled = match targets.remove(id.as_str()) {
                None => Pushed::Skipped("the customer does not exist"),
                Some(t) if t.linked_qbo_id.is_some() => Pushed::AlreadyLinked,
                Some(t) if t.open_review => Pushed::Skipped("a person is reviewing its match"),
                Some(t) if !t.customer.active => Pushed::Skipped("inactive in Digit"),
                Some(target) => {
                    items.push(Item { at, target });
                    continue;
                }
            };
            results[at] = Some(Ok(settled));
        }
        Ok(items)
    }

    /// Fetches each customer's plausible QBO customers, mirrors them, and asks the matcher;
    /// from the mirror, decides each customer as the batch matcher would.
    async fn decide(
        &self,
        qbo: &QboClient,
        tenant: &TenantId,
        items: &[Item],
        lane: Lane,
        source: Source,
    ) -> Vec<Result<Decision, Arc<PushError>>> {
        if source == Source::Mirror {
            return self.decide_in_mirror(tenant, items).await;
        }
        let mut fetched = Vec::with_capacity(items.len());
        for item in items {
            fetched.push(similar_customers(qbo, tenant, &item.target.customer, lane).await);
        }
        let mut pool: HashMap<String, QboCustomer> = HashMap::new();
        for (customers, _) in fetched.iter().flatten() {
            for c in customers {
                pool.insert(c.id.clone(), c.clone());
            }
        }
        let qbo_customers: Vec<QboCustomer> = pool.into_values().collect();
        let decided = self
            .match_against(
                tenant,
                &qbo_customers,
                items.iter().map(|i| &i.target.customer),
            )
            .await;
        let mut decided = match decided {
            Ok(decided) => decided,
            Err(e) => return fail_all(items.len(), e),
        };
        // Pairs a person rejected never hold a create back (a "create new" decision).
        let rejected = match self.rejected_pairs(tenant, items).await {
            Ok(rejected) => rejected,
            Err(e) => return fail_all(items.len(), e),
        };
        items
            .iter()
            .zip(fetched)
            .map(|(item, found)| {
                let (customers, truncated) = found.map_err(Arc::new)?;
                let id = item.target.customer.id.as_str();
                let decision = decided.remove(id).unwrap_or(Decision::Unmatched);
                Ok(match decision {
                    Decision::Unmatched => {
                        let open: Vec<QboCustomer> = customers
                            .into_iter()
                            .filter(|c| !rejected.contains(&(id.to_owned(), c.id.clone())))
                            .collect();
                        before_create(&item.target.customer, &open, truncated)
                    }
                    other => other,
                })
            })
            .collect()
    }

    /// The pairs people rejected for the items' customers, as (digit id, qbo id).
    async fn rejected_pairs(
        &self,
        tenant: &TenantId,
        items: &[Item],
    ) -> Result<std::collections::HashSet<(String, String)>, PushError> {
        let own: Vec<String> = items
            .iter()
            .map(|i| i.target.customer.id.to_string())
            .collect();
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        Ok(store::links::rejected_pairs_of(&mut conn, tenant, &own)
            .await?
            .into_iter()
            .collect())
    }

    /// Mirrors `qbo_customers` (as QBO answered now) and runs the matcher for `customers`
    /// against them, with the tenant's links, rejected pairs and the Digit customers sharing
    /// their names.
    async fn match_against<'a>(
        &self,
        tenant: &TenantId,
        qbo_customers: &[QboCustomer],
        customers: impl Iterator<Item = &'a DigitCustomer>,
    ) -> Result<HashMap<String, Decision>, PushError> {
        let customers: Vec<&DigitCustomer> = customers.collect();
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let mirrored: Vec<MirroredCustomer> = qbo_customers.iter().map(mirrored).collect();
        store::mirror::upsert_mirrored_customers(&mut conn, tenant, &mirrored).await?;
        let keys: Vec<String> = customers
            .iter()
            .map(|c| matching::customer_keys(&c.display_name, None).name_key)
            .collect();
        let own: Vec<String> = customers.iter().map(|c| c.id.to_string()).collect();
        let twins =
            store::customers::unlinked_customers_with_keys(&mut conn, tenant, &keys).await?;
        let qbo_ids: Vec<String> = qbo_customers.iter().map(|c| c.id.clone()).collect();
        let ctx = MatchContext {
            links: store::links::links_of_qbo_customers(&mut conn, tenant, &qbo_ids).await?,
            rejected: store::links::rejected_pairs_of(&mut conn, tenant, &own).await?,
            ..MatchContext::default()
        };
        drop(conn);
        let mut digit: Vec<DigitCustomerRecord> =
            customers.iter().map(|c| digit_record(c)).collect();
        digit.extend(
            twins
                .iter()
                .filter(|t| !own.contains(&t.id.to_string()))
                .map(digit_record),
        );
        let qbo: Vec<QboCustomerRecord> = qbo_customers.iter().map(qbo_record).collect();
        Ok(matching::match_customers(&qbo, &digit, &ctx)
            .into_iter()
            .filter(|o| own.contains(&o.digit_id))
            .map(|o| (o.digit_id, o.decision))
            .collect())
    }

    /// Carries out a matcher decision other than "unmatched".
    async fn apply(
        &self,
        tenant: &TenantId,
        target: &PushTarget,
        decision: Decision,
    ) -> Result<Pushed, PushError> {
        let id = &target.customer.id;
        match decision {
            Decision::AlreadyLinked { .. } => Ok(Pushed::AlreadyLinked),
            Decision::AutoLink {
                qbo_id,
                method,
                score,
                reasons,
            } => {
                let link = NewLink {
                    digit: id,
                    qbo: &qbo_id,
                    method: link_method(method),
                    score,
                    reasons: &reasons,
                    normalizer_version: matching::NORMALIZER_VERSION,
                    linked_by: &self.actor,
                    reason: "found in QuickBooks before creating it",
                    run_id: None,
                    on_behalf_of: None,
                };
                self.link(tenant, link, None).await
            }
            Decision::Review { reason, candidates } => {
                let candidates: Vec<StoredCandidate> =
                    candidates.into_iter().map(stored_candidate).collect();
                self.review(tenant, id, ReviewKind::Match, &reason, &candidates)
                    .await
            }
            Decision::Unmatched => Ok(Pushed::Skipped("not decided")),
        }
    }

    /// Writes a link. When the QBO customer is linked to another Digit customer meanwhile, a
    /// person decides (`candidate` is what to show them).
    async fn link(
        &self,
        tenant: &TenantId,
        link: NewLink<'_>,
        mirror: Option<&QboCustomer>,
    ) -> Result<Pushed, PushError> {
        let mirror: Vec<&QboCustomer> = mirror.into_iter().collect();
        let mut results = self.link_many(tenant, &[link], &mirror).await?;
        results.pop().unwrap_or(Ok(Pushed::Skipped("not decided")))
    }

    /// Writes links (and mirrors `mirror`, the QBO customers they name) in one transaction.
    /// One result per link: linked, or, when the QBO customer is linked to another Digit
    /// customer meanwhile, a review item for a person.
    async fn link_many(
        &self,
        tenant: &TenantId,
        links: &[NewLink<'_>],
        mirror: &[&QboCustomer],
    ) -> Result<Vec<Result<Pushed, PushError>>, PushError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let rows: Vec<MirroredCustomer> = mirror.iter().map(|c| mirrored(c)).collect();
        store::mirror::upsert_mirrored_customers(&mut tx, tenant, &rows).await?;
        let outcomes = store::links::insert_links(&mut tx, tenant, links).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let mut results = Vec::with_capacity(links.len());
        for (link, outcome) in links.iter().zip(outcomes) {
            results.push(match outcome {
                LinkInsert::Inserted | LinkInsert::AlreadyLinked => Ok(Pushed::Linked {
                    qbo_id: link.qbo.to_owned(),
                    method: link.method,
                }),
                LinkInsert::DigitLinkedElsewhere(other) => {
                    tracing::warn!(tenant = %tenant, qbo_id = %link.qbo, linked_to = %other,
                        "push: the customer was linked elsewhere meanwhile");
                    Ok(Pushed::AlreadyLinked)
                }
                LinkInsert::QboLinkedElsewhere(other) => {
                    let known = mirror.iter().find(|c| c.id == link.qbo);
                    let reason = format!(
                        "the QuickBooks customer that matches is linked to Digit customer {other} already"
                    );
                    let candidate = StoredCandidate {
                        qbo_customer_id: link.qbo.to_owned(),
                        display_name: known.map(|c| c.display_name.clone()).unwrap_or_default(),
                        active: known.is_none_or(|c| c.active),
                        score: link.score,
                        reasons: link.reasons.to_vec(),
                    };
                    self.review(tenant, link.digit, ReviewKind::Match, &reason, &[candidate])
                        .await
                }
            });
        }
        Ok(results)
    }

    async fn review(
        &self,
        tenant: &TenantId,
        id: &DigitCustomerId,
        kind: ReviewKind,
        reason: &str,
        candidates: &[StoredCandidate],
    ) -> Result<Pushed, PushError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let review_item_id =
            store::reviews::open_review_item(&mut conn, tenant, id, kind, reason, candidates)
                .await?;
        Ok(Pushed::ToReview { review_item_id })
    }
}

/// The last check before a create: the matcher found no candidate, but a QBO customer the
/// lookup returned may still be this one under a spelling the matcher's blocking does not
/// pair (an abbreviation inside the name, say). A create there would be a duplicate, so a
/// similar name goes to a person instead; so does a lookup that was cut short.
pub(super) fn before_create(
    customer: &DigitCustomer,
    found: &[QboCustomer],
    truncated: bool,
) -> Decision {
    let similar = similar_names(&customer.display_name, found);
    if !similar.is_empty() {
        return Decision::Review {
            reason: "QuickBooks has customers with similar names; qbo-sync will not create \
                     a possible duplicate"
                .into(),
            candidates: similar,
        };
    }
    if truncated {
        return Decision::Review {
            reason: "more QuickBooks customers share a word with this name than one lookup \
                     returns: check that none of them is this customer"
                .into(),
            candidates: vec![],
        };
    }
    Decision::Unmatched
}

/// The customers of `found` whose name is similar to `name` by the matcher's own measure
/// (numbers must agree: `Store 12` is never `Store 13`), best first, at most five.
pub(crate) fn similar_names(name: &str, found: &[QboCustomer]) -> Vec<Candidate> {
    let mine = matching::normalize_name(name);
    let mut similar: Vec<Candidate> = found
        .iter()
        .filter_map(|c| {
            let theirs = matching::normalize_name(&c.display_name);
            let score = name_similarity(&mine, &theirs);
            (score >= MIN_NAME_SIMILARITY && mine.numbers() == theirs.numbers()).then(|| {
                Candidate {
                    qbo_id: c.id.clone(),
                    display_name: c.display_name.clone(),
                    active: c.active,
                    linked_to: None,
                    score: score.min(MAX_REVIEW_SCORE),
                    reasons: vec![format!("similar name: '{}'", c.display_name)],
                }
            })
        })
        .collect();
    similar.sort_by(|a, b| b.score.total_cmp(&a.score));
    similar.truncate(MAX_REVIEW_CANDIDATES);
    similar
}

/// The QBO customers whose name holds the customer's most identifying word, and whether the
/// lookup was cut short.
async fn similar_customers(
    qbo: &QboClient,
    tenant: &TenantId,
    customer: &DigitCustomer,
    lane: Lane,
) -> Result<(Vec<QboCustomer>, bool), PushError> {
    let Some(word) = lookup_word(&customer.display_name) else {
        return Ok((Vec::new(), false));
    };
    let found = qbo.find_customers_containing(tenant, &word, lane).await?;
    Ok((found.customers, found.truncated))
}

pub(crate) fn link_method(method: matching::LinkMethod) -> LinkMethod {
    match method {
        matching::LinkMethod::AutoExact => LinkMethod::AutoExact,
        matching::LinkMethod::AutoNormalized => LinkMethod::AutoNormalized,
        matching::LinkMethod::AutoEmail => LinkMethod::AutoEmail,
    }
}

fn stored_candidate(c: Candidate) -> StoredCandidate {
    StoredCandidate {
        qbo_customer_id: c.qbo_id,
        display_name: c.display_name,
        active: c.active,
        score: c.score,
        reasons: c.reasons,
    }
}

pub(crate) fn digit_record(c: &DigitCustomer) -> DigitCustomerRecord {
    DigitCustomerRecord {
        id: c.id.to_string(),
        display_name: c.display_name.clone(),
        company_name: c.company_name.clone(),
        given_name: c.given_name.clone(),
        family_name: c.family_name.clone(),
        email: c.email.clone(),
        phone: c.phone.clone(),
    }
}

pub(crate) fn qbo_record(c: &QboCustomer) -> QboCustomerRecord {
    QboCustomerRecord {
        id: c.id.clone(),
        sync_token: Some(c.sync_token.clone()),
        display_name: c.display_name.clone(),
        fully_qualified_name: c.fully_qualified_name.clone(),
        parent_id: c.parent_id.clone(),
        is_job: c.is_job,
        active: c.active,
        company_name: c.company_name.clone(),
        given_name: c.given_name.clone(),
        family_name: c.family_name.clone(),
        email: c.email.clone(),
        phone: c.phone.clone(),
        digit_marker: None,
    }
}

/// A QBO customer as the mirror keeps it, with the matcher's keys.
#[must_use]
pub fn mirrored(c: &QboCustomer) -> MirroredCustomer {
    let keys = matching::customer_keys(&c.display_name, c.email.as_deref());
    MirroredCustomer {
        realm: c.realm.clone(),
        qbo_id: c.id.clone(),
        sync_token: c.sync_token.clone(),
        display_name: c.display_name.clone(),
        fully_qualified_name: c.fully_qualified_name.clone(),
        parent_qbo_id: c.parent_id.clone(),
        is_job: c.is_job,
        level: c.level,
        active: c.active,
        company_name: c.company_name.clone(),
        given_name: c.given_name.clone(),
        family_name: c.family_name.clone(),
        email: c.email.clone(),
        phone: c.phone.clone(),
        qbo_last_updated_at: c.last_updated,
        name_key: keys.name_key,
        email_key: keys.email_key,
        normalizer_version: i32::try_from(keys.normalizer_version).unwrap_or(i32::MAX),
        name_words: name_words(&c.display_name),
    }
}

/// One failure shared by every customer of a group (the error's sources cannot be cloned).
pub(super) fn fail_all<T>(count: usize, error: PushError) -> Vec<Result<T, Arc<PushError>>> {
    let error = Arc::new(error);
    (0..count).map(|_| Err(Arc::clone(&error))).collect()
}
