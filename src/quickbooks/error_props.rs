//! Properties of the fault parser: no body (bytes, JSON of any shape, XML) makes it panic, and
//! a well-formed Fault in each documented shape (JSON, lower-cased JSON, `Error` as one object,
//! a numeric code, XML) parses back to its type, code, message, detail and element, and
//! classifies by its code.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;
use crate::props::{config, hostile_chars, hostile_text};

/// Keys a Fault parser looks for, in several spellings, and a few others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "Fault", "fault", "FAULT", "Error", "error", "Message", "message", "Detail",
            "detail", "code", "Code", "element", "type", "time", "Customer", "Id",
            "BatchItemResponse", "bId", "QueryResponse",
        ])
        .prop_map(str::to_owned),
        1 => hostile_chars(6),
    ]
}

/// JSON of any shape, leaning towards the keys of a Fault.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        hostile_chars(16).prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One generated `Fault.Error[]` entry.
#[derive(Debug, Clone)]
struct Entry {
    code: String,
    message: String,
    detail: String,
    element: Option<String>,
}

/// The documented codes (with QBO's zero padding now and then) and others.
fn code() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "6240", "5010", "610", "3001", "003001", "100", "120", "3100", "3200", "6000",
            "2020", "6190", "10000", "4000",
        ])
        .prop_map(str::to_owned),
        1 => "[1-9][0-9]{0,5}",
    ]
}

fn entry(text: BoxedStrategy<String>) -> impl Strategy<Value = Entry> {
    (
        code(),
        text.clone(),
        prop_oneof![
            text.clone(),
            (text, "[0-9]{1,6}").prop_map(|(t, id)| format!("{t} : Id={id}")),
        ],
        prop::option::of("[A-Za-z][A-Za-z.]{0,20}"),
    )
        .prop_map(|(code, message, detail, element)| Entry {
            code,
            message,
            detail,
            element,
        })
}

fn fault_type() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "ValidationFault",
        "SystemFault",
        "AuthenticationFault",
        "SERVICE",
    ])
    .prop_map(str::to_owned)
}

/// How a Fault is written.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Json,
    LowerCaseJson,
    SingleErrorObject,
    NumericCode,
    Xml,
}

fn json_entry(e: &Entry, lower: bool, numeric: bool) -> Value {
    let k = |key: &str| {
        if lower {
            key.to_lowercase()
        } else {
            key.to_owned()
        }
    };
    let code = match (numeric, e.code.parse::<u64>()) {
        (true, Ok(n)) if !e.code.starts_with('0') => json!(n),
        _ => json!(e.code),
    };
    let mut entry = Map::new();
    entry.insert(k("Message"), json!(e.message));
    entry.insert(k("Detail"), json!(e.detail));
    entry.insert("code".into(), code);
    if let Some(element) = &e.element {
        entry.insert("element".into(), json!(element));
    }
    Value::Object(entry)
}

fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn write_fault(shape: Shape, kind: &str, entries: &[Entry]) -> String {
    match shape {
        Shape::Json | Shape::NumericCode => {
            let numeric = matches!(shape, Shape::NumericCode);
            let list: Vec<Value> = entries
                .iter()
                .map(|e| json_entry(e, false, numeric))
                .collect();
            json!({"Fault": {"Error": list, "type": kind}, "time": "2025-01-21T09:17:31.892-07:00"})
                .to_string()
        }
        Shape::LowerCaseJson => {
            let list: Vec<Value> = entries.iter().map(|e| json_entry(e, true, false)).collect();
            json!({"fault": {"error": list, "type": kind}, "batchItemResponse": [], "time": 1_719_142_418_269_i64})
                .to_string()
        }
        Shape::SingleErrorObject => {
            json!({"Fault": {"Error": json_entry(&entries[0], false, false), "type": kind}})
                .to_string()
        }
        Shape::Xml => {
            let errors: String = entries
                .iter()
                .map(|e| {
                    let element = e
                        .element
                        .as_ref()
                        .map(|el| format!(" element=\"{el}\""))
                        .unwrap_or_default();
                    format!(
                        "<Error code=\"{}\"{element}><Message>{}</Message><Detail>{}</Detail></Error>",
                        e.code,
                        xml_text(&e.message),
                        xml_text(&e.detail)
                    )
                })
                .collect();
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<IntuitResponse \
                 xmlns=\"http://schema.intuit.com/finance/v3\"><Fault type=\"{kind}\">{errors}</Fault></IntuitResponse>"
            )
        }
    }
}

