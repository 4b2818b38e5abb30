//! Properties of the webhook endpoint's pure part ([`verified_events`]): no header or body
//! makes it panic; a body signed with the verifier token passes the signature check, and one
//! flipped bit of the body or of the signature, or another token, fails it; well-formed
//! notifications of both shapes read back as their events.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::{
    domain::{QboCustomerId, RealmId},
    props::{config, hostile_chars, hostile_text},
    service::webhooks::Merge,
};

fn sign(token: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("any key length");
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

fn signed_headers(signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
    headers
}

fn bad_signature<T: std::fmt::Debug>(result: &Result<T, Refusal>) -> bool {
    matches!(result, Err(Refusal::BadSignature { .. }))
}

/// Header values as raw bytes (invalid UTF-8 and obs-text included), as a client may send them.
fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        hostile_text().prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..80),
        Just(b"sha256=".to_vec()),
        "[A-Za-z0-9+/]{43}=".prop_map(String::into_bytes),
    ]
    .prop_filter_map("not a header value", |bytes| {
        HeaderValue::from_bytes(&bytes).ok()
    })
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    let name = prop_oneof![
        Just(HeaderName::from_static(SIGNATURE_HEADER)),
        Just(HeaderName::from_static("content-type")),
        "[a-z-]{1,20}".prop_filter_map("not a header name", |n| HeaderName::try_from(n).ok()),
    ];
    prop::collection::vec((name, header_value()), 0..4).prop_map(|pairs| {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name, value);
        }
        headers
    })
}

/// An id as a sender might write one: a string, a number, or something else.
fn id_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => "[0-9]{1,16}".prop_map(Value::from),
        1 => hostile_chars(12).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(|f| json!(f)),
        1 => prop::sample::select(vec![json!(null), json!(true), json!({}), json!([]), json!([1])]),
    ]
}

fn word(words: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::sample::select(words).prop_map(Value::from),
        1 => hostile_chars(12).prop_map(Value::from),
        1 => id_value(),
    ]
}

/// Notifications close to both documented shapes, with fields of any type.
fn near_notification() -> impl Strategy<Value = Value> {
    let entity = (
        word(&["Customer", "customer", "Vendor", "Invoice"]),
        id_value(),
        word(&["Create", "Update", "Merge", "MERGE", "Delete"]),
        id_value(),
    )
        .prop_map(|(name, id, op, deleted)| {
            json!({"name": name, "id": id, "operation": op, "deletedId": deleted})
        });
    let legacy = prop::collection::vec(
        (
            id_value(),
            prop_oneof![
                prop::collection::vec(entity, 0..4).prop_map(Value::from),
                id_value()
            ],
        ),
        0..3,
    )
    .prop_map(|notes| {
        let notes: Vec<Value> = notes
            .into_iter()
            .map(|(realm, entities)| {
                json!({"realmId": realm, "dataChangeEvent": {"entities": entities}})
            })
            .collect();
        json!({ "eventNotifications": notes })
    });
    let cloud_event = (
        word(&[
            "qbo.customer.merged.v1",
            "qbo.customer.updated.v1",
            "qbo.invoice.created.v1",
            "qbo",
            "",
            "qbo.customer",
        ]),
        id_value(),
        id_value(),
        prop_oneof![
            id_value().prop_map(|d| json!({ "deletedid": d })),
            id_value()
        ],
    )
        .prop_map(|(kind, account, entity, data)| {
            json!({"specversion": "1.0", "type": kind, "intuitaccountid": account,
                   "intuitentityid": entity, "data": data})
        })
        .boxed();
    prop_oneof![
        legacy,
        prop::collection::vec(cloud_event.clone(), 0..4).prop_map(Value::from),
        cloud_event,
    ]
}

fn bodies() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        hostile_text().prop_map(String::into_bytes),
        near_notification().prop_map(|v| v.to_string().into_bytes()),
    ]
}

/// One generated customer event: realm, and for a merge (absorbed, survivor).
type Event = (String, Option<(String, String)>);

fn events() -> impl Strategy<Value = Vec<Event>> {
    let id = "[1-9][0-9]{0,15}";
    prop::collection::vec((id, prop::option::of((id, id))), 0..5)
}

