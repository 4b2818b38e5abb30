//! OAuth 2.0 with Intuit: the code exchange, refresh, and keeping tokens (encrypted) in the
//! `connections` row.
//!
//! Refresh tokens rotate, and presenting a superseded one gives `invalid_grant`, which kills
//! the connection. So a refresh happens only while holding the connection row's lock
//! (`SELECT ... FOR UPDATE`, which works across replicas): whoever gets the lock second sees
//! that `token_generation` moved on and uses the tokens just stored instead of refreshing.
//! `invalid_grant` moves the connection to `needs_reauth`; nothing retries it.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use tracing::{Instrument, debug, instrument, warn};

use super::{QboError, model::TokenErrorDto, model::TokenResponseDto};
use crate::{
    crypto::TokenCipher,
    domain::{RealmId, TenantId},
    store::{
        StoreError,
        connections::{self, Connected, Connection, ConnectionState, RealmChange, SealedTokens},
        notify::{self, Notice},
    },
};

/// The Intuit app's credentials and token endpoint.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: SecretString,
    /// The token endpoint URL.
    pub token_url: String,
    /// The revoke endpoint URL.
    pub revoke_url: String,
    /// Longest wait for the revoke endpoint.
    pub revoke_timeout: Duration,
}

/// A usable access token for one tenant.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The QBO company the token is bound to.
    pub realm: RealmId,
    /// The bearer token.
    pub token: SecretString,
    /// The connection's token generation this token belongs to.
    pub generation: i64,
    expires_at: DateTime<Utc>,
}

struct Grant {
    access: SecretString,
    refresh: SecretString,
    access_expires_at: DateTime<Utc>,
    refresh_expires_at: Option<DateTime<Utc>>,
}

enum GrantError {
    InvalidGrant,
    Other(QboError),
}

/// Hands out access tokens and refreshes them safely.
#[derive(Debug)]
pub struct TokenManager {
    pool: PgPool,
    cipher: TokenCipher,
    app: OAuthApp,
    http: reqwest::Client,
    skew: Duration,
    cache: Mutex<TokenCache>,
}

/// Access tokens by tenant, and a count of the changes announced so far: a token read before
/// a change is not kept after it (it may belong to the company the tenant just left).
#[derive(Debug, Default)]
struct TokenCache {
    tokens: HashMap<TenantId, AccessToken>,
    changes: u64,
}

impl TokenManager {
    /// A manager storing tokens in `pool`, sealed with `cipher`. `skew` is how early before
    /// expiry a token counts as expired.
    #[must_use]
    pub fn new(
        pool: PgPool,
        cipher: TokenCipher,
        app: OAuthApp,
        http: reqwest::Client,
        skew: Duration,
    ) -> Self {
        Self {
            pool,
            cipher,
            app,
            http,
            skew,
            cache: Mutex::new(TokenCache::default()),
        }
    }

