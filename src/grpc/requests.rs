//! proto → domain: one function per request type checks and converts its fields, collecting
//! every bad field before failing once with INVALID_ARGUMENT (google.rpc BadRequest). No I/O,
//! so the property tests (`requests_props.rs`) drive every request type with arbitrary values.
//! The handlers call [`super::auth::authorize`] first, then one of these.

use std::collections::HashSet;

use secrecy::SecretString;
use tonic::Status;
use uuid::Uuid;

use super::validate::Checker;
use crate::{
    domain::{DigitCustomer, DigitCustomerId, MAX_ID_BYTES, QboCustomerId, RealmId, TenantId},
    error::ApiError,
    proto::v1 as pb,
    service::{
        connections::{ConnectRequest, Credential, Environment},
        reviews::Decision,
        sync::{SyncMode, SyncRequest, Trigger},
    },
};

/// The most customers one `BatchUpsertCustomers` call may carry.
pub const MAX_BATCH_CUSTOMERS: usize = 1_000;
/// The longest free-text reason kept in the audit trail, in bytes.
pub const MAX_REASON_BYTES: usize = 1_000;
/// The largest page of a listing.
pub const MAX_PAGE_SIZE: i32 = 500;
/// The longest page token accepted, in bytes (the tokens we issue are far shorter).
pub const MAX_PAGE_TOKEN_BYTES: usize = 256;
/// The longest authorization code, redirect URI or refresh token accepted, in bytes.
pub const MAX_CREDENTIAL_BYTES: usize = 4_096;

fn tenant(checker: &mut Checker, value: &str) -> Option<TenantId> {
    checker.id("tenant_id", value, TenantId::parse)
}

fn digit_id(checker: &mut Checker, value: &str) -> Option<DigitCustomerId> {
    checker.id("digit_customer_id", value, DigitCustomerId::parse)
}

fn uuid(checker: &mut Checker, field: &str, value: &str) -> Option<Uuid> {
    Uuid::parse_str(value)
        .map_err(|_| checker.violation(field, "must be a UUID"))
        .ok()
}

/// Checks a listing's page size (0 for the default, at most [`MAX_PAGE_SIZE`]) and the size of
/// its page token; returns the page size.
fn page(checker: &mut Checker, page_size: i32, page_token: &str) -> usize {
    if !(0..=MAX_PAGE_SIZE).contains(&page_size) {
        checker.violation(
            "page_size",
            format!("must be 0 (default 50) to {MAX_PAGE_SIZE}"),
        );
    }
    checker.text("page_token", page_token, MAX_PAGE_TOKEN_BYTES);
    usize::try_from(page_size).unwrap_or(0)
}

/// `GetConnection`, `DisconnectCompany`: a request that names only a tenant.
///
/// # Errors
/// INVALID_ARGUMENT naming `tenant_id`.
pub fn tenant_only(tenant_id: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(tenant_id).map_err(|e| ApiError::invalid("tenant_id", e.to_string()))
}

/// `GetLinkStatus`, `ValidateInvoiceCustomer`: a tenant and one Digit customer.
///
/// # Errors
/// INVALID_ARGUMENT naming every bad field.
pub fn tenant_and_customer(
    tenant_id: &str,
    customer_id: &str,
) -> Result<(TenantId, DigitCustomerId), ApiError> {
    let mut checker = Checker::new();
    match (
        tenant(&mut checker, tenant_id),
        digit_id(&mut checker, customer_id),
    ) {
        (Some(t), Some(c)) if checker.is_clean() => Ok((t, c)),
        _ => Err(checker.into_error()),
    }
}

/// `GetSyncRun`, `WatchSyncRun`, `CancelSyncRun`: a tenant and one sync run.
///
/// # Errors
/// INVALID_ARGUMENT naming every bad field.
pub fn tenant_and_run(tenant_id: &str, run_id: &str) -> Result<(TenantId, Uuid), ApiError> {
    let mut checker = Checker::new();
    match (
        tenant(&mut checker, tenant_id),
        uuid(&mut checker, "run_id", run_id),
    ) {
        (Some(t), Some(r)) if checker.is_clean() => Ok((t, r)),
        _ => Err(checker.into_error()),
    }
}

/// `UpsertCustomer`.
///
/// # Errors
/// INVALID_ARGUMENT naming every bad field.
pub fn upsert_customer(
    request: &pb::UpsertCustomerRequest,
) -> Result<(TenantId, DigitCustomer), ApiError> {
    let mut checker = Checker::new();
    match (
        tenant(&mut checker, &request.tenant_id),
        checker.customer("customer", request.customer.as_ref()),
    ) {
        (Some(t), Some(c)) if checker.is_clean() => Ok((t, c)),
        _ => Err(checker.into_error()),
    }
}

