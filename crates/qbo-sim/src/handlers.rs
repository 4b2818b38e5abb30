//! Entity read, customer create / update (with `requestid` replay) and query handlers.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::header,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use super::{
    Shared, customers,
    faults::Fault,
    http::{dropped_answer, json_answer, query_param, take_drop_credit},
    lock, query,
    realm::{Kind, Realm, StoredAnswer},
    results, select,
};

/// A fault as a stored answer (status and body), in the envelope and status the fault
/// settings ask for.
pub fn fault_answer(shared: &Shared, fault: &Fault) -> StoredAnswer {
    let (lowercase, as_200) = {
        let faults = lock(&shared.faults);
        (
            faults.config.lowercase_faults,
            faults.config.faults_as_http_200,
        )
    };
    StoredAnswer {
        status: if as_200 { 200 } else { fault.status },
        body: fault.body(&shared.envelope_time(), lowercase),
    }
}

fn send(answer: StoredAnswer) -> Response {
    json_answer(answer.status, answer.body)
}

/// Parses a request body as a JSON object.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Fault> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Fault::validation(
            "2010",
            "Request has invalid or unsupported property",
            "The request body is not a JSON object",
        )),
    }
}

/// Looks a `requestid` up in the replay cache; counts a hit.
pub fn replayed(shared: &Shared, realm: &Realm, requestid: Option<&str>) -> Option<StoredAnswer> {
    let stored = realm.replays.get(requestid?)?.clone();
    lock(&shared.stats).replays += 1;
    Some(stored)
}

/// `POST /v3/company/{realm}/customer`: a create, or an update when the body has an `Id`.
pub async fn write_customer(
    State(shared): State<Arc<Shared>>,
    Path(realm_id): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let requestid = query_param(raw.as_deref(), "requestid");
    let now = shared.now();
    let outcome = shared.with_realm(&realm_id, |realm| {
        if let Some(stored) = replayed(&shared, realm, requestid.as_deref()) {
            return (stored, None);
        }
        let result = parse_object(&body).and_then(|body| {
            let is_create = !body.contains_key("Id");
            let written = if is_create {
                customers::create(realm, &body, now, &shared.config)
            } else {
                customers::update(realm, &body, now, &shared.config)
            };
            written.map(|customer| (customer, is_create))
        });
        let (answer, created) = match result {
            Ok((customer, is_create)) => {
                let body = json!({"Customer": customer, "time": shared.envelope_time()});
                (StoredAnswer { status: 200, body }, Some(is_create))
            }
            Err(fault) => (fault_answer(&shared, &fault), None),
        };
        if let Some(id) = &requestid {
            realm.replays.insert(id.clone(), answer.clone());
        }
        (answer, created)
    });
    let (answer, written) = outcome;
    match written {
        Some(true) => lock(&shared.stats).creates += 1,
        Some(false) => lock(&shared.stats).updates += 1,
        None => {}
    }
    if written == Some(true)
        && let Some(style) = take_drop_credit(&shared)
    {
        return dropped_answer(&shared, style).await;
    }
    send(answer)
}

/// `GET /v3/company/{realm}/{customer|vendor|employee}/{id}`
pub async fn read_entity(
    State(shared): State<Arc<Shared>>,
    Path((realm_id, entity, id)): Path<(String, String, String)>,
) -> Response {
    let Some(kind) = Kind::parse(&entity) else {
        let fault = Fault::validation(
            "500",
            "Unsupported Operation",
            format!("Operation read of {entity} is not supported by the simulator"),
        );
        return send(fault_answer(&shared, &fault));
    };
    let found = id.parse::<u64>().ok().and_then(|id| {
        shared.with_realm(&realm_id, |realm| {
            realm
                .get(kind, id)
                .filter(|r| !r.gone)
                .map(|r| Value::Object((*r.json).clone()))
        })
    });
    match found {
        Some(entity) => json_answer(
            200,
            json!({kind.name(): entity, "time": shared.envelope_time()}),
        ),
        None => send(fault_answer(&shared, &Fault::not_found())),
    }
}

/// Runs query text against a realm.
pub fn run_query(shared: &Shared, realm: &Realm, text: &str) -> Result<results::Output, Fault> {
    let parsed =
        query::parse(text).map_err(|e| Fault::query_parse(format!("QueryParserError: {e}")))?;
    Ok(select::run(realm, &parsed, &shared.config))
}

fn query_answer(shared: &Shared, realm_id: &str, text: Option<&str>) -> Response {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return send(fault_answer(
            shared,
            &Fault::query_parse("QueryParserError: no query given"),
        ));
    };
    let output = shared.with_realm(realm_id, |realm| run_query(shared, realm, text));
    // Serialised after the realm lock is released: the page shares the stored records, so
    // concurrent queries and writes wait only for the page to be cut.
    let result = output.and_then(|output| {
        let mut body = b"{\"QueryResponse\":".to_vec();
        output
            .write_json(&mut body)
            .map_err(|e| Fault::server_error_detail(&e.to_string()))?;
        body.extend_from_slice(format!(",\"time\":\"{}\"}}", shared.envelope_time()).as_bytes());
        Ok(body)
    });
    match result {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(fault) => send(fault_answer(shared, &fault)),
    }
}

/// `GET /v3/company/{realm}/query?query=...`
pub async fn query_get(
    State(shared): State<Arc<Shared>>,
    Path(realm_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let text = query_param(raw.as_deref(), "query");
    query_answer(&shared, &realm_id, text.as_deref())
}

/// `POST /v3/company/{realm}/query` with the statement as an `application/text` body.
pub async fn query_post(
    State(shared): State<Arc<Shared>>,
    Path(realm_id): Path<String>,
    body: Bytes,
) -> Response {
    let text = String::from_utf8_lossy(&body);
    query_answer(&shared, &realm_id, Some(&text))
}
