//! `ApiError`, and the ONLY mapping from errors to `tonic::Status`.
//!
//! Internal causes are logged here with their source chain and never sent to the caller;
//! callers get a precise code, a useful message and google.rpc details (`ErrorInfo` always,
//! `BadRequest` field violations for bad input).

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::{
    crypto::CryptoError,
    quickbooks::QboError,
    service::{
        connections::ConnectionError, customers::CustomerError, links::LinkError,
        reviews::ReviewError, sync::SyncError,
    },
    store::StoreError,
};

/// The domain every `ErrorInfo.domain` carries.
pub const ERROR_DOMAIN: &str = "qbosync.v1";

/// One field of a request that is not acceptable, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field's path in the request, e.g. `customer.display_name`.
    pub field: String,
    /// What is wrong with it, for a person.
    pub description: String,
}

/// Everything an RPC can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; nothing was changed.
    #[error("invalid request: {}", summarize(.0))]
    InvalidArgument(Vec<Violation>),
    /// The caller did not authenticate.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The caller may not act for this tenant.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// What the request names does not exist for this tenant.
    #[error("{entity} '{id}' not found")]
    NotFound {
        /// What was looked for.
        entity: &'static str,
        /// Its id as the caller gave it.
        id: String,
    },
    /// The request conflicts with the current state; `reason` is a stable machine-readable code.
    #[error("{message}")]
    FailedPrecondition {
        /// Stable reason, e.g. `DIGIT_CUSTOMER_ALREADY_LINKED`.
        reason: &'static str,
        /// What is wrong and what to do, for a person.
        message: String,
    },
    /// The same thing already exists.
    #[error("{message}")]
    AlreadyExists {
        /// Stable reason.
        reason: &'static str,
        /// What exists, for a person.
        message: String,
    },
    /// A concurrent change won; the caller may retry.
    #[error("{0}")]
    Aborted(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// QuickBooks Online (or its OAuth endpoints) failed.
    #[error(transparent)]
    Qbo(#[from] QboError),
}

fn summarize(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    /// A request with one bad field.
    #[must_use]
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![Violation {
            field: field.into(),
            description: description.into(),
        }])
    }
}

impl From<CustomerError> for ApiError {
    fn from(error: CustomerError) -> Self {
        match error {
            CustomerError::NotFound { id } => Self::NotFound {
                entity: "customer",
                id: id.to_string(),
            },
            CustomerError::Store(store) => Self::Store(store),
        }
    }
}

impl From<ConnectionError> for ApiError {
    fn from(error: ConnectionError) -> Self {
        match error {
            ConnectionError::Unconfigured(why) => Self::FailedPrecondition {
                reason: why.reason(),
                message: why.message().into(),
            },
            ConnectionError::RealmTaken { .. } => Self::FailedPrecondition {
                reason: "REALM_CONNECTED_TO_ANOTHER_TENANT",
                message: error.to_string(),
            },
            ConnectionError::RealmChangeWithLinks { .. } => Self::FailedPrecondition {
                reason: "REALM_CHANGE_WITH_LINKS",
                message: error.to_string(),
            },
            ConnectionError::CredentialRefused { field, message } => Self::invalid(field, message),
            ConnectionError::NotFound { tenant } => Self::NotFound {
                entity: "connection",
                id: tenant.to_string(),
            },
            ConnectionError::Store(store) => Self::Store(store),
            ConnectionError::Qbo(qbo) => Self::Qbo(qbo),
        }
    }
}

impl From<SyncError> for ApiError {
    fn from(error: SyncError) -> Self {
        match error {
            SyncError::NotFound { run_id } => Self::NotFound {
                entity: "sync run",
                id: run_id.to_string(),
            },
            SyncError::NotConnected { reason, message } => {
                Self::FailedPrecondition { reason, message }
            }
            SyncError::KeyReused { .. } => Self::FailedPrecondition {
                reason: "IDEMPOTENCY_KEY_REUSED",
                message: error.to_string(),
            },
            SyncError::Finished { .. } => Self::FailedPrecondition {
                reason: "SYNC_RUN_FINISHED",
                message: error.to_string(),
            },
            SyncError::Store(store) => Self::Store(store),
        }
    }
}

