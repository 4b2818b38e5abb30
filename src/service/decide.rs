//! One Digit customer's matching decision from the tenant's mirror, equal to the batch
//! matcher's decision for it over the whole mirror and every Digit customer (the proof is
//! `tests/it/decide.rs`; the argument is in `docs/matching.md`).
//!
//! The batch sees a QBO customer only through an index lookup, and each lookup reads the
//! first hundred postings of one key in mirror order (a fuzzy key: all of them, unless more
//! than [`matching::FUZZY_POSTING_CAP`]). So the decision reads, through the stored blocking
//! keys, exactly those postings of this customer's keys, the Digit customers its group facts
//! count, and, when it would link automatically, every Digit customer that could link the same
//! QBO customer with what that one's own decision needs: two of them would both go to review.
//! Two to five indexed queries, all in one read-only snapshot; the whole mirror is never read.

use std::collections::HashSet;

use sqlx::PgConnection;

use crate::{
    domain::TenantId,
    matching::{self, BlockingKey, Decision, DigitCustomerRecord, MatchContext, QboCustomerRecord},
    store::{
        self, StoreError,
        match_keys::{DigitNeighbour, QboNeighbours, digit_record, qbo_record},
        mirror::{MirroredCustomer, SIMILAR_LIMIT},
    },
};

use super::push::{lookup_word, name_words};

/// A decision from the mirror and the mirrored customers it looked at.
#[derive(Debug, Clone)]
pub struct MirrorDecision {
    /// What the batch matcher would decide for the customer.
    pub decision: Decision,
    /// The mirrored customers sharing a blocking key with it (those a person rejected for it
    /// left out), in QBO id order.
    pub seen: Vec<MirroredCustomer>,
    /// The QBO customers a person rejected for it.
    pub rejected: Vec<String>,
}

/// Where a push looks for similar names before it creates `me`, beyond what the decision
/// looked at: the mirrored customers holding the name's most identifying word or sharing its
/// name key (what a live push's lookup in QBO returns), those a person rejected left out; and
/// whether that lookup was cut short. Not part of the decision.
///
/// # Errors
/// [`StoreError`] when the database fails.
pub async fn lookalikes(
    conn: &mut PgConnection,
    tenant: &TenantId,
    me: &DigitCustomerRecord,
    decided: &MirrorDecision,
) -> Result<(Vec<MirroredCustomer>, bool), StoreError> {
    let key = matching::customer_keys(&me.display_name, None).name_key;
    let words: Vec<String> = lookup_word(&me.display_name)
        .map(|w| name_words(&w))
        .unwrap_or_default();
    let found = store::mirror::similar_mirrored(conn, tenant, &words, &[key]).await?;
    let truncated = i64::try_from(found.len()).unwrap_or(i64::MAX) >= SIMILAR_LIMIT;
    let mut all = decided.seen.clone();
    let known: HashSet<String> = all.iter().map(|m| m.qbo_id.clone()).collect();
    all.extend(
        found
            .into_iter()
            .filter(|m| !known.contains(&m.qbo_id) && !decided.rejected.contains(&m.qbo_id)),
    );
    Ok((all, truncated))
}

/// Decides `me` against the tenant's mirror and Digit customers as [`matching::match_customers`]
/// would over all of them. `me` is used as given, in place of its stored row (if any).
///
/// # Errors
/// [`StoreError`] when the database fails.
pub async fn decide_from_mirror(
    conn: &mut PgConnection,
    tenant: &TenantId,
    me: &DigitCustomerRecord,
) -> Result<MirrorDecision, StoreError> {
    let mut tx = store::match_keys::begin_decision(conn).await?;
    let decided = decide_in(&mut tx, tenant, me).await;
    // Read only: nothing to commit. Dropping the transaction queues its ROLLBACK, which goes
    // out with the connection's next statement (or the pool's check on release) instead of
    // costing a round trip of its own.
    drop(tx);
    decided
}

