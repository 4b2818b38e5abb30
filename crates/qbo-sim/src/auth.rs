//! The OAuth 2.0 side: authorization codes, rotating refresh tokens, expiring access tokens,
//! the token and revoke endpoints, and the bearer check of API calls.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json,
    extract::{Form, State, rejection::FormRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Shared, lock};

#[derive(Debug)]
struct Code {
    realm: String,
    redirect_uri: String,
    /// The grant its first exchange started; `Some` once used.
    grant: Option<u64>,
}

#[derive(Debug)]
struct Refresh {
    realm: String,
    /// The connection (authorization) this token descends from.
    grant: u64,
    /// False once superseded by rotation or revoked: using it answers `invalid_grant`.
    current: bool,
}

#[derive(Debug)]
struct Access {
    realm: String,
    grant: u64,
    expires: DateTime<Utc>,
}

/// Every token the simulator has issued.
#[derive(Debug, Default)]
pub struct TokenStore {
    codes: HashMap<String, Code>,
    refresh: HashMap<String, Refresh>,
    access: HashMap<String, Access>,
    counter: u64,
}

/// Why a bearer token was refused.
pub enum BearerError {
    Missing,
    Unknown,
    Expired,
    WrongRealm,
}

impl BearerError {
    pub fn detail(&self) -> &'static str {
        match self {
            BearerError::Missing => "Authorization header is missing or not a Bearer token",
            BearerError::Unknown => "Malformed bearer token: unknown or revoked",
            BearerError::Expired => "Token expired",
            BearerError::WrongRealm => "Token was issued for another company",
        }
    }
}

impl TokenStore {
    fn next(&mut self, prefix: &str) -> String {
        self.counter += 1;
        // Opaque but deterministic, so test runs are reproducible.
        format!("{prefix}-{:06}-{:016x}", self.counter, fnv(self.counter))
    }

    pub fn issue_code(&mut self, realm: &str, redirect_uri: &str) -> String {
        let code = self.next("code");
        let entry = Code {
            realm: realm.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            grant: None,
        };
        self.codes.insert(code.clone(), entry);
        code
    }

    /// A refresh token of a new connection.
    pub fn issue_refresh(&mut self, realm: &str) -> String {
        let grant = self.new_grant();
        self.issue_refresh_in(realm, grant)
    }

    /// An access token of a new connection.
    pub fn issue_access(&mut self, realm: &str, expires: DateTime<Utc>) -> String {
        let grant = self.new_grant();
        self.issue_access_in(realm, grant, expires)
    }

    fn new_grant(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn issue_refresh_in(&mut self, realm: &str, grant: u64) -> String {
        let token = self.next("rt");
        let entry = Refresh {
            realm: realm.to_owned(),
            grant,
            current: true,
        };
        self.refresh.insert(token.clone(), entry);
        token
    }

    fn issue_access_in(&mut self, realm: &str, grant: u64, expires: DateTime<Utc>) -> String {
        let token = self.next("at");
        let entry = Access {
            realm: realm.to_owned(),
            grant,
            expires,
        };
        self.access.insert(token.clone(), entry);
        token
    }

    /// Ends every token descending from one authorization.
    fn revoke_grant(&mut self, grant: u64) {
        self.refresh
            .values_mut()
            .filter(|r| r.grant == grant)
            .for_each(|r| r.current = false);
        self.access.retain(|_, a| a.grant != grant);
    }

    /// Ends every current refresh token of the realm, as if another client of the same
    /// connection had refreshed (rotated) it; returns the token that superseded them.
    pub fn supersede_refresh(&mut self, realm: &str) -> String {
        let grants: Vec<u64> = self
            .refresh
            .values_mut()
            .filter(|r| r.realm == realm && r.current)
            .map(|r| {
                r.current = false;
                r.grant
            })
            .collect();
        let grant = grants.first().copied().unwrap_or_else(|| self.new_grant());
        self.issue_refresh_in(realm, grant)
    }

    pub fn expire_access(&mut self, realm: &str) {
        self.access.retain(|_, a| a.realm != realm);
    }

    /// Checks `Authorization: Bearer ...` for an API call on `realm`.
    pub fn check_bearer(
        &self,
        headers: &HeaderMap,
        realm: &str,
        now: DateTime<Utc>,
    ) -> Result<(), BearerError> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = value
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or(BearerError::Missing)?;
        let access = self.access.get(token.trim()).ok_or(BearerError::Unknown)?;
        if access.expires <= now {
            return Err(BearerError::Expired);
        }
        if access.realm != realm {
            return Err(BearerError::WrongRealm);
        }
        Ok(())
    }
}

