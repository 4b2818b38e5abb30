//! Customer writes with QBO's rules: DisplayName checks and uniqueness across the three name
//! lists, SyncToken checks, sparse and full updates, sub-customers, merges and seeding.

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Map, Value, json};

use super::{
    config::{DuplicateDetail, DuplicateDetailPolicy, MergeVariant, SimulatorConfig},
    faults::Fault,
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

/// Top-level string fields and their QBO maximum lengths.
const MAX_LENGTHS: &[(&str, usize)] = &[
    ("DisplayName", 500),
    ("Title", 16),
    ("GivenName", 100),
    ("MiddleName", 100),
    ("FamilyName", 100),
    ("Suffix", 16),
    ("CompanyName", 100),
    ("PrintOnCheckName", 110),
    ("Notes", 2000),
    ("ResaleNum", 16),
];

/// Nested string fields (`object.field`) and their maximum lengths.
const NESTED_MAX_LENGTHS: &[(&str, &str, usize)] = &[
    ("PrimaryPhone", "FreeFormNumber", 30),
    ("AlternatePhone", "FreeFormNumber", 30),
    ("Mobile", "FreeFormNumber", 30),
    ("Fax", "FreeFormNumber", 30),
    ("WebAddr", "URI", 1000),
];

/// QBO's hierarchy goes five levels deep: levels 0 to 4.
const MAX_LEVEL: u64 = 4;

fn str_field<'a>(json: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    json.get(key).and_then(Value::as_str)
}

fn check_lengths(json: &Map<String, Value>) -> Result<(), Fault> {
    for (field, max) in MAX_LENGTHS {
        if let Some(value) = str_field(json, field) {
            let len = value.chars().count();
            if len > *max {
                return Err(Fault::string_length(field, *max, len));
            }
        }
    }
    for (object, field, max) in NESTED_MAX_LENGTHS {
        let value = json
            .get(*object)
            .and_then(|o| o.get(*field))
            .and_then(Value::as_str);
        if let Some(len) = value.map(|v| v.chars().count()).filter(|len| len > max) {
            return Err(Fault::string_length(
                &format!("{object}.{field}"),
                *max,
                len,
            ));
        }
    }
    Ok(())
}

/// The colon is QBO's hierarchy separator; control characters are refused too (UNCONFIRMED
/// in QBO, whose code for either case is also UNCONFIRMED: 2040 here).
fn check_name_characters(name: &str) -> Result<(), Fault> {
    if name.contains(':') || name.chars().any(char::is_control) {
        let detail = "Invalid character in DisplayName: ':' and control characters are not allowed";
        return Err(
            Fault::validation("2040", "Invalid character", detail).with_element("DisplayName")
        );
    }
    Ok(())
}

/// Builds DisplayName from the name parts, as QBO does when it is left out.
fn derived_display_name(json: &Map<String, Value>) -> String {
    let parts = ["Title", "GivenName", "MiddleName", "FamilyName", "Suffix"];
    let parts: Vec<&str> = parts
        .iter()
        .filter_map(|k| str_field(json, k))
        .filter(|s| !s.trim().is_empty())
        .collect();
    parts.join(" ")
}

fn duplicate_fault(realm: &Realm, kind: Kind, id: u64, policy: DuplicateDetailPolicy) -> Fault {
    let active = realm.get(kind, id).is_some_and(Record::active);
    let per_kind = match kind {
        Kind::Customer => policy.customer,
        Kind::Vendor => policy.vendor,
        Kind::Employee => policy.employee,
    };
    let detail = match (active, policy.inactive) {
        (false, Some(inactive)) => inactive,
        _ => per_kind,
    };
    let text = match detail {
        DuplicateDetail::WithId => format!("The name supplied already exists. : Id={id}"),
        DuplicateDetail::Null => "The name supplied already exists. : null".to_owned(),
        DuplicateDetail::AnotherUsing => "The name supplied already exists. : Another customer, \
            vendor or employee is already using this name. Please use a different name."
            .to_owned(),
    };
    Fault::duplicate_name(text)
}

/// Refuses a DisplayName another record (of any kind, inactive included) already holds.
fn check_unique(
    realm: &Realm,
    name: &str,
    this: Option<(Kind, u64)>,
    policy: DuplicateDetailPolicy,
) -> Result<(), Fault> {
    match realm.name_holder(name) {
        Some(holder) if Some(holder) != this => {
            Err(duplicate_fault(realm, holder.0, holder.1, policy))
        }
        _ => Ok(()),
    }
}

/// Where a customer sits in the hierarchy.
struct Placement {
    parent: Option<(u64, String)>,
    level: u64,
}

