//! Unit tests of the error mapping.

use super::*;

#[test]
fn invalid_argument_carries_field_violations() {
    let status = Status::from(ApiError::invalid("tenant_id", "must not be empty"));
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("tenant_id: must not be empty"));
    let details = status.get_error_details();
    let bad = details.bad_request().expect("bad request details");
    assert_eq!(bad.field_violations[0].field, "tenant_id");
    assert_eq!(details.error_info().unwrap().reason, "INVALID_ARGUMENT");
}

#[test]
fn database_internals_never_reach_the_caller() {
    let error = ApiError::Store(StoreError::Database(sqlx::Error::ColumnNotFound(
        "secret_column_xyz".into(),
    )));
    let status = Status::from(error);
    assert_eq!(status.code(), Code::Internal);
    assert!(!status.message().contains("xyz"));
}

/// A server error with only a SQLSTATE, as PostgreSQL sends when it ends a session.
#[derive(Debug)]
struct ServerError(&'static str);

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server error {}", self.0)
    }
}

impl std::error::Error for ServerError {}

impl sqlx::error::DatabaseError for ServerError {
    fn message(&self) -> &str {
        "terminating connection due to administrator command"
    }
    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.0.into())
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

#[test]
fn a_server_ending_sessions_is_unavailable_not_internal() {
    // 57P01: `pg_ctl restart -m fast`; 57P03: still starting; 08006: connection failure.
    for code in ["57P01", "57P02", "57P03", "08006"] {
        let error = sqlx::Error::Database(Box::new(ServerError(code)));
        let status = Status::from(ApiError::Store(StoreError::Database(error)));
        assert_eq!(status.code(), Code::Unavailable, "SQLSTATE {code}");
    }
    // A query's own failure stays INTERNAL.
    let error = sqlx::Error::Database(Box::new(ServerError("42P01")));
    let status = Status::from(ApiError::Store(StoreError::Database(error)));
    assert_eq!(status.code(), Code::Internal);
}

#[test]
fn qbo_failures_map_to_precise_codes() {
    let cases = [
        (
            QboError::InvalidClient,
            Code::FailedPrecondition,
            "QBO_CLIENT_CREDENTIALS_REJECTED",
        ),
        (
            QboError::NeedsReauth,
            Code::FailedPrecondition,
            "CONNECTION_NEEDS_REAUTH",
        ),
        (
            QboError::Transport {
                kind: "connect",
                uncertain: false,
            },
            Code::Unavailable,
            "QBO_UNAVAILABLE",
        ),
        (
            QboError::TokenEndpoint {
                status: 503,
                error: String::new(),
            },
            Code::Unavailable,
            "QBO_TOKEN_ENDPOINT_UNAVAILABLE",
        ),
        (
            QboError::TokenEndpoint {
                status: 400,
                error: "invalid_request".into(),
            },
            Code::FailedPrecondition,
            "QBO_TOKEN_ENDPOINT_REFUSED",
        ),
        (
            QboError::Crypto(CryptoError::MissingKey),
            Code::FailedPrecondition,
            "TOKEN_KEY_NOT_CONFIGURED",
        ),
        (
            QboError::Crypto(CryptoError::Tampered),
            Code::Internal,
            "INTERNAL",
        ),
        (
            QboError::Store(StoreError::NotFound {
                entity: "connection",
            }),
            Code::NotFound,
            "NOT_FOUND",
        ),
    ];
    for (error, code, reason) in cases {
        let status = Status::from(ApiError::Qbo(error));
        assert_eq!(status.code(), code, "{status:?}");
        assert_eq!(
            status.get_error_details().error_info().unwrap().reason,
            reason
        );
    }
}

#[test]
fn outages_are_unavailable() {
    let status = Status::from(ApiError::Store(StoreError::Database(
        sqlx::Error::PoolTimedOut,
    )));
    assert_eq!(status.code(), Code::Unavailable);
}