impl From<LinkError> for ApiError {
    fn from(error: LinkError) -> Self {
        let failed = |reason: &'static str, error: &LinkError| Self::FailedPrecondition {
            reason,
            message: error.to_string(),
        };
        match error {
            LinkError::Store(store) => Self::Store(store),
            LinkError::CustomerNotFound { id } => Self::NotFound {
                entity: "customer",
                id: id.to_string(),
            },
            LinkError::QboCustomerUnknown { .. } => failed("QBO_CUSTOMER_UNKNOWN", &error),
            LinkError::QboCustomerMissing { .. } => failed("QBO_CUSTOMER_MISSING", &error),
            LinkError::QboCustomerInactive { .. } => failed("QBO_CUSTOMER_INACTIVE", &error),
            LinkError::DigitLinkedElsewhere(_) => failed("DIGIT_CUSTOMER_ALREADY_LINKED", &error),
            LinkError::QboLinkedElsewhere(_) => failed("QBO_CUSTOMER_ALREADY_LINKED", &error),
            LinkError::PushInProgress { .. } => failed("PUSH_IN_PROGRESS", &error),
            LinkError::NotLinked { .. } => failed("NOT_LINKED", &error),
            LinkError::BadPageToken => Self::invalid("page_token", error.to_string()),
            LinkError::Conflict => Self::Aborted(error.to_string()),
        }
    }
}

impl From<ReviewError> for ApiError {
    fn from(error: ReviewError) -> Self {
        let failed = |reason: &'static str, error: &ReviewError| Self::FailedPrecondition {
            reason,
            message: error.to_string(),
        };
        match error {
            ReviewError::Store(store) => Self::Store(store),
            ReviewError::NotFound { id } => Self::NotFound {
                entity: "review item",
                id: id.to_string(),
            },
            ReviewError::AlreadyResolved { .. } => failed("REVIEW_ITEM_RESOLVED", &error),
            ReviewError::Stale { .. } => failed("REVIEW_ITEM_STALE", &error),
            ReviewError::NotACandidate { .. } => {
                Self::invalid("qbo_customer_id", error.to_string())
            }
            ReviewError::BadPageToken => Self::invalid("page_token", error.to_string()),
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let (code, reason, message, violations) = match error {
            ApiError::InvalidArgument(ref v) => (
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                error.to_string(),
                v.clone(),
            ),
            ApiError::Unauthenticated(_) => (
                Code::Unauthenticated,
                "UNAUTHENTICATED",
                error.to_string(),
                vec![],
            ),
            ApiError::PermissionDenied(_) => (
                Code::PermissionDenied,
                "PERMISSION_DENIED",
                error.to_string(),
                vec![],
            ),
            ApiError::NotFound { entity, .. } => (
                Code::NotFound,
                not_found_reason(entity),
                error.to_string(),
                vec![],
            ),
            ApiError::FailedPrecondition { reason, message } => {
                (Code::FailedPrecondition, reason, message, vec![])
            }
            ApiError::AlreadyExists { reason, message } => {
                (Code::AlreadyExists, reason, message, vec![])
            }
            ApiError::Aborted(message) => (Code::Aborted, "CONCURRENT_CHANGE", message, vec![]),
            ApiError::Store(store) => return store_status(&store),
            ApiError::Qbo(qbo) => return qbo_status(qbo),
        };
        build_status(code, reason, message, &violations)
    }
}

fn not_found_reason(entity: &str) -> &'static str {
    match entity {
        "customer" => "CUSTOMER_NOT_FOUND",
        "sync run" => "SYNC_RUN_NOT_FOUND",
        "review item" => "REVIEW_ITEM_NOT_FOUND",
        "connection" => "CONNECTION_NOT_FOUND",
        "link" => "LINK_NOT_FOUND",
        _ => "NOT_FOUND",
    }
}

/// Maps a store failure. Database internals are logged, never returned.
fn store_status(error: &StoreError) -> Status {
    match error {
        StoreError::NotFound { entity } => build_status(
            Code::NotFound,
            "NOT_FOUND",
            format!("{entity} not found"),
            &[],
        ),
        StoreError::Conflict { constraint } => {
            tracing::debug!(constraint, "store conflict");
            build_status(
                Code::Aborted,
                "CONCURRENT_CHANGE",
                "a concurrent change conflicted; retry".into(),
                &[],
            )
        }
        StoreError::Stale { entity } => build_status(
            Code::Aborted,
            "CONCURRENT_CHANGE",
            format!("{entity} was changed concurrently; retry"),
            &[],
        ),
        StoreError::Database(sqlx) if is_unavailable(sqlx) => {
            tracing::warn!(error = %error_chain(error), "database unavailable");
            build_status(
                Code::Unavailable,
                "DATABASE_UNAVAILABLE",
                "the database is unavailable; retry later".into(),
                &[],
            )
        }
        StoreError::Database(_)
        | StoreError::Corrupt(_)
        | StoreError::Config(_)
        | StoreError::Migrate(_) => {
            tracing::error!(error = %error_chain(error), "internal store error");
            build_status(
                Code::Internal,
                "INTERNAL",
                "internal error; it has been logged".into(),
                &[],
            )
        }
    }
}

