//! The two shapes of a QBO webhook body, read leniently into the customer events the use case
//! takes:
//!
//! * legacy: `{"eventNotifications":[{"realmId", "dataChangeEvent":{"entities":[{"name",
//!   "id", "operation", "lastUpdated", "deletedId"}]}}]}`; a `Merge` names the survivor in
//!   `id` and the absorbed customer in `deletedId`;
//! * CloudEvents: `[{"specversion", "id", "type": "qbo.customer.merged.v1", "source",
//!   "intuitaccountid", "intuitentityid", "time", "data": {"deletedid"}}]`; a merge names the
//!   survivor in `intuitentityid` and the absorbed customer in `data.deletedid`.
//!
//! Field names are matched without regard to case (Intuit's documents spell `deletedId` and
//! `deletedid`), ids may be strings or numbers, and unknown fields are ignored. Events of other
//! entities are skipped. A body in neither shape, or a customer event without its company, is
//! malformed.

use serde_json::{Map, Value};

use crate::{
    domain::{QboCustomerId, RealmId},
    service::webhooks::{CustomerEvent, Merge},
};

/// Why a body is not a QBO notification. The messages never quote the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    /// Not JSON at all.
    #[error("the body is not JSON")]
    NotJson,
    /// JSON, but neither the legacy nor the CloudEvents shape.
    #[error("the body is neither {{\"eventNotifications\": [...]}} nor an array of CloudEvents")]
    UnknownShape,
    /// The right shape with a field missing or invalid.
    #[error("{0}")]
    Invalid(&'static str),
}

/// Reads the customer events of a webhook body, in body order.
///
/// # Errors
/// [`EventsError`] when the body is malformed.
pub fn customer_events(body: &[u8]) -> Result<Vec<CustomerEvent>, EventsError> {
    let json: Value = serde_json::from_slice(body).map_err(|_| EventsError::NotJson)?;
    match &json {
        Value::Array(events) => events.iter().filter_map(cloud_event).collect(),
        // One CloudEvent on its own, as some relays forward them.
        Value::Object(object) if field(object, "specversion").is_some() => {
            cloud_event(&json).into_iter().collect()
        }
        Value::Object(object) => match field(object, "eventNotifications") {
            Some(Value::Array(notifications)) => {
                let mut events = Vec::new();
                for notification in notifications {
                    events.extend(legacy_notification(notification)?);
                }
                Ok(events)
            }
            _ => Err(EventsError::UnknownShape),
        },
        _ => Err(EventsError::UnknownShape),
    }
}

/// One CloudEvent: `None` when it is not about a customer.
fn cloud_event(event: &Value) -> Option<Result<CustomerEvent, EventsError>> {
    let Some(event) = event.as_object() else {
        return Some(Err(EventsError::UnknownShape));
    };
    let Some(kind) = field(event, "type").and_then(Value::as_str) else {
        return Some(Err(EventsError::Invalid("a CloudEvent has no type")));
    };
    // qbo.<entity>.<action>.v<N>
    let mut parts = kind.split('.');
    let (_, entity, action) = (parts.next(), parts.next()?, parts.next().unwrap_or(""));
    if !entity.eq_ignore_ascii_case("customer") {
        return None;
    }
    Some(customer_event(
        field(event, "intuitaccountid"),
        action.eq_ignore_ascii_case("merged"),
        field(event, "intuitentityid"),
        field(event, "data")
            .and_then(Value::as_object)
            .and_then(|d| field(d, "deletedid")),
    ))
}

/// The customer events of one legacy notification.
fn legacy_notification(notification: &Value) -> Result<Vec<CustomerEvent>, EventsError> {
    let notification = notification.as_object().ok_or(EventsError::Invalid(
        "an event notification is not an object",
    ))?;
    let entities = match field(notification, "dataChangeEvent")
        .and_then(Value::as_object)
        .and_then(|change| field(change, "entities"))
    {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(entities)) => entities,
        Some(_) => {
            return Err(EventsError::Invalid(
                "dataChangeEvent.entities is not an array",
            ));
        }
    };
    let mut events = Vec::new();
    for entity in entities {
        let entity = entity
            .as_object()
            .ok_or(EventsError::Invalid("an entity is not an object"))?;
        let is_customer = field(entity, "name")
            .and_then(Value::as_str)
            .is_some_and(|name| name.eq_ignore_ascii_case("customer"));
        if !is_customer {
            continue;
        }
        let merged = field(entity, "operation")
            .and_then(Value::as_str)
            .is_some_and(|op| op.eq_ignore_ascii_case("merge"));
        events.push(customer_event(
            field(notification, "realmId"),
            merged,
            field(entity, "id"),
            field(entity, "deletedId"),
        )?);
    }
    Ok(events)
}

/// A customer event from its fields. A merge whose ids are missing is still a change of the
/// realm (its sync reads what QBO has now), so only the realm is required.
fn customer_event(
    realm: Option<&Value>,
    merged: bool,
    survivor: Option<&Value>,
    absorbed: Option<&Value>,
) -> Result<CustomerEvent, EventsError> {
    let realm = id_text(realm)
        .and_then(|r| RealmId::parse(r).ok())
        .ok_or(EventsError::Invalid(
            "a customer event has no valid realm id",
        ))?;
    let merge = if merged {
        let survivor = id_text(survivor).and_then(|s| QboCustomerId::parse(s).ok());
        let absorbed = id_text(absorbed).and_then(|a| QboCustomerId::parse(a).ok());
        match (absorbed, survivor) {
            (Some(absorbed), Some(survivor)) => Some(Merge { absorbed, survivor }),
            _ => {
                tracing::warn!(realm = %realm, "QBO merge event without both customer ids: syncing the realm only");
                None
            }
        }
    } else {
        None
    };
    Ok(CustomerEvent { realm, merge })
}

