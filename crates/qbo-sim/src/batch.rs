//! `POST /v3/company/{realm}/batch`: up to 30 items, each answered under its `bId`, with
//! per-item Faults and HTTP 200 overall.

use std::{sync::Arc, time::Instant};

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    response::Response,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{
    Shared, customers,
    faults::Fault,
    handlers::{fault_answer, parse_object, replayed, run_query},
    http::{dropped_answer, json_answer, query_param, take_drop_credit},
    lock,
    realm::{Realm, StoredAnswer},
};

/// Counts of what one batch changed.
#[derive(Default)]
struct Written {
    creates: u64,
    updates: u64,
}

fn item_fault(b_id: &Value, fault: &Fault) -> Value {
    json!({"bId": b_id, "Fault": fault.inner()})
}

fn unsupported(detail: &str) -> Fault {
    Fault::validation("500", "Unsupported Operation", detail)
}

/// One write item (create / update / delete of a Customer).
fn write_item(
    shared: &Shared,
    realm: &mut Realm,
    item: &Map<String, Value>,
    now: DateTime<Utc>,
    written: &mut Written,
) -> Value {
    let b_id = item.get("bId").cloned().unwrap_or(Value::Null);
    let Some(Value::Object(customer)) = item.get("Customer") else {
        return item_fault(
            &b_id,
            &unsupported("Only Customer writes and Query items are simulated in batch"),
        );
    };
    let operation = item.get("operation").and_then(Value::as_str).unwrap_or("");
    let result = match operation {
        "create" => customers::create(realm, customer, now, &shared.config)
            .inspect(|_| written.creates += 1),
        "update" => customers::update(realm, customer, now, &shared.config)
            .inspect(|_| written.updates += 1),
        // Name-list entities cannot be deleted; "delete" means Active=false.
        "delete" => Err(unsupported(
            "Operation Delete is not supported for Customer",
        )),
        other => Err(unsupported(&format!("Unknown batch operation '{other}'"))),
    };
    match result {
        Ok(customer) => json!({"bId": b_id, "Customer": customer}),
        Err(fault) => item_fault(&b_id, &fault),
    }
}

/// Runs all items. Queries see the state from before the batch (QBO items cannot see each
/// other's results); writes then run in order.
fn run_items(
    shared: &Shared,
    realm: &mut Realm,
    items: &[Value],
    now: DateTime<Utc>,
    written: &mut Written,
) -> Vec<Value> {
    let mut answers: Vec<Option<Value>> = vec![None; items.len()];
    for (slot, item) in answers.iter_mut().zip(items) {
        if let Some(text) = item.get("Query").and_then(Value::as_str) {
            let b_id = item.get("bId").cloned().unwrap_or(Value::Null);
            *slot = Some(match run_query(shared, realm, text) {
                Ok(output) => json!({"bId": b_id, "QueryResponse": output.to_value()}),
                Err(fault) => item_fault(&b_id, &fault),
            });
        }
    }
    for (slot, item) in answers.iter_mut().zip(items) {
        if slot.is_none() {
            *slot = Some(match item.as_object() {
                Some(item) => write_item(shared, realm, item, now, written),
                None => item_fault(&Value::Null, &unsupported("A batch item must be an object")),
            });
        }
    }
    answers.into_iter().flatten().collect()
}

fn batch_items(shared: &Shared, body: &[u8]) -> Result<Vec<Value>, Fault> {
    let body = parse_object(body)?;
    let Some(Value::Array(items)) = body.get("BatchItemRequest") else {
        return Err(Fault::validation(
            "2020",
            "Required param missing, need to supply the required value for the API",
            "BatchItemRequest is missing",
        ));
    };
    if items.is_empty() || items.len() > shared.config.max_batch_items {
        let detail = format!(
            "A batch must hold 1 to {} items; got {}",
            shared.config.max_batch_items,
            items.len()
        );
        return Err(Fault::validation(
            "6000",
            "A business validation error has occurred while processing your request",
            detail,
        ));
    }
    Ok(items.clone())
}

/// Charges batch items to the request window when items are metered like calls.
fn meter_items(shared: &Shared, realm_id: &str, items: usize) {
    if !shared.config.batch_items_count_toward_rate || items <= 1 {
        return;
    }
    let over =
        lock(&shared.limits).charge_extra(realm_id, items - 1, Instant::now(), &shared.config);
    if over {
        lock(&shared.stats).limit_violations.rate += 1;
    }
}

/// `POST /v3/company/{realm}/batch`
pub async fn batch(
    State(shared): State<Arc<Shared>>,
    Path(realm_id): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let requestid = query_param(raw.as_deref(), "requestid");
    let now = shared.now();
    let mut written = Written::default();
    let answer = shared.with_realm(&realm_id, |realm| {
        if let Some(stored) = replayed(&shared, realm, requestid.as_deref()) {
            return stored;
        }
        let answer = match batch_items(&shared, &body) {
            Ok(items) => {
                meter_items(&shared, &realm_id, items.len());
                let answers = run_items(&shared, realm, &items, now, &mut written);
                StoredAnswer {
                    status: 200,
                    body: json!({"BatchItemResponse": answers, "time": shared.envelope_time()}),
                }
            }
            Err(fault) => fault_answer(&shared, &fault),
        };
        if let Some(id) = &requestid {
            realm.replays.insert(id.clone(), answer.clone());
        }
        answer
    });
    {
        let mut stats = lock(&shared.stats);
        stats.creates += written.creates;
        stats.updates += written.updates;
    }
    if written.creates > 0
        && let Some(style) = take_drop_credit(&shared)
    {
        return dropped_answer(&shared, style).await;
    }
    json_answer(answer.status, answer.body)
}
