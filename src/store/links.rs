//! Links between Digit and QBO customers.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use tracing::instrument;

use super::StoreError;
use crate::domain::{DigitCustomerId, Link, LinkMethod, QboCustomerId, TenantId};

/// Loads the link of one Digit customer, with the QBO display name from the mirror.
///
/// # Errors
/// [`StoreError::Database`] when the read fails; [`StoreError::Corrupt`] when a stored value is invalid.
#[instrument(name = "db.links.get", skip_all, err)]
pub async fn get_link(
    conn: &mut PgConnection,
    tenant: &TenantId,
    digit: &DigitCustomerId,
) -> Result<Option<Link>, StoreError> {
    let row: Option<LinkRow> = sqlx::query_as(
        "SELECT l.digit_customer_id, l.qbo_customer_id, q.display_name AS qbo_display_name, l.method,
                l.reasons, l.score, l.normalizer_version, l.linked_by, l.linked_at
         FROM links l
         LEFT JOIN qbo_customers q ON q.tenant_id = l.tenant_id AND q.qbo_id = l.qbo_customer_id
         WHERE l.tenant_id = $1 AND l.digit_customer_id = $2",
    )
    .bind(tenant.as_str())
    .bind(digit.as_str())
    .fetch_optional(conn)
    .await?;
    row.map(LinkRow::into_domain).transpose()
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    digit_customer_id: String,
    qbo_customer_id: String,
    qbo_display_name: Option<String>,
    method: String,
    reasons: sqlx::types::Json<Vec<String>>,
    score: f64,
    normalizer_version: i32,
    linked_by: String,
    linked_at: DateTime<Utc>,
}

impl LinkRow {
    fn into_domain(self) -> Result<Link, StoreError> {
        let corrupt = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("link {what}: {e}"))
        };
        Ok(Link {
            digit_customer_id: DigitCustomerId::parse(self.digit_customer_id)
                .map_err(|e| corrupt("digit id", &e))?,
            qbo_customer_id: QboCustomerId::parse(self.qbo_customer_id)
                .map_err(|e| corrupt("qbo id", &e))?,
            qbo_display_name: self.qbo_display_name,
            method: LinkMethod::from_stored(&self.method)
                .ok_or_else(|| corrupt("method", &self.method))?,
            reasons: self.reasons.0,
            score: self.score,
            normalizer_version: u32::try_from(self.normalizer_version)
                .map_err(|e| corrupt("normalizer version", &e))?,
            linked_by: self.linked_by,
            linked_at: self.linked_at,
        })
    }
}
