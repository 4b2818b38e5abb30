//! The `connections` aggregate: a tenant's link to its QBO company and its (encrypted) tokens.
//!
//! Token refresh is serialized per connection across replicas by [`lock_for_refresh`]
//! (`SELECT ... FOR UPDATE` on the row): the second replica waits, then sees a bumped
//! `token_generation` and uses the tokens the first one stored instead of refreshing again.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tracing::instrument;

use super::StoreError;
use crate::domain::{RealmId, TenantId};

/// The lifecycle state of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Tokens work (as far as we know).
    Connected,
    /// The refresh token was refused (`invalid_grant`): a person must reconnect.
    NeedsReauth,
    /// The tenant disconnected.
    Disconnected,
}

impl ConnectionState {
    fn as_db(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::NeedsReauth => "needs_reauth",
            Self::Disconnected => "disconnected",
        }
    }

    fn from_db(text: &str) -> Result<Self, StoreError> {
        match text {
            "connected" => Ok(Self::Connected),
            "needs_reauth" => Ok(Self::NeedsReauth),
            "disconnected" => Ok(Self::Disconnected),
            other => Err(StoreError::Corrupt(format!("connection state {other:?}"))),
        }
    }
}

/// Encrypted tokens with their expiry times, ready to store.
#[derive(Debug, Clone)]
pub struct SealedTokens {
    /// The sealed access token.
    pub access_token_enc: Vec<u8>,
    /// When the access token expires.
    pub access_token_expires_at: DateTime<Utc>,
    /// The sealed refresh token (always the newest one QBO returned).
    pub refresh_token_enc: Vec<u8>,
    /// When the refresh token expires, when QBO said.
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
}