fn expected(events: &[Event]) -> Vec<CustomerEvent> {
    events
        .iter()
        .map(|(realm, merge)| CustomerEvent {
            realm: RealmId::parse(realm.as_str()).unwrap(),
            merge: merge.as_ref().map(|(absorbed, survivor)| Merge {
                absorbed: QboCustomerId::parse(absorbed.as_str()).unwrap(),
                survivor: QboCustomerId::parse(survivor.as_str()).unwrap(),
            }),
        })
        .collect()
}

fn legacy_body(events: &[Event]) -> Vec<u8> {
    let notes: Vec<Value> = events
        .iter()
        .map(|(realm, merge)| {
            let entity = match merge {
                Some((absorbed, survivor)) => {
                    json!({"name": "Customer", "id": survivor, "operation": "Merge", "deletedId": absorbed})
                }
                None => json!({"name": "Customer", "id": "1", "operation": "Update"}),
            };
            let other = json!({"name": "Invoice", "id": "9", "operation": "Create"});
            json!({"realmId": realm, "dataChangeEvent": {"entities": [other, entity]}})
        })
        .collect();
    json!({ "eventNotifications": notes })
        .to_string()
        .into_bytes()
}

fn cloud_body(events: &[Event]) -> Vec<u8> {
    let list: Vec<Value> = events
        .iter()
        .map(|(realm, merge)| match merge {
            Some((absorbed, survivor)) => json!({"specversion": "1.0", "type": "qbo.customer.merged.v1",
                "intuitaccountid": realm, "intuitentityid": survivor, "data": {"deletedid": absorbed}}),
            None => json!({"specversion": "1.0", "type": "qbo.customer.updated.v1",
                "intuitaccountid": realm, "intuitentityid": "1", "data": {}}),
        })
        .collect();
    Value::from(list).to_string().into_bytes()
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn no_header_or_body_makes_it_panic(token in hostile_chars(20), headers in headers(), body in bodies()) {
        let token = SecretString::from(token);
        let result = verified_events(&token, &headers, &body);
        // Nothing unsigned gets past the signature check.
        prop_assert!(bad_signature(&result), "{:?}", result);
        let _ = customer_events(&body);
    }

    #[test]
    fn a_signed_body_passes_and_any_flipped_bit_fails(
        token in hostile_chars(20),
        other in hostile_chars(20),
        body in bodies(),
        bit in any::<prop::sample::Index>(),
    ) {
        let signature = sign(&token, &body);
        let secret = SecretString::from(token.clone());
        let result = verified_events(&secret, &signed_headers(&signature), &body);
        prop_assert!(!bad_signature(&result), "a correctly signed body was refused");
        // Surrounding white space in the header is tolerated.
        let padded = format!(" {signature} ");
        prop_assert!(!bad_signature(&verified_events(&secret, &signed_headers(&padded), &body)));

        if !body.is_empty() {
            let mut flipped = body.clone();
            let at = bit.index(body.len() * 8);
            flipped[at / 8] ^= 1 << (at % 8);
            prop_assert!(bad_signature(&verified_events(&secret, &signed_headers(&signature), &flipped)));
        }
        let mut mac = BASE64.decode(&signature).unwrap();
        let at = bit.index(mac.len() * 8);
        mac[at / 8] ^= 1 << (at % 8);
        let forged = BASE64.encode(&mac);
        prop_assert!(bad_signature(&verified_events(&secret, &signed_headers(&forged), &body)));
        if other != token {
            let wrong = SecretString::from(other);
            prop_assert!(bad_signature(&verified_events(&wrong, &signed_headers(&signature), &body)));
        }
    }

    #[test]
    fn well_formed_notifications_read_back(events in events(), cloud in any::<bool>()) {
        let body = if cloud { cloud_body(&events) } else { legacy_body(&events) };
        let token = SecretString::from("verifier".to_owned());
        let read = verified_events(&token, &signed_headers(&sign("verifier", &body)), &body);
        match read {
            Ok(read) => prop_assert_eq!(read, expected(&events)),
            Err(e) => prop_assert!(false, "refused: {:?}", e),
        }
    }
}
