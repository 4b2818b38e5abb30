//! The review queue: the customers the matcher would not decide alone, and a person's
//! decisions on them (accept a candidate, reject them all, or create the customer anew).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Datelike, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    customers::{CustomerError, status_in},
    links::{Actor, LinkError, Linked, link_in},
    push::push_job,
};
use crate::{
    domain::{DigitCustomerId, LinkState, QboCustomerId, TenantId},
    store::{self, StoreError, jobs::PRIORITY_INTERACTIVE, reviews::ReviewRow},
};

/// Items per page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: usize = 50;

/// A person's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// This candidate is the customer: link it.
    Accept(QboCustomerId),
    /// None of the candidates is: remember each pair as "not the same".
    RejectAll,
    /// None is, and the customer must be created in QBO.
    CreateNew,
}

impl Decision {
    fn as_db(&self) -> &'static str {
        match self {
            Self::Accept(_) => "accept_candidate",
            Self::RejectAll => "reject_all",
            Self::CreateNew => "create_new",
        }
    }

    /// What `resolution_note` keeps to tell a repeat from another decision.
    fn note(&self) -> String {
        match self {
            Self::Accept(qbo) => format!("qbo:{qbo}"),
            Self::RejectAll | Self::CreateNew => String::new(),
        }
    }
}

/// What reviewing can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The tenant has no such item.
    #[error("review item '{id}' not found")]
    NotFound {
        /// The id asked for.
        id: Uuid,
    },
    /// The item was decided otherwise before.
    #[error("review item '{id}' was resolved already with another decision")]
    AlreadyResolved {
        /// The item.
        id: Uuid,
    },
    /// The item no longer stands (the customer got linked meanwhile, or the candidate
    /// vanished).
    #[error("review item '{id}' is stale: {why}")]
    Stale {
        /// The item.
        id: Uuid,
        /// What changed.
        why: String,
    },
    /// The accepted QBO customer is not one of the item's candidates.
    #[error("QuickBooks customer '{qbo}' is not one of the item's candidates")]
    NotACandidate {
        /// The id given.
        qbo: QboCustomerId,
    },
    /// The page token is not one this call gave out.
    #[error("page_token is not valid: start again without one")]
    BadPageToken,
    /// The store failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One page of open items.
#[derive(Debug, Clone)]
pub struct ReviewPage {
    /// The items, oldest first.
    pub items: Vec<ReviewRow>,
    /// The next page's token, when there is one.
    pub next_page_token: Option<String>,
}

/// The outcome of a decision.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Where the customer stands now.
    pub state: LinkState,
    /// The link, when the decision made one.
    pub link: Option<crate::domain::Link>,
}

/// The review use cases.
#[derive(Debug, Clone)]
pub struct Reviews {
    pool: PgPool,
}

impl Reviews {
    /// The use cases over the store.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// One page of the tenant's open items, oldest first. New items sort after every page
    /// already handed out, so paging is stable while items are added.
    ///
    /// # Errors
    /// [`ReviewError::BadPageToken`], the store.
    pub async fn list(
        &self,
        tenant: &TenantId,
        page_size: usize,
        page_token: &str,
    ) -> Result<ReviewPage, ReviewError> {
        let size = if page_size == 0 {
            DEFAULT_PAGE_SIZE
        } else {
            page_size
        };
        let after = if page_token.is_empty() {
            None
        } else {
            Some(read_token(page_token, tenant).ok_or(ReviewError::BadPageToken)?)
        };
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let limit = i64::try_from(size + 1).unwrap_or(i64::MAX);
        let mut items = store::reviews::list_open_reviews(&mut conn, tenant, after, limit).await?;
        let next_page_token = (items.len() > size).then(|| {
            items.truncate(size);
            items
                .last()
                .map(|i| write_token(i.created_at, i.id, tenant))
                .unwrap_or_default()
        });
        Ok(ReviewPage {
            items,
            next_page_token,
        })
    }

