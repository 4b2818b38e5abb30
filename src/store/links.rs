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
#[instrument(name = "db.links.get", skip_all, err(level = "debug"))]
pub async fn get_link(
    conn: &mut PgConnection,
    tenant: &TenantId,
    digit: &DigitCustomerId,
) -> Result<Option<Link>, StoreError> {
    link_where(conn, tenant, "l.digit_customer_id", digit.as_str()).await
}

/// Loads the links of several Digit customers in one query, with the QBO display names from
/// the mirror; customers without a link are left out.
///
/// # Errors
/// [`StoreError::Database`] when the read fails; [`StoreError::Corrupt`] when a stored value is invalid.
#[instrument(name = "db.links.get_many", skip_all, fields(count = digits.len()), err(level = "debug"))]
pub async fn get_links(
    conn: &mut PgConnection,
    tenant: &TenantId,
    digits: &[String],
) -> Result<Vec<Link>, StoreError> {
    links_where(conn, tenant, "l.digit_customer_id", digits).await
}

/// The tenant's link whose `column` (either side's id, both unique) is `value`, with the QBO
/// display name from the mirror.
async fn link_where(
    conn: &mut PgConnection,
    tenant: &TenantId,
    column: &'static str,
    value: &str,
) -> Result<Option<Link>, StoreError> {
    let links = links_where(conn, tenant, column, &[value.to_owned()]).await?;
    Ok(links.into_iter().next())
}

/// The tenant's links whose `column` (either side's id) is one of `values`, with the QBO
/// display names from the mirror: the one query that reads links.
async fn links_where(
    conn: &mut PgConnection,
    tenant: &TenantId,
    column: &'static str,
    values: &[String],
) -> Result<Vec<Link>, StoreError> {
    let rows: Vec<LinkRow> = sqlx::query_as(&format!(
        "SELECT l.digit_customer_id, l.qbo_customer_id, q.display_name AS qbo_display_name, l.method,
                l.reasons, l.score, l.normalizer_version, l.linked_by, l.linked_at
         FROM links l
         LEFT JOIN qbo_customers q ON q.tenant_id = l.tenant_id AND q.qbo_id = l.qbo_customer_id
         WHERE l.tenant_id = $1 AND {column} = ANY($2)"
    ))
    .bind(tenant.as_str())
    .bind(values)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(LinkRow::into_domain).collect()
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

/// A link to write.
#[derive(Debug, Clone)]
pub struct NewLink<'a> {
    /// Digit side.
    pub digit: &'a DigitCustomerId,
    /// QBO side.
    pub qbo: &'a str,
    /// How it was made.
    pub method: LinkMethod,
    /// Confidence, 0 to 1.
    pub score: f64,
    /// Why, most important first.
    pub reasons: &'a [String],
    /// The normalizer version that decided it (0 when no matcher was involved).
    pub normalizer_version: u32,
    /// Who made it, e.g. `push` or a caller's name.
    pub linked_by: &'a str,
    /// The audit trail's free-text reason.
    pub reason: &'a str,
    /// The sync run that made it, if one did.
    pub run_id: Option<uuid::Uuid>,
    /// The end user a caller acted for, if it said.
    pub on_behalf_of: Option<&'a str>,
}

/// What writing a link found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkInsert {
    /// The link was written, with its audit event.
    Inserted,
    /// This very pair was linked already; nothing changed.
    AlreadyLinked,
    /// The Digit customer is linked to another QBO customer (its id).
    DigitLinkedElsewhere(String),
    /// The QBO customer is linked to another Digit customer (its id).
    QboLinkedElsewhere(String),
}