/// A connection row.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The QBO company.
    pub realm_id: RealmId,
    /// `sandbox` or `production`.
    pub environment: String,
    /// Lifecycle state.
    pub state: ConnectionState,
    /// Sealed access token.
    pub access_token_enc: Option<Vec<u8>>,
    /// Access token expiry.
    pub access_token_expires_at: Option<DateTime<Utc>>,
    /// Sealed refresh token.
    pub refresh_token_enc: Option<Vec<u8>>,
    /// Bumped on every token change.
    pub token_generation: i64,
    /// Why the connection last failed, if it did.
    pub last_error: Option<String>,
    /// Refresh token expiry, when QBO said.
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    /// When the company was (last) connected.
    pub connected_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ConnectionRecord {
    tenant_id: String,
    realm_id: String,
    environment: String,
    state: String,
    access_token_enc: Option<Vec<u8>>,
    access_token_expires_at: Option<DateTime<Utc>>,
    refresh_token_enc: Option<Vec<u8>>,
    token_generation: i64,
    last_error: Option<String>,
    refresh_token_expires_at: Option<DateTime<Utc>>,
    connected_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ConnectionRecord> for Connection {
    type Error = StoreError;

    fn try_from(r: ConnectionRecord) -> Result<Self, StoreError> {
        Ok(Self {
            tenant_id: TenantId::parse(r.tenant_id)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            realm_id: RealmId::parse(r.realm_id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            environment: r.environment,
            state: ConnectionState::from_db(&r.state)?,
            access_token_enc: r.access_token_enc,
            access_token_expires_at: r.access_token_expires_at,
            refresh_token_enc: r.refresh_token_enc,
            token_generation: r.token_generation,
            last_error: r.last_error,
            refresh_token_expires_at: r.refresh_token_expires_at,
            connected_at: r.connected_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str = "tenant_id, realm_id, environment, state, access_token_enc, \
     access_token_expires_at, refresh_token_enc, token_generation, last_error, \
     refresh_token_expires_at, connected_at, updated_at";

/// What connecting to another company than the tenant's current one does with the links
/// and the mirror of the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealmChange<'a> {
    /// Refuse while the tenant has links (the mirror alone is a cache and is dropped).
    Refuse,
    /// Archive the links (to `archived_links`, each with an `archive` audit event by `actor`)
    /// and drop everything else that names the old company's ids.
    ArchiveLinks {
        /// Who asked (a caller's name).
        actor: &'a str,
        /// The end user the caller acted for, if it said.
        on_behalf_of: Option<&'a str>,
    },
}

/// What recording a connection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// The new token generation.
    pub generation: i64,
    /// The company the tenant was connected to before, when it was another one.
    pub previous_realm: Option<RealmId>,
    /// How many links of the previous company were archived.
    pub archived_links: u64,
}

/// The LISTEN/NOTIFY channel announcing that a tenant's connection changed (its tokens or its
/// company moved); the payload is the tenant id. Every replica drops its cached token for it.
pub const CONNECTIONS_CHANNEL: &str = "qbo_sync_connections";

/// Records a freshly authorized connection (after the OAuth code exchange), replacing any
/// earlier one of the tenant, and announces the change on [`CONNECTIONS_CHANNEL`]. When the
/// tenant was connected to another company, `on_change` decides what happens to that
/// company's links; its mirror, open review items, rejected pairs and change watermark are
/// dropped (their ids mean nothing in the new company), its active sync run is cancelled and
/// the next automatic sync is due at once. All of it is one transaction.
///
/// # Errors
/// [`StoreError::Conflict`] on `connections_live_realm_key` when another tenant is live on
/// the realm, or on `links_connection_fkey` when the tenant has links in another company and
/// `on_change` is [`RealmChange::Refuse`]; [`StoreError::Database`] otherwise.
#[instrument(
    name = "db.connections.upsert_connected",
    skip_all,
    err(level = "debug")
)]
pub async fn upsert_connected(
    pool: &PgPool,
    tenant: &TenantId,
    realm: &RealmId,
    environment: &str,
    tokens: &SealedTokens,
    on_change: RealmChange<'_>,
) -> Result<Connected, StoreError> {
    let mut tx = pool.begin().await?;
    let current: Option<String> =
        sqlx::query_scalar("SELECT realm_id FROM connections WHERE tenant_id = $1 FOR UPDATE")
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let previous_realm = match current {
        Some(old) if old != realm.as_str() => {
            Some(RealmId::parse(old).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        }
        _ => None,
    };
    let mut archived_links = 0;
    if let Some(old) = &previous_realm {
        archived_links = retire_realm(&mut tx, tenant, old, realm, on_change).await?;
    }
    let generation = sqlx::query_scalar(
        "INSERT INTO connections (tenant_id, realm_id, environment, state, access_token_enc,
             access_token_expires_at, refresh_token_enc, refresh_token_expires_at, token_generation)
         VALUES ($1, $2, $3, 'connected', $4, $5, $6, $7, 1)
         ON CONFLICT (tenant_id) DO UPDATE SET realm_id = EXCLUDED.realm_id,
             environment = EXCLUDED.environment, state = 'connected',
             access_token_enc = EXCLUDED.access_token_enc,
             access_token_expires_at = EXCLUDED.access_token_expires_at,
             refresh_token_enc = EXCLUDED.refresh_token_enc,
             refresh_token_expires_at = EXCLUDED.refresh_token_expires_at,
             token_generation = connections.token_generation + 1,
             next_auto_sync_at = CASE WHEN $8 THEN now() ELSE connections.next_auto_sync_at END,
             last_error = NULL, connected_at = now(), updated_at = now()
         RETURNING token_generation",
    )
    .bind(tenant.as_str())
    .bind(realm.as_str())
    .bind(environment)
    .bind(&tokens.access_token_enc)
    .bind(tokens.access_token_expires_at)
    .bind(&tokens.refresh_token_enc)
    .bind(tokens.refresh_token_expires_at)
    .bind(previous_realm.is_some())
    .fetch_one(&mut *tx)
    .await?;
    announce_change(&mut tx, tenant).await?;
    tx.commit().await?;
    Ok(Connected {
        generation,
        previous_realm,
        archived_links,
    })
}

/// Clears what names the ids of company `old` before the tenant moves to `new`; returns how
/// many links were archived.
async fn retire_realm(
    tx: &mut PgConnection,
    tenant: &TenantId,
    old: &RealmId,
    new: &RealmId,
    on_change: RealmChange<'_>,
) -> Result<u64, StoreError> {
    let archived = match on_change {
        RealmChange::Refuse => {
            let linked: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM links WHERE tenant_id = $1)")
                    .bind(tenant.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
            if linked {
                return Err(StoreError::Conflict {
                    constraint: "links_connection_fkey".to_owned(),
                });
            }
            0
        }
        RealmChange::ArchiveLinks {
            actor,
            on_behalf_of,
        } => {
            let reason =
                format!("archived: the tenant reconnected from QBO company {old} to company {new}");
            archive_links(tx, tenant, actor, on_behalf_of, &reason).await?
        }
    };
    // The rest is derived from the old company and is rebuilt by the next sync.
    for statement in [
        "DELETE FROM qbo_customers WHERE tenant_id = $1",
        "DELETE FROM mirror_state WHERE tenant_id = $1",
        "DELETE FROM rejected_pairs WHERE tenant_id = $1",
        "UPDATE review_items SET state = 'superseded', resolved_at = now(),
             resolution_note = 'the tenant reconnected to another QBO company'
         WHERE tenant_id = $1 AND state = 'open'",
        "UPDATE jobs SET state = 'cancelled', finished_at = clock_timestamp(),
             updated_at = clock_timestamp()
         WHERE id IN (SELECT job_id FROM sync_runs WHERE tenant_id = $1 AND state = 'queued')
           AND state IN ('queued', 'parked')",
        "UPDATE sync_runs SET state = 'cancelled', cancel_requested = true, finished_at = now(),
             error = 'the tenant reconnected to another QBO company',
             updated_at = clock_timestamp()
         WHERE tenant_id = $1 AND state = 'queued'",
        "UPDATE sync_runs SET cancel_requested = true, updated_at = clock_timestamp()
         WHERE tenant_id = $1 AND state = 'running'",
    ] {
        sqlx::query(statement)
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?;
    }
    Ok(archived)
}

/// Moves every link of the tenant to `archived_links`, each with an `archive` audit event.
async fn archive_links(
    tx: &mut PgConnection,
    tenant: &TenantId,
    actor: &str,
    on_behalf_of: Option<&str>,
    reason: &str,
) -> Result<u64, StoreError> {
    let archived: i64 = sqlx::query_scalar(
        "WITH moved AS (
             DELETE FROM links WHERE tenant_id = $1 RETURNING *),
         kept AS (
             INSERT INTO archived_links (tenant_id, realm_id, digit_customer_id, qbo_customer_id,
                 method, score, reasons, normalizer_version, linked_by, linked_at, archived_by,
                 archive_reason)
             SELECT tenant_id, realm_id, digit_customer_id, qbo_customer_id, method, score,
                    reasons, normalizer_version, linked_by, linked_at, $2, $4
             FROM moved),
         events AS (
             INSERT INTO link_events (tenant_id, digit_customer_id, action, before, after, actor,
                                      reason, on_behalf_of)
             SELECT tenant_id, digit_customer_id, 'archive',
                    jsonb_build_object('qbo_customer_id', qbo_customer_id, 'method', method,
                                       'score', score, 'reasons', reasons, 'realm_id', realm_id),
                    NULL, $2, $4, $3
             FROM moved)
         SELECT count(*) FROM moved",
    )
    .bind(tenant.as_str())
    .bind(actor)
    .bind(on_behalf_of)
    .bind(reason)
    .fetch_one(&mut *tx)
    .await?;
    Ok(u64::try_from(archived).unwrap_or(0))
}

/// Tells every replica (after commit) that the tenant's connection changed.
async fn announce_change(tx: &mut PgConnection, tenant: &TenantId) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CONNECTIONS_CHANNEL)
        .bind(tenant.as_str())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Reads a tenant's connection.
