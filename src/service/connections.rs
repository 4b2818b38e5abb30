//! Connecting a tenant to its QBO company, reading that connection, and ending it.
//!
//! The OAuth work is the QBO client's token manager; this layer adds what the RPCs promise:
//! one live tenant per company, precise errors for refused credentials, and a service that
//! still starts (and says why it cannot connect) when no token key is configured.

use std::sync::Arc;

use secrecy::SecretString;
use sqlx::PgPool;
use tracing::{info, warn};

use crate::{
    domain::{RealmId, TenantId},
    quickbooks::{QboClient, QboError, auth::RevokeOutcome},
    store::{
        self, StoreError,
        connections::{self, Connection, ConnectionState, RealmChange},
    },
};

/// What connecting, reading or ending a connection can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// This process cannot talk to Intuit's OAuth endpoints.
    #[error("{}", .0.message())]
    Unconfigured(Unconfigured),
    /// The company is connected live to another tenant.
    #[error("QBO company {realm} is connected to another tenant; it must disconnect first")]
    RealmTaken {
        /// The company.
        realm: RealmId,
    },
    /// Intuit refused the credential the caller gave.
    #[error("{message}")]
    CredentialRefused {
        /// The request field holding the refused credential.
        field: &'static str,
        /// What happened and what to do.
        message: &'static str,
    },
    /// The tenant is connected to another company and has links there; connecting would
    /// leave them naming ids of the wrong company.
    #[error(
        "the tenant has {links} link(s) to customers of QBO company {from}; connecting company \
         {to} would leave them naming the wrong company's ids: pass reset_links=true to archive \
         them (their history stays in the audit trail), or connect company {from} again"
    )]
    RealmChangeWithLinks {
        /// The company the tenant is connected to.
        from: RealmId,
        /// The company asked for.
        to: RealmId,
        /// How many links the tenant has.
        links: u64,
    },
    /// The tenant never connected.
    #[error("connection '{tenant}' not found")]
    NotFound {
        /// The tenant.
        tenant: TenantId,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// QBO or its OAuth endpoints failed.
    #[error(transparent)]
    Qbo(#[from] QboError),
}

/// The QBO environment a company lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Intuit's sandbox.
    Sandbox,
    /// Real companies.
    Production,
}

impl Environment {
    /// The stored spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Production => "production",
        }
    }
}

/// What proves the tenant's consent.
#[derive(Debug)]
pub enum Credential {
    /// The authorization code of the OAuth redirect, with the redirect URI it was issued for.
    Code {
        /// The code.
        code: SecretString,
        /// The redirect URI.
        redirect_uri: String,
    },
    /// A refresh token obtained elsewhere.
    RefreshToken(SecretString),
}

/// A request to connect a tenant.
#[derive(Debug)]
pub struct ConnectRequest {
    /// The tenant.
    pub tenant: TenantId,
    /// The company.
    pub realm: RealmId,
    /// Its environment.
    pub environment: Environment,
    /// The consent.
    pub credential: Credential,
    /// Archive the links of another company the tenant is connected to, rather than refuse.
    pub reset_links: bool,
    /// Who asked (the caller's name), recorded with archived links.
    pub actor: String,
    /// The end user the caller acts for, if it said.
    pub on_behalf_of: Option<String>,
}

/// What connecting did.
#[derive(Debug)]
pub struct Connected {
    /// The connection now.
    pub connection: Connection,
    /// The company the tenant was connected to before, when it was another one.
    pub previous_realm: Option<RealmId>,
    /// How many links of that company were archived.
    pub archived_links: u64,
}

/// Why this process cannot talk to QBO's OAuth endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unconfigured {
    /// `QBO_SYNC_TOKEN_KEY` is not set: tokens could not be encrypted at rest.
    TokenKey,
    /// `QBO_SYNC_QBO_CLIENT_SECRET` is not set.
    ClientSecret,
}

impl Unconfigured {
    /// The stable reason callers see.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::TokenKey => "TOKEN_KEY_NOT_CONFIGURED",
            Self::ClientSecret => "QBO_CLIENT_NOT_CONFIGURED",
        }
    }

    /// What is missing and how to fix it.
    #[must_use]
    pub fn message(self) -> &'static str {
        match self {
            Self::TokenKey => {
                "connecting needs a key to encrypt tokens at rest: set QBO_SYNC_TOKEN_KEY \
                 (base64 of 32 bytes) and restart the service"
            }
            Self::ClientSecret => {
                "connecting needs the Intuit app's credentials: set QBO_SYNC_QBO_CLIENT_ID and \
                 QBO_SYNC_QBO_CLIENT_SECRET and restart the service"
            }
        }
    }
}

