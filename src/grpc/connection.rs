//! `qbosync.v1.ConnectionService`.

use sqlx::PgPool;
use tonic::{Request, Response, Status};

use super::validate::Checker;
use crate::{
    domain::{RealmId, TenantId},
    error::ApiError,
    proto::v1::{self as pb, connection_service_server::ConnectionService},
};

const QBO_CLIENT: &str = "the QuickBooks client (OAuth and token storage) has not landed yet";
/// The longest authorization code, redirect URI or refresh token accepted, in bytes.
const MAX_CREDENTIAL_BYTES: usize = 4_096;

/// The service, over the store.
#[derive(Debug, Clone)]
pub struct ConnectionApi {
    #[allow(dead_code, reason = "used once the QuickBooks client lands")]
    pool: PgPool,
}

impl ConnectionApi {
    /// A service over this pool.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn check_tenant(tenant_id: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(tenant_id).map_err(|e| ApiError::invalid("tenant_id", e.to_string()))
}

/// Checks the credentials: an authorization code with its redirect URI, or a refresh token.
fn check_credentials(checker: &mut Checker, request: &pb::ConnectCompanyRequest) {
    let code = !request.authorization_code.is_empty();
    let refresh = !request.refresh_token.is_empty();
    match (code, refresh) {
        (true, true) => checker.violation(
            "refresh_token",
            "give either authorization_code or refresh_token, not both",
        ),
        (false, false) => checker.violation(
            "authorization_code",
            "give authorization_code (with redirect_uri) or refresh_token",
        ),
        (true, false) if request.redirect_uri.is_empty() => {
            checker.violation("redirect_uri", "must be set with authorization_code");
        }
        _ => {}
    }
    for (field, value) in [
        ("authorization_code", &request.authorization_code),
        ("redirect_uri", &request.redirect_uri),
        ("refresh_token", &request.refresh_token),
    ] {
        checker.text(field, value, MAX_CREDENTIAL_BYTES);
    }
}

#[tonic::async_trait]
impl ConnectionService for ConnectionApi {
    async fn connect_company(
        &self,
        request: Request<pb::ConnectCompanyRequest>,
    ) -> Result<Response<pb::ConnectCompanyResponse>, Status> {
        let request = request.into_inner();
        let mut checker = Checker::new();
        checker.id("tenant_id", &request.tenant_id, TenantId::parse);
        checker.id("realm_id", &request.realm_id, RealmId::parse);
        checker.known_enum::<pb::QboEnvironment>(
            "environment",
            request.environment,
            pb::QboEnvironment::Unspecified as i32,
        );
        check_credentials(&mut checker, &request);
        checker.finish()?;
        Err(ApiError::Unimplemented {
            rpc: "ConnectCompany",
            detail: QBO_CLIENT,
        }
        .into())
    }

    async fn get_connection(
        &self,
        request: Request<pb::GetConnectionRequest>,
    ) -> Result<Response<pb::GetConnectionResponse>, Status> {
        check_tenant(&request.into_inner().tenant_id)?;
        Err(ApiError::Unimplemented {
            rpc: "GetConnection",
            detail: QBO_CLIENT,
        }
        .into())
    }

    async fn disconnect_company(
        &self,
        request: Request<pb::DisconnectCompanyRequest>,
    ) -> Result<Response<pb::DisconnectCompanyResponse>, Status> {
        check_tenant(&request.into_inner().tenant_id)?;
        Err(ApiError::Unimplemented {
            rpc: "DisconnectCompany",
            detail: QBO_CLIENT,
        }
        .into())
    }
}