///
/// # Errors
/// [`StoreError::NotFound`] when the tenant has none; [`StoreError::Database`] otherwise.
#[instrument(name = "db.connections.load", skip_all, err(level = "debug"))]
pub async fn load_connection(pool: &PgPool, tenant: &TenantId) -> Result<Connection, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM connections WHERE tenant_id = $1");
    let record: Option<ConnectionRecord> = sqlx::query_as(&sql)
        .bind(tenant.as_str())
        .fetch_optional(pool)
        .await?;
    record
        .ok_or(StoreError::NotFound {
            entity: "connection",
        })?
        .try_into()
}

/// Reads the connection and locks its row until the transaction ends, so only one replica
/// refreshes its tokens at a time.
///
/// # Errors
/// [`StoreError::NotFound`] when the tenant has none; [`StoreError::Database`] otherwise.
#[instrument(
    name = "db.connections.lock_for_refresh",
    skip_all,
    err(level = "debug")
)]
pub async fn lock_for_refresh(
    tx: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Connection, StoreError> {
    // NO KEY UPDATE: refreshes exclude each other, while link and mirror writes (whose
    // foreign keys take KEY SHARE on this row) go on during a refresh's call to Intuit.
    let sql = format!("SELECT {COLUMNS} FROM connections WHERE tenant_id = $1 FOR NO KEY UPDATE");
    let record: Option<ConnectionRecord> = sqlx::query_as(&sql)
        .bind(tenant.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    record
        .ok_or(StoreError::NotFound {
            entity: "connection",
        })?
        .try_into()
}

/// Stores refreshed tokens and bumps the generation. Returns the new generation.
///
/// # Errors
/// [`StoreError::NotFound`] when the row is gone; [`StoreError::Database`] otherwise.
#[instrument(name = "db.connections.store_tokens", skip_all, err(level = "debug"))]
pub async fn store_refreshed_tokens(
    tx: &mut PgConnection,
    tenant: &TenantId,
    tokens: &SealedTokens,
) -> Result<i64, StoreError> {
    let generation: Option<i64> = sqlx::query_scalar(
        "UPDATE connections SET access_token_enc = $2, access_token_expires_at = $3,
             refresh_token_enc = $4,
             refresh_token_expires_at = COALESCE($5, refresh_token_expires_at),
             token_generation = token_generation + 1, last_error = NULL, updated_at = now()
         WHERE tenant_id = $1 RETURNING token_generation",
    )
    .bind(tenant.as_str())
    .bind(&tokens.access_token_enc)
    .bind(tokens.access_token_expires_at)
    .bind(&tokens.refresh_token_enc)
    .bind(tokens.refresh_token_expires_at)
    .fetch_optional(&mut *tx)
    .await?;
    generation.ok_or(StoreError::NotFound {
        entity: "connection",
    })
}

/// Moves the connection to `state` with a reason (e.g. `needs_reauth` after `invalid_grant`)
/// and announces the change on [`CONNECTIONS_CHANNEL`].
///
/// # Errors
/// [`StoreError::NotFound`] when the row is gone; [`StoreError::Database`] otherwise.
#[instrument(name = "db.connections.set_state", skip_all, err(level = "debug"))]
pub async fn set_connection_state(
    conn: &mut PgConnection,
    tenant: &TenantId,
    state: ConnectionState,
    reason: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE connections SET state = $2, last_error = $3, updated_at = now()
         WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .bind(state.as_db())
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            entity: "connection",
        });
    }
    announce_change(conn, tenant).await
}

