//! DisplayName rules: characters, field lengths, and uniqueness across Customer, Vendor and
//! Employee (case-insensitive, inactive records included) with the configured 6240 Detail.

use serde_json::{Map, Value, json};

use super::{
    config::{DuplicateDetail, DuplicateDetailPolicy},
    faults::Fault,
    realm::{Kind, Realm, Record},
};

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

/// A top-level string field.
pub fn str_field<'a>(json: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    json.get(key).and_then(Value::as_str)
}

/// Enforces the documented maximum lengths (2050).
pub fn check_lengths(json: &Map<String, Value>) -> Result<(), Fault> {
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
pub fn check_name_characters(name: &str) -> Result<(), Fault> {
    if name.contains(':') || name.chars().any(char::is_control) {
        let detail = "Invalid character in DisplayName: ':' and control characters are not allowed";
        return Err(
            Fault::validation("2040", "Invalid character", detail).with_element("DisplayName")
        );
    }
    Ok(())
}

/// Builds DisplayName from the name parts, as QBO does when it is left out.
pub fn derived_display_name(json: &Map<String, Value>) -> String {
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
pub fn check_unique(
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

/// Settles DisplayName (given, or built from the name parts) and checks it and every length;
/// returns the name.
pub fn validate(json: &mut Map<String, Value>) -> Result<String, Fault> {
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