/// Tenants' connections, over the store and (when configured) the QBO client.
#[derive(Debug, Clone)]
pub struct Connections {
    pool: PgPool,
    qbo: Result<Arc<QboClient>, Unconfigured>,
}

impl Connections {
    /// The service; `qbo` is the client, or why there is none.
    #[must_use]
    pub fn new(pool: PgPool, qbo: Result<Arc<QboClient>, Unconfigured>) -> Self {
        Self { pool, qbo }
    }

    /// Validates the credential at Intuit and stores the (encrypted) tokens, replacing the
    /// tenant's earlier connection. When that was another company, its links are archived
    /// (`reset_links`) or the connect is refused while there are any, and what else names the
    /// old company's ids is dropped. Nothing is stored when anything fails.
    ///
    /// # Errors
    /// FAILED_PRECONDITION when unconfigured, the company is live for another tenant, or the
    /// tenant has links in another company and `reset_links` is false; INVALID_ARGUMENT when
    /// Intuit refuses the code or token; the QBO errors otherwise.
    pub async fn connect(&self, request: ConnectRequest) -> Result<Connected, ConnectionError> {
        let qbo = self
            .qbo
            .as_ref()
            .map_err(|u| ConnectionError::Unconfigured(*u))?;
        let ConnectRequest {
            tenant,
            realm,
            environment,
            credential,
            reset_links,
            actor,
            on_behalf_of,
        } = request;
        // Checked first so a refusal never costs the caller its code (the store checks both
        // again under the row lock).
        if let Some(owner) = connections::live_tenant_of_realm(&self.pool, &realm).await?
            && owner != tenant
        {
            return Err(realm_taken(&realm));
        }
        if !reset_links {
            self.refuse_realm_change_with_links(&tenant, &realm).await?;
        }
        let on_change = if reset_links {
            RealmChange::ArchiveLinks {
                actor: &actor,
                on_behalf_of: on_behalf_of.as_deref(),
            }
        } else {
            RealmChange::Refuse
        };
        let tokens = qbo.tokens();
        let env = environment.as_str();
        let outcome = match &credential {
            Credential::Code { code, redirect_uri } => {
                tokens
                    .connect_with_code(&tenant, &realm, env, code, redirect_uri, on_change)
                    .await
            }
            Credential::RefreshToken(token) => {
                tokens
                    .connect_with_refresh_token(&tenant, &realm, env, token, on_change)
                    .await
            }
        };
        let done = match outcome {
            Ok(done) => done,
            Err(QboError::Store(e)) if e.is_conflict_on("links_connection_fkey") => {
                // Links appeared between the check and the write.
                return Err(self.realm_change_error(&tenant, &realm).await);
            }
            Err(e) => return Err(connect_error(e, &credential, &realm)),
        };
        // Jobs parked while the company was not connected can run now.
        let mut db = self.pool.acquire().await.map_err(StoreError::from)?;
        let unparked = store::jobs::unpark_tenant_jobs(&mut db, &tenant).await?;
        drop(db);
        match &done.previous_realm {
            Some(previous) => info!(tenant = %tenant, realm = %realm, previous_realm = %previous,
                archived_links = done.archived_links, unparked,
                "company connected in place of another; its links archived, its mirror dropped"),
            None => info!(tenant = %tenant, realm = %realm, unparked, "company connected"),
        }
        Ok(Connected {
            connection: self.get(&tenant).await?,
            previous_realm: done.previous_realm,
            archived_links: done.archived_links,
        })
    }

