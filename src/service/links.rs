//! Links made and removed by hand, and the audit trail that keeps every change.
//!
//! Every change happens in one transaction holding the Digit customer's row lock, so two
//! changes of one customer never interleave, and appends its audit event (actor, the end user
//! the caller acted for, reason, the link before and after) in the same statement as the
//! change itself.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sqlx::PgPool;

use super::push::push_dedupe_key;
use crate::{
    domain::{DigitCustomerId, Link, LinkMethod, QboCustomerId, TenantId},
    store::{
        self, StoreError,
        links::{LinkEventRow, LinkInsert, NewLink, Removal},
    },
};

/// Events per page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The most events per page.
pub const MAX_PAGE_SIZE: usize = 500;

/// What changing links by hand can fail with.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The tenant has no such Digit customer.
    #[error("customer '{id}' not found")]
    CustomerNotFound {
        /// The id asked for.
        id: DigitCustomerId,
    },
    /// The mirror has never seen this QBO customer.
    #[error(
        "QuickBooks customer '{qbo}' is not known to qbo-sync: run a sync (TriggerSync) so it is \
         read from QuickBooks, then link again"
    )]
    QboCustomerUnknown {
        /// The id asked for.
        qbo: QboCustomerId,
    },
    /// QBO no longer has the customer (merged away, or gone).
    #[error("QuickBooks customer '{qbo}' no longer exists in QuickBooks: link another one")]
    QboCustomerMissing {
        /// The id asked for.
        qbo: QboCustomerId,
    },
    /// The QBO customer is inactive.
    #[error(
        "QuickBooks customer '{qbo}' is inactive: reactivate it in QuickBooks first, or link \
         another one"
    )]
    QboCustomerInactive {
        /// The id asked for.
        qbo: QboCustomerId,
    },
    /// The Digit customer is linked to another QBO customer.
    #[error(
        "customer '{}' is linked to QuickBooks customer '{}' already: unlink it first, or set \
         replace_existing",
        .0.digit_customer_id, .0.qbo_customer_id
    )]
    DigitLinkedElsewhere(Box<Link>),
    /// The QBO customer is linked to another Digit customer.
    #[error(
        "QuickBooks customer '{}' is linked to customer '{}' already: unlink that one first, or \
         set replace_existing",
        .0.qbo_customer_id, .0.digit_customer_id
    )]
    QboLinkedElsewhere(Box<Link>),
    /// A push is creating the customer in QBO right now.
    #[error(
        "customer '{id}' is being created in QuickBooks right now: wait a few seconds, then look \
         at its status before linking"
    )]
    PushInProgress {
        /// The customer.
        id: DigitCustomerId,
    },
    /// The customer is not linked.
    #[error("customer '{id}' is not linked to a QuickBooks customer")]
    NotLinked {
        /// The customer.
        id: DigitCustomerId,
    },
    /// The page token is not one this call gave out for the same request.
    #[error("page_token is not valid for this request: start again without one")]
    BadPageToken,
    /// Another change of the same customer won the race; the caller may try again.
    #[error("the customer's links changed meanwhile: try again")]
    Conflict,
    /// The store failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who asks for a change.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The caller's name.
    pub name: &'a str,
    /// The end user it acts for, if it said.
    pub on_behalf_of: Option<&'a str>,
    /// Why, for the audit trail.
    pub reason: &'a str,
}

/// A manual link's outcome.
#[derive(Debug, Clone)]
pub struct Linked {
    /// The link in force.
    pub link: Link,
    /// The links removed to make room (with `replace_existing`).
    pub replaced: Vec<Link>,
    /// False when this very pair was linked already (nothing changed, no event).
    pub changed: bool,
}

/// One page of audit events.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The events, newest first.
    pub events: Vec<LinkEventRow>,
    /// The next page's token, when there is one.
    pub next_page_token: Option<String>,
}

/// The use cases of manual links and the audit trail.
#[derive(Debug, Clone)]
pub struct Links {
    pool: PgPool,
}

