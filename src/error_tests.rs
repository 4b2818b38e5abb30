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
