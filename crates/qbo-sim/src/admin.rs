//! Changes that tests make behind the API's back: seeding, vendors and employees, merges.

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Map, Value, json};

use super::{
    config::{DuplicateDetail, DuplicateDetailPolicy, MergeVariant, SimulatorConfig},
    customers::{client_fields, finish_customer, parse_id},
    faults::Fault,
    hierarchy::placement,
    names::{check_name_characters, check_unique, validate},
    realm::{Kind, Realm, Record, format_time},
};

/// Merges `absorbed` into `survivor` as the QBO UI does.
pub fn merge(
    realm: &mut Realm,
    absorbed: &str,
    survivor: &str,
    now: DateTime<Utc>,
    config: &SimulatorConfig,
) -> Result<(), Fault> {
    let a: u64 = absorbed.parse().map_err(|_| Fault::not_found())?;
    let s: u64 = survivor.parse().map_err(|_| Fault::not_found())?;
    let live = |r: &&Record| !r.gone;
    let absorbed_balance = realm
        .get(Kind::Customer, a)
        .filter(live)
        .ok_or_else(Fault::not_found)?
        .json
        .get("Balance")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    realm
        .get(Kind::Customer, s)
        .filter(live)
        .ok_or_else(Fault::not_found)?;
    if a == s {
        return Err(Fault::validation(
            "6000",
            "A business validation error has occurred while processing your request",
            "cannot merge a customer into itself",
        ));
    }
    let time = json!(format_time(now, config.utc_offset));
    let bump = |r: &mut Record| {
        let token = r.sync_token() + 1;
        r.json_mut()
            .insert("SyncToken".into(), json!(token.to_string()));
        if let Some(Value::Object(meta)) = r.json_mut().get_mut("MetaData") {
            meta.insert("LastUpdatedTime".into(), time.clone());
        }
        r.updated = now;
    };
    if let Some(surv) = realm.get_mut(Kind::Customer, s) {
        let balance = surv
            .json
            .get("Balance")
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
            + absorbed_balance;
        surv.json_mut().insert("Balance".into(), json!(balance));
        surv.json_mut()
            .insert("BalanceWithJobs".into(), json!(balance));
        bump(surv);
    }
    let rec = realm
        .get_mut(Kind::Customer, a)
        .ok_or_else(Fault::not_found)?;
    rec.json_mut().insert("Balance".into(), json!(0));
    rec.json_mut().insert("Active".into(), json!(false));
    bump(rec);
    if config.merge_variant != MergeVariant::Inactive {
        rec.gone = true;
        let name = rec.display_name().to_owned();
        realm.reindex(Kind::Customer, a, Some(&name), None);
    }
    Ok(())
}

/// Adds a vendor or employee holding `name`; returns its Id.
pub fn add_name_record(
    realm: &mut Realm,
    kind: Kind,
    name: &str,
    active: bool,
    now: DateTime<Utc>,
    offset: FixedOffset,
) -> Result<String, Fault> {
    check_name_characters(name)?;
    check_unique(
        realm,
        name,
        None,
        DuplicateDetailPolicy::always(DuplicateDetail::WithId),
    )?;
    let id = realm.allocate_id(kind);
    let time = format_time(now, offset);
    let json = json!({
        "Id": id.to_string(), "SyncToken": "0", "DisplayName": name, "PrintOnCheckName": name,
        "Active": active, "domain": "QBO", "sparse": false,
        "MetaData": {"CreateTime": time, "LastUpdatedTime": time},
    });
    let Value::Object(json) = json else {
        unreachable!("a json! object is an object")
    };
    realm.insert(
        kind,
        id,
        Record {
            json: json.into(),
            updated: now,
            gone: false,
        },
    );
    Ok(id.to_string())
}

/// Loads seed customers (the `QueryResponse.Customer` array shape).
pub fn seed(
    realm: &mut Realm,
    customers: Value,
    now: DateTime<Utc>,
    offset: FixedOffset,
    policy: DuplicateDetailPolicy,
) -> anyhow::Result<()> {
    // The whole query answer is accepted too: {"QueryResponse": {"Customer": [...]}}.
    let customers = match customers {
        Value::Object(mut answer) => match answer.remove("QueryResponse") {
            Some(Value::Object(mut inner)) => {
                inner.remove("Customer").unwrap_or(Value::Array(Vec::new()))
            }
            _ => Value::Object(answer),
        },
        other => other,
    };
    let Value::Array(items) = customers else {
        anyhow::bail!("seed customers must be a JSON array");
    };
    for (index, item) in items.into_iter().enumerate() {
        let Value::Object(body) = item else {
            anyhow::bail!("seed customer #{index} is not an object");
        };
        seed_one(realm, body, now, offset, policy)
            .map_err(|f| anyhow::anyhow!("seed customer #{index}: {:?}", f.errors))?;
    }
    Ok(())
}

fn seed_one(
    realm: &mut Realm,
    body: Map<String, Value>,
    now: DateTime<Utc>,
    offset: FixedOffset,
    policy: DuplicateDetailPolicy,
) -> Result<(), Fault> {
    let mut json = client_fields(&body);
    let name = validate(&mut json)?;
    let place = placement(realm, &json, None)?;
    check_unique(realm, &name, None, policy)?;
    let id = parse_id(&body).unwrap_or_else(|| realm.allocate_id(Kind::Customer));
    if realm.get(Kind::Customer, id).is_some() {
        return Err(Fault::validation(
            "6000",
            "Duplicate Id",
            format!("seed Id {id} used twice"),
        ));
    }
    let meta = body.get("MetaData");
    let stamp = |key: &str| {
        meta.and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let updated_text = stamp("LastUpdatedTime").unwrap_or_else(|| format_time(now, offset));
    let created = stamp("CreateTime").unwrap_or_else(|| updated_text.clone());
    let updated = DateTime::parse_from_rfc3339(&updated_text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    json.insert(
        "SyncToken".into(),
        body.get("SyncToken").cloned().unwrap_or(json!("0")),
    );
    finish_customer(&mut json, id, &place, &created, &updated_text);
    if let Some((parent, _)) = place.parent {
        realm.children.entry(parent).or_default().push(id);
    }
    realm.insert(
        Kind::Customer,
        id,
        Record {
            json: json.into(),
            updated,
            gone: false,
        },
    );
    Ok(())
}
