//! The ends of a connection's life: connecting with a grant (a code or a refresh token from
//! elsewhere) and disconnecting (revoke at Intuit, then erase the tokens here).
//!
//! A child of `auth` so it shares the token endpoint call and the cipher without widening
//! their visibility.

use secrecy::{ExposeSecret, SecretString};
use tracing::{Instrument, debug, instrument, warn};

use super::{GrantError, TokenManager};
use crate::{
    domain::{RealmId, TenantId},
    quickbooks::QboError,
    store::{
        StoreError,
        connections::{self, Connected, ConnectionState, RealmChange},
    },
};

/// What happened to the tokens at Intuit when a tenant disconnected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Intuit confirmed the revocation.
    Revoked,
    /// The connection was already disconnected; nothing was called or changed.
    AlreadyDisconnected,
    /// The revocation could not be confirmed (the reason holds no secrets); the tokens were
    /// erased here anyway and die at Intuit when they expire.
    NotConfirmed(String),
}

impl TokenManager {
    /// Validates a refresh token obtained elsewhere by refreshing it once, and stores the
    /// connection with the rotated tokens (the one given is dead afterwards).
    ///
    /// # Errors
    /// [`QboError::NeedsReauth`] when Intuit refuses the token (`invalid_grant`: expired,
    /// revoked or superseded); otherwise as [`Self::connect_with_code`].
    #[instrument(name = "qbo.oauth.connect_refresh_token", skip_all, fields(tenant = %tenant), err(level = "debug"))]
    pub async fn connect_with_refresh_token(
        &self,
        tenant: &TenantId,
        realm: &RealmId,
        environment: &str,
        refresh_token: &SecretString,
        on_change: RealmChange<'_>,
    ) -> Result<Connected, QboError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ];
        self.connect_with_grant(tenant, realm, environment, &form, on_change)
            .await
    }

    pub(super) async fn connect_with_grant(
        &self,
        tenant: &TenantId,
        realm: &RealmId,
        environment: &str,
        form: &[(&str, &str)],
        on_change: RealmChange<'_>,
    ) -> Result<Connected, QboError> {
        let grant = match self.call_token_endpoint(form).await {
            Ok(grant) => grant,
            Err(GrantError::InvalidGrant) => return Err(QboError::NeedsReauth),
            Err(GrantError::Other(e)) => return Err(e),
        };
        let sealed = self.seal(tenant, realm, &grant)?;
        let connected = connections::upsert_connected(
            &self.pool,
            tenant,
            realm,
            environment,
            &sealed,
            on_change,
        )
        .await?;
        self.forget(tenant);
        Ok(connected)
    }

    /// Disconnects the tenant: under the connection's row lock (so no refresh rotates the
    /// token meanwhile), revokes the refresh token at Intuit (best effort, bounded by the
    /// revoke timeout), erases the tokens and marks the connection disconnected. Calling it
    /// again changes nothing.
    ///
    /// # Errors
    /// [`QboError::Store`] ([`StoreError::NotFound`] when the tenant never connected).
    #[instrument(name = "qbo.oauth.disconnect", skip_all, fields(tenant = %tenant), err(level = "debug"))]
    pub async fn disconnect(&self, tenant: &TenantId) -> Result<RevokeOutcome, QboError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let conn = connections::lock_for_refresh(&mut tx, tenant).await?;
        if conn.state == ConnectionState::Disconnected && conn.refresh_token_enc.is_none() {
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(RevokeOutcome::AlreadyDisconnected);
        }
        let outcome = match conn.refresh_token_enc.as_deref().map(|enc| {
            self.cipher
                .open(tenant.as_str(), conn.realm_id.as_str(), enc)
        }) {
            Some(Ok(refresh)) => self.revoke(&refresh).await,
            Some(Err(e)) => RevokeOutcome::NotConfirmed(format!("stored token unreadable: {e}")),
            None => RevokeOutcome::NotConfirmed("no refresh token was stored".into()),
        };
        let note = match &outcome {
            RevokeOutcome::NotConfirmed(why) => Some(format!("revocation not confirmed: {why}")),
            RevokeOutcome::Revoked | RevokeOutcome::AlreadyDisconnected => None,
        };
        connections::erase_tokens(&mut tx, tenant, note.as_deref()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.forget(tenant);
        Ok(outcome)
    }

    /// Asks Intuit to revoke a token: a JSON body `{"token": ...}` with HTTP Basic client auth.
    async fn revoke(&self, token: &SecretString) -> RevokeOutcome {
        let span = crate::quickbooks::client::call_span("POST", "qbo.oauth.revoke");
        let outcome = self.post_revoke(token).instrument(span.clone()).await;
        let label = match &outcome {
            RevokeOutcome::Revoked | RevokeOutcome::AlreadyDisconnected => "ok",
            RevokeOutcome::NotConfirmed(_) => "not_confirmed",
        };
        let failed = matches!(outcome, RevokeOutcome::NotConfirmed(_));
        crate::quickbooks::client::record_outcome(&span, label, failed);
        outcome
    }

    async fn post_revoke(&self, token: &SecretString) -> RevokeOutcome {
        let sent = self
            .http
            .post(&self.app.revoke_url)
            .basic_auth(
                &self.app.client_id,
                Some(self.app.client_secret.expose_secret()),
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.app.revoke_timeout)
            .json(&serde_json::json!({ "token": token.expose_secret() }))
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                let tid = crate::quickbooks::client::intuit_tid(response.headers());
                let status = response.status().as_u16();
                crate::quickbooks::client::record_answer(&tracing::Span::current(), status, &tid);
                debug!("qbo.oauth.revoked");
                RevokeOutcome::Revoked
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let tid = crate::quickbooks::client::intuit_tid(response.headers());
                crate::quickbooks::client::record_answer(&tracing::Span::current(), status, &tid);
                warn!(status, intuit_tid = %tid, "qbo.oauth.revoke.refused");
                RevokeOutcome::NotConfirmed(format!("revoke endpoint answered HTTP {status}"))
            }
            Err(e) => {
                let error = crate::quickbooks::client::transport_error(&e);
                warn!(%error, "qbo.oauth.revoke.failed");
                RevokeOutcome::NotConfirmed(format!("revoke endpoint unreachable: {error}"))
            }
        }
    }
}