fn faults() -> impl Strategy<Value = (Shape, String, Vec<Entry>)> {
    let shape = prop::sample::select(vec![
        Shape::Json,
        Shape::LowerCaseJson,
        Shape::SingleErrorObject,
        Shape::NumericCode,
        Shape::Xml,
    ]);
    (
        shape,
        fault_type(),
        prop::collection::vec(entry(hostile_chars(30).boxed()), 1..4),
    )
        .prop_map(|(shape, kind, mut entries)| {
            if matches!(shape, Shape::SingleErrorObject) {
                entries.truncate(1);
            }
            (shape, kind, entries)
        })
}

/// What `classify` must make of a Fault whose first entry is `e`, by the documented table.
fn expected(status: u16, kind: &str, e: &Entry) -> String {
    let error = match e.code.trim_start_matches('0') {
        "6240" => QboError::DuplicateName {
            existing_id: existing_id_from_detail(&e.detail),
        },
        "5010" => QboError::StaleObject,
        "610" => QboError::NotFound,
        "3001" => QboError::Throttled { retry_after: None },
        "100" | "120" | "3100" | "3200" => QboError::Unauthorized,
        _ if status >= 500 || kind == "SystemFault" => QboError::Server {
            status,
            code: Some(e.code.clone()),
        },
        _ => QboError::ValidationFault {
            code: e.code.clone(),
            element: e.element.clone(),
            message: format!("{}: {}", e.message, e.detail),
        },
    };
    format!("{error:?}")
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn no_body_makes_the_parser_panic(
        status in prop_oneof![Just(200u16), Just(400), Just(401), Just(403), Just(404), Just(429), Just(500), Just(503), any::<u16>()],
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            hostile_text().prop_map(String::into_bytes),
            json_value().prop_map(|v| v.to_string().into_bytes()),
            (hostile_chars(20), hostile_chars(20)).prop_map(|(a, b)| {
                format!("<Fault type=\"{a}\"><Error code=\"{b}\" element=\"{a}\"><Message>{b}<Detail>{a}</Error>").into_bytes()
            }),
        ],
    ) {
        let error = classify(&Answer { status, retry_after: None, body: &body });
        // The bounded metric label and the display text exist for whatever came back.
        if let Some(error) = error {
            let _ = (error.outcome_label(), error.to_string(), error.is_throttle_like());
        } else {
            prop_assert!((200..300).contains(&status));
        }
    }

    #[test]
    fn any_json_value_is_read_without_panic(mut value in json_value()) {
        let _ = json_fault(&value);
        canonicalize_keys(&mut value);
        let (_, entries) = json_fault(&value);
        for e in entries {
            prop_assert_eq!(e.element.as_deref() == Some(""), false);
        }
    }

    #[test]
    fn a_well_formed_fault_parses_back((shape, kind, entries) in faults(), status in prop::sample::select(vec![200u16, 400, 500, 503])) {
        let body = write_fault(shape, &kind, &entries);
        let (parsed_kind, parsed) = parse_fault(&body);
        prop_assert_eq!(parsed_kind.as_deref(), Some(kind.as_str()), "{}", body);
        prop_assert_eq!(parsed.len(), entries.len(), "{}", body);
        for (got, want) in parsed.iter().zip(&entries) {
            prop_assert_eq!(&got.code, &want.code, "{}", body);
            prop_assert_eq!(&got.message, &want.message, "{}", body);
            prop_assert_eq!(&got.detail, &want.detail, "{}", body);
            prop_assert_eq!(&got.element, &want.element, "{}", body);
        }
        let error = classify(&Answer { status, retry_after: None, body: body.as_bytes() });
        prop_assert_eq!(format!("{:?}", error.expect("a Fault is an error")), expected(status, &kind, &entries[0]));
    }

    #[test]
    fn the_holders_id_is_read_from_any_detail(
        prefix in hostile_chars(30).prop_filter("no Id= of its own", |p| !p.contains("Id=")),
        id in "[0-9]{1,12}",
        suffix in hostile_chars(10).prop_filter("no digits after the id, no second Id=", |s| {
            !s.starts_with(|c: char| c.is_ascii_digit()) && !s.contains("Id=")
        }),
    ) {
        let detail = format!("{prefix} : Id={id}{suffix}");
        prop_assert_eq!(existing_id_from_detail(&detail), Some(id));
        prop_assert_eq!(existing_id_from_detail(&prefix), None);
    }
}