impl Links {
    /// The use cases over the store.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Links a Digit customer to a QBO customer by hand. Linking the pair that is linked
    /// already is an OK that changes nothing.
    ///
    /// # Errors
    /// See [`LinkError`]: the customer unknown, the QBO customer unknown, missing or inactive,
    /// a side linked elsewhere (unless `replace_existing`), a push under way, the store.
    pub async fn link(
        &self,
        tenant: &TenantId,
        digit: &DigitCustomerId,
        qbo: &QboCustomerId,
        replace_existing: bool,
        actor: Actor<'_>,
    ) -> Result<Linked, LinkError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        if !store::links::lock_customer(&mut tx, tenant, digit).await? {
            return Err(LinkError::CustomerNotFound { id: digit.clone() });
        }
        let linked = link_in(&mut tx, tenant, digit, qbo, replace_existing, actor).await?;
        tx.commit().await.map_err(StoreError::from)?;
        if linked.changed {
            tracing::info!(tenant = %tenant, actor = actor.name, replaced = linked.replaced.len(), "customer linked by hand");
        }
        Ok(linked)
    }

    /// Removes a customer's link, with its audit event. Returns the link removed.
    ///
    /// # Errors
    /// [`LinkError::CustomerNotFound`], [`LinkError::NotLinked`], the store.
    pub async fn unlink(
        &self,
        tenant: &TenantId,
        digit: &DigitCustomerId,
        actor: Actor<'_>,
    ) -> Result<Link, LinkError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        if !store::links::lock_customer(&mut tx, tenant, digit).await? {
            return Err(LinkError::CustomerNotFound { id: digit.clone() });
        }
        let removal = Removal {
            action: "unlink",
            actor: actor.name,
            on_behalf_of: actor.on_behalf_of,
            reason: actor.reason,
        };
        let removed = store::links::remove_link(&mut tx, tenant, digit, removal)
            .await?
            .ok_or_else(|| LinkError::NotLinked { id: digit.clone() })?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(tenant = %tenant, actor = actor.name, "customer unlinked by hand");
        Ok(removed)
    }

    /// One page of the tenant's audit trail, newest first (one customer's when `digit` is
    /// set). `page_size` 0 means the default; the caller checked it is at most
    /// [`MAX_PAGE_SIZE`].
    ///
    /// # Errors
    /// [`LinkError::BadPageToken`], the store.
    pub async fn events(
        &self,
        tenant: &TenantId,
        digit: Option<&DigitCustomerId>,
        page_size: usize,
        page_token: &str,
    ) -> Result<EventPage, LinkError> {
        let size = if page_size == 0 {
            DEFAULT_PAGE_SIZE
        } else {
            page_size.min(MAX_PAGE_SIZE)
        };
        let filter = format!("{tenant}/{}", digit.map_or("", DigitCustomerId::as_str));
        let before = if page_token.is_empty() {
            None
        } else {
            Some(read_token(page_token, &filter).ok_or(LinkError::BadPageToken)?)
        };
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let limit = i64::try_from(size + 1).unwrap_or(i64::MAX);
        let mut events =
            store::links::list_link_events(&mut conn, tenant, digit, before, limit).await?;
        let next_page_token = (events.len() > size).then(|| {
            events.truncate(size);
            write_token(events.last().map_or(0, |e| e.id), &filter)
        });
        Ok(EventPage {
            events,
            next_page_token,
        })
    }
}

