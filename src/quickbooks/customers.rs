//! Customer operations: read, query page, count, create (idempotent), sparse update and CDC
//! (reading every customer page by page is in `pager.rs`).

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::Value;
use tracing::{debug, instrument};

use super::{
    QboClient, QboError,
    client::Call,
    limiter::{CallKind, Lane},
    model::{CdcEnvelope, CustomerEnvelope, QueryEnvelope},
    query,
    types::{
        CreateOutcome, CustomerChanges, CustomerPage, CustomerPatch, NewCustomer, QboCustomer,
        RequestId, parse_qbo_time,
    },
};
use crate::domain::{RealmId, TenantId};

/// How often a create whose answer was lost is looked up and sent again.
const UNCERTAIN_CREATE_ROUNDS: u32 = 3;

impl QboClient {
    /// Reads one customer by Id (active or not).
    ///
    /// # Errors
    /// [`QboError::NotFound`] when QBO has no such customer (or it was merged away), and the
    /// call errors of [`QboClient`].
    #[instrument(name = "qbo.customer.read", skip_all, err(level = "debug"))]
    pub async fn read_customer(
        &self,
        tenant: &TenantId,
        id: &str,
        lane: Lane,
    ) -> Result<QboCustomer, QboError> {
        let call = Call {
            method: Method::GET,
            path: format!("customer/{}", query::encode_statement(id)),
            params: Vec::new(),
            body: None,
            lane,
            kind: CallKind::Single,
            idempotent: true,
            op: "qbo.customer.read",
        };
        let reply = self.execute(tenant, &call).await?;
        let envelope: CustomerEnvelope = decode(reply.value, "customer")?;
        Ok(QboCustomer::from_dto(envelope.customer, &reply.realm))
    }

    /// Runs one customer query page in `ORDERBY Id` order. `start` is 1-based; `max_results`
    /// is capped at 1000. With `include_inactive`, inactive customers come too. To read every
    /// customer, use [`Self::customer_pager`].
    ///
    /// # Errors
    /// The call errors of [`QboClient`].
    #[instrument(name = "qbo.customer.query", skip_all, err(level = "debug"))]
    pub async fn query_customers_page_sized(
        &self,
        tenant: &TenantId,
        start: u32,
        max_results: u32,
        include_inactive: bool,
        lane: Lane,
    ) -> Result<CustomerPage, QboError> {
        let filters = if include_inactive {
            vec![query::ACTIVE_OR_INACTIVE.to_owned()]
        } else {
            Vec::new()
        };
        let size = max_results.clamp(1, 1000);
        let statement = query::select("Customer", &filters, start.max(1), size);
        let (envelope, realm) = self.run_query(tenant, statement, lane).await?;
        let customers: Vec<QboCustomer> = envelope
            .query_response
            .customer
            .into_iter()
            .map(|c| QboCustomer::from_dto(c, &realm))
            .collect();
        let more = customers.len() >= size as usize;
        Ok(CustomerPage { customers, more })
    }

    /// `SELECT COUNT(*) FROM Customer`, inactive ones included when asked.
    ///
    /// # Errors
    /// The call errors of [`QboClient`]; [`QboError::Decode`] without `totalCount`.
    pub async fn count_customers(
        &self,
        tenant: &TenantId,
        include_inactive: bool,
        lane: Lane,
    ) -> Result<u64, QboError> {
        let mut statement = "SELECT COUNT(*) FROM Customer".to_owned();
        if include_inactive {
            statement.push_str(" WHERE ");
            statement.push_str(query::ACTIVE_OR_INACTIVE);
        }
        let (envelope, _) = self.run_query(tenant, statement, lane).await?;
        envelope
            .query_response
            .total_count
            .ok_or_else(|| QboError::Decode("count without totalCount".into()))
    }

    pub(crate) async fn run_query(
        &self,
        tenant: &TenantId,
        statement: String,
        lane: Lane,
    ) -> Result<(QueryEnvelope, RealmId), QboError> {
        let call = Call {
            method: Method::GET,
            path: "query".to_owned(),
            params: vec![("query", statement)],
            body: None,
            lane,
            kind: CallKind::Single,
            idempotent: true,
            op: "qbo.query",
        };
        let reply = self.execute(tenant, &call).await?;
        Ok((decode(reply.value, "query")?, reply.realm))
    }