/// A checked batch: the valid customers and one error result per invalid one, each with its
/// position in the request.
#[derive(Debug)]
pub struct CheckedBatch {
    /// The tenant.
    pub tenant: TenantId,
    /// The customers to record, with their positions.
    pub valid: Vec<(usize, DigitCustomer)>,
    /// The answers for the customers refused, with their positions.
    pub invalid: Vec<(usize, pb::BatchUpsertResult)>,
}

/// `BatchUpsertCustomers`. The tenant and size are all-or-nothing; customers are checked one
/// by one, and a bad one is answered in its own result.
///
/// # Errors
/// INVALID_ARGUMENT naming `tenant_id` or `customers` (the count).
pub fn batch_upsert_customers(
    request: &pb::BatchUpsertCustomersRequest,
) -> Result<CheckedBatch, ApiError> {
    let mut checker = Checker::new();
    let tenant = tenant(&mut checker, &request.tenant_id);
    let count = request.customers.len();
    if count == 0 || count > MAX_BATCH_CUSTOMERS {
        checker.violation(
            "customers",
            format!("must hold 1 to {MAX_BATCH_CUSTOMERS} customers, got {count}"),
        );
    }
    let Some(tenant) = tenant.filter(|_| checker.is_clean()) else {
        return Err(checker.into_error());
    };
    let mut valid = Vec::with_capacity(count);
    let mut invalid = Vec::new();
    let mut seen = HashSet::with_capacity(count);
    for (index, customer) in request.customers.iter().enumerate() {
        let mut item = Checker::new();
        let parsed = item.customer(&format!("customers[{index}]"), Some(customer));
        if parsed.is_some() && !seen.insert(customer.id.as_str()) {
            item.violation(
                format!("customers[{index}].id"),
                "appears more than once in the request",
            );
        }
        match parsed {
            Some(parsed) if item.is_clean() => valid.push((index, parsed)),
            _ => {
                let status = Status::from(item.into_error());
                invalid.push((
                    index,
                    pb::BatchUpsertResult {
                        customer_id: customer.id.clone(),
                        code: status.code() as i32,
                        message: status.message().to_owned(),
                        ..Default::default()
                    },
                ));
            }
        }
    }
    Ok(CheckedBatch {
        tenant,
        valid,
        invalid,
    })
}

/// `TriggerSync`, asked for by `requested_by`.
///
/// # Errors
/// INVALID_ARGUMENT naming every bad field.
pub fn trigger_sync(
    request: &pb::TriggerSyncRequest,
    requested_by: String,
) -> Result<(TenantId, SyncRequest), ApiError> {
    let mut checker = Checker::new();
    let tenant = tenant(&mut checker, &request.tenant_id);
    let mode =
        checker.known_enum::<pb::SyncMode>("mode", request.mode, pb::SyncMode::Unspecified as i32);
    checker.text("idempotency_key", &request.idempotency_key, MAX_ID_BYTES);
    let (tenant, mode) = match (tenant, mode) {
        (Some(t), Some(m)) if checker.is_clean() => (t, m),
        _ => return Err(checker.into_error()),
    };
    let mode = match mode {
        pb::SyncMode::Incremental => SyncMode::Incremental,
        pb::SyncMode::Full | pb::SyncMode::Unspecified => SyncMode::Full,
    };
    let sync = SyncRequest {
        mode,
        dry_run: request.dry_run,
        link_only: request.link_only,
        idempotency_key: (!request.idempotency_key.is_empty())
            .then(|| request.idempotency_key.clone()),
        requested_by,
        trigger: Trigger::Api,
    };
    Ok((tenant, sync))
}

/// `LinkCustomers`: the tenant, the Digit customer and the QBO customer (`reason` and
/// `on_behalf_of` are checked, and read from the request as they are).
///
/// # Errors
/// INVALID_ARGUMENT naming every bad field.
pub fn link_customers(
    request: &pb::LinkCustomersRequest,
) -> Result<(TenantId, DigitCustomerId, QboCustomerId), ApiError> {
    let mut checker = Checker::new();
    let tenant = tenant(&mut checker, &request.tenant_id);
    let digit = digit_id(&mut checker, &request.digit_customer_id);
    let qbo = checker.id(
        "qbo_customer_id",
        &request.qbo_customer_id,
        QboCustomerId::parse,
    );
    checker.text("reason", &request.reason, MAX_REASON_BYTES);
    checker.text("on_behalf_of", &request.on_behalf_of, MAX_ID_BYTES);
    match (tenant, digit, qbo) {
        (Some(t), Some(d), Some(q)) if checker.is_clean() => Ok((t, d, q)),
        _ => Err(checker.into_error()),
    }
}

