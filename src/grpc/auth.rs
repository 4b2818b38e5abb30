//! Caller authentication at the gRPC edge, and the one authorization check every handler makes.
//!
//! [`AuthLayer`] reads `authorization: Bearer <token>`, finds the caller (see
//! [`Authenticator`]) and puts it into the request's extensions; a missing, malformed or
//! unknown token is UNAUTHENTICATED before any handler runs. Health and reflection stay open.
//! Handlers then call [`authorize`] with the scope their RPC needs and the request's tenant.
//!
//! The order of refusals: UNAUTHENTICATED (no valid token), then INVALID_ARGUMENT when the
//! `tenant_id` itself is malformed (with every other bad field), then PERMISSION_DENIED (the
//! scope, then the tenant), then INVALID_ARGUMENT for the other fields. So a caller learns
//! nothing about a tenant it may not act for beyond "not granted".

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::{Either, Ready, ready};
use http::{HeaderMap, Request, Response, header::AUTHORIZATION};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

use crate::{
    auth::{Authenticator, Caller, CallerName, Scope},
    domain::TenantId,
    error::ApiError,
};

/// RPC paths with these prefixes need no token (probes and tooling).
const OPEN_PREFIXES: [&str; 2] = ["/grpc.health.v1.", "/grpc.reflection."];

/// Authenticates every RPC but health and reflection.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    authenticator: Authenticator,
}

impl AuthLayer {
    /// A layer checking tokens with `authenticator`.
    #[must_use]
    pub fn new(authenticator: Authenticator) -> Self {
        Self { authenticator }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    authenticator: Authenticator,
}

impl<S> Service<Request<Body>> for AuthService<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<Body>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let path = request.uri().path();
        if OPEN_PREFIXES.iter().any(|p| path.starts_with(p)) {
            return Either::Right(self.inner.call(request));
        }
        match identify(&self.authenticator, request.headers()) {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                Either::Right(self.inner.call(request))
            }
            Err(why) => {
                tracing::debug!(why, "unauthenticated call refused");
                let status = Status::from(ApiError::Unauthenticated(why.into()));
                Either::Left(ready(Ok(status.into_http())))
            }
        }
    }
}

/// The caller a request's headers name. The token never appears in the error.
fn identify(
    authenticator: &Authenticator,
    headers: &HeaderMap,
) -> Result<Arc<Caller>, &'static str> {
    if let Some(caller) = authenticator.insecure_caller() {
        return Ok(caller);
    }
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(if headers.contains_key(AUTHORIZATION) {
            "send one authorization header, not several"
        } else {
            "the authorization header is missing; send `authorization: Bearer <token>`"
        });
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty() && !token.contains(' '))
        .ok_or("the authorization header is malformed; expected `Bearer <token>`")?;
    authenticator
        .authenticate(token)
        .ok_or("the bearer token is not recognised")
}

/// Checks that the request's caller holds `scope` and may act for the tenant `tenant_id`, and
/// returns its name for the audit trail; a well-formed tenant is recorded in the RPC's span. Call it first in every handler, with the request's raw
/// `tenant_id`:
///
/// ```ignore
/// let caller = authorize(&request, Scope::Write, &request.get_ref().tenant_id)?;
/// ```
///
/// A malformed `tenant_id` is left to the handler's own checks, which refuse it as
/// INVALID_ARGUMENT with every other bad field; no tenant can be reached with one.
///
/// # Errors
/// [`ApiError::PermissionDenied`] naming the missing scope or the tenant not granted;
/// [`ApiError::Unauthenticated`] if the request did not pass [`AuthLayer`].
pub fn authorize<T>(
    request: &tonic::Request<T>,
    scope: Scope,
    tenant_id: &str,
) -> Result<CallerName, ApiError> {
    let caller = request
        .extensions()
        .get::<Arc<Caller>>()
        .ok_or_else(|| ApiError::Unauthenticated("no authenticated caller".into()))?;
    let Ok(tenant) = TenantId::parse(tenant_id) else {
        return Ok(caller.name.clone());
    };
    // The RPC's span (see `grpc::middleware`) names the tenant on every line it logs.
    tracing::Span::current().record("tenant", tracing::field::display(&tenant));
    if !caller.has_scope(scope) {
        return Err(ApiError::PermissionDenied(format!(
            "caller '{}' lacks the '{scope}' scope this RPC needs",
            caller.name
        )));
    }
    if !caller.may_act_for(&tenant) {
        return Err(ApiError::PermissionDenied(format!(
            "caller '{}' may not act for tenant '{tenant}'",
            caller.name
        )));
    }
    Ok(caller.name.clone())
}
