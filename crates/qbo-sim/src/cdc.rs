//! Change Data Capture: `GET /v3/company/{realm}/cdc?entities=Customer,...&changedSince=...`.

use std::sync::Arc;

use axum::{
    extract::{Path, RawQuery, State},
    response::Response,
};
use serde_json::{Value, json};

use super::{
    Shared,
    config::MergeVariant,
    faults::Fault,
    handlers::fault_answer,
    http::{json_answer, query_param},
    realm::{Kind, Realm, Record, format_time},
    select::{changed_since, parse_time_literal},
};

fn fail(shared: &Shared, fault: Fault) -> Response {
    let answer = fault_answer(shared, &fault);
    json_answer(answer.status, answer.body)
}

/// How a changed record appears in CDC; `None` when it must not appear at all.
fn cdc_entry(record: &Record, variant: MergeVariant, shared: &Shared) -> Option<Value> {
    if !record.gone {
        return Some(Value::Object((*record.json).clone()));
    }
    match variant {
        MergeVariant::Deleted => Some(json!({
            "domain": "QBO",
            "status": "Deleted",
            "Id": record.json.get("Id").cloned().unwrap_or(Value::Null),
            "MetaData": {"LastUpdatedTime": format_time(record.updated, shared.config.utc_offset)},
        })),
        MergeVariant::Missing | MergeVariant::Inactive => None,
    }
}

/// The changed objects of each entity, oldest change first, within the per-answer cap.
fn collect(
    shared: &Shared,
    realm: &Realm,
    kinds: &[Kind],
    since: chrono::DateTime<chrono::Utc>,
) -> Vec<Value> {
    let mut budget = shared.config.cdc_max_objects;
    let mut responses = Vec::new();
    for kind in kinds {
        let mut changed = changed_since(realm, *kind, since);
        // The cap keeps the oldest changes, so a client advancing its mark still makes progress.
        changed.sort_by_key(|r| r.updated);
        let entries: Vec<Value> = changed
            .into_iter()
            .filter_map(|r| cdc_entry(r, shared.config.merge_variant, shared))
            .take(budget)
            .collect();
        budget -= entries.len();
        if entries.is_empty() {
            responses.push(json!({}));
        } else {
            let n = entries.len();
            responses.push(
                json!({kind.name(): entries, "startPosition": 1, "maxResults": n, "totalCount": n}),
            );
        }
    }
    responses
}

/// `GET /v3/company/{realm}/cdc`
pub async fn cdc(
    State(shared): State<Arc<Shared>>,
    Path(realm_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let entities = query_param(raw.as_deref(), "entities").unwrap_or_default();
    let kinds: Option<Vec<Kind>> = entities.split(',').map(|e| Kind::parse(e.trim())).collect();
    let Some(kinds) = kinds.filter(|k| !k.is_empty()) else {
        let detail = format!("entities must list Customer, Vendor or Employee; got '{entities}'");
        return fail(
            &shared,
            Fault::validation(
                "2020",
                "Required param missing, need to supply the required value for the API",
                detail,
            ),
        );
    };
    let since_text = query_param(raw.as_deref(), "changedSince").unwrap_or_default();
    let Some(since) = parse_time_literal(&since_text) else {
        let detail = format!("changedSince '{since_text}' is not a date or date-time");
        return fail(
            &shared,
            Fault::validation(
                "2020",
                "Required param missing, need to supply the required value for the API",
                detail,
            ),
        );
    };
    let window =
        chrono::TimeDelta::from_std(shared.config.cdc_window).unwrap_or(chrono::TimeDelta::MAX);
    if since < shared.now() - window {
        let detail = format!(
            "Operation cdc with changedSince date {since_text} which is older than fixed days is not supported."
        );
        return fail(
            &shared,
            Fault::validation(
                "6000",
                "A business validation error has occurred while processing your request",
                detail,
            ),
        );
    }
    let responses = shared.with_realm(&realm_id, |realm| collect(&shared, realm, &kinds, since));
    json_answer(
        200,
        json!({"CDCResponse": [{"QueryResponse": responses}], "time": shared.envelope_time()}),
    )
}
