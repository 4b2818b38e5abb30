//! Customer writes through the API: create, sparse and full update with SyncToken checks,
//! and changes made "in the QBO UI" by tests.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{
    config::SimulatorConfig,
    faults::Fault,
    hierarchy::{Placement, move_child, parent_of, placement, refresh_descendants},
    names::{check_unique, derived_display_name, str_field, validate},
    realm::{Kind, Realm, Record, format_time},
};

/// Fields the server owns; a client sending them is ignored rather than trusted.
const READ_ONLY: &[&str] = &[
    "Id",
    "SyncToken",
    "MetaData",
    "FullyQualifiedName",
    "Level",
    "domain",
    "sparse",
    "BalanceWithJobs",
    "IsProject",
];

/// Writes the server-owned fields of a customer.
pub fn finish_customer(
    json: &mut Map<String, Value>,
    id: u64,
    place: &Placement,
    created: &str,
    updated: &str,
) {
    let name = str_field(json, "DisplayName").unwrap_or("").to_owned();
    json.insert("Id".into(), json!(id.to_string()));
    json.insert(
        "MetaData".into(),
        json!({"CreateTime": created, "LastUpdatedTime": updated}),
    );
    json.entry("Active").or_insert(json!(true));
    json.entry("BillWithParent").or_insert(json!(false));
    json.entry("Balance").or_insert(json!(0));
    let balance = json.get("Balance").cloned().unwrap_or(json!(0));
    json.insert("BalanceWithJobs".into(), balance);
    json.entry("PrintOnCheckName")
        .or_insert_with(|| json!(name.chars().take(110).collect::<String>()));
    json.insert("domain".into(), json!("QBO"));
    json.insert("sparse".into(), json!(false));
    match &place.parent {
        Some((parent_id, parent_fqn)) => {
            let parent_name = parent_fqn.rsplit(':').next().unwrap_or(parent_fqn);
            json.insert(
                "ParentRef".into(),
                json!({"value": parent_id.to_string(), "name": parent_name}),
            );
            json.insert("Job".into(), json!(true));
            json.insert("Level".into(), json!(place.level));
            json.insert(
                "FullyQualifiedName".into(),
                json!(format!("{parent_fqn}:{name}")),
            );
        }
        None => {
            json.remove("ParentRef");
            json.remove("Level");
            json.insert("Job".into(), json!(false));
            json.insert("FullyQualifiedName".into(), json!(name));
        }
    }
}

/// Takes the client's body apart from the server-owned fields, and settles DisplayName.
pub fn client_fields(body: &Map<String, Value>) -> Map<String, Value> {
    let mut json = body.clone();
    for key in READ_ONLY {
        json.remove(*key);
    }
    json
}

/// Creates a customer; returns its JSON.
pub fn create(
    realm: &mut Realm,
    body: &Map<String, Value>,
    now: DateTime<Utc>,
    config: &SimulatorConfig,
) -> Result<Value, Fault> {
    let mut json = client_fields(body);
    let name = validate(&mut json)?;
    let place = placement(realm, &json, None)?;
    check_unique(realm, &name, None, config.duplicate_detail)?;
    let id = realm.allocate_id(Kind::Customer);
    let time = format_time(now, config.utc_offset);
    json.insert("SyncToken".into(), json!("0"));
    finish_customer(&mut json, id, &place, &time, &time);
    if let Some((parent, _)) = place.parent {
        realm.children.entry(parent).or_default().push(id);
    }
    let out = Value::Object(json.clone());
    realm.insert(
        Kind::Customer,
        id,
        Record {
            json: json.into(),
            updated: now,
            gone: false,
        },
    );
    Ok(out)
}

/// The `Id` of a body, as a string (QBO) or a number.
pub fn parse_id(body: &Map<String, Value>) -> Option<u64> {
    match body.get("Id") {
        Some(Value::String(s)) => s.parse().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    }
}

fn parse_sync_token(body: &Map<String, Value>) -> Option<u64> {
    match body.get("SyncToken") {
        Some(Value::String(s)) => s.parse().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    }
}

