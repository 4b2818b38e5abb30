//! The connection to the server: one channel (TLS when asked), the caller's token on every
//! call, the tenant every request names, and each call's deadline.

use std::time::Duration;

use secrecy::ExposeSecret;
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use super::{CtlError, GlobalArgs};
use crate::proto::v1::{
    connection_service_client::ConnectionServiceClient,
    customer_sync_service_client::CustomerSyncServiceClient,
};

/// Adds `authorization: Bearer <token>` to every call, when a token was given.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// What every command talks through.
pub struct Session {
    pub customers: CustomerSyncServiceClient<Authed>,
    pub connections: ConnectionServiceClient<Authed>,
    /// The tenant every request names.
    pub tenant: String,
    timeout: Duration,
}

impl Session {
    /// Checks the flags, then connects.
    ///
    /// # Errors
    /// [`CtlError::Usage`] for a missing tenant, a malformed address or token;
    /// [`CtlError::File`] for an unreadable certificate; [`CtlError::Unreachable`] when the
    /// server does not answer.
    pub async fn connect(args: &GlobalArgs) -> Result<Self, CtlError> {
        let tenant = args
            .tenant
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| CtlError::Usage("--tenant (or QBO_SYNC_TENANT) is required".into()))?;
        let bearer = bearer(args)?;
        let endpoint = endpoint(args)?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| CtlError::Unreachable {
                addr: args.addr.clone(),
                cause: crate::error::error_chain(&e),
            })?;
        Ok(Self {
            customers: CustomerSyncServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            connections: ConnectionServiceClient::with_interceptor(channel, bearer),
            tenant,
            timeout: args.timeout,
        })
    }

    /// A request that carries the call's deadline (the server sees it as `grpc-timeout`).
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.timeout);
        request
    }
}

fn bearer(args: &GlobalArgs) -> Result<Bearer, CtlError> {
    let Some(token) = &args.token else {
        return Ok(Bearer(None));
    };
    let value = format!("Bearer {}", token.expose_secret())
        .parse()
        .map_err(|_| CtlError::Usage("--token must be printable ASCII".into()))?;
    Ok(Bearer(Some(value)))
}

fn endpoint(args: &GlobalArgs) -> Result<Endpoint, CtlError> {
    let endpoint = Endpoint::from_shared(args.addr.clone())
        .map_err(|e| CtlError::Usage(format!("--addr {:?}: {e}", args.addr)))?
        .connect_timeout(args.timeout);
    let tls = args.addr.starts_with("https://") || args.ca_file.is_some();
    if !tls {
        return Ok(endpoint);
    }
    endpoint
        .tls_config(tls_config(args)?)
        .map_err(|e| CtlError::Usage(format!("TLS for {}: {e}", args.addr)))
}

fn tls_config(args: &GlobalArgs) -> Result<ClientTlsConfig, CtlError> {
    let mut config = ClientTlsConfig::new();
    config = match &args.ca_file {
        Some(path) => config.ca_certificate(Certificate::from_pem(read(path)?)),
        None => config.with_webpki_roots(),
    };
    if let (Some(cert), Some(key)) = (&args.cert_file, &args.key_file) {
        config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(config)
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, CtlError> {
    std::fs::read(path).map_err(|source| CtlError::File {
        path: path.display().to_string(),
        source,
    })
}
