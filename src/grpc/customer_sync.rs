//! `qbosync.v1.CustomerSyncService`.

use std::{collections::HashSet, pin::Pin};

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{auth::authorize, convert, validate::Checker};
use crate::{
    auth::Scope,
    domain::{DigitCustomer, DigitCustomerId, QboCustomerId, TenantId},
    error::ApiError,
    proto::v1::{self as pb, customer_sync_service_server::CustomerSyncService},
    service::{
        customers::Customers,
        links::{Actor, Links},
        preflight::Preflight,
        reviews::{Decision, Reviews},
        sync::{SyncMode, SyncRequest, Syncs, Trigger},
    },
};

/// The most customers one `BatchUpsertCustomers` call may carry.
pub const MAX_BATCH_CUSTOMERS: usize = 1_000;
/// The longest free-text reason kept in the audit trail, in bytes.
pub const MAX_REASON_BYTES: usize = 1_000;
/// The largest review page.
pub const MAX_PAGE_SIZE: i32 = 500;

/// How often WatchSyncRun looks at the run.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The service, over the customer use cases.
#[derive(Debug, Clone)]
pub struct CustomerSyncApi {
    customers: Customers,
    syncs: Syncs,
    links: Links,
    reviews: Reviews,
    preflight: Preflight,
}

impl CustomerSyncApi {
    /// A service over these use cases.
    #[must_use]
    pub fn new(
        customers: Customers,
        syncs: Syncs,
        links: Links,
        reviews: Reviews,
        preflight: Preflight,
    ) -> Self {
        Self {
            customers,
            syncs,
            links,
            reviews,
            preflight,
        }
    }
}

/// How long a preflight repair may take: the caller's deadline (`grpc-timeout`) less a margin
/// for the answer, at most 10 s; 5 s when the caller set none.
fn repair_deadline(metadata: &tonic::metadata::MetadataMap) -> std::time::Duration {
    use std::time::Duration;
    let given = metadata
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout);
    match given {
        Some(d) => d
            .saturating_sub(Duration::from_millis(200).min(d / 5))
            .min(Duration::from_secs(10)),
        None => Duration::from_secs(5),
    }
}

/// Parses a `grpc-timeout` header: digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

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