/// Resolves `ParentRef` of a customer body (absent = top level).
fn placement(
    realm: &Realm,
    json: &Map<String, Value>,
    this: Option<u64>,
) -> Result<Placement, Fault> {
    let Some(parent_ref) = json.get("ParentRef").filter(|v| !v.is_null()) else {
        return Ok(Placement {
            parent: None,
            level: 0,
        });
    };
    let invalid = || {
        Fault::validation(
            "2500",
            "Invalid Reference Id",
            "Invalid Reference Id : ParentRef",
        )
        .with_element("ParentRef")
    };
    let id = parent_ref
        .get("value")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(invalid)?;
    let parent = realm
        .get(Kind::Customer, id)
        .filter(|r| !r.gone && r.active())
        .ok_or_else(invalid)?;
    // A customer cannot sit below itself or its own descendants.
    if let Some(this) = this {
        let mut cursor = Some(id);
        while let Some(c) = cursor {
            if c == this {
                return Err(Fault::validation(
                    "6000",
                    "A business validation error has occurred while processing your request",
                    "Business Validation Error: a customer cannot be its own parent",
                ));
            }
            cursor = realm.get(Kind::Customer, c).and_then(parent_of);
        }
    }
    let level = parent
        .json
        .get("Level")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        + 1;
    if level > MAX_LEVEL {
        return Err(Fault::validation(
            "6000",
            "A business validation error has occurred while processing your request",
            "Business Validation Error: sub-customers can be nested only five levels deep",
        ));
    }
    let fqn = parent
        .json
        .get("FullyQualifiedName")
        .and_then(Value::as_str)
        .unwrap_or(parent.display_name());
    Ok(Placement {
        parent: Some((id, fqn.to_owned())),
        level,
    })
}

fn parent_of(record: &Record) -> Option<u64> {
    record
        .json
        .get("ParentRef")?
        .get("value")?
        .as_str()?
        .parse()
        .ok()
}

/// Writes the server-owned fields of a customer.
fn finish_customer(
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
fn client_fields(body: &Map<String, Value>) -> Map<String, Value> {
    let mut json = body.clone();
    for key in READ_ONLY {
        json.remove(*key);
    }
    json
}

fn validate(json: &mut Map<String, Value>) -> Result<String, Fault> {
    let given = str_field(json, "DisplayName")
        .map(str::to_owned)
        .filter(|n| !n.trim().is_empty());
    let name = given.unwrap_or_else(|| derived_display_name(json));
    if name.trim().is_empty() {
        let detail = "Required parameter DisplayName (or one of Title, GivenName, MiddleName, FamilyName, Suffix) is missing";
        return Err(Fault::validation(
            "2020",
            "Required param missing, need to supply the required value for the API",
            detail,
        )
        .with_element("DisplayName"));
    }
    json.insert("DisplayName".into(), json!(name));
    check_name_characters(&name)?;
    check_lengths(json)?;
    Ok(name)
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
            json,
            updated: now,
            gone: false,
        },
    );
    Ok(out)
}

fn parse_id(body: &Map<String, Value>) -> Option<u64> {
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
    let sparse = body.get("sparse").and_then(Value::as_bool).unwrap_or(false);
    let mut json = if sparse { old.json.clone() } else { Map::new() };
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
            json,
            updated: now,
            gone: false,
        },
    );
    if fqn_changed {
        refresh_descendants(realm, id);
    }
    Ok(out)
}

fn move_child(realm: &mut Realm, id: u64, from: Option<u64>, to: Option<u64>) {
    if from == to {
        return;
    }
    if let Some(from) = from.and_then(|p| realm.children.get_mut(&p)) {
        from.retain(|c| *c != id);
    }
    if let Some(to) = to {
        realm.children.entry(to).or_default().push(id);
    }
}

/// Rewrites FullyQualifiedName and Level below a renamed or moved customer.
fn refresh_descendants(realm: &mut Realm, id: u64) {
    let mut stack = vec![id];
    while let Some(parent) = stack.pop() {
        let Some(p) = realm.get(Kind::Customer, parent) else {
            continue;
        };
        let fqn = p
            .json
            .get("FullyQualifiedName")
            .cloned()
            .unwrap_or(Value::Null);
        let level = p.json.get("Level").and_then(Value::as_u64).unwrap_or(0);
        let parent_name = p.display_name().to_owned();
        for child in realm.children.get(&parent).cloned().unwrap_or_default() {
            if let Some(c) = realm.get_mut(Kind::Customer, child) {
                let name = c.display_name().to_owned();
                let full = format!("{}:{name}", fqn.as_str().unwrap_or(""));
                c.json.insert("FullyQualifiedName".into(), json!(full));
                c.json.insert("Level".into(), json!(level + 1));
                c.json.insert(
                    "ParentRef".into(),
                    json!({"value": parent.to_string(), "name": parent_name}),
                );
                stack.push(child);
            }
        }
    }
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
        r.json.insert("SyncToken".into(), json!(token.to_string()));
        if let Some(Value::Object(meta)) = r.json.get_mut("MetaData") {
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
        surv.json.insert("Balance".into(), json!(balance));
        surv.json.insert("BalanceWithJobs".into(), json!(balance));
        bump(surv);
    }
    let rec = realm
        .get_mut(Kind::Customer, a)
        .ok_or_else(Fault::not_found)?;
    rec.json.insert("Balance".into(), json!(0));
    rec.json.insert("Active".into(), json!(false));
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
            json,
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
            json,
            updated,
            gone: false,
        },
    );
    Ok(())
}