/// Maps a QBO failure. Upstream outages are UNAVAILABLE (retry later); states a person must
/// fix are FAILED_PRECONDITION with a stable reason; our own faults are INTERNAL and logged.
fn qbo_status(error: QboError) -> Status {
    let (code, reason, message): (Code, &str, String) = match &error {
        QboError::DuplicateName { .. } => (
            Code::AlreadyExists,
            "QBO_DUPLICATE_NAME",
            "QuickBooks already has a customer, vendor or employee with this name".into(),
        ),
        QboError::StaleObject => (
            Code::Aborted,
            "CONCURRENT_CHANGE",
            "the QuickBooks record changed concurrently; retry".into(),
        ),
        QboError::NotFound => (
            Code::NotFound,
            "QBO_OBJECT_NOT_FOUND",
            "the QuickBooks record does not exist (or is inactive or merged)".into(),
        ),
        QboError::Throttled { .. } => (
            Code::Unavailable,
            "QBO_THROTTLED",
            "QuickBooks is throttling this company; retry later".into(),
        ),
        QboError::Unauthorized => (
            Code::FailedPrecondition,
            "QBO_UNAUTHORIZED",
            "QuickBooks refused the connection's access token even after a refresh; connect the company again".into(),
        ),
        QboError::Forbidden => (
            Code::FailedPrecondition,
            "QBO_FORBIDDEN",
            "the QuickBooks user who connected the company lacks the permission".into(),
        ),
        QboError::ValidationFault { code, element, .. } => (
            Code::FailedPrecondition,
            "QBO_VALIDATION_FAULT",
            format!("QuickBooks rejected the request (code {code}, element {element:?})"),
        ),
        QboError::Server { .. } | QboError::Transport { .. } => (
            Code::Unavailable,
            "QBO_UNAVAILABLE",
            format!("QuickBooks could not be reached ({error}); retry later"),
        ),
        QboError::TokenEndpoint { status, .. } if *status >= 500 || *status == 429 => (
            Code::Unavailable,
            "QBO_TOKEN_ENDPOINT_UNAVAILABLE",
            format!("Intuit's token endpoint failed ({error}); retry later"),
        ),
        QboError::TokenEndpoint { .. } => (
            Code::FailedPrecondition,
            "QBO_TOKEN_ENDPOINT_REFUSED",
            format!("Intuit's token endpoint refused the request ({error})"),
        ),
        QboError::InvalidClient => (
            Code::FailedPrecondition,
            "QBO_CLIENT_CREDENTIALS_REJECTED",
            "Intuit refused this service's OAuth client id or secret (invalid_client); \
             check QBO_SYNC_QBO_CLIENT_ID and QBO_SYNC_QBO_CLIENT_SECRET"
                .into(),
        ),
        QboError::NeedsReauth => (
            Code::FailedPrecondition,
            "CONNECTION_NEEDS_REAUTH",
            "QuickBooks refused the connection's refresh token; connect the company again".into(),
        ),
        QboError::NotConnected => (
            Code::FailedPrecondition,
            "NOT_CONNECTED",
            "the tenant is not connected to QuickBooks".into(),
        ),
        QboError::Crypto(CryptoError::MissingKey) => (
            Code::FailedPrecondition,
            "TOKEN_KEY_NOT_CONFIGURED",
            "no token key is configured (QBO_SYNC_TOKEN_KEY)".into(),
        ),
        QboError::Crypto(
            CryptoError::BadKey
            | CryptoError::UnknownVersion(_)
            | CryptoError::Tampered
            | CryptoError::NotUtf8,
        )
        | QboError::Decode(_)
        | QboError::Config(_) => {
            tracing::error!(error = %error_chain(&error), "internal QBO client error");
            (
                Code::Internal,
                "INTERNAL",
                "internal error; it has been logged".into(),
            )
        }
        QboError::Store(store) => return store_status(store),
    };
    if code == Code::Unavailable {
        tracing::warn!(error = %error_chain(&error), "QBO unavailable");
    }
    build_status(code, reason, message, &[])
}

/// Failures of the connection rather than of the query: the database is (for now) out of reach.
/// A connection cut mid-handshake shows up as a protocol error, so that counts too.
/// So does a server shutting down, restarting or starting up: it ends sessions with SQLSTATE
/// 57P01 (`admin_shutdown`, what `pg_ctl restart -m fast` sends), 57P02 or 57P03, and a
/// connection failure reported by the server is class 08.
fn is_unavailable(error: &sqlx::Error) -> bool {
    if let sqlx::Error::Database(db) = error {
        return db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P"));
    }
    matches!(
        error,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    )
}

/// The error and its sources, joined, for logs.
#[must_use]
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn build_status(code: Code, reason: &str, message: String, violations: &[Violation]) -> Status {
    let mut details =
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::<String, String>::new());
    if !violations.is_empty() {
        details.set_bad_request(
            violations
                .iter()
                .map(|v| FieldViolation::new(v.field.clone(), v.description.clone()))
                .collect::<Vec<_>>(),
        );
    }
    Status::with_error_details(code, message, details)
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