/// Writes links and their audit events (one statement for all of them), unless a side is
/// linked already; one answer per link, in order. Run it in the transaction that must see the
/// links. Each link names the company of its QBO customer as the mirror holds it, so every
/// QBO customer linked must be in the mirror.
///
/// # Errors
/// [`StoreError::Conflict`] on `links_connection_fkey` when that company is no longer the
/// tenant's; [`StoreError::Database`] when the write fails, e.g. when a QBO customer is not in
/// the mirror (the tenant moved to another company and its mirror was dropped meanwhile).
#[instrument(name = "db.links.insert_many", skip_all, fields(count = links.len()), err(level = "debug"))]
pub async fn insert_links(
    conn: &mut PgConnection,
    tenant: &TenantId,
    links: &[NewLink<'_>],
) -> Result<Vec<LinkInsert>, StoreError> {
    if links.is_empty() {
        return Ok(Vec::new());
    }
    let text = |f: fn(&NewLink<'_>) -> String| -> Vec<String> { links.iter().map(f).collect() };
    let reasons: Vec<serde_json::Value> =
        links.iter().map(|l| serde_json::json!(l.reasons)).collect();
    let inserted: Vec<String> = sqlx::query_scalar(
        "WITH input AS (
             SELECT * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::float8[], $6::jsonb[],
                                  $7::int4[], $8::text[], $9::text[], $10::uuid[], $11::text[])
                 AS t(digit, qbo, method, score, reasons, nver, linked_by, reason, run_id, obo)),
         written AS (
             INSERT INTO links (tenant_id, realm_id, digit_customer_id, qbo_customer_id, method,
                                score, reasons, normalizer_version, linked_by)
             -- The company the mirrored customer was read from: the tenant's, or the foreign
             -- key fails; never the connection's current company for an id read from another.
             SELECT $1, (SELECT q.realm_id FROM qbo_customers q
                         WHERE q.tenant_id = $1 AND q.qbo_id = input.qbo),
                    digit, qbo, method, score, reasons, nver, linked_by FROM input
             ON CONFLICT DO NOTHING
             RETURNING digit_customer_id, qbo_customer_id),
         events AS (
             INSERT INTO link_events (tenant_id, digit_customer_id, action, before, after, actor,
                                      reason, run_id, on_behalf_of)
             SELECT $1, i.digit, 'link', NULL,
                    jsonb_build_object('qbo_customer_id', i.qbo, 'method', i.method,
                                       'score', i.score, 'reasons', i.reasons),
                    i.linked_by, i.reason, i.run_id, i.obo
             FROM written w JOIN input i ON i.digit = w.digit_customer_id AND i.qbo = w.qbo_customer_id)
         SELECT digit_customer_id FROM written",
    )
    .bind(tenant.as_str())
    .bind(text(|l| l.digit.to_string()))
    .bind(text(|l| l.qbo.to_owned()))
    .bind(text(|l| l.method.as_str().to_owned()))
    .bind(links.iter().map(|l| l.score.clamp(0.0, 1.0)).collect::<Vec<_>>())
    .bind(reasons)
    .bind(
        links
            .iter()
            .map(|l| i32::try_from(l.normalizer_version).unwrap_or(i32::MAX))
            .collect::<Vec<_>>(),
    )
    .bind(text(|l| l.linked_by.to_owned()))
    .bind(text(|l| l.reason.to_owned()))
    .bind(links.iter().map(|l| l.run_id).collect::<Vec<_>>())
    .bind(links.iter().map(|l| l.on_behalf_of).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    let inserted: std::collections::HashSet<String> = inserted.into_iter().collect();
    let mut answers = Vec::with_capacity(links.len());
    for link in links {
        if inserted.contains(link.digit.as_str()) {
            answers.push(LinkInsert::Inserted);
        } else {
            answers.push(existing_link(conn, tenant, link).await?);
        }
    }
    Ok(answers)
}

/// Why a link could not be written: which side is taken, and by what.
async fn existing_link(
    conn: &mut PgConnection,
    tenant: &TenantId,
    link: &NewLink<'_>,
) -> Result<LinkInsert, StoreError> {
    let existing: Option<(String, String)> = sqlx::query_as(
        "SELECT digit_customer_id, qbo_customer_id FROM links
         WHERE tenant_id = $1 AND (digit_customer_id = $2 OR qbo_customer_id = $3)
         ORDER BY (digit_customer_id = $2) DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .bind(link.digit.as_str())
    .bind(link.qbo)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match existing {
        Some((digit, qbo)) if digit == link.digit.as_str() && qbo == link.qbo => {
            LinkInsert::AlreadyLinked
        }
        Some((digit, qbo)) if digit == link.digit.as_str() => LinkInsert::DigitLinkedElsewhere(qbo),
        Some((digit, _)) => LinkInsert::QboLinkedElsewhere(digit),
        // Both conflicts vanished between the two statements: a concurrent unlink.
        None => return Err(StoreError::Stale { entity: "link" }),
    })
}

/// How many links the tenant has.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.links.count", skip_all, err(level = "debug"))]
pub async fn count_links(conn: &mut PgConnection, tenant: &TenantId) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM links WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .fetch_one(conn)
        .await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The links of the given QBO customers, as (digit id, qbo id).
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.links.for_qbo", skip_all, err(level = "debug"))]
pub async fn links_of_qbo_customers(
    conn: &mut PgConnection,
    tenant: &TenantId,
    qbo_ids: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT digit_customer_id, qbo_customer_id FROM links
         WHERE tenant_id = $1 AND qbo_customer_id = ANY($2)",
    )
    .bind(tenant.as_str())
    .bind(qbo_ids)
    .fetch_all(conn)
    .await?)
}