/// Checks a request that names one tenant and one Digit customer.
fn tenant_and_customer(
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

/// Checks a listing's page size (0 for the default, at most [`MAX_PAGE_SIZE`]) and the size of
/// its page token; returns the page size.
fn page(checker: &mut Checker, page_size: i32, page_token: &str) -> usize {
    if !(0..=MAX_PAGE_SIZE).contains(&page_size) {
        checker.violation(
            "page_size",
            format!("must be 0 (default 50) to {MAX_PAGE_SIZE}"),
        );
    }
    checker.text("page_token", page_token, 256);
    usize::try_from(page_size).unwrap_or(0)
}

/// Checks a request that names one tenant and one sync run.
fn tenant_and_run(tenant_id: &str, run_id: &str) -> Result<(TenantId, Uuid), ApiError> {
    let mut checker = Checker::new();
    match (
        tenant(&mut checker, tenant_id),
        uuid(&mut checker, "run_id", run_id),
    ) {
        (Some(t), Some(r)) if checker.is_clean() => Ok((t, r)),
        _ => Err(checker.into_error()),
    }
}

/// A checked batch: the valid customers and one error result per invalid one, each with its
/// position in the request.
struct CheckedBatch {
    tenant: TenantId,
    valid: Vec<(usize, DigitCustomer)>,
    invalid: Vec<(usize, pb::BatchUpsertResult)>,
}

/// Checks a batch. The tenant and size are all-or-nothing; customers are checked one by one.
fn check_batch(request: &pb::BatchUpsertCustomersRequest) -> Result<CheckedBatch, ApiError> {
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

type WatchStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchSyncRunResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl CustomerSyncService for CustomerSyncApi {
    async fn upsert_customer(
        &self,
        request: Request<pb::UpsertCustomerRequest>,
    ) -> Result<Response<pb::UpsertCustomerResponse>, Status> {
        authorize(&request, Scope::Write, &request.get_ref().tenant_id)?;
        let request = request.into_inner();
        let mut checker = Checker::new();
        let (tenant, customer) = match (
            tenant(&mut checker, &request.tenant_id),
            checker.customer("customer", request.customer.as_ref()),
        ) {
            (Some(t), Some(c)) if checker.is_clean() => (t, c),
            _ => return Err(checker.into_error().into()),
        };
        let outcome = self
            .customers
            .upsert_customer(&tenant, &customer, request.skip_push)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::UpsertCustomerResponse {
            state: convert::link_state(outcome.state).into(),
            created: outcome.created,
            push_queued: outcome.push_queued,
            link: outcome.link.map(convert::link),
        }))
    }

    async fn batch_upsert_customers(
        &self,
        request: Request<pb::BatchUpsertCustomersRequest>,
    ) -> Result<Response<pb::BatchUpsertCustomersResponse>, Status> {
        authorize(&request, Scope::Write, &request.get_ref().tenant_id)?;
        let request = request.into_inner();
        let CheckedBatch {
            tenant,
            valid,
            invalid,
        } = check_batch(&request)?;
        let customers: Vec<DigitCustomer> = valid.iter().map(|(_, c)| c.clone()).collect();
        let outcomes = self
            .customers
            .upsert_customers(&tenant, &customers, request.skip_push)
            .await
            .map_err(ApiError::from)?;
        let mut results: Vec<(usize, pb::BatchUpsertResult)> = valid
            .into_iter()
            .zip(outcomes)
            .map(|((index, customer), outcome)| {
                (
                    index,
                    pb::BatchUpsertResult {
                        customer_id: customer.id.to_string(),
                        code: tonic::Code::Ok as i32,
                        message: String::new(),
                        state: convert::link_state(outcome.state).into(),
                        created: outcome.created,
                        push_queued: outcome.push_queued,
                    },
                )
            })
            .chain(invalid)
            .collect();
        results.sort_by_key(|(index, _)| *index);
        Ok(Response::new(pb::BatchUpsertCustomersResponse {
            results: results.into_iter().map(|(_, r)| r).collect(),
        }))
    }

    async fn trigger_sync(
        &self,
        request: Request<pb::TriggerSyncRequest>,
    ) -> Result<Response<pb::TriggerSyncResponse>, Status> {
        let caller = authorize(&request, Scope::Write, &request.get_ref().tenant_id)?;
        let request = request.into_inner();
        let mut checker = Checker::new();
        let tenant = tenant(&mut checker, &request.tenant_id);
        checker.known_enum::<pb::SyncMode>("mode", request.mode, pb::SyncMode::Unspecified as i32);
        checker.text(
            "idempotency_key",
            &request.idempotency_key,
            crate::domain::MAX_ID_BYTES,
        );
        let tenant = match tenant {
            Some(t) if checker.is_clean() => t,
            _ => return Err(checker.into_error().into()),
        };
        let mode = match pb::SyncMode::try_from(request.mode) {
            Ok(pb::SyncMode::Incremental) => SyncMode::Incremental,
            _ => SyncMode::Full,
        };
        let sync = SyncRequest {
            mode,
            dry_run: request.dry_run,
            link_only: request.link_only,
            idempotency_key: (!request.idempotency_key.is_empty())
                .then_some(request.idempotency_key),
            requested_by: caller.to_string(),
            trigger: Trigger::Api,
        };
        let triggered = self
            .syncs
            .trigger(&tenant, &sync)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::TriggerSyncResponse {
            run: Some(convert::sync_run(triggered.run)),
            already_running: triggered.already_running,
        }))
    }

    async fn get_sync_run(
        &self,
        request: Request<pb::GetSyncRunRequest>,
    ) -> Result<Response<pb::GetSyncRunResponse>, Status> {
        authorize(&request, Scope::Read, &request.get_ref().tenant_id)?;
        let request = request.into_inner();
        let (tenant, run_id) = tenant_and_run(&request.tenant_id, &request.run_id)?;
        let run = self
            .syncs
            .get(&tenant, run_id)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::GetSyncRunResponse {
            run: Some(convert::sync_run(run)),
        }))
    }

    type WatchSyncRunStream = WatchStream;

    async fn watch_sync_run(
        &self,
        request: Request<pb::WatchSyncRunRequest>,
    ) -> Result<Response<Self::WatchSyncRunStream>, Status> {
        authorize(&request, Scope::Read, &request.get_ref().tenant_id)?;
        let request = request.into_inner();
        let (tenant, run_id) = tenant_and_run(&request.tenant_id, &request.run_id)?;
        // A run that does not exist is NOT_FOUND at once, not an empty stream.
        self.syncs
            .get(&tenant, run_id)
            .await
            .map_err(ApiError::from)?;
        let stream = self
            .syncs
            .watch(tenant, run_id, WATCH_EVERY)
            .map(|item| match item {
                Ok(run) => Ok(pb::WatchSyncRunResponse {
                    run: Some(convert::sync_run(run)),
                }),
                Err(e) => Err(Status::from(ApiError::from(e))),
            });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn cancel_sync_run(
        &self,
        request: Request<pb::CancelSyncRunRequest>,
    ) -> Result<Response<pb::CancelSyncRunResponse>, Status> {
        authorize(&request, Scope::Write, &request.get_ref().tenant_id)?;
        let request = request.into_inner();
        let (tenant, run_id) = tenant_and_run(&request.tenant_id, &request.run_id)?;
        let run = self
            .syncs
            .cancel(&tenant, run_id)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::CancelSyncRunResponse {
            run: Some(convert::sync_run(run)),
        }))
    }

    async fn get_link_status(
        &self,
        request: Request<pb::GetLinkStatusRequest>,
    ) -> Result<Response<pb::GetLinkStatusResponse>, Status> {
        authorize(&request, Scope::Read, &request.get_ref().tenant_id)?;
        let request = request.into_inner();
        let (tenant, id) = tenant_and_customer(&request.tenant_id, &request.digit_customer_id)?;
        let status = self
            .customers
            .link_status(&tenant, &id)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::GetLinkStatusResponse {
            state: convert::link_state(status.state).into(),
            link: status.link.map(convert::link),
            candidates: status
                .candidates
                .into_iter()
                .map(convert::candidate)
                .collect(),
            explanation: status.explanation,
            review_item_id: status
                .review_item_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        }))
    }

    async fn link_customers(
        &self,
        request: Request<pb::LinkCustomersRequest>,
    ) -> Result<Response<pb::LinkCustomersResponse>, Status> {
        let caller = authorize(&request, Scope::Write, &request.get_ref().tenant_id)?.to_string();
        let request = request.into_inner();
        let mut checker = Checker::new();
        let tenant = tenant(&mut checker, &request.tenant_id);
        let digit = digit_id(&mut checker, &request.digit_customer_id);
        let qbo = checker.id(
            "qbo_customer_id",
            &request.qbo_customer_id,
            QboCustomerId::parse,
        );
        checker.text("reason", &request.reason, MAX_REASON_BYTES);
        checker.text(
            "on_behalf_of",
            &request.on_behalf_of,
            crate::domain::MAX_ID_BYTES,
        );
        let (tenant, digit, qbo) = match (tenant, digit, qbo) {
            (Some(t), Some(d), Some(q)) if checker.is_clean() => (t, d, q),
            _ => return Err(checker.into_error().into()),
        };
        let actor = Actor {
            name: &caller,
            on_behalf_of: (!request.on_behalf_of.is_empty()).then_some(&request.on_behalf_of),
            reason: &request.reason,
        };
        let linked = self
            .links
            .link(&tenant, &digit, &qbo, request.replace_existing, actor)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::LinkCustomersResponse {
            link: Some(convert::link(linked.link)),
            replaced: linked.replaced.into_iter().map(convert::link).collect(),
        }))
    }

    async fn unlink_customer(
        &self,
        request: Request<pb::UnlinkCustomerRequest>,
    ) -> Result<Response<pb::UnlinkCustomerResponse>, Status> {
        let caller = authorize(&request, Scope::Write, &request.get_ref().tenant_id)?.to_string();
        let request = request.into_inner();
        let mut checker = Checker::new();
        let tenant = tenant(&mut checker, &request.tenant_id);
        let digit = digit_id(&mut checker, &request.digit_customer_id);
        checker.text("reason", &request.reason, MAX_REASON_BYTES);
        checker.text(
            "on_behalf_of",
            &request.on_behalf_of,
            crate::domain::MAX_ID_BYTES,
        );
        let (tenant, digit) = match (tenant, digit) {
            (Some(t), Some(d)) if checker.is_clean() => (t, d),
            _ => return Err(checker.into_error().into()),
        };
        let actor = Actor {
            name: &caller,
            on_behalf_of: (!request.on_behalf_of.is_empty()).then_some(&request.on_behalf_of),
            reason: &request.reason,
        };
        let removed = self
            .links
            .unlink(&tenant, &digit, actor)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::UnlinkCustomerResponse {
            removed: Some(convert::link(removed)),
        }))
    }

    async fn list_link_events(
        &self,
        request: Request<pb::ListLinkEventsRequest>,
    ) -> Result<Response<pb::ListLinkEventsResponse>, Status> {
        authorize(&request, Scope::Read, &request.get_ref().tenant_id)?;
        let request = request.into_inner();
        let mut checker = Checker::new();
        let tenant = tenant(&mut checker, &request.tenant_id);
        let digit = if request.digit_customer_id.is_empty() {
            None
        } else {
            digit_id(&mut checker, &request.digit_customer_id)
        };
        let page_size = page(&mut checker, request.page_size, &request.page_token);
        let Some(tenant) = tenant.filter(|_| checker.is_clean()) else {
            return Err(checker.into_error().into());
        };
        let page = self
            .links
            .events(&tenant, digit.as_ref(), page_size, &request.page_token)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::ListLinkEventsResponse {
            events: page.events.into_iter().map(convert::link_event).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn list_review_items(
        &self,
        request: Request<pb::ListReviewItemsRequest>,
    ) -> Result<Response<pb::ListReviewItemsResponse>, Status> {
        authorize(&request, Scope::Read, &request.get_ref().tenant_id)?;
        let request = request.into_inner();
        let mut checker = Checker::new();
        let tenant = tenant(&mut checker, &request.tenant_id);
        let page_size = page(&mut checker, request.page_size, &request.page_token);
        let Some(tenant) = tenant.filter(|_| checker.is_clean()) else {
            return Err(checker.into_error().into());
        };
        let page = self
            .reviews
            .list(&tenant, page_size, &request.page_token)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::ListReviewItemsResponse {
            review_items: page.items.into_iter().map(convert::review_item).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn resolve_review_item(
        &self,
        request: Request<pb::ResolveReviewItemRequest>,
    ) -> Result<Response<pb::ResolveReviewItemResponse>, Status> {
        let caller = authorize(&request, Scope::Write, &request.get_ref().tenant_id)?.to_string();
        let request = request.into_inner();
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
        let (tenant, id, decision) = match (tenant, id, decision) {
            (Some(t), Some(i), Some(d)) if checker.is_clean() => (t, i, d),
            _ => return Err(checker.into_error().into()),
        };
        let actor = Actor {
            name: &caller,
            on_behalf_of: None,
            reason: &request.reason,
        };
        let resolved = self
            .reviews
            .resolve(&tenant, id, &decision, actor)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::ResolveReviewItemResponse {
            state: convert::link_state(resolved.state).into(),
            link: resolved.link.map(convert::link),
        }))
    }

    async fn validate_invoice_customer(
        &self,
        request: Request<pb::ValidateInvoiceCustomerRequest>,
    ) -> Result<Response<pb::ValidateInvoiceCustomerResponse>, Status> {
        let caller =
            authorize(&request, Scope::Validate, &request.get_ref().tenant_id)?.to_string();
        let deadline = repair_deadline(request.metadata());
        let request = request.into_inner();
        let (tenant, digit) = tenant_and_customer(&request.tenant_id, &request.digit_customer_id)?;
        let verdict = self
            .preflight
            .validate(&tenant, &digit, request.repair, deadline, &caller)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(convert::verdict(verdict)))
    }
}