/// Updates a customer (sparse when the body says `"sparse": true`); returns its JSON.
pub fn update(
    realm: &mut Realm,
    body: &Map<String, Value>,
    now: DateTime<Utc>,
    config: &SimulatorConfig,
) -> Result<Value, Fault> {
    let id = parse_id(body).ok_or_else(Fault::not_found)?;
    let old = realm
        .get(Kind::Customer, id)
        .filter(|r| !r.gone)
        .ok_or_else(Fault::not_found)?
        .clone();
    let token = parse_sync_token(body).ok_or_else(|| {
        Fault::validation(
            "2020",
            "Required param missing, need to supply the required value for the API",
            "Required parameter SyncToken is missing in the request",
        )
        .with_element("SyncToken")
    })?;
    if token != old.sync_token() {
        return Err(Fault::stale_object());
    }
    let reactivates = body.get("Active").and_then(Value::as_bool) == Some(true);
    if config.reject_updates_to_inactive && !old.active() && !reactivates {
        return Err(Fault::validation(
            "6000",
            "A business validation error has occurred while processing your request",
            "Business Validation Error: You cannot modify a list element that has been deleted.",
        ));
    }
    let deactivates = body.get("Active").and_then(Value::as_bool) == Some(false);
    let balance = old
        .json
        .get("Balance")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    if deactivates && old.active() && balance != 0.0 {
        return Err(Fault::validation(
            "6000",
            "A business validation error has occurred while processing your request",
            "Delete List Has Balance Error : This customer cannot be deleted because it has a \
             non-zero balance.",
        ));
    }
    let sparse = body.get("sparse").and_then(Value::as_bool).unwrap_or(false);
    let mut json = if sparse {
        (*old.json).clone()
    } else {
        Map::new()
    };
    json.extend(client_fields(body));
    if !sparse {
        // A full update may not drop DisplayName; Balance is read-only after create.
        if str_field(&json, "DisplayName").is_none() && derived_display_name(&json).is_empty() {
            json.insert("DisplayName".into(), json!(old.display_name()));
        }
    }
    json.insert(
        "Balance".into(),
        old.json.get("Balance").cloned().unwrap_or(json!(0)),
    );
    let stored = write_update(realm, id, &old, json, now, config)?;
    Ok(stored)
}

fn write_update(
    realm: &mut Realm,
    id: u64,
    old: &Record,
    mut json: Map<String, Value>,
    now: DateTime<Utc>,
    config: &SimulatorConfig,
) -> Result<Value, Fault> {
    let name = validate(&mut json)?;
    let place = placement(realm, &json, Some(id))?;
    check_unique(
        realm,
        &name,
        Some((Kind::Customer, id)),
        config.duplicate_detail,
    )?;
    let created = old
        .json
        .get("MetaData")
        .and_then(|m| m.get("CreateTime"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    json.insert(
        "SyncToken".into(),
        json!((old.sync_token() + 1).to_string()),
    );
    finish_customer(
        &mut json,
        id,
        &place,
        &created,
        &format_time(now, config.utc_offset),
    );
    move_child(
        realm,
        id,
        parent_of(old),
        place.parent.as_ref().map(|p| p.0),
    );
    realm.reindex(Kind::Customer, id, Some(old.display_name()), Some(&name));
    let fqn_changed = json.get("FullyQualifiedName") != old.json.get("FullyQualifiedName");
    let out = Value::Object(json.clone());
    realm.insert(
        Kind::Customer,
        id,
        Record {
            json: json.into(),
            updated: now,
            gone: false,
        },
    );
    if fqn_changed {
        refresh_descendants(realm, id);
    }
    Ok(out)
}

/// A change made "in the QBO UI": a sparse update at the current SyncToken.
pub fn edit_as_user(
    realm: &mut Realm,
    id: &str,
    fields: Value,
    now: DateTime<Utc>,
    config: &SimulatorConfig,
) -> Result<Value, Fault> {
    let id_num: u64 = id.parse().map_err(|_| Fault::not_found())?;
    let token = realm
        .get(Kind::Customer, id_num)
        .ok_or_else(Fault::not_found)?
        .sync_token();
    let mut body = fields.as_object().cloned().unwrap_or_default();
    body.insert("Id".into(), json!(id));
    body.insert("SyncToken".into(), json!(token.to_string()));
    body.insert("sparse".into(), json!(true));
    let config = SimulatorConfig {
        reject_updates_to_inactive: false,
        ..config.clone()
    };
    update(realm, &body, now, &config)
}