    /// FAILED_PRECONDITION when the tenant is connected to another company than `realm` and
    /// has links there.
    async fn refuse_realm_change_with_links(
        &self,
        tenant: &TenantId,
        realm: &RealmId,
    ) -> Result<(), ConnectionError> {
        let current = match connections::load_connection(&self.pool, tenant).await {
            Ok(current) => current,
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if current.realm_id == *realm {
            return Ok(());
        }
        let mut db = self.pool.acquire().await.map_err(StoreError::from)?;
        let links = store::links::count_links(&mut db, tenant).await?;
        if links == 0 {
            return Ok(());
        }
        Err(ConnectionError::RealmChangeWithLinks {
            from: current.realm_id,
            to: realm.clone(),
            links,
        })
    }

    /// The refusal for a realm change that met links in the store.
    async fn realm_change_error(&self, tenant: &TenantId, realm: &RealmId) -> ConnectionError {
        match self.refuse_realm_change_with_links(tenant, realm).await {
            Err(refused) => refused,
            // The links went away again; say what happened without inventing figures.
            Ok(()) => ConnectionError::Store(StoreError::Conflict {
                constraint: "links_connection_fkey".into(),
            }),
        }
    }

    /// The tenant's connection.
    ///
    /// # Errors
    /// NOT_FOUND when the tenant never connected; store errors.
    pub async fn get(&self, tenant: &TenantId) -> Result<Connection, ConnectionError> {
        connections::load_connection(&self.pool, tenant)
            .await
            .map_err(|e| not_found(e, tenant))
    }

    /// Revokes the tokens at Intuit (best effort), erases them and marks the connection
    /// disconnected; links are kept. Disconnecting twice changes nothing the second time.
    ///
    /// # Errors
    /// NOT_FOUND when the tenant never connected; store errors.
    pub async fn disconnect(&self, tenant: &TenantId) -> Result<Connection, ConnectionError> {
        let outcome = match &self.qbo {
            Ok(qbo) => qbo.tokens().disconnect(tenant).await.map_err(|e| match e {
                QboError::Store(store) => not_found(store, tenant),
                other => ConnectionError::Qbo(other),
            })?,
            Err(why) => self.erase_without_revoking(tenant, *why).await?,
        };
        match &outcome {
            RevokeOutcome::Revoked => {
                info!(tenant = %tenant, "company disconnected, tokens revoked")
            }
            RevokeOutcome::AlreadyDisconnected => {}
            RevokeOutcome::NotConfirmed(why) => {
                warn!(tenant = %tenant, why = %why, "company disconnected, revocation not confirmed");
            }
        }
        self.get(tenant).await
    }

    /// Without a key the stored tokens cannot be read, so they cannot be revoked; they are
    /// still erased so nothing usable stays behind.
    async fn erase_without_revoking(
        &self,
        tenant: &TenantId,
        why: Unconfigured,
    ) -> Result<RevokeOutcome, ConnectionError> {
        let conn = self.get(tenant).await?;
        if conn.state == ConnectionState::Disconnected && conn.refresh_token_enc.is_none() {
            return Ok(RevokeOutcome::AlreadyDisconnected);
        }
        let note = match why {
            Unconfigured::TokenKey => "not revoked at QBO: no token key configured",
            Unconfigured::ClientSecret => "not revoked at QBO: no client secret configured",
        };
        let mut db = self.pool.acquire().await.map_err(StoreError::from)?;
        connections::erase_tokens(&mut db, tenant, Some(note)).await?;
        Ok(RevokeOutcome::NotConfirmed(note.into()))
    }
}

fn realm_taken(realm: &RealmId) -> ConnectionError {
    ConnectionError::RealmTaken {
        realm: realm.clone(),
    }
}

fn not_found(error: StoreError, tenant: &TenantId) -> ConnectionError {
    match error {
        StoreError::NotFound { .. } => ConnectionError::NotFound {
            tenant: tenant.clone(),
        },
        other => ConnectionError::Store(other),
    }
}

/// Intuit's `invalid_grant` on a connect means the caller's credential is bad, not that a
/// stored connection died.
fn connect_error(error: QboError, credential: &Credential, realm: &RealmId) -> ConnectionError {
    match (error, credential) {
        (QboError::NeedsReauth, Credential::Code { .. }) => ConnectionError::CredentialRefused {
            field: "authorization_code",
            message: "Intuit refused the authorization code (invalid_grant): it expired, was already \
             used, or was issued for another redirect_uri; start the OAuth flow again",
        },
        (QboError::NeedsReauth, Credential::RefreshToken(_)) => {
            ConnectionError::CredentialRefused {
                field: "refresh_token",
                message: "Intuit refused the refresh token (invalid_grant): it expired, was \
                          revoked, or was superseded by a newer one",
            }
        }
        (QboError::Store(store), _) if store.is_conflict_on("connections_live_realm_key") => {
            realm_taken(realm)
        }
        (other, _) => ConnectionError::Qbo(other),
    }
}
