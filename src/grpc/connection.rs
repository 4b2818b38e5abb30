//! `qbosync.v1.ConnectionService`.

use secrecy::SecretString;
use tonic::{Request, Response, Status};

use super::{auth::authorize, convert, validate::Checker};
use crate::{
    auth::Scope,
    domain::{RealmId, TenantId},
    error::ApiError,
    proto::v1::{self as pb, connection_service_server::ConnectionService},
    service::connections::{ConnectRequest, Connections, Credential, Environment},
};

/// The longest authorization code, redirect URI or refresh token accepted, in bytes.
const MAX_CREDENTIAL_BYTES: usize = 4_096;

/// The service, over [`Connections`].
#[derive(Debug, Clone)]
pub struct ConnectionApi {
    connections: Connections,
}

impl ConnectionApi {
    /// A service over these connections.
    #[must_use]
    pub fn new(connections: Connections) -> Self {
        Self { connections }
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

/// Converts a checked request into the domain request.
fn connect_request(
    request: pb::ConnectCompanyRequest,
    actor: String,
) -> Result<ConnectRequest, ApiError> {
    let mut checker = Checker::new();
    let tenant = checker.id("tenant_id", &request.tenant_id, TenantId::parse);
    let realm = checker.id("realm_id", &request.realm_id, RealmId::parse);
    let environment = checker.known_enum::<pb::QboEnvironment>(
        "environment",
        request.environment,
        pb::QboEnvironment::Unspecified as i32,
    );
    check_credentials(&mut checker, &request);
    checker.text(
        "on_behalf_of",
        &request.on_behalf_of,
        crate::domain::MAX_ID_BYTES,
    );
    let (Some(tenant), Some(realm), Some(environment)) = (tenant, realm, environment) else {
        return Err(checker.into_error());
    };
    checker.finish()?;
    let credential = if request.refresh_token.is_empty() {
        Credential::Code {
            code: SecretString::from(request.authorization_code),
            redirect_uri: request.redirect_uri,
        }
    } else {
        Credential::RefreshToken(SecretString::from(request.refresh_token))
    };
    Ok(ConnectRequest {
        tenant,
        realm,
        environment: environment_of(environment),
        credential,
        reset_links: request.reset_links,
        actor,
        on_behalf_of: (!request.on_behalf_of.is_empty()).then_some(request.on_behalf_of),
    })
}

fn environment_of(environment: pb::QboEnvironment) -> Environment {
    match environment {
        pb::QboEnvironment::Production => Environment::Production,
        // Unspecified never passes the checker; sandbox is the harmless reading.
        pb::QboEnvironment::Sandbox | pb::QboEnvironment::Unspecified => Environment::Sandbox,
    }
}

#[tonic::async_trait]
impl ConnectionService for ConnectionApi {
    async fn connect_company(
        &self,
        request: Request<pb::ConnectCompanyRequest>,
    ) -> Result<Response<pb::ConnectCompanyResponse>, Status> {
        let caller = authorize(&request, Scope::Admin, &request.get_ref().tenant_id)?;
        let request = connect_request(request.into_inner(), caller.to_string())?;
        let connected = self
            .connections
            .connect(request)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::ConnectCompanyResponse {
            connection: Some(convert::connection(connected.connection)),
            previous_realm_id: connected
                .previous_realm
                .map(|r| r.to_string())
                .unwrap_or_default(),
            archived_links: connected.archived_links,
        }))
    }

    async fn get_connection(
        &self,
        request: Request<pb::GetConnectionRequest>,
    ) -> Result<Response<pb::GetConnectionResponse>, Status> {
        authorize(&request, Scope::Admin, &request.get_ref().tenant_id)?;
        let tenant = check_tenant(&request.into_inner().tenant_id)?;
        let connection = self
            .connections
            .get(&tenant)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::GetConnectionResponse {
            connection: Some(convert::connection(connection)),
        }))
    }

    async fn disconnect_company(
        &self,
        request: Request<pb::DisconnectCompanyRequest>,
    ) -> Result<Response<pb::DisconnectCompanyResponse>, Status> {
        authorize(&request, Scope::Admin, &request.get_ref().tenant_id)?;
        let tenant = check_tenant(&request.into_inner().tenant_id)?;
        let connection = self
            .connections
            .disconnect(&tenant)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::DisconnectCompanyResponse {
            connection: Some(convert::connection(connection)),
        }))
    }
}