/// A field by name, exact spelling first, then without regard to ASCII case.
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// An id written as a string or a number.
fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A realm and, for a merge, (absorbed, survivor).
    type Event = (String, Option<(String, String)>);

    fn summary(body: &str) -> Result<Vec<Event>, EventsError> {
        Ok(customer_events(body.as_bytes())?
            .into_iter()
            .map(|e| {
                let merge = e
                    .merge
                    .map(|m| (m.absorbed.to_string(), m.survivor.to_string()));
                (e.realm.to_string(), merge)
            })
            .collect())
    }

    fn change(realm: &str) -> Event {
        (realm.to_owned(), None)
    }

    fn merge(realm: &str, absorbed: &str, survivor: &str) -> Event {
        (
            realm.to_owned(),
            Some((absorbed.to_owned(), survivor.to_owned())),
        )
    }

    #[test]
    fn reads_legacy_notifications() {
        let body = r#"{"eventNotifications":[{"realmId":"1185883450","dataChangeEvent":{"entities":[
            {"name":"Customer","id":"1","operation":"Create","lastUpdated":"2015-10-05T14:42:19-0700"},
            {"name":"Invoice","id":"9","operation":"Update","lastUpdated":"2015-10-05T14:42:19-0700"},
            {"name":"Customer","id":"12","operation":"Merge","deletedId":"27","lastUpdated":"2015-10-05T14:42:19-0700"}
        ]}},{"realmId":"42","dataChangeEvent":{"entities":[]}}]}"#;
        assert_eq!(
            summary(body).unwrap(),
            [change("1185883450"), merge("1185883450", "27", "12")]
        );
    }

    #[test]
    fn reads_cloudevents() {
        let body = r#"[
            {"specversion":"1.0","id":"a","source":"intuit.x","type":"qbo.customer.updated.v1",
             "datacontenttype":"application/json","time":"2025-09-10T21:31:25.179851517Z",
             "intuitentityid":"1234","intuitaccountid":"310","data":{}},
            {"specversion":"1.0","id":"b","type":"qbo.invoice.created.v1","intuitaccountid":"310"},
            {"specversion":"1.0","id":"c","type":"qbo.customer.merged.v1",
             "intuitentityid":"12","intuitaccountid":"310","data":{"deletedid":"27"}}
        ]"#;
        assert_eq!(
            summary(body).unwrap(),
            [change("310"), merge("310", "27", "12")]
        );
    }

    #[test]
    fn is_lenient_about_case_numbers_and_unknown_fields() {
        let legacy = r#"{"EventNotifications":[{"realmid":310,"extra":true,"DataChangeEvent":
            {"Entities":[{"Name":"customer","Id":12,"Operation":"MERGE","deletedid":"27"}]}}]}"#;
        assert_eq!(summary(legacy).unwrap(), [merge("310", "27", "12")]);
        let cloud = r#"{"specversion":"1.0","type":"QBO.Customer.Merged.v2",
            "intuitAccountId":"310","intuitEntityId":"12","data":{"deletedId":27}}"#;
        assert_eq!(summary(cloud).unwrap(), [merge("310", "27", "12")]);
    }

    #[test]
    fn a_merge_without_ids_still_syncs_the_realm() {
        let body = r#"[{"specversion":"1.0","type":"qbo.customer.merged.v1",
            "intuitaccountid":"310","intuitentityid":"12"}]"#;
        assert_eq!(summary(body).unwrap(), [change("310")]);
    }

    #[test]
    fn bodies_without_customer_events_are_empty() {
        assert_eq!(summary("[]").unwrap(), []);
        assert_eq!(summary(r#"{"eventNotifications":[]}"#).unwrap(), []);
        let other = r#"{"eventNotifications":[{"realmId":"1","dataChangeEvent":{"entities":[
            {"name":"Vendor","id":"3","operation":"Update"}]}}]}"#;
        assert_eq!(summary(other).unwrap(), []);
    }

    #[test]
    fn refuses_malformed_bodies() {
        assert_eq!(summary("not json"), Err(EventsError::NotJson));
        assert_eq!(summary("{}"), Err(EventsError::UnknownShape));
        assert_eq!(summary("42"), Err(EventsError::UnknownShape));
        assert_eq!(summary("[1, 2]"), Err(EventsError::UnknownShape));
        assert!(matches!(
            summary(r#"[{"specversion":"1.0"}]"#),
            Err(EventsError::Invalid(_))
        ));
        let no_realm = r#"{"eventNotifications":[{"dataChangeEvent":{"entities":[
            {"name":"Customer","id":"1","operation":"Update"}]}}]}"#;
        assert!(matches!(summary(no_realm), Err(EventsError::Invalid(_))));
        let no_realm = r#"[{"specversion":"1.0","type":"qbo.customer.updated.v1"}]"#;
        assert!(matches!(summary(no_realm), Err(EventsError::Invalid(_))));
    }
}
