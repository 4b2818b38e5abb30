//! `qbosync.v1.ConnectionService`.

use tonic::{Request, Response, Status};

use super::{auth::authorize, convert, requests};
use crate::{
    auth::Scope,
    error::ApiError,
    proto::v1::{self as pb, connection_service_server::ConnectionService},
    service::connections::Connections,
};

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

#[tonic::async_trait]
impl ConnectionService for ConnectionApi {
    async fn connect_company(
        &self,
        request: Request<pb::ConnectCompanyRequest>,
    ) -> Result<Response<pb::ConnectCompanyResponse>, Status> {
        let caller = authorize(&request, Scope::Admin, &request.get_ref().tenant_id)?;
        let request = requests::connect_company(request.into_inner(), caller.to_string())?;
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
        let tenant = requests::tenant_only(&request.into_inner().tenant_id)?;
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
        let tenant = requests::tenant_only(&request.into_inner().tenant_id)?;
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