    /// Carries out a person's decision on an item, in one transaction. The same decision
    /// again is an idempotent OK.
    ///
    /// # Errors
    /// See [`ReviewError`].
    pub async fn resolve(
        &self,
        tenant: &TenantId,
        id: Uuid,
        decision: &Decision,
        actor: Actor<'_>,
    ) -> Result<Resolved, ReviewError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let item = store::reviews::lock_review(&mut tx, tenant, id)
            .await?
            .ok_or(ReviewError::NotFound { id })?;
        let digit = DigitCustomerId::parse(item.digit_customer_id.as_str())
            .map_err(|e| StoreError::Corrupt(format!("review item customer: {e}")))?;
        store::links::lock_customer(&mut tx, tenant, &digit).await?;
        match item.state.as_str() {
            "open" => {}
            "resolved"
                if item.decision.as_deref() == Some(decision.as_db())
                    && item.resolution_note.as_deref().unwrap_or_default() == decision.note() =>
            {
                // The same decision again: where the customer stands now.
                let status = status_in(&mut tx, tenant, &digit)
                    .await
                    .map_err(|e| match e {
                        CustomerError::Store(e) => ReviewError::Store(e),
                        CustomerError::NotFound { .. } => ReviewError::NotFound { id },
                    })?;
                return Ok(Resolved {
                    state: status.state,
                    link: status.link,
                });
            }
            "resolved" => return Err(ReviewError::AlreadyResolved { id }),
            _ => {
                return Err(ReviewError::Stale {
                    id,
                    why: "the customer was decided without it (linked by a sync or by hand)".into(),
                });
            }
        }
        store::reviews::resolve_review(&mut tx, id, decision.as_db(), actor.name, &decision.note())
            .await?;
        let candidates: Vec<String> = item
            .candidates
            .0
            .iter()
            .map(|c| c.qbo_customer_id.clone())
            .collect();
        let resolved = match decision {
            Decision::Accept(qbo) => {
                if !candidates.iter().any(|c| c == qbo.as_str()) {
                    return Err(ReviewError::NotACandidate { qbo: qbo.clone() });
                }
                let linked = link_in(&mut tx, tenant, &digit, qbo, false, actor)
                    .await
                    .map_err(|e| stale_or(id, e))?;
                let Linked { link, .. } = linked;
                Resolved {
                    state: LinkState::Linked,
                    link: Some(link),
                }
            }
            Decision::RejectAll | Decision::CreateNew => {
                if store::links::get_link(&mut tx, tenant, &digit)
                    .await?
                    .is_some()
                {
                    return Err(ReviewError::Stale {
                        id,
                        why: "the customer got linked meanwhile".into(),
                    });
                }
                let reason = if actor.reason.is_empty() {
                    "rejected in review"
                } else {
                    actor.reason
                };
                store::reviews::reject_pairs(
                    &mut tx,
                    tenant,
                    &digit,
                    &candidates,
                    actor.name,
                    reason,
                )
                .await?;
                if *decision == Decision::CreateNew {
                    let job = push_job(&digit, PRIORITY_INTERACTIVE);
                    store::jobs::enqueue_job(&mut tx, tenant, &job).await?;
                    Resolved {
                        state: LinkState::PendingPush,
                        link: None,
                    }
                } else {
                    Resolved {
                        state: LinkState::Unlinked,
                        link: None,
                    }
                }
            }
        };
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(tenant = %tenant, review_item = %id, decision = decision.as_db(),
            actor = actor.name, "review item resolved");
        Ok(resolved)
    }
}

/// A link a decision could not make: the item is stale when the customer or the candidate
/// changed under it.
fn stale_or(id: Uuid, error: LinkError) -> ReviewError {
    match error {
        LinkError::Store(e) => ReviewError::Store(e),
        LinkError::QboCustomerUnknown { .. }
        | LinkError::QboCustomerMissing { .. }
        | LinkError::QboCustomerInactive { .. }
        | LinkError::QboLinkedElsewhere(_) => ReviewError::Stale {
            id,
            why: format!("the candidate changed: {error}"),
        },
        other => ReviewError::Stale {
            id,
            why: other.to_string(),
        },
    }
}

/// A page token: the last item shown (its time and id) and the tenant it was shown to, so a
/// token is refused for any other tenant.
fn write_token(created_at: DateTime<Utc>, id: Uuid, tenant: &TenantId) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "r1:{}:{id}:{tenant}",
        created_at.timestamp_micros()
    ))
}

fn read_token(token: &str, tenant: &TenantId) -> Option<(DateTime<Utc>, Uuid)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let rest = raw.strip_prefix("r1:")?;
    let (micros, rest) = rest.split_once(':')?;
    let (id, token_tenant) = rest.split_once(':')?;
    (token_tenant == tenant.as_str()).then_some(())?;
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    // Every token we issue holds a row's creation time. A forged one may hold an instant chrono
    // knows and PostgreSQL refuses ("timestamp out of range"), which would fail the query.
    (1..=9999).contains(&at.year()).then_some(())?;
    Some((at, Uuid::parse_str(id).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_refuse_junk() {
        let at = DateTime::from_timestamp_micros(1_764_633_600_123_456).unwrap();
        let id = Uuid::new_v4();
        let (t1, t2) = (
            TenantId::parse("t1").unwrap(),
            TenantId::parse("t2").unwrap(),
        );
        assert_eq!(read_token(&write_token(at, id, &t1), &t1), Some((at, id)));
        assert_eq!(
            read_token(&write_token(at, id, &t1), &t2),
            None,
            "another tenant's"
        );
        assert_eq!(read_token("junk", &t1), None);
        assert_eq!(read_token(&URL_SAFE_NO_PAD.encode("r1:x:y:t1"), &t1), None);
    }

    #[test]
    fn forged_tokens_beyond_postgresql_dates_are_refused() {
        // The year 200,000 (and 200,000 BC): chrono reads them, PostgreSQL's timestamptz
        // cannot hold them, and the listing answered INTERNAL before this check.
        let id = Uuid::new_v4();
        let t1 = TenantId::parse("t1").unwrap();
        for micros in [6_248_000_000_000_000_000_i64, -6_373_000_000_000_000_000] {
            let forged = URL_SAFE_NO_PAD.encode(format!("r1:{micros}:{id}:t1"));
            assert_eq!(read_token(&forged, &t1), None, "{micros}");
        }
        let last_day = DateTime::from_timestamp_micros(253_402_214_400_000_000).unwrap();
        assert_eq!(
            read_token(&write_token(last_day, id, &t1), &t1),
            Some((last_day, id))
        );
    }
}