/// Pairs a person rejected for the given Digit customers, as (digit id, qbo id).
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.rejected_pairs.for_digit", skip_all, err(level = "debug"))]
pub async fn rejected_pairs_of(
    conn: &mut PgConnection,
    tenant: &TenantId,
    digit_ids: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT digit_customer_id, qbo_customer_id FROM rejected_pairs
         WHERE tenant_id = $1 AND digit_customer_id = ANY($2)",
    )
    .bind(tenant.as_str())
    .bind(digit_ids)
    .fetch_all(conn)
    .await?)
}

/// Every link of the tenant, as (digit id, qbo id).
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.links.all", skip_all, err(level = "debug"))]
pub async fn all_links(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT digit_customer_id, qbo_customer_id FROM links WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_all(conn)
            .await?,
    )
}

/// Every pair of the tenant a person rejected, as (digit id, qbo id).
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.rejected_pairs.all", skip_all, err(level = "debug"))]
pub async fn all_rejected_pairs(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT digit_customer_id, qbo_customer_id FROM rejected_pairs WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_all(conn)
    .await?)
}

/// Serialises the merges of one tenant until the transaction ends, so two deliveries of the
/// same QBO merge (or of two merges in a chain) never interleave.
///
/// # Errors
/// [`StoreError::Database`] when the lock cannot be taken.
#[instrument(name = "db.links.lock_merges", skip_all, err(level = "debug"))]
pub async fn lock_merges(conn: &mut PgConnection, tenant: &TenantId) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('qbo-sync:merge:' || $1, 0))")
        .bind(tenant.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// What following a QBO merge did to the link of the absorbed customer.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeRepoint {
    /// No link pointed at the absorbed customer.
    NotLinked,
    /// The link of this Digit customer now points at the survivor, with its audit event.
    Repointed {
        /// The Digit customer.
        digit: String,
    },
    /// The link was left as it is: the survivor is linked to another Digit customer, or a
    /// person rejected the pair.
    Blocked(BlockedRepoint),
}

/// A link that could not follow a merge.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockedRepoint {
    /// The Digit customer linked to the absorbed customer.
    pub digit: String,
    /// The Digit customer the survivor is linked to, if one is.
    pub survivor_linked_to: Option<String>,
    /// The score of the link to the absorbed customer (to carry into a review).
    pub score: f64,
}

