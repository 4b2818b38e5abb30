//! Serde shapes of QBO's JSON. They never leave this module tree: the client converts them
//! into the plain types of [`super::types`].
//!
//! QBO has been seen answering with lower-cased envelope keys (`{"fault":{"error":[..]}}`), so
//! every body is passed through [`canonicalize_keys`] before it is deserialized.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The keys we read, in QBO's spelling. A key that matches one of these ignoring case is
/// renamed to it; other keys are left alone.
const CANONICAL_KEYS: &[&str] = &[
    "Fault",
    "Error",
    "Message",
    "Detail",
    "code",
    "element",
    "type",
    "time",
    "QueryResponse",
    "CDCResponse",
    "BatchItemResponse",
    "bId",
    "Customer",
    "Vendor",
    "Employee",
    "startPosition",
    "maxResults",
    "totalCount",
    "Id",
    "SyncToken",
    "DisplayName",
    "FullyQualifiedName",
    "ParentRef",
    "value",
    "Job",
    "Level",
    "Active",
    "CompanyName",
    "GivenName",
    "FamilyName",
    "PrimaryEmailAddr",
    "Address",
    "PrimaryPhone",
    "FreeFormNumber",
    "MetaData",
    "LastUpdatedTime",
    "status",
];

/// Renames keys that differ from QBO's spelling only by case, recursively.
pub(crate) fn canonicalize_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let renames: Vec<(String, &str)> = map
                .keys()
                .filter_map(|key| {
                    CANONICAL_KEYS
                        .iter()
                        .find(|c| c.eq_ignore_ascii_case(key) && **c != key)
                        .map(|c| (key.clone(), *c))
                })
                .collect();
            for (old, new) in renames {
                if let Some(v) = map.remove(&old) {
                    map.entry(new.to_owned()).or_insert(v);
                }
            }
            map.values_mut().for_each(canonicalize_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(canonicalize_keys),
        _ => {}
    }
}

/// `{"value": "..."}` references.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RefDto {
    pub value: String,
}

/// `{"Address": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EmailDto {
    pub address: Option<String>,
}

/// `{"FreeFormNumber": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PhoneDto {
    pub free_form_number: Option<String>,
}

/// `MetaData`; times keep their offset as text and are parsed leniently later.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct MetaDataDto {
    pub last_updated_time: Option<String>,
}

/// A Customer as QBO sends it (only the fields the service uses).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CustomerDto {
    pub id: String,
    #[serde(default)]
    pub sync_token: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub fully_qualified_name: Option<String>,
    #[serde(default)]
    pub parent_ref: Option<RefDto>,
    #[serde(default)]
    pub job: Option<bool>,
    #[serde(default)]
    pub level: Option<i32>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub company_name: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub primary_email_addr: Option<EmailDto>,
    #[serde(default)]
    pub primary_phone: Option<PhoneDto>,
    #[serde(default)]
    pub meta_data: Option<MetaDataDto>,
    /// `"Deleted"` on CDC entries of removed objects.
    #[serde(default, rename = "status")]
    pub status: Option<String>,
}

/// A Vendor or Employee: only what the duplicate-name recovery needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NamedEntityDto {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
}

/// The body of a create or sparse update. Absent fields are not sent, so a sparse update
/// changes only what is set.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CustomerWriteDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", rename = "sparse")]
    pub sparse: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_email_addr: Option<EmailDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_phone: Option<PhoneDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_ref: Option<RefDto>,
}

/// `{"Customer": {...}, "time": ...}`.
#[derive(Debug, Deserialize)]
pub(crate) struct CustomerEnvelope {
    #[serde(rename = "Customer")]
    pub customer: CustomerDto,
}

/// `{"QueryResponse": {...}, "time": ...}`.
#[derive(Debug, Deserialize)]
pub(crate) struct QueryEnvelope {
    #[serde(rename = "QueryResponse", default)]
    pub query_response: QueryResponseDto,
}

/// The inside of a query answer; QBO leaves out empty lists entirely.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct QueryResponseDto {
    #[serde(rename = "Customer", default)]
    pub customer: Vec<CustomerDto>,
    #[serde(rename = "Vendor", default)]
    pub vendor: Vec<NamedEntityDto>,
    #[serde(rename = "Employee", default)]
    pub employee: Vec<NamedEntityDto>,
    #[serde(rename = "totalCount", default)]
    pub total_count: Option<u64>,
}

/// `{"CDCResponse":[{"QueryResponse":[{"Customer":[..]}]}], "time": ...}`.
#[derive(Debug, Deserialize)]
pub(crate) struct CdcEnvelope {
    #[serde(rename = "CDCResponse", default)]
    pub cdc_response: Vec<CdcResponseDto>,
    #[serde(default)]
    pub time: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CdcResponseDto {
    #[serde(rename = "QueryResponse", default)]
    pub query_response: Vec<QueryResponseDto>,
}

/// One item of a batch request.
#[derive(Debug, Serialize)]
pub(crate) struct BatchItemRequestDto {
    #[serde(rename = "bId")]
    pub b_id: String,
    pub operation: &'static str,
    #[serde(rename = "Customer")]
    pub customer: CustomerWriteDto,
}

#[derive(Debug, Serialize)]
pub(crate) struct BatchRequestDto {
    #[serde(rename = "BatchItemRequest")]
    pub items: Vec<BatchItemRequestDto>,
}

/// `{"BatchItemResponse": [...]}`; each item keeps its raw JSON so a per-item Fault can go
/// through the one fault parser.
#[derive(Debug, Deserialize)]
pub(crate) struct BatchEnvelope {
    #[serde(rename = "BatchItemResponse", default)]
    pub items: Vec<Value>,
}

/// The token endpoint's success answer.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponseDto {
    pub access_token: String,
    pub refresh_token: String,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub x_refresh_token_expires_in: Option<i64>,
}

/// The token endpoint's error answer (`{"error":"invalid_grant"}`).
#[derive(Debug, Deserialize)]
pub(crate) struct TokenErrorDto {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_cased_keys_are_renamed() {
        let mut v: Value = serde_json::from_str(
            r#"{"queryresponse":{"customer":[{"id":"7","synctoken":"2","displayname":"A","active":false,"Other":1}],"startposition":1}}"#,
        )
        .unwrap();
        canonicalize_keys(&mut v);
        let env: QueryEnvelope = serde_json::from_value(v).unwrap();
        let c = &env.query_response.customer[0];
        assert_eq!(c.id, "7");
        assert_eq!(c.sync_token.as_deref(), Some("2"));
        assert_eq!(c.display_name.as_deref(), Some("A"));
        assert_eq!(c.active, Some(false));
    }

    #[test]
    fn empty_query_response_has_no_list() {
        let env: QueryEnvelope =
            serde_json::from_str(r#"{"QueryResponse":{},"time":1719142418269}"#).unwrap();
        assert!(env.query_response.customer.is_empty());
    }

    #[test]
    fn sparse_write_sends_only_set_fields() {
        let dto = CustomerWriteDto {
            id: Some("1".into()),
            sync_token: Some("0".into()),
            sparse: Some(true),
            company_name: Some("X".into()),
            ..CustomerWriteDto::default()
        };
        let json = serde_json::to_value(&dto).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"Id":"1","SyncToken":"0","sparse":true,"CompanyName":"X"})
        );
    }
}