fn fnv(n: u64) -> u64 {
    n.to_le_bytes().iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({"error": error}))).into_response()
}

fn client_ok(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!(
        "{}:{}",
        shared.config.client_id, shared.config.client_secret
    );
    decoded == expected.as_bytes()
}

fn count_outcome(shared: &Shared, outcome: &str) {
    *lock(&shared.stats)
        .token_outcomes
        .entry(outcome.to_owned())
        .or_default() += 1;
}

/// `POST /oauth2/v1/tokens/bearer`
pub async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    if !client_ok(&shared, &headers) {
        count_outcome(&shared, "invalid_client");
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let Ok(Form(form)) = form else {
        count_outcome(&shared, "invalid_request");
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let realm = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => redeem_code(&shared, &form),
        Some("refresh_token") => redeem_refresh(&shared, &form),
        _ => Err("unsupported_grant_type"),
    };
    match realm {
        Ok((realm, grant, refresh)) => {
            count_outcome(&shared, "issued");
            issue_pair(&shared, &realm, grant, refresh)
        }
        Err(error) => {
            count_outcome(&shared, error);
            oauth_error(StatusCode::BAD_REQUEST, error)
        }
    }
}

/// The realm, the grant, and, when the refresh token is kept (no rotation), that token.
type Redeemed = Result<(String, u64, Option<String>), &'static str>;

fn redeem_code(shared: &Shared, form: &HashMap<String, String>) -> Redeemed {
    let (Some(code), Some(redirect)) = (form.get("code"), form.get("redirect_uri")) else {
        return Err("invalid_request");
    };
    let mut auth = lock(&shared.auth);
    let fresh_grant = auth.new_grant();
    let entry = auth.codes.get_mut(code).ok_or("invalid_grant")?;
    if let Some(grant) = entry.grant {
        // Exchanging a code twice also ends the tokens of the first exchange (Intuit's reply on
        // oauth-jsclient#173).
        auth.revoke_grant(grant);
        return Err("invalid_grant");
    }
    if entry.redirect_uri != *redirect {
        return Err("invalid_grant");
    }
    entry.grant = Some(fresh_grant);
    Ok((entry.realm.clone(), fresh_grant, None))
}

fn redeem_refresh(shared: &Shared, form: &HashMap<String, String>) -> Redeemed {
    let token = form.get("refresh_token").ok_or("invalid_request")?;
    let mut auth = lock(&shared.auth);
    let entry = auth.refresh.get_mut(token).ok_or("invalid_grant")?;
    if !entry.current {
        return Err("invalid_grant");
    }
    if shared.config.rotate_refresh_tokens {
        entry.current = false;
        Ok((entry.realm.clone(), entry.grant, None))
    } else {
        Ok((entry.realm.clone(), entry.grant, Some(token.clone())))
    }
}

fn issue_pair(shared: &Shared, realm: &str, grant: u64, keep: Option<String>) -> Response {
    let ttl = shared.config.access_token_ttl;
    let expires = shared.now() + ttl;
    let mut auth = lock(&shared.auth);
    let refresh = keep.unwrap_or_else(|| auth.issue_refresh_in(realm, grant));
    let access = auth.issue_access_in(realm, grant, expires);
    let body = json!({
        "token_type": "bearer",
        "access_token": access,
        "expires_in": ttl.as_secs(),
        "refresh_token": refresh,
        "x_refresh_token_expires_in": shared.config.refresh_token_ttl.as_secs(),
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// `POST /v2/oauth2/tokens/revoke` with `{"token": ...}`: revoking a refresh token also ends
/// every access token of its realm (the connection is gone).
pub async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if !client_ok(&shared, &headers) {
        count_outcome(&shared, "invalid_client");
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let token = body
        .ok()
        .and_then(|Json(v)| v.get("token").and_then(Value::as_str).map(str::to_owned));
    let Some(token) = token else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let mut auth = lock(&shared.auth);
    if let Some(entry) = auth.refresh.get_mut(&token) {
        entry.current = false;
        let realm = entry.realm.clone();
        auth.expire_access(&realm);
    } else {
        auth.access.remove(&token);
    }
    drop(auth);
    count_outcome(&shared, "revoked");
    StatusCode::OK.into_response()
}