/// The checks and writes of a manual link, in the caller's transaction, which holds the
/// Digit customer's row lock (see [`store::links::lock_customer`]).
pub(crate) async fn link_in(
    tx: &mut sqlx::PgConnection,
    tenant: &TenantId,
    digit: &DigitCustomerId,
    qbo: &QboCustomerId,
    replace_existing: bool,
    actor: Actor<'_>,
) -> Result<Linked, LinkError> {
    match store::mirror::mirrored_state(&mut *tx, tenant, qbo.as_str()).await? {
        None => return Err(LinkError::QboCustomerUnknown { qbo: qbo.clone() }),
        Some((_, _, true)) => return Err(LinkError::QboCustomerMissing { qbo: qbo.clone() }),
        Some((_, false, _)) => {
            return Err(LinkError::QboCustomerInactive { qbo: qbo.clone() });
        }
        Some(_) => {}
    }
    let existing = store::links::get_link(&mut *tx, tenant, digit).await?;
    if let Some(link) = existing.as_ref().filter(|l| l.qbo_customer_id == *qbo) {
        return Ok(Linked {
            link: link.clone(),
            replaced: Vec::new(),
            changed: false,
        });
    }
    let holder = store::links::link_of_qbo_customer(&mut *tx, tenant, qbo.as_str()).await?;
    if !replace_existing {
        if let Some(link) = existing {
            return Err(LinkError::DigitLinkedElsewhere(Box::new(link)));
        }
        if let Some(link) = holder {
            return Err(LinkError::QboLinkedElsewhere(Box::new(link)));
        }
    }
    let push_key = push_dedupe_key(digit);
    match store::jobs::live_job_state(&mut *tx, tenant, &push_key)
        .await?
        .as_deref()
    {
        Some("running") => return Err(LinkError::PushInProgress { id: digit.clone() }),
        Some(_) => {
            // A waiting push has nothing left to do once the customer is linked.
            store::jobs::cancel_waiting_job(&mut *tx, tenant, &push_key).await?;
        }
        None => {}
    }
    let removal = Removal {
        action: "replace",
        actor: actor.name,
        on_behalf_of: actor.on_behalf_of,
        reason: actor.reason,
    };
    let mut replaced = Vec::new();
    if existing.is_some()
        && let Some(old) = store::links::remove_link(&mut *tx, tenant, digit, removal).await?
    {
        replaced.push(old);
    }
    if let Some(other) = holder
        && let Some(old) =
            store::links::remove_link(&mut *tx, tenant, &other.digit_customer_id, removal).await?
    {
        replaced.push(old);
    }
    let reasons = vec![if actor.reason.is_empty() {
        format!("linked by hand by {}", actor.name)
    } else {
        actor.reason.to_owned()
    }];
    let new = NewLink {
        digit,
        qbo: qbo.as_str(),
        method: LinkMethod::Manual,
        score: 1.0,
        reasons: &reasons,
        normalizer_version: 0,
        linked_by: actor.name,
        reason: actor.reason,
        run_id: None,
        on_behalf_of: actor.on_behalf_of,
    };
    let inserted = store::links::insert_links(&mut *tx, tenant, &[new]).await?;
    if inserted.first() != Some(&LinkInsert::Inserted) {
        return Err(LinkError::Conflict);
    }
    store::reviews::supersede_open_reviews(
        &mut *tx,
        tenant,
        &[digit.to_string()],
        "linked by hand",
    )
    .await?;
    let link = store::links::get_link(&mut *tx, tenant, digit)
        .await?
        .ok_or(LinkError::Conflict)?;
    Ok(Linked {
        link,
        replaced,
        changed: true,
    })
}

/// A page token: the last event id shown and the tenant and filter it was shown under, so a
/// token is only good for the request that produced it.
fn write_token(last_id: i64, filter: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("e1:{last_id}:{filter}"))
}

fn read_token(token: &str, filter: &str) -> Option<i64> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let rest = raw.strip_prefix("e1:")?;
    let (id, token_filter) = rest.split_once(':')?;
    // The filter is `tenant/customer`; a token of another tenant or customer is refused.
    (token_filter == filter).then_some(())?;
    id.parse().ok().filter(|id: &i64| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_only_serve_their_own_request() {
        let token = write_token(42, "t1/c1");
        assert_eq!(read_token(&token, "t1/c1"), Some(42));
        assert_eq!(read_token(&token, "t1/"), None, "another filter");
        assert_eq!(read_token(&token, "t2/c1"), None, "another tenant");
        assert_eq!(read_token(&write_token(42, "t1/"), "t1/"), Some(42));
        assert_eq!(read_token("not base64 !", ""), None);
        assert_eq!(read_token(&URL_SAFE_NO_PAD.encode("e1:-5:"), ""), None);
        assert_eq!(read_token(&URL_SAFE_NO_PAD.encode("x1:5:"), ""), None);
    }
}
