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

/// Records a freshly authorized connection (after the OAuth code exchange), replacing any
/// earlier one of the tenant. Returns the new token generation.
///
/// # Errors
/// [`StoreError::Conflict`] on `connections_live_realm_key` when another tenant is live on
/// the realm; [`StoreError::Database`] otherwise.
#[instrument(name = "db.connections.upsert_connected", skip_all, err)]
pub async fn upsert_connected(
    pool: &PgPool,
    tenant: &TenantId,
    realm: &RealmId,
    environment: &str,
    tokens: &SealedTokens,
) -> Result<i64, StoreError> {
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
    .fetch_one(pool)
    .await?;
    Ok(generation)
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
#[instrument(name = "db.connections.lock_for_refresh", skip_all, err)]
pub async fn lock_for_refresh(
    tx: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Connection, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM connections WHERE tenant_id = $1 FOR UPDATE");
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
#[instrument(name = "db.connections.store_tokens", skip_all, err)]
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

/// Moves the connection to `state` with a reason (e.g. `needs_reauth` after `invalid_grant`).
///
/// # Errors
/// [`StoreError::NotFound`] when the row is gone; [`StoreError::Database`] otherwise.
#[instrument(name = "db.connections.set_state", skip_all, err)]
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
    Ok(())
}

/// Erases the tokens and marks the connection disconnected, keeping its links. `note` (no
/// secrets) becomes `last_error`, e.g. when revocation at QBO was not confirmed.
///
/// # Errors
/// [`StoreError::NotFound`] when the row is gone; [`StoreError::Database`] otherwise.
#[instrument(name = "db.connections.erase_tokens", skip_all, err)]
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
    Ok(())
}

/// The tenant whose connection to `realm` is live (not disconnected), if any.
///
/// # Errors
/// [`StoreError::Database`] or [`StoreError::Corrupt`].
#[instrument(name = "db.connections.live_tenant_of_realm", skip_all, err)]
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
#[instrument(name = "db.connections.due_for_sync", skip_all, err)]
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