/// [`decide_from_mirror`] inside the decision's transaction.
async fn decide_in(
    conn: &mut PgConnection,
    tenant: &TenantId,
    me: &DigitCustomerRecord,
) -> Result<MirrorDecision, StoreError> {
    let keys = matching::digit_blocking_keys(me);
    let me_only = [me.id.clone()];
    let found = store::match_keys::qbo_sharing_keys(conn, tenant, &keys.lookup, &keys.fuzzy);
    let qbo = found.await?;
    // The QBO customers `me` could link automatically share one of their automatic-link keys
    // with its lookups: their holders are read in the same scan, so that rivals for the one it
    // links need no read of their own.
    let extra = possible_targets_keys(&qbo, &keys.lookup);
    let read = store::match_keys::digit_sharing_keys(conn, tenant, &keys.filed, &extra, &me_only);
    let read = read.await?;
    let part = Part::new(me, qbo, &read.customers);
    let alone = part.decide_alone();
    let Decision::AutoLink { qbo_id, .. } = &alone else {
        return Ok(part.into_decision(alone));
    };
    // Only a Digit customer sharing one of the target's automatic-link keys can take it too.
    let target = part.qbo.iter().find(|q| q.id == *qbo_id);
    let auto = target.map(matching::qbo_auto_link_keys).unwrap_or_default();
    let rivals = match read.rivals(tenant, &auto, &me.id) {
        Some(rivals) => rivals,
        None => store::match_keys::digit_rivals(conn, tenant, &auto, &me.id).await?,
    };
    if rivals.is_empty() {
        return Ok(part.into_decision(alone));
    }
    // Each rival's own decision must be the batch's: read what it needs beside ours.
    let mut exact = keys.lookup.clone();
    let mut filed = keys.filed.clone();
    let mut ids = me_only.to_vec();
    for r in &rivals {
        let theirs = matching::digit_blocking_keys(&digit_record(&r.customer));
        exact.extend(theirs.lookup);
        filed.extend(theirs.filed);
        ids.push(r.customer.id.to_string());
    }
    dedup(&mut exact);
    dedup(&mut filed);
    let qbo = store::match_keys::qbo_sharing_keys(conn, tenant, &exact, &keys.fuzzy).await?;
    let read = store::match_keys::digit_sharing_keys(conn, tenant, &filed, &[], &ids).await?;
    let part = Part::new(me, qbo, &read.customers);
    let decision = part.decide_with_rivals();
    Ok(part.into_decision(decision))
}

/// The automatic-link keys of the QBO customers found that share one with `lookup`: those
/// `me` may link automatically.
fn possible_targets_keys(found: &QboNeighbours, lookup: &[BlockingKey]) -> Vec<BlockingKey> {
    let mut keys: Vec<BlockingKey> = found
        .customers
        .iter()
        .map(|(m, _)| matching::qbo_auto_link_keys(&qbo_record(m)))
        .filter(|auto| auto.iter().any(|k| lookup.contains(k)))
        .flatten()
        .collect();
    dedup(&mut keys);
    keys
}

fn dedup(keys: &mut Vec<BlockingKey>) {
    keys.sort_unstable();
    keys.dedup();
}

/// The part of the tenant's data a decision reads, as the matcher takes it.
struct Part {
    mirrored: Vec<MirroredCustomer>,
    qbo: Vec<QboCustomerRecord>,
    digit: Vec<DigitCustomerRecord>,
    /// Where `me` is in `digit`.
    at: usize,
    ctx: MatchContext,
}

impl Part {
    fn new(me: &DigitCustomerRecord, found: QboNeighbours, digit: &[DigitNeighbour]) -> Self {
        let mut links: Vec<(String, String)> = Vec::new();
        let mut mirrored = Vec::with_capacity(found.customers.len());
        for (m, linked) in found.customers {
            links.extend(linked.map(|d| (d, m.qbo_id.clone())));
            mirrored.push(m);
        }
        let mut records: Vec<DigitCustomerRecord> = Vec::with_capacity(digit.len() + 1);
        let mut rejected = Vec::new();
        for n in digit {
            let id = n.customer.id.to_string();
            links.extend(n.linked_to.clone().map(|q| (id.clone(), q)));
            rejected.extend(n.rejected.iter().map(|q| (id.clone(), q.clone())));
            records.push(if id == me.id {
                me.clone()
            } else {
                digit_record(&n.customer)
            });
        }
        let at = match records.iter().position(|r| r.id == me.id) {
            Some(at) => at,
            None => {
                records.push(me.clone());
                records.len() - 1
            }
        };
        links.sort();
        links.dedup();
        Self {
            qbo: mirrored.iter().map(qbo_record).collect(),
            mirrored,
            digit: records,
            at,
            ctx: MatchContext {
                links,
                rejected,
                crowded_fuzzy_keys: found.crowded.iter().map(|k| k.hash()).collect(),
            },
        }
    }

    fn decide_alone(&self) -> Decision {
        matching::decide_before_rivals(&self.qbo, &self.digit, &self.ctx, self.at)
    }

    fn decide_with_rivals(&self) -> Decision {
        let mut outcomes = matching::match_customers(&self.qbo, &self.digit, &self.ctx);
        outcomes.swap_remove(self.at).decision
    }

    fn into_decision(self, decision: Decision) -> MirrorDecision {
        let me = self.digit[self.at].id.as_str();
        let rejected: HashSet<&str> = self
            .ctx
            .rejected
            .iter()
            .filter(|(d, _)| d == me)
            .map(|(_, q)| q.as_str())
            .collect();
        let seen = self
            .mirrored
            .iter()
            .filter(|m| !rejected.contains(m.qbo_id.as_str()))
            .cloned()
            .collect();
        MirrorDecision {
            decision,
            seen,
            rejected: rejected.into_iter().map(str::to_owned).collect(),
        }
    }
}
