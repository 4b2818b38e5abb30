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
#[instrument(
    name = "db.review_items.open_for_customer",
    skip_all,
    err(level = "debug")
)]
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

/// What a review item asks a person to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewKind {
    /// Choose among match candidates (or none).
    Match,
    /// An inactive QBO customer holds the name: reactivate it and link, or create anew.
    Reactivate,
    /// QBO refused the name on create and the holder is not certainly this customer.
    NameCollision,
    /// A rename of a linked customer collides with another QBO name.
    RenameCollision,
}

impl ReviewKind {
    /// The stored spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Match => "match",
            Self::Reactivate => "reactivate",
            Self::NameCollision => "name_collision",
            Self::RenameCollision => "rename_collision",
        }
    }
}

/// Opens a review item for a Digit customer unless one is open already. Returns the open
/// item's id (the new one, or the one that was open).
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.review_items.open", skip_all, err(level = "debug"))]
pub async fn open_review_item(
    conn: &mut PgConnection,
    tenant: &TenantId,
    digit: &DigitCustomerId,
    kind: ReviewKind,
    reason: &str,
    candidates: &[StoredCandidate],
) -> Result<Uuid, StoreError> {
    let item = NewReview {
        digit: digit.to_string(),
        kind,
        reason: reason.to_owned(),
        candidates: candidates.to_vec(),
    };
    let created = open_review_items(&mut *conn, tenant, std::slice::from_ref(&item), None).await?;
    match created.into_iter().next() {
        Some((_, id)) => Ok(id),
        None => open_review_for(conn, tenant, digit)
            .await?
            .map(|open| open.id)
            .ok_or(StoreError::Stale {
                entity: "review item",
            }),
    }
}

/// The tenant's Digit customers with an open review item.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(
    name = "db.review_items.open_customers",
    skip_all,
    err(level = "debug")
)]
pub async fn customers_in_review(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT digit_customer_id FROM review_items WHERE tenant_id = $1 AND state = 'open'",
    )
    .bind(tenant.as_str())
    .fetch_all(conn)
    .await?)
}

/// A review item to open.
#[derive(Debug, Clone)]
pub struct NewReview {
    /// The Digit customer.
    pub digit: String,
    /// What to decide.
    pub kind: ReviewKind,
    /// Why the matcher could not.
    pub reason: String,
    /// The candidates, best first.
    pub candidates: Vec<StoredCandidate>,
}

/// Opens review items in one statement (a customer with an open item keeps it); returns the
/// Digit customers that got a new one, each with its item's id.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.review_items.open_many", skip_all, fields(count = items.len()), err(level = "debug"))]
pub async fn open_review_items(
    conn: &mut PgConnection,
    tenant: &TenantId,
    items: &[NewReview],
    run_id: Option<Uuid>,
) -> Result<Vec<(String, Uuid)>, StoreError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let candidates: Vec<serde_json::Value> = items
        .iter()
        .map(|i| serde_json::json!(i.candidates))
        .collect();
    Ok(sqlx::query_as(
        "INSERT INTO review_items (id, tenant_id, digit_customer_id, state, kind, reason,
                                   candidates, run_id)
         SELECT gen_random_uuid(), $1, digit, 'open', kind, reason, candidates, $6
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::jsonb[])
             AS t(digit, kind, reason, candidates)
         ON CONFLICT (tenant_id, digit_customer_id) WHERE state = 'open' DO NOTHING
         RETURNING digit_customer_id, id",
    )
    .bind(tenant.as_str())
    .bind(items.iter().map(|i| i.digit.clone()).collect::<Vec<_>>())
    .bind(items.iter().map(|i| i.kind.as_str()).collect::<Vec<_>>())
    .bind(items.iter().map(|i| i.reason.clone()).collect::<Vec<_>>())
    .bind(candidates)
    .bind(run_id)
    .fetch_all(conn)
    .await?)
}

