//! Batch creates: up to 30 customers per call (QBO's documented item limit), correlated by
//! `bId`. A whole-batch answer lost in transit is handled like a single create's: each item's
//! name is looked up first, and only the items not found are sent again.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::Value;
use tracing::instrument;

use super::{
    QboClient, QboError,
    client::Call,
    customers::decode,
    error::{Answer, classify, json_fault},
    limiter::{CallKind, Lane},
    model::{BatchEnvelope, BatchItemRequestDto, BatchRequestDto, CustomerEnvelope},
    types::{CreateOutcome, NewCustomer, QboCustomer, RequestId},
};
use crate::domain::{RealmId, TenantId};

/// One customer to create in a batch, with its own deterministic request id.
#[derive(Debug, Clone)]
pub struct BatchCreate {
    /// The item's idempotency key (also used to derive the batch's).
    pub request_id: RequestId,
    /// The customer.
    pub customer: NewCustomer,
}

impl QboClient {
    /// Creates the customers in batches of the configured size (at most 30). The answer has
    /// one result per input, in input order.
    ///
    /// # Errors
    /// Only failures of a whole batch call (after its retries); per-item failures are in the
    /// returned list.
    #[instrument(name = "qbo.customer.batch_create", skip_all, err(level = "debug"))]
    pub async fn batch_create_customers(
        &self,
        tenant: &TenantId,
        items: &[BatchCreate],
        lane: Lane,
    ) -> Result<Vec<Result<CreateOutcome, QboError>>, QboError> {
        let mut results = Vec::with_capacity(items.len());
        for chunk in items.chunks(self.settings.batch_size) {
            results.extend(self.batch_chunk(tenant, chunk, lane).await?);
        }
        Ok(results)
    }

    async fn batch_chunk(
        &self,
        tenant: &TenantId,
        chunk: &[BatchCreate],
        lane: Lane,
    ) -> Result<Vec<Result<CreateOutcome, QboError>>, QboError> {
        let mut results: Vec<Option<Result<CreateOutcome, QboError>>> =
            (0..chunk.len()).map(|_| None).collect();
        for _ in 0..3 {
            let pending: Vec<usize> = (0..chunk.len()).filter(|i| results[*i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            match self.send_batch(tenant, chunk, &pending, lane).await {
                Ok((answers, realm)) => {
                    for (index, answer) in answers {
                        let item = &chunk[index];
                        results[index] =
                            Some(self.finish_item(tenant, item, answer, &realm, lane).await);
                    }
                }
                Err(QboError::Transport {
                    uncertain: true, ..
                }) => {
                    for index in pending {
                        let name = &chunk[index].customer.display_name;
                        if let Some(found) = self.find_after_uncertain(tenant, name, lane).await? {
                            results[index] = Some(Ok(found));
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or(Err(QboError::Transport {
                    kind: "batch answer lost",
                    uncertain: true,
                }))
            })
            .collect())
    }

    /// Sends the `pending` items; returns (index, item answer) pairs and the answering company.
    async fn send_batch(
        &self,
        tenant: &TenantId,
        chunk: &[BatchCreate],
        pending: &[usize],
        lane: Lane,
    ) -> Result<(Vec<(usize, Value)>, RealmId), QboError> {
        let ids: Vec<&RequestId> = pending.iter().map(|i| &chunk[*i].request_id).collect();
        let request = BatchRequestDto {
            items: pending
                .iter()
                .map(|i| BatchItemRequestDto {
                    b_id: i.to_string(),
                    operation: "create",
                    customer: chunk[*i].customer.to_dto(),
                })
                .collect(),
        };
        let call = Call {
            method: Method::POST,
            path: "batch".to_owned(),
            params: vec![("requestid", RequestId::for_batch(&ids).as_str().to_owned())],
            body: Some(serde_json::to_value(request).map_err(|e| QboError::Decode(e.to_string()))?),
            lane,
            kind: CallKind::Batch,
            idempotent: false,
            op: "qbo.batch",
        };
        let reply = self.execute(tenant, &call).await?;
        let envelope: BatchEnvelope = decode(reply.value, "batch")?;
        let mut by_bid: HashMap<String, Value> = envelope
            .items
            .into_iter()
            .filter_map(|item| {
                let bid = item.get("bId").and_then(Value::as_str)?.to_owned();
                Some((bid, item))
            })
            .collect();
        let answers = pending
            .iter()
            .map(|i| {
                by_bid
                    .remove(&i.to_string())
                    .map(|v| (*i, v))
                    .ok_or_else(|| QboError::Decode(format!("batch answer lacks bId {i}")))
            })
            .collect::<Result<_, _>>()?;
        Ok((answers, reply.realm))
    }

    async fn finish_item(
        &self,
        tenant: &TenantId,
        item: &BatchCreate,
        answer: Value,
        realm: &RealmId,
        lane: Lane,
    ) -> Result<CreateOutcome, QboError> {
        let (_, faults) = json_fault(&answer);
        if faults.is_empty() {
            let envelope: CustomerEnvelope = decode(answer, "batch item")?;
            let created = QboCustomer::from_dto(envelope.customer, realm);
            return Ok(CreateOutcome::Created(created));
        }
        let body = serde_json::to_vec(&answer).unwrap_or_default();
        // Items carry no HTTP status of their own: 400 makes the parser read the Fault.
        let error = classify(&Answer {
            status: 400,
            retry_after: None,
            body: &body,
        })
        .unwrap_or_else(|| QboError::Decode("batch item fault".into()));
        match error {
            QboError::DuplicateName { existing_id } => {
                self.resolve_duplicate(tenant, &item.customer.display_name, existing_id, lane)
                    .await
            }
            other => Err(other),
        }
    }
}
