//! A customer's candidates, decided at call time against the tenant's mirror by the one
//! decision that equals the batch matcher's ([`super::decide::decide_from_mirror`]), or, when
//! the matcher would propose none, the similar names a push would hold back for
//! ([`super::decide::lookalikes`]). Pairs a person rejected are never proposed.
//! `GetLinkStatus` and the preflight both ask here.

use sqlx::PgPool;

use super::{
    decide::{decide_from_mirror, lookalikes},
    push::{customer_of, similar_names},
};
use crate::{
    domain::{DigitCustomerId, TenantId},
    matching::{Candidate, Decision, DigitCustomerRecord},
    quickbooks::QboCustomer,
    store::{self, StoreError, match_keys::digit_record, reviews::StoredCandidate},
};

/// The best QBO customers for the Digit customer `digit` named `name`, best first (at most
/// five). The customer is decided as stored (e-mail and phone included); `name` stands in for
/// a customer not stored.
///
/// # Errors
/// [`StoreError`] when the database fails.
pub async fn mirror_candidates(
    pool: &PgPool,
    tenant: &TenantId,
    digit: &DigitCustomerId,
    name: &str,
) -> Result<Vec<StoredCandidate>, StoreError> {
    let mut conn = pool.acquire().await?;
    let me = match store::customers::get_digit_customer(&mut conn, tenant, digit).await? {
        Some(stored) => digit_record(&stored),
        None => DigitCustomerRecord {
            id: digit.to_string(),
            display_name: name.to_owned(),
            ..DigitCustomerRecord::default()
        },
    };
    let decided = decide_from_mirror(&mut conn, tenant, &me).await?;
    let seen = match decided.decision {
        Decision::AutoLink { .. } | Decision::Review { .. } => decided.seen.clone(),
        _ => lookalikes(&mut conn, tenant, &me, &decided).await?.0,
    };
    drop(conn);
    let customers: Vec<QboCustomer> = seen.iter().map(customer_of).collect();
    let ranked: Vec<Candidate> = match decided.decision {
        Decision::AutoLink {
            qbo_id,
            score,
            reasons,
            ..
        } => customers
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
        Decision::Review { candidates, .. } => candidates,
        // Nothing the matcher would propose: the names a push would hold back for.
        _ => similar_names(&me.display_name, &customers),
    };
    Ok(ranked
        .into_iter()
        .map(|c| StoredCandidate {
            qbo_customer_id: c.qbo_id,
            display_name: c.display_name,
            active: c.active,
            score: c.score,
            reasons: c.reasons,
        })
        .collect())
}
