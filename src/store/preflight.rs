//! The invoice preflight's reads: everything `ValidateInvoiceCustomer` answers from. A linked
//! customer, the common case, is answered by [`linked_facts`] (the link, its QBO customer and
//! the connection: three index probes); any other by [`preflight_facts`], one query over the
//! six tables that can say why it cannot be invoiced.

use sqlx::PgPool;
use tracing::instrument;

use super::StoreError;
use crate::domain::{DigitCustomerId, TenantId};

/// What the store knows about one Digit customer, for the preflight.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PreflightFacts {
    /// Whether Digit reported the customer.
    pub known: bool,
    /// Its name, when known.
    pub display_name: Option<String>,
    /// The tenant's connection state, when it ever connected.
    pub connection: Option<String>,
    /// The linked QBO customer's id.
    pub qbo_id: Option<String>,
    /// The linked QBO customer's name, when mirrored.
    pub qbo_name: Option<String>,
    /// Whether the linked QBO customer is active, when mirrored.
    pub qbo_active: Option<bool>,
    /// Whether the linked QBO customer vanished from QBO, when mirrored.
    pub qbo_missing: Option<bool>,
    /// The open review item, if any.
    pub review_id: Option<uuid::Uuid>,
    /// Whether its push job (dedupe key `push_key`) is queued, running or parked.
    pub pushing: bool,
}

/// Reads the facts of Digit customer `digit`, whose push job's dedupe key is `push_key`.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.preflight.facts", skip_all, err(level = "debug"))]
pub async fn preflight_facts(
    pool: &PgPool,
    tenant: &TenantId,
    digit: &DigitCustomerId,
    push_key: &str,
) -> Result<PreflightFacts, StoreError> {
    Ok(sqlx::query_as(
        "SELECT c.id IS NOT NULL AS known, c.display_name, conn.state AS connection,
                l.qbo_customer_id AS qbo_id, q.display_name AS qbo_name,
                q.active AS qbo_active, q.missing AS qbo_missing, r.id AS review_id,
                EXISTS (SELECT 1 FROM jobs j WHERE j.tenant_id = $1 AND j.dedupe_key = $3
                        AND j.state IN ('queued', 'running', 'parked')) AS pushing
         FROM (SELECT 1) AS one
         LEFT JOIN digit_customers c ON c.tenant_id = $1 AND c.id = $2
         LEFT JOIN connections conn ON conn.tenant_id = $1
         LEFT JOIN links l ON l.tenant_id = $1 AND l.digit_customer_id = $2
         LEFT JOIN qbo_customers q ON q.tenant_id = $1 AND q.qbo_id = l.qbo_customer_id
         LEFT JOIN review_items r ON r.tenant_id = $1 AND r.digit_customer_id = $2
                                 AND r.state = 'open'",
    )
    .bind(tenant.as_str())
    .bind(digit.as_str())
    .bind(push_key)
    .fetch_one(pool)
    .await?)
}

/// The facts of Digit customer `digit` when it is linked (a link implies Digit reported it,
/// and an answer that is linked never depends on reviews or pushes); `None` when it is not.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.preflight.linked", skip_all, err(level = "debug"))]
pub async fn linked_facts(
    pool: &PgPool,
    tenant: &TenantId,
    digit: &DigitCustomerId,
) -> Result<Option<PreflightFacts>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT TRUE AS known, NULL::text AS display_name, conn.state AS connection,
                l.qbo_customer_id AS qbo_id, q.display_name AS qbo_name,
                q.active AS qbo_active, q.missing AS qbo_missing, NULL::uuid AS review_id,
                FALSE AS pushing
         FROM links l
         LEFT JOIN connections conn ON conn.tenant_id = $1
         LEFT JOIN qbo_customers q ON q.tenant_id = $1 AND q.qbo_id = l.qbo_customer_id
         WHERE l.tenant_id = $1 AND l.digit_customer_id = $2",
    )
    .bind(tenant.as_str())
    .bind(digit.as_str())
    .fetch_optional(pool)
    .await?)
}