/// Moves the link of the absorbed QBO customer (if any) to the survivor, as method
/// `merge_repoint` with `reasons`, `linked_by = actor` and a `repoint` audit event holding
/// the link before and after; unless the survivor is linked to another Digit customer or a
/// person rejected the pair (then nothing changes). Run it in the merge's transaction, after
/// [`lock_merges`].
///
/// # Errors
/// [`StoreError::Database`] when a statement fails; [`StoreError::Conflict`] on `links_qbo_key`
/// when another writer links the survivor meanwhile (the transaction must then be retried).
#[instrument(name = "db.links.repoint_merged", skip_all, err(level = "debug"))]
pub async fn repoint_merged_link(
    conn: &mut PgConnection,
    tenant: &TenantId,
    absorbed: &QboCustomerId,
    survivor: &QboCustomerId,
    reasons: &[String],
    actor: &str,
) -> Result<MergeRepoint, StoreError> {
    let before: Option<(String, String, f64, serde_json::Value)> = sqlx::query_as(
        "SELECT digit_customer_id, method, score, reasons FROM links
         WHERE tenant_id = $1 AND qbo_customer_id = $2 FOR UPDATE",
    )
    .bind(tenant.as_str())
    .bind(absorbed.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((digit, method, score, old_reasons)) = before else {
        return Ok(MergeRepoint::NotLinked);
    };
    let survivor_linked_to: Option<String> = sqlx::query_scalar(
        "SELECT digit_customer_id FROM links WHERE tenant_id = $1 AND qbo_customer_id = $2",
    )
    .bind(tenant.as_str())
    .bind(survivor.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let rejected: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM rejected_pairs
                        WHERE tenant_id = $1 AND digit_customer_id = $2 AND qbo_customer_id = $3)",
    )
    .bind(tenant.as_str())
    .bind(&digit)
    .bind(survivor.as_str())
    .fetch_one(&mut *conn)
    .await?;
    if survivor_linked_to.is_some() || rejected {
        return Ok(MergeRepoint::Blocked(BlockedRepoint {
            digit,
            survivor_linked_to,
            score,
        }));
    }
    let reason = reasons.first().map_or("", String::as_str);
    sqlx::query(
        "WITH moved AS (
             UPDATE links SET qbo_customer_id = $3, method = 'merge_repoint', reasons = $4,
                              linked_by = $5, linked_at = now()
             WHERE tenant_id = $1 AND digit_customer_id = $2
             RETURNING digit_customer_id, score)
         INSERT INTO link_events (tenant_id, digit_customer_id, action, before, after, actor, reason)
         SELECT $1, m.digit_customer_id, 'repoint',
                jsonb_build_object('qbo_customer_id', $6::text, 'method', $7::text,
                                   'score', m.score, 'reasons', $8::jsonb),
                jsonb_build_object('qbo_customer_id', $3::text, 'method', 'merge_repoint',
                                   'score', m.score, 'reasons', $4::jsonb),
                $5, $9
         FROM moved m",
    )
    .bind(tenant.as_str())
    .bind(&digit)
    .bind(survivor.as_str())
    .bind(serde_json::json!(reasons))
    .bind(actor)
    .bind(absorbed.as_str())
    .bind(&method)
    .bind(&old_reasons)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(MergeRepoint::Repointed { digit })
}

/// The link that holds a QBO customer, if any.
///
/// # Errors
/// [`StoreError::Database`] when the read fails; [`StoreError::Corrupt`] when a stored value is invalid.
#[instrument(name = "db.links.of_qbo", skip_all, err(level = "debug"))]
pub async fn link_of_qbo_customer(
    conn: &mut PgConnection,
    tenant: &TenantId,
    qbo: &str,
) -> Result<Option<Link>, StoreError> {
    link_where(conn, tenant, "l.qbo_customer_id", qbo).await
}

