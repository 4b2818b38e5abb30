//! QBO Customer objects as the API returns them, read by the offline `match` command only.

use serde::Deserialize;

use super::types::{QboCustomerRecord, parse_digit_marker};

/// A QBO Customer object as the API returns it; unknown fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct QboCustomerJson {
    id: String,
    sync_token: Option<String>,
    display_name: String,
    fully_qualified_name: Option<String>,
    parent_ref: Option<RefJson>,
    #[serde(default)]
    job: bool,
    active: Option<bool>,
    company_name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    primary_email_addr: Option<EmailJson>,
    primary_phone: Option<PhoneJson>,
    notes: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RefJson {
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EmailJson {
    address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PhoneJson {
    free_form_number: Option<String>,
}

/// `{"QueryResponse": {"Customer": [...]}}`, the shape of a query answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct QueryAnswer {
    pub query_response: QueryBody,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct QueryBody {
    #[serde(default)]
    pub customer: Vec<QboCustomerJson>,
}

impl From<QboCustomerJson> for QboCustomerRecord {
    fn from(c: QboCustomerJson) -> Self {
        Self {
            id: c.id,
            sync_token: c.sync_token,
            display_name: c.display_name,
            fully_qualified_name: c.fully_qualified_name,
            parent_id: c.parent_ref.map(|r| r.value),
            is_job: c.job,
            active: c.active.unwrap_or(true),
            company_name: c.company_name,
            given_name: c.given_name,
            family_name: c.family_name,
            email: c.primary_email_addr.and_then(|e| e.address),
            phone: c.primary_phone.and_then(|p| p.free_form_number),
            digit_marker: c.notes.as_deref().and_then(parse_digit_marker),
        }
    }
}
