//! Review items: customers waiting for a person.

use sqlx::PgConnection;
use tracing::instrument;
use uuid::Uuid;

use super::StoreError;
use crate::domain::{DigitCustomerId, TenantId};

/// A candidate as stored in a review item.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredCandidate {
    /// QBO id.
    pub qbo_customer_id: String,
    /// QBO display name.
    pub display_name: String,
    /// Whether the QBO customer is active.
    pub active: bool,
    /// Matcher score, 0 to 1.
    pub score: f64,
    /// Why.
    pub reasons: Vec<String>,
}

/// The open review item of a customer.
#[derive(Debug, Clone)]
pub struct OpenReview {
    /// The item's id.
    pub id: Uuid,
    /// Why the matcher could not decide.
    pub reason: String,
    /// The candidates, best first.
    pub candidates: Vec<StoredCandidate>,
}

/// Loads the open review item of one Digit customer, if any.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.review_items.open_for_customer", skip_all, err)]
pub async fn open_review_for(
    conn: &mut PgConnection,
    tenant: &TenantId,
    digit: &DigitCustomerId,
) -> Result<Option<OpenReview>, StoreError> {
    let row: Option<(Uuid, String, sqlx::types::Json<Vec<StoredCandidate>>)> = sqlx::query_as(
        "SELECT id, reason, candidates FROM review_items
         WHERE tenant_id = $1 AND digit_customer_id = $2 AND state = 'open'",
    )
    .bind(tenant.as_str())
    .bind(digit.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(id, reason, candidates)| OpenReview {
        id,
        reason,
        candidates: candidates.0,
    }))
}
