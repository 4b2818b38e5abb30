//! A customer's candidates, decided at call time against the tenant's mirror: the mirrored
//! QBO customers sharing its name key or its most identifying word (through the indexes, never
//! the whole mirror), ranked by the matcher, or, when the matcher would propose none, the
//! similar names a push would hold back for. Pairs a person rejected are never proposed.
//! `GetLinkStatus` and the preflight both ask here.

use sqlx::PgPool;

use super::push::{customer_of, lookup_word, name_words, qbo_record, similar_names};
use crate::{
    domain::{DigitCustomerId, TenantId},
    matching::{self, Candidate, Decision, DigitCustomerRecord, MatchContext, QboCustomerRecord},
    quickbooks::QboCustomer,
    store::{self, StoreError, reviews::StoredCandidate},
};

/// The best QBO customers for the Digit customer `digit` named `name`, best first (at most
/// five).
///
/// # Errors
/// [`StoreError`] when the database fails.
pub async fn mirror_candidates(
    pool: &PgPool,
    tenant: &TenantId,
    digit: &DigitCustomerId,
    name: &str,
) -> Result<Vec<StoredCandidate>, StoreError> {
    let key = matching::customer_keys(name, None).name_key;
    // The name's most identifying word, spelled as the mirror's words index keeps it.
    let words: Vec<String> = lookup_word(name)
        .map(|w| name_words(&w))
        .unwrap_or_default();
    let mut conn = pool.acquire().await?;
    let found = store::mirror::similar_mirrored(&mut conn, tenant, &words, &[key]).await?;
    let ids: Vec<String> = found.iter().map(|m| m.qbo_id.clone()).collect();
    let ctx = MatchContext {
        links: store::links::links_of_qbo_customers(&mut conn, tenant, &ids).await?,
        rejected: store::links::rejected_pairs_of(&mut conn, tenant, &[digit.to_string()]).await?,
        ..MatchContext::default()
    };
    drop(conn);
    // Pairs a person rejected are never proposed again.
    let customers: Vec<QboCustomer> = found
        .iter()
        .filter(|m| !ctx.rejected.iter().any(|(_, q)| *q == m.qbo_id))
        .map(customer_of)
        .collect();
    let qbo: Vec<QboCustomerRecord> = customers.iter().map(qbo_record).collect();
    let me = DigitCustomerRecord {
        id: digit.to_string(),
        display_name: name.to_owned(),
        ..DigitCustomerRecord::default()
    };
    let outcome = matching::match_customers(&qbo, &[me], &ctx).pop();
    let ranked: Vec<Candidate> = match outcome.map(|o| o.decision) {
        Some(Decision::AutoLink {
            qbo_id,
            score,
            reasons,
            ..
        }) => customers
            .iter()
            .filter(|c| c.id == qbo_id)
            .map(|c| Candidate {
                qbo_id: c.id.clone(),
                display_name: c.display_name.clone(),
                active: c.active,
                linked_to: None,
                score,
                reasons: reasons.clone(),
            })
            .collect(),
        Some(Decision::Review { candidates, .. }) => candidates,
        // Nothing the matcher would propose: the names a push would hold back for.
        _ => similar_names(name, &customers),
    };
    let candidates: Vec<StoredCandidate> = ranked
        .into_iter()
        .map(|c| StoredCandidate {
            qbo_customer_id: c.qbo_id,
            display_name: c.display_name,
            active: c.active,
            score: c.score,
            reasons: c.reasons,
        })
        .collect();
    Ok(candidates)
}