/// Erases the tokens and marks the connection disconnected, keeping its links, and announces
/// the change on [`CONNECTIONS_CHANNEL`]. `note` (no secrets) becomes `last_error`, e.g. when
/// revocation at QBO was not confirmed.
///
/// # Errors
/// [`StoreError::NotFound`] when the row is gone; [`StoreError::Database`] otherwise.
#[instrument(name = "db.connections.erase_tokens", skip_all, err(level = "debug"))]
pub async fn erase_tokens(
    conn: &mut PgConnection,
    tenant: &TenantId,
    note: Option<&str>,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE connections SET state = 'disconnected', access_token_enc = NULL,
             access_token_expires_at = NULL, refresh_token_enc = NULL,
             refresh_token_expires_at = NULL, token_generation = token_generation + 1,
             last_error = $2, updated_at = now()
         WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .bind(note)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            entity: "connection",
        });
    }
    announce_change(conn, tenant).await
}

/// The tenant whose connection to `realm` is live (not disconnected), if any.
///
/// # Errors
/// [`StoreError::Database`] or [`StoreError::Corrupt`].
#[instrument(
    name = "db.connections.live_tenant_of_realm",
    skip_all,
    err(level = "debug")
)]
pub async fn live_tenant_of_realm(
    pool: &PgPool,
    realm: &RealmId,
) -> Result<Option<TenantId>, StoreError> {
    let tenant: Option<String> = sqlx::query_scalar(
        "SELECT tenant_id FROM connections WHERE realm_id = $1 AND state <> 'disconnected'",
    )
    .bind(realm.as_str())
    .fetch_optional(pool)
    .await?;
    tenant
        .map(|t| TenantId::parse(t).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

/// Claims the connected tenants whose automatic sync is due and books their next one
/// `interval` later, in one statement: replicas running it at once each get other tenants,
/// so every tenant is scheduled once. A tenant never scheduled is due at once.
///
/// # Errors
/// [`StoreError::Database`] when the write fails.
#[instrument(name = "db.connections.due_for_sync", skip_all, err(level = "debug"))]
pub async fn claim_due_auto_syncs(
    pool: &PgPool,
    interval: std::time::Duration,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE connections c SET next_auto_sync_at = now() + $1 * interval '1 microsecond'
         FROM (SELECT tenant_id FROM connections
               WHERE state = 'connected'
                 AND (next_auto_sync_at IS NULL OR next_auto_sync_at <= now())
               ORDER BY next_auto_sync_at NULLS FIRST LIMIT $2
               FOR UPDATE SKIP LOCKED) due
         WHERE c.tenant_id = due.tenant_id
         RETURNING c.tenant_id",
    )
    .bind(i64::try_from(interval.as_micros()).unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