/// Who removes a link, and why.
#[derive(Debug, Clone, Copy)]
pub struct Removal<'a> {
    /// `unlink`, or `replace` when another link takes its place.
    pub action: &'a str,
    /// The caller's name.
    pub actor: &'a str,
    /// The end user the caller acted for.
    pub on_behalf_of: Option<&'a str>,
    /// The audit trail's reason.
    pub reason: &'a str,
}

/// Removes the Digit customer's link, with its audit event (the link as it was), and starts
/// its push over (a later push gets a fresh `requestid`). Returns the link removed, if any.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.links.remove", skip_all, err(level = "debug"))]
pub async fn remove_link(
    conn: &mut PgConnection,
    tenant: &TenantId,
    digit: &DigitCustomerId,
    removal: Removal<'_>,
) -> Result<Option<Link>, StoreError> {
    let Some(link) = get_link(&mut *conn, tenant, digit).await? else {
        return Ok(None);
    };
    sqlx::query(
        "WITH gone AS (
             DELETE FROM links WHERE tenant_id = $1 AND digit_customer_id = $2
             RETURNING qbo_customer_id, method, score, reasons),
         bumped AS (
             UPDATE digit_customers SET push_generation = push_generation + 1
             WHERE tenant_id = $1 AND id = $2)
         INSERT INTO link_events (tenant_id, digit_customer_id, action, before, after, actor,
                                  reason, on_behalf_of)
         SELECT $1, $2, $3,
                jsonb_build_object('qbo_customer_id', qbo_customer_id, 'method', method,
                                   'score', score, 'reasons', reasons),
                NULL, $4, $5, $6
         FROM gone",
    )
    .bind(tenant.as_str())
    .bind(digit.as_str())
    .bind(removal.action)
    .bind(removal.actor)
    .bind(removal.reason)
    .bind(removal.on_behalf_of)
    .execute(&mut *conn)
    .await?;
    Ok(Some(link))
}

/// Locks the Digit customer's row until the transaction ends, so link changes of one customer
/// happen one at a time. Returns whether the customer exists.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.digit_customers.lock", skip_all, err(level = "debug"))]
pub async fn lock_customer(
    conn: &mut PgConnection,
    tenant: &TenantId,
    digit: &DigitCustomerId,
) -> Result<bool, StoreError> {
    let found: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM digit_customers WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(tenant.as_str())
    .bind(digit.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// One audit event as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkEventRow {
    /// Its id; higher is newer.
    pub id: i64,
    /// The Digit customer.
    pub digit_customer_id: String,
    /// `link`, `unlink`, `replace` or `repoint`.
    pub action: String,
    /// The link before.
    pub before: Option<sqlx::types::Json<serde_json::Value>>,
    /// The link after.
    pub after: Option<sqlx::types::Json<serde_json::Value>>,
    /// Who.
    pub actor: String,
    /// For whom.
    pub on_behalf_of: Option<String>,
    /// Why.
    pub reason: String,
    /// The sync run, if one made it.
    pub run_id: Option<uuid::Uuid>,
    /// When.
    pub occurred_at: DateTime<Utc>,
}

/// The tenant's audit events (one customer's when `digit` is set), newest first, older than
/// event `before` when set; at most `limit`.
///
/// # Errors
/// [`StoreError::Database`] when the read fails.
#[instrument(name = "db.link_events.list", skip_all, err(level = "debug"))]
pub async fn list_link_events(
    conn: &mut PgConnection,
    tenant: &TenantId,
    digit: Option<&DigitCustomerId>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<LinkEventRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, digit_customer_id, action, before, after, actor, on_behalf_of, reason, run_id,
                occurred_at
         FROM link_events
         WHERE tenant_id = $1 AND ($2::text IS NULL OR digit_customer_id = $2)
           AND ($3::bigint IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(tenant.as_str())
    .bind(digit.map(DigitCustomerId::as_str))
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
