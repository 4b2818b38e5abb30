//! The ordered tiers: existing link, id marker, e-mail, exact normalized name, reordered person
//! name; anything else goes to review with candidates, or is unmatched.

use std::collections::HashMap;

use super::candidates::Pool;
use super::evidence::Evidence;
use super::prepare::{DigitSide, QboSide};
use super::tiers::{Blocker, email_tier, exact_tier, marker_tier, reordered_tier};
use super::types::{Decision, DigitCustomerRecord, MatchContext, MatchOutcome, QboCustomerRecord};

/// Decides, for every Digit customer, whether and how it matches a QBO customer.
///
/// Pure and deterministic: the outcome depends only on the inputs, and comes back in the order
/// of `digit`. The cost is about linear in `qbo.len() + digit.len()` (indexes, no all-pairs).
pub fn match_customers(
    qbo: &[QboCustomerRecord],
    digit: &[DigitCustomerRecord],
    ctx: &MatchContext,
) -> Vec<MatchOutcome> {
    let q = QboSide::build(qbo, ctx);
    let d = DigitSide::build(digit, ctx);
    let mut outcomes: Vec<MatchOutcome> = (0..digit.len())
        .map(|i| MatchOutcome {
            digit_id: digit[i].id.clone(),
            decision: decide(&q, &d, i),
        })
        .collect();
    demote_shared_targets(&mut outcomes, &q);
    outcomes
}

/// The decision for `digit[at]` alone, before [`match_customers`] sets aside automatic links
/// that two Digit customers would make to one QBO customer.
///
/// Equal to that customer's decision in [`match_customers`] over `qbo` and `digit` whenever
/// it is not an automatic link, and then too when no other Digit customer would take the same
/// QBO customer. Panics when `at` is out of range.
pub fn decide_before_rivals(
    qbo: &[QboCustomerRecord],
    digit: &[DigitCustomerRecord],
    ctx: &MatchContext,
    at: usize,
) -> Decision {
    let q = QboSide::build(qbo, ctx);
    let d = DigitSide::build(digit, ctx);
    decide(&q, &d, at)
}

fn decide(q: &QboSide<'_>, d: &DigitSide<'_>, i: usize) -> Decision {
    if let Some(qbo_id) = d.links.get(d.recs[i].id.as_str()) {
        return Decision::AlreadyLinked {
            qbo_id: (*qbo_id).to_string(),
        };
    }
    let ev = Evidence::gather(q, d, i);
    let blocker = match auto_link(q, d, i, &ev) {
        Ok(link) => return link,
        Err(blocker) => blocker,
    };
    let mut pool = Pool::new(q, d, i);
    pool.add_evidence(&ev);
    pool.add_similar();
    let candidates = pool.into_candidates();
    match (blocker, candidates.is_empty()) {
        (Some(reason), _) => Decision::Review { reason, candidates },
        (None, true) => Decision::Unmatched,
        (None, false) => Decision::Review {
            reason: generic_reason(&ev),
            candidates,
        },
    }
}

fn generic_reason(ev: &Evidence) -> String {
    if !ev.twins.is_empty() {
        "names differ only by a qualifier such as '(Dallas)' or '2': ambiguous".into()
    } else if !ev.other_legal.is_empty() {
        "same name but a different or missing legal form".into()
    } else {
        "no certain match; similar QBO customers found".into()
    }
}

/// Runs the automatic tiers in order. `Err(Some(reason))`: a tier found a match it may not take.
fn auto_link(
    q: &QboSide<'_>,
    d: &DigitSide<'_>,
    i: usize,
    ev: &Evidence,
) -> Result<Decision, Option<Blocker>> {
    if !ev.marker.is_empty() {
        return marker_tier(q, d, i, ev).map_err(Some);
    }
    // An e-mail that cannot link is only a note: a unique name may still settle it.
    let email_note = match email_tier(q, d, i, ev) {
        Ok(link) => return Ok(link),
        Err(note) => note,
    };
    if !ev.exact.is_empty() {
        return exact_tier(q, d, i, ev).map_err(Some);
    }
    if !ev.reordered.is_empty() {
        return reordered_tier(q, d, i, ev).map_err(Some);
    }
    Err(email_note)
}

/// Two Digit customers must never link to one QBO customer: both go to review instead.
fn demote_shared_targets(outcomes: &mut [MatchOutcome], q: &QboSide<'_>) {
    let mut targets: HashMap<String, usize> = HashMap::new();
    for o in outcomes.iter() {
        if let Decision::AutoLink { qbo_id, .. } = &o.decision {
            *targets.entry(qbo_id.clone()).or_default() += 1;
        }
    }
    let by_id: HashMap<&str, u32> = q
        .recs
        .iter()
        .enumerate()
        .map(|(p, r)| (r.id.as_str(), p as u32))
        .collect();
    for o in outcomes.iter_mut() {
        let Decision::AutoLink {
            qbo_id,
            score,
            reasons,
            ..
        } = &o.decision
        else {
            continue;
        };
        if targets[qbo_id] > 1 {
            let pos = by_id[qbo_id.as_str()];
            let candidate = q.candidate(pos, score.min(0.99), reasons.clone());
            let reason = format!(
                "{} Digit customers would link to the same QBO customer",
                targets[qbo_id]
            );
            o.decision = Decision::Review {
                reason,
                candidates: vec![candidate],
            };
        }
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
