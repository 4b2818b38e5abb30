//! `qbosync.v1.CustomerSyncService`.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::{
    auth::authorize,
    convert,
    requests::{self, CheckedBatch},
};
use crate::{
    auth::Scope,
    domain::DigitCustomer,
    error::ApiError,
    proto::v1::{self as pb, customer_sync_service_server::CustomerSyncService},
    service::{
        customers::Customers,
        links::{Actor, Links},
        preflight::Preflight,
        reviews::Reviews,
        sync::Syncs,
    },
};

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
        let (tenant, customer) = requests::upsert_customer(&request)?;
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
        } = requests::batch_upsert_customers(&request)?;
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
        let (tenant, sync) = requests::trigger_sync(request.get_ref(), caller.to_string())?;
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
        let (tenant, run_id) = requests::tenant_and_run(&request.tenant_id, &request.run_id)?;
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
        let (tenant, run_id) = requests::tenant_and_run(&request.tenant_id, &request.run_id)?;
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
        let (tenant, run_id) = requests::tenant_and_run(&request.tenant_id, &request.run_id)?;
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
        let (tenant, id) =
            requests::tenant_and_customer(&request.tenant_id, &request.digit_customer_id)?;
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
        let (tenant, digit, qbo) = requests::link_customers(&request)?;
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
        let (tenant, digit) = requests::unlink_customer(&request)?;
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
        let (tenant, digit, page_size) = requests::list_link_events(&request)?;
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
        let (tenant, page_size) = requests::list_review_items(&request)?;
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
        let (tenant, id, decision) = requests::resolve_review_item(&request)?;
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
        let (tenant, digit) =
            requests::tenant_and_customer(&request.tenant_id, &request.digit_customer_id)?;
        let verdict = self
            .preflight
            .validate(&tenant, &digit, request.repair, deadline, &caller)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(convert::verdict(verdict)))
    }
}