/// `UnlinkCustomer` (`reason` and `on_behalf_of` are checked, and read from the request).
///
/// # Errors
/// INVALID_ARGUMENT naming every bad field.
pub fn unlink_customer(
    request: &pb::UnlinkCustomerRequest,
) -> Result<(TenantId, DigitCustomerId), ApiError> {
    let mut checker = Checker::new();
    let tenant = tenant(&mut checker, &request.tenant_id);
    let digit = digit_id(&mut checker, &request.digit_customer_id);
    checker.text("reason", &request.reason, MAX_REASON_BYTES);
    checker.text("on_behalf_of", &request.on_behalf_of, MAX_ID_BYTES);
    match (tenant, digit) {
        (Some(t), Some(d)) if checker.is_clean() => Ok((t, d)),
        _ => Err(checker.into_error()),
    }
}

/// `ListLinkEvents`: the tenant, the customer when one is named, and the page size (the page
/// token is checked for size here and read by the use case).
///
/// # Errors
/// INVALID_ARGUMENT naming every bad field.
pub fn list_link_events(
    request: &pb::ListLinkEventsRequest,
) -> Result<(TenantId, Option<DigitCustomerId>, usize), ApiError> {
    let mut checker = Checker::new();
    let tenant = tenant(&mut checker, &request.tenant_id);
    let digit = if request.digit_customer_id.is_empty() {
        None
    } else {
        digit_id(&mut checker, &request.digit_customer_id)
    };
    let page_size = page(&mut checker, request.page_size, &request.page_token);
    match tenant {
        Some(t) if checker.is_clean() => Ok((t, digit, page_size)),
        _ => Err(checker.into_error()),
    }
}

/// `ListReviewItems`: the tenant and the page size.
///
/// # Errors
/// INVALID_ARGUMENT naming every bad field.
pub fn list_review_items(
    request: &pb::ListReviewItemsRequest,
) -> Result<(TenantId, usize), ApiError> {
    let mut checker = Checker::new();
    let tenant = tenant(&mut checker, &request.tenant_id);
    let page_size = page(&mut checker, request.page_size, &request.page_token);
    match tenant {
        Some(t) if checker.is_clean() => Ok((t, page_size)),
        _ => Err(checker.into_error()),
    }
}

/// `ResolveReviewItem`: the tenant, the item and the decision (`reason` is checked, and read
/// from the request).
///
/// # Errors
/// INVALID_ARGUMENT naming every bad field.
pub fn resolve_review_item(
    request: &pb::ResolveReviewItemRequest,
) -> Result<(TenantId, Uuid, Decision), ApiError> {
    let mut checker = Checker::new();
    let tenant = tenant(&mut checker, &request.tenant_id);
    let id = uuid(&mut checker, "review_item_id", &request.review_item_id);
    let decision = checker.known_enum::<pb::ReviewDecision>(
        "decision",
        request.decision,
        pb::ReviewDecision::Unspecified as i32,
    );
    let mut accepted = None;
    match (decision, request.qbo_customer_id.is_empty()) {
        (Some(pb::ReviewDecision::AcceptCandidate), _) => {
            accepted = checker.id(
                "qbo_customer_id",
                &request.qbo_customer_id,
                QboCustomerId::parse,
            );
        }
        (Some(_), false) => checker.violation(
            "qbo_customer_id",
            "must be empty unless the decision accepts a candidate",
        ),
        _ => {}
    }
    checker.text("reason", &request.reason, MAX_REASON_BYTES);
    let decision = match (decision, accepted) {
        (Some(pb::ReviewDecision::AcceptCandidate), Some(qbo)) => Some(Decision::Accept(qbo)),
        (Some(pb::ReviewDecision::RejectAll), _) => Some(Decision::RejectAll),
        (Some(pb::ReviewDecision::CreateNew), _) => Some(Decision::CreateNew),
        _ => None,
    };
    match (tenant, id, decision) {
        (Some(t), Some(i), Some(d)) if checker.is_clean() => Ok((t, i, d)),
        _ => Err(checker.into_error()),
    }
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

/// `ConnectCompany`, asked for by `actor`.
///
/// # Errors
/// INVALID_ARGUMENT naming every bad field.
pub fn connect_company(
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
    checker.text("on_behalf_of", &request.on_behalf_of, MAX_ID_BYTES);
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

#[cfg(test)]
#[path = "requests_props.rs"]
mod props;
