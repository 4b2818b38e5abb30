//! A validator for the part of JSON Schema (draft 7) that values.schema.json uses. A keyword
//! outside that part is reported as an error, so a schema can never pass here because a rule
//! of it was ignored.

use regex::Regex;
use serde_json::Value;

const ANNOTATIONS: [&str; 3] = ["$schema", "title", "description"];
const KEYWORDS: [&str; 18] = [
    "type",
    "properties",
    "additionalProperties",
    "required",
    "enum",
    "const",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "items",
    "minItems",
    "maxItems",
    "contains",
    "minProperties",
    "$ref",
    "definitions",
];

/// Every way `value` breaks `schema`, as `path: reason`; empty when it is valid.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, schema, value, "", &mut errors);
    errors
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> Result<&'a Value, String> {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/definitions/")
                .ok_or_else(|| format!("unsupported $ref {reference}"))?;
            root["definitions"]
                .get(name)
                .ok_or_else(|| format!("no definition {name}"))
        }
        None => Ok(schema),
    }
}

fn check(root: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let schema = match resolve(root, schema) {
        Ok(schema) => schema,
        Err(e) => return errors.push(format!("{path}: {e}")),
    };
    let Some(rules) = schema.as_object() else {
        return errors.push(format!("{path}: a schema must be an object"));
    };
    let mut own = Vec::new();
    let mut fail = |reason: String| own.push(format!("{path}: {reason}"));
    for keyword in rules.keys() {
        if !KEYWORDS.contains(&keyword.as_str()) && !ANNOTATIONS.contains(&keyword.as_str()) {
            fail(format!(
                "schema keyword {keyword} is outside the supported subset"
            ));
        }
    }
    if let Some(types) = rules.get("type") {
        let types: Vec<&str> = match types {
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        if !types.iter().any(|t| has_type(value, t)) {
            fail(format!("{value} is not of type {types:?}"));
        }
    }
    if let Some(allowed) = rules.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        fail(format!("{value} is not one of {allowed:?}"));
    }
    if let Some(constant) = rules.get("const")
        && constant != value
    {
        fail(format!("{value} must be {constant}"));
    }
    match value {
        Value::String(text) => {
            let length = text.chars().count() as u64;
            if let Some(pattern) = rules.get("pattern").and_then(Value::as_str) {
                match Regex::new(pattern) {
                    Ok(re) if re.is_match(text) => {}
                    Ok(_) => fail(format!("{text:?} does not match {pattern}")),
                    Err(e) => fail(format!("bad pattern {pattern}: {e}")),
                }
            }
            if rules
                .get("minLength")
                .and_then(Value::as_u64)
                .is_some_and(|n| length < n)
            {
                fail(format!("{text:?} is too short"));
            }
            if rules
                .get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|n| length > n)
            {
                fail(format!("{text:?} is too long"));
            }
        }
        Value::Number(number) => {
            let n = number.as_f64().unwrap();
            if rules
                .get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n < m)
            {
                fail(format!("{n} is below the minimum"));
            }
            if rules
                .get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n > m)
            {
                fail(format!("{n} is above the maximum"));
            }
        }
        Value::Array(items) => {
            let count = items.len() as u64;
            if rules
                .get("minItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| count < m)
            {
                fail("fewer than the minimum of items".to_owned());
            }
            if rules
                .get("maxItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| count > m)
            {
                fail("more than the maximum of items".to_owned());
            }
            if let Some(contains) = rules.get("contains") {
                let any = items.iter().any(|item| {
                    let mut scratch = Vec::new();
                    check(root, contains, item, path, &mut scratch);
                    scratch.is_empty()
                });
                if !any {
                    fail(format!("no item matches {contains}"));
                }
            }
            if let Some(item_schema) = rules.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(root, item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(map) => check_object(root, rules, map, path, errors),
        Value::Null | Value::Bool(_) => {}
    }
    errors.extend(own);
}

fn check_object(
    root: &Value,
    rules: &serde_json::Map<String, Value>,
    map: &serde_json::Map<String, Value>,
    path: &str,
    errors: &mut Vec<String>,
) {
    for name in rules
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = name.as_str().unwrap_or_default();
        if !map.contains_key(name) {
            errors.push(format!("{path}: {name} is required"));
        }
    }
    let minimum = rules.get("minProperties").and_then(Value::as_u64);
    if minimum.is_some_and(|m| (map.len() as u64) < m) {
        errors.push(format!("{path}: too few properties"));
    }
    let properties = rules.get("properties").and_then(Value::as_object);
    for (key, item) in map {
        let item_path = format!("{path}.{key}");
        match (
            properties.and_then(|p| p.get(key)),
            rules.get("additionalProperties"),
        ) {
            (Some(property), _) => check(root, property, item, &item_path, errors),
            (None, Some(Value::Bool(false))) => {
                errors.push(format!("{item_path}: not allowed (no such value)"));
            }
            (None, Some(extra @ Value::Object(_))) => check(root, extra, item, &item_path, errors),
            (None, _) => {}
        }
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

/// Paths of `value` the schema lets through without describing them: a value whose schema
/// names no type, const or enum, or an object whose schema does not close it with
/// `additionalProperties`. Objects the schema deliberately passes through whole
/// (`additionalProperties: true`) are listed too.
pub fn undescribed(root: &Value, schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let Ok(schema) = resolve(root, schema) else {
        return vec![format!("{path}: unresolvable $ref")];
    };
    let described = ["type", "const", "enum"]
        .iter()
        .any(|k| schema.get(k).is_some());
    let mut found = Vec::new();
    if !described {
        found.push(path.to_owned());
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            match schema.get("additionalProperties") {
                Some(Value::Bool(false)) | Some(Value::Object(_)) => {}
                _ => found.push(format!("{path} (open object)")),
            }
            for (key, item) in map {
                let item_path = format!("{path}.{key}");
                let item_schema = properties
                    .and_then(|p| p.get(key))
                    .or_else(|| schema.get("additionalProperties").filter(|s| s.is_object()));
                if let Some(item_schema) = item_schema {
                    found.extend(undescribed(root, item_schema, item, &item_path));
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                match schema.get("items") {
                    Some(item_schema) => found.extend(undescribed(
                        root,
                        item_schema,
                        item,
                        &format!("{path}[{i}]"),
                    )),
                    None => found.push(format!("{path}[{i}]")),
                }
            }
        }
        _ => {}
    }
    found
}