    /// Creates a customer with the deterministic `request_id`. A lost answer (timeout,
    /// connection reset) is followed by a DisplayName lookup across Customer, Vendor and
    /// Employee before anything is sent again, so it never makes a second customer. A 6240 is
    /// resolved to the record holding the name.
    ///
    /// # Errors
    /// The call errors of [`QboClient`]; [`QboError::DuplicateName`] when the holder of a
    /// taken name cannot be found; [`QboError::Transport`] when the outcome stays unknown.
    #[instrument(name = "qbo.customer.create", skip_all, err(level = "debug"))]
    pub async fn create_customer(
        &self,
        tenant: &TenantId,
        new: &NewCustomer,
        request_id: &RequestId,
        lane: Lane,
    ) -> Result<CreateOutcome, QboError> {
        let call = Call {
            method: Method::POST,
            path: "customer".to_owned(),
            params: vec![("requestid", request_id.as_str().to_owned())],
            body: Some(
                serde_json::to_value(new.to_dto()).map_err(|e| QboError::Decode(e.to_string()))?,
            ),
            lane,
            kind: CallKind::Single,
            idempotent: false,
            op: "qbo.customer.create",
        };
        let mut last = None;
        for _ in 0..UNCERTAIN_CREATE_ROUNDS {
            match self.execute(tenant, &call).await {
                Ok(reply) => {
                    let envelope: CustomerEnvelope = decode(reply.value, "customer create")?;
                    let created = QboCustomer::from_dto(envelope.customer, &reply.realm);
                    return Ok(CreateOutcome::Created(created));
                }
                Err(QboError::DuplicateName { existing_id }) => {
                    return self
                        .resolve_duplicate(tenant, &new.display_name, existing_id, lane)
                        .await;
                }
                Err(
                    e @ QboError::Transport {
                        uncertain: true, ..
                    },
                ) => {
                    debug!("qbo.customer.create.uncertain: looking the name up before retrying");
                    if let Some(found) = self
                        .find_after_uncertain(tenant, &new.display_name, lane)
                        .await?
                    {
                        return Ok(found);
                    }
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(QboError::Transport {
            kind: "unknown",
            uncertain: true,
        }))
    }

    /// Sparse update: only the fields set in `patch` change. On 5010 the customer is read
    /// again and the patch is re-sent with the fresh SyncToken (other users' changes to other
    /// fields are kept; our fields win), up to the configured number of rounds.
    ///
    /// # Errors
    /// [`QboError::StaleObject`] when every round met a newer version, and the call errors.
    #[instrument(name = "qbo.customer.update", skip_all, err(level = "debug"))]
    pub async fn update_customer(
        &self,
        tenant: &TenantId,
        id: &str,
        sync_token: &str,
        patch: &CustomerPatch,
        lane: Lane,
    ) -> Result<QboCustomer, QboError> {
        let mut token = sync_token.to_owned();
        for _ in 0..=self.settings.stale_retries {
            let call = Call {
                method: Method::POST,
                path: "customer".to_owned(),
                params: Vec::new(),
                body: Some(
                    serde_json::to_value(patch.to_dto(id, &token))
                        .map_err(|e| QboError::Decode(e.to_string()))?,
                ),
                lane,
                kind: CallKind::Single,
                // Re-sending is safe: a second copy of an applied update meets 5010 and the
                // re-read below sees the change done.
                idempotent: true,
                op: "qbo.customer.update",
            };
            match self.execute(tenant, &call).await {
                Ok(reply) => {
                    let envelope: CustomerEnvelope = decode(reply.value, "customer update")?;
                    return Ok(QboCustomer::from_dto(envelope.customer, &reply.realm));
                }
                Err(QboError::StaleObject) => {
                    let current = self.read_customer(tenant, id, lane).await?;
                    if patch.is_applied_in(&current) {
                        return Ok(current);
                    }
                    token = current.sync_token;
                }
                Err(e) => return Err(e),
            }
        }
        Err(QboError::StaleObject)
    }

    /// Customers changed since `since` (QBO allows up to 30 days back). When the answer holds
    /// 1,000 objects it may be cut off: `truncated` says so, and the caller should ask again
    /// with a shorter window.
    ///
    /// # Errors
    /// The call errors of [`QboClient`].
    #[instrument(name = "qbo.customer.cdc", skip_all, err(level = "debug"))]
    pub async fn customer_changes(
        &self,
        tenant: &TenantId,
        since: DateTime<Utc>,
        lane: Lane,
    ) -> Result<CustomerChanges, QboError> {
        let call = Call {
            method: Method::GET,
            path: "cdc".to_owned(),
            params: vec![
                ("entities", "Customer".to_owned()),
                (
                    "changedSince",
                    since.to_rfc3339_opts(SecondsFormat::Secs, false),
                ),
            ],
            body: None,
            lane,
            kind: CallKind::Single,
            idempotent: true,
            op: "qbo.cdc",
        };
        let reply = self.execute(tenant, &call).await?;
        let envelope: CdcEnvelope = decode(reply.value, "cdc")?;
        let customers: Vec<QboCustomer> = envelope
            .cdc_response
            .into_iter()
            .flat_map(|r| r.query_response)
            .flat_map(|q| q.customer)
            .map(|c| QboCustomer::from_dto(c, &reply.realm))
            .collect();
        let server_time = envelope.time.as_ref().and_then(time_of);
        let truncated = customers.len() >= 1000;
        Ok(CustomerChanges {
            customers,
            server_time,
            truncated,
        })
    }
}

pub(crate) fn time_of(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => parse_qbo_time(s),
        Value::Number(n) => n.as_i64().and_then(DateTime::from_timestamp_millis),
        _ => None,
    }
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    value: Value,
    what: &str,
) -> Result<T, QboError> {
    serde_json::from_value(value).map_err(|e| QboError::decode(what, &e))
}