    /// Exchanges an authorization code (from the OAuth redirect) and stores the connection;
    /// `on_change` says what happens to the links of another company the tenant was connected
    /// to (see [`connections::upsert_connected`]).
    ///
    /// # Errors
    /// [`QboError::NeedsReauth`] when Intuit refuses the code (`invalid_grant`: reused or
    /// expired); [`QboError::InvalidClient`], [`QboError::TokenEndpoint`],
    /// [`QboError::Transport`] or [`QboError::Store`] ([`StoreError::Conflict`] on
    /// `connections_live_realm_key` when another tenant is live on the realm).
    #[instrument(name = "qbo.oauth.exchange_code", skip_all, fields(tenant = %tenant), err(level = "debug"))]
    pub async fn connect_with_code(
        &self,
        tenant: &TenantId,
        realm: &RealmId,
        environment: &str,
        code: &SecretString,
        redirect_uri: &str,
        on_change: RealmChange<'_>,
    ) -> Result<Connected, QboError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.expose_secret()),
            ("redirect_uri", redirect_uri),
        ];
        self.connect_with_grant(tenant, realm, environment, &form, on_change)
            .await
    }

    /// A valid access token for the tenant, refreshing it first when it is about to expire.
    ///
    /// # Errors
    /// [`QboError::NotConnected`] or [`QboError::NeedsReauth`] by connection state, and the
    /// errors of a refresh.
    pub async fn access_token(&self, tenant: &TenantId) -> Result<AccessToken, QboError> {
        let seen = self.changes_seen();
        if let Some(cached) = self.cached(tenant) {
            return Ok(cached);
        }
        let conn = load(&self.pool, tenant).await?;
        check_state(&conn)?;
        if let Some(token) = self.usable_token(&conn)? {
            self.remember(tenant, &token, seen);
            return Ok(token);
        }
        self.refresh(tenant, conn.token_generation).await
    }

    /// Called after QBO answered 401 to a token of `rejected_generation`: refreshes, unless
    /// another replica already did (then its token is used).
    ///
    /// # Errors
    /// As [`Self::access_token`].
    pub async fn refresh_after_rejection(
        &self,
        tenant: &TenantId,
        rejected_generation: i64,
    ) -> Result<AccessToken, QboError> {
        self.forget(tenant);
        self.refresh(tenant, rejected_generation).await
    }

    #[instrument(name = "qbo.oauth.refresh", skip_all, fields(tenant = %tenant), err(level = "debug"))]
    async fn refresh(
        &self,
        tenant: &TenantId,
        stale_generation: i64,
    ) -> Result<AccessToken, QboError> {
        let seen = self.changes_seen();
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let conn = match connections::lock_for_refresh(&mut tx, tenant).await {
            Err(StoreError::NotFound { .. }) => return Err(QboError::NotConnected),
            other => other?,
        };
        check_state(&conn)?;
        if conn.token_generation > stale_generation
            && let Some(token) = self.usable_token(&conn)?
        {
            // Another replica (or task) refreshed while we waited for the lock.
            tx.commit().await.map_err(StoreError::from)?;
            debug!("qbo.oauth.refresh.reused");
            self.remember(tenant, &token, seen);
            return Ok(token);
        }
        let refresh_enc = conn
            .refresh_token_enc
            .as_deref()
            .ok_or(QboError::NeedsReauth)?;
        let refresh = self
            .cipher
            .open(tenant.as_str(), conn.realm_id.as_str(), refresh_enc)?;
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose_secret()),
        ];
        let granted = self.call_token_endpoint(&form).await;
        let outcome = match &granted {
            Ok(_) => "ok",
            Err(GrantError::InvalidGrant) => "invalid_grant",
            Err(GrantError::Other(_)) => "error",
        };
        metrics::counter!("qbo_sync_qbo_token_refreshes_total", "outcome" => outcome).increment(1);
        match granted {
            Ok(grant) => {
                let sealed = self.seal(tenant, &conn.realm_id, &grant)?;
                let generation =
                    connections::store_refreshed_tokens(&mut tx, tenant, &sealed).await?;
                tx.commit().await.map_err(StoreError::from)?;
                let token = AccessToken {
                    realm: conn.realm_id,
                    token: grant.access,
                    generation,
                    expires_at: grant.access_expires_at,
                };
                self.remember(tenant, &token, seen);
                Ok(token)
            }
            Err(GrantError::InvalidGrant) => {
                warn!("qbo.oauth.invalid_grant: connection needs re-authorization");
                let reason = "refresh token refused (invalid_grant)";
                connections::set_connection_state(
                    &mut tx,
                    tenant,
                    ConnectionState::NeedsReauth,
                    reason,
                )
                .await?;
                tx.commit().await.map_err(StoreError::from)?;
                Err(QboError::NeedsReauth)
            }
            Err(GrantError::Other(e)) => Err(e),
        }
    }

    async fn call_token_endpoint(&self, form: &[(&str, &str)]) -> Result<Grant, GrantError> {
        let span = super::client::call_span("POST", "qbo.oauth.token");
        let granted = self.post_token_form(form).instrument(span.clone()).await;
        let outcome = match &granted {
            Ok(_) => "ok",
            Err(GrantError::InvalidGrant) => "invalid_grant",
            Err(GrantError::Other(e)) => e.outcome_label(),
        };
        super::client::record_outcome(&span, outcome, granted.is_err());
        granted
    }

    async fn post_token_form(&self, form: &[(&str, &str)]) -> Result<Grant, GrantError> {
        let response = self
            .http
            .post(&self.app.token_url)
            .basic_auth(
                &self.app.client_id,
                Some(self.app.client_secret.expose_secret()),
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| GrantError::Other(super::client::transport_error(&e)))?;
        let status = response.status().as_u16();
        let tid = super::client::intuit_tid(response.headers());
        super::client::record_answer(&tracing::Span::current(), status, &tid);
        let body = response
            .bytes()
            .await
            .map_err(|e| GrantError::Other(super::client::transport_error(&e)))?;
        debug!(status, intuit_tid = %tid, "qbo.oauth.token_endpoint");
        if (200..300).contains(&status) {
            let dto: TokenResponseDto = serde_json::from_slice(&body)
                .map_err(|e| GrantError::Other(QboError::decode("token answer", &e)))?;
            return Ok(grant_from(dto));
        }
        let error = serde_json::from_slice::<TokenErrorDto>(&body)
            .map(|e| e.error)
            .unwrap_or_default();
        warn!(status, intuit_tid = %tid, error = %error, "qbo.oauth.token_endpoint.failed");
        match error.as_str() {
            "invalid_grant" => Err(GrantError::InvalidGrant),
            "invalid_client" => Err(GrantError::Other(QboError::InvalidClient)),
            _ => Err(GrantError::Other(QboError::TokenEndpoint { status, error })),
        }
    }

    fn seal(
        &self,
        tenant: &TenantId,
        realm: &RealmId,
        grant: &Grant,
    ) -> Result<SealedTokens, QboError> {
        let (t, r) = (tenant.as_str(), realm.as_str());
        Ok(SealedTokens {
            access_token_enc: self.cipher.seal(t, r, grant.access.expose_secret())?,
            access_token_expires_at: grant.access_expires_at,
            refresh_token_enc: self.cipher.seal(t, r, grant.refresh.expose_secret())?,
            refresh_token_expires_at: grant.refresh_expires_at,
        })
    }

    /// The stored access token, when it exists and is not about to expire.
    fn usable_token(&self, conn: &Connection) -> Result<Option<AccessToken>, QboError> {
        let (Some(enc), Some(expires_at)) = (&conn.access_token_enc, conn.access_token_expires_at)
        else {
            return Ok(None);
        };
        if !self.fresh(expires_at) {
            return Ok(None);
        }
        let token = self
            .cipher
            .open(conn.tenant_id.as_str(), conn.realm_id.as_str(), enc)?;
        Ok(Some(AccessToken {
            realm: conn.realm_id.clone(),
            token,
            generation: conn.token_generation,
            expires_at,
        }))
    }

    fn fresh(&self, expires_at: DateTime<Utc>) -> bool {
        let skew = chrono::Duration::from_std(self.skew).unwrap_or_default();
        expires_at - skew > Utc::now()
    }

    fn cached(&self, tenant: &TenantId) -> Option<AccessToken> {
        let cache = self.cache.lock().ok()?;
        cache
            .tokens
            .get(tenant)
            .filter(|t| self.fresh(t.expires_at))
            .cloned()
    }

    /// The number of changes forgotten so far; a token read after this call is kept only if
    /// none comes before it is remembered.
    fn changes_seen(&self) -> u64 {
        self.cache.lock().map_or(u64::MAX, |c| c.changes)
    }

    fn remember(&self, tenant: &TenantId, token: &AccessToken, seen: u64) {
        if let Ok(mut cache) = self.cache.lock()
            && cache.changes == seen
        {
            cache.tokens.insert(tenant.clone(), token.clone());
        }
    }

    /// Drops the tenant's cached token, and keeps any token read before now from being cached.
    pub fn forget(&self, tenant: &TenantId) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.changes += 1;
            cache.tokens.remove(tenant);
        }
    }

    fn forget_all(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.changes += 1;
            cache.tokens.clear();
        }
    }

    /// Drops a tenant's cached token as soon as any replica announces that its connection
    /// changed (reconnected, possibly to another company; disconnected; needs
    /// re-authorisation), until `stop`. While the subscription is down nothing is cached for
    /// long: every (re)subscription starts by dropping the whole cache, since announcements
    /// made meanwhile are lost.
    pub async fn forget_on_change(&self, stop: tokio_util::sync::CancellationToken) {
        let channel = connections::CONNECTIONS_CHANNEL;
        notify::follow(
            &self.pool,
            channel,
            "connections",
            stop,
            |notice| match notice {
                Notice::Payload(payload) => match TenantId::parse(payload) {
                    Ok(tenant) => self.forget(&tenant),
                    Err(_) => self.forget_all(),
                },
                Notice::Subscribed | Notice::Gap => self.forget_all(),
            },
        )
        .await;
    }
}

#[path = "auth_connect.rs"]
mod connect;
pub use connect::RevokeOutcome;

fn grant_from(dto: TokenResponseDto) -> Grant {
    let now = Utc::now();
    Grant {
        access: SecretString::from(dto.access_token),
        refresh: SecretString::from(dto.refresh_token),
        access_expires_at: now + chrono::Duration::seconds(dto.expires_in.unwrap_or(3600)),
        refresh_expires_at: dto
            .x_refresh_token_expires_in
            .map(|s| now + chrono::Duration::seconds(s)),
    }
}

async fn load(pool: &PgPool, tenant: &TenantId) -> Result<Connection, QboError> {
    match connections::load_connection(pool, tenant).await {
        Err(StoreError::NotFound { .. }) => Err(QboError::NotConnected),
        other => Ok(other?),
    }
}

fn check_state(conn: &Connection) -> Result<(), QboError> {
    match conn.state {
        ConnectionState::Connected => Ok(()),
        ConnectionState::NeedsReauth => Err(QboError::NeedsReauth),
        ConnectionState::Disconnected => Err(QboError::NotConnected),
    }
}