/// Closes, as superseded, the open review items of customers that got linked without a
/// person; returns how many.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.review_items.supersede", skip_all, err(level = "debug"))]
pub async fn supersede_open_reviews(
    conn: &mut PgConnection,
    tenant: &TenantId,
    digit_ids: &[String],
    note: &str,
) -> Result<u64, StoreError> {
    if digit_ids.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        "UPDATE review_items SET state = 'superseded', resolved_at = now(), resolution_note = $3
         WHERE tenant_id = $1 AND state = 'open' AND digit_customer_id = ANY($2)",
    )
    .bind(tenant.as_str())
    .bind(digit_ids)
    .bind(note)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// A review item as a person sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReviewRow {
    /// The item's id.
    pub id: Uuid,
    /// The Digit customer.
    pub digit_customer_id: String,
    /// Its name.
    pub digit_display_name: String,
    /// `open`, `resolved` or `superseded`.
    pub state: String,
    /// What to decide.
    pub kind: String,
    /// Why the matcher could not.
    pub reason: String,
    /// The candidates, best first.
    pub candidates: sqlx::types::Json<Vec<StoredCandidate>>,
    /// The sync run that opened it, if one did.
    pub run_id: Option<Uuid>,
    /// `accept_candidate`, `reject_all` or `create_new`, once resolved.
    pub decision: Option<String>,
    /// The person's note; for an accepted candidate, its QBO id.
    pub resolution_note: Option<String>,
    /// When it was opened.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

const REVIEW_COLUMNS: &str = "r.id, r.digit_customer_id, c.display_name AS digit_display_name,
    r.state, r.kind, r.reason, r.candidates, r.run_id, r.decision, r.resolution_note, r.created_at";

/// The tenant's open review items, oldest first, after `(created_at, id)` when set; at most
/// `limit`.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.review_items.list_open", skip_all, err(level = "debug"))]
pub async fn list_open_reviews(
    conn: &mut PgConnection,
    tenant: &TenantId,
    after: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ReviewRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {REVIEW_COLUMNS}
         FROM review_items r
         JOIN digit_customers c ON c.tenant_id = r.tenant_id AND c.id = r.digit_customer_id
         WHERE r.tenant_id = $1 AND r.state = 'open'
           AND ($2::timestamptz IS NULL OR (r.created_at, r.id) > ($2, $3))
         ORDER BY r.created_at, r.id LIMIT $4"
    ))
    .bind(tenant.as_str())
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// One review item of the tenant, locked until the transaction ends.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.review_items.lock", skip_all, err(level = "debug"))]
pub async fn lock_review(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<ReviewRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {REVIEW_COLUMNS}
         FROM review_items r
         JOIN digit_customers c ON c.tenant_id = r.tenant_id AND c.id = r.digit_customer_id
         WHERE r.tenant_id = $1 AND r.id = $2
         FOR UPDATE OF r"
    ))
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Records a person's decision on an open item.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.review_items.resolve", skip_all, err(level = "debug"))]
pub async fn resolve_review(
    conn: &mut PgConnection,
    id: Uuid,
    decision: &str,
    by: &str,
    note: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE review_items SET state = 'resolved', decision = $2, resolved_by = $3,
                resolution_note = $4, resolved_at = now()
         WHERE id = $1 AND state = 'open'",
    )
    .bind(id)
    .bind(decision)
    .bind(by)
    .bind(note)
    .execute(conn)
    .await?;
    Ok(())
}

/// Remembers that a person said these QBO customers are not this Digit customer: no sync and
/// no status call proposes them again.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.rejected_pairs.insert", skip_all, err(level = "debug"))]
pub async fn reject_pairs(
    conn: &mut PgConnection,
    tenant: &TenantId,
    digit: &DigitCustomerId,
    qbo_ids: &[String],
    by: &str,
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO rejected_pairs (tenant_id, digit_customer_id, qbo_customer_id, rejected_by, reason)
         SELECT $1, $2, q, $4, $5 FROM UNNEST($3::text[]) AS q
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(digit.as_str())
    .bind(qbo_ids)
    .bind(by)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}
