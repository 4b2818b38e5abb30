//! Sub-customers: ParentRef resolution, Level, and FullyQualifiedName upkeep below a renamed
//! or moved customer.

use serde_json::{Map, Value, json};

use super::{
    faults::Fault,
    realm::{Kind, Realm, Record},
};

/// QBO's hierarchy goes five levels deep: levels 0 to 4.
const MAX_LEVEL: u64 = 4;

/// Where a customer sits in the hierarchy.
pub struct Placement {
    /// The parent's Id and FullyQualifiedName; `None` at the top level.
    pub parent: Option<(u64, String)>,
    /// 0 at the top level.
    pub level: u64,
}

/// Resolves `ParentRef` of a customer body (absent = top level).
pub fn placement(
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

/// The parent Id of a stored customer.
pub fn parent_of(record: &Record) -> Option<u64> {
    record
        .json
        .get("ParentRef")?
        .get("value")?
        .as_str()?
        .parse()
        .ok()
}

/// Keeps the children index right when a customer changes parent.
pub fn move_child(realm: &mut Realm, id: u64, from: Option<u64>, to: Option<u64>) {
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
pub fn refresh_descendants(realm: &mut Realm, id: u64) {
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
                c.json_mut()
                    .insert("FullyQualifiedName".into(), json!(full));
                c.json_mut().insert("Level".into(), json!(level + 1));
                c.json_mut().insert(
                    "ParentRef".into(),
                    json!({"value": parent.to_string(), "name": parent_name}),
                );
                stack.push(child);
            }
        }
    }
}
