//! The matcher's inputs and outputs: owned plain types, independent of the proto and the store.

use serde::{Deserialize, Serialize};

use super::normalize::{NORMALIZER_VERSION, normalize_email, normalize_name};

/// A QBO customer as mirrored from QuickBooks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QboCustomerRecord {
    /// QBO `Id`.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_token: Option<String>,
    /// `DisplayName`, the name matched on.
    pub display_name: String,
    /// `FullyQualifiedName` (`Parent:Job`), shown in reasons for jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fully_qualified_name: Option<String>,
    /// `ParentRef` of a sub-customer (job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// `Job`: a sub-customer. A parent-level customer with the same name is preferred.
    #[serde(default)]
    pub is_job: bool,
    /// `Active`; inactive customers are never linked automatically.
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The Digit customer id qbo-sync wrote into this customer (see [`super::parse_digit_marker`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digit_marker: Option<String>,
}

/// A Digit customer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigitCustomerRecord {
    pub id: String,
    /// The name matched on; when blank, the company name or given + family name is used.
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// What the tenant already decided: links in force and pairs a person rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchContext {
    /// Existing links as (digit_id, qbo_id).
    pub links: Vec<(String, String)>,
    /// Pairs a person declared "not the same", as (digit_id, qbo_id): never proposed again.
    pub rejected: Vec<(String, String)>,
    /// Fuzzy keys (the matcher's hashes, see [`super::BlockingKey::hash`]) that have more than
    /// [`super::FUZZY_POSTING_CAP`] postings in the whole mirror. Empty for a whole mirror,
    /// where the matcher counts them itself; set when only part of the mirror is given, so
    /// that part skips the same keys the whole would.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crowded_fuzzy_keys: Vec<u32>,
}

/// How an automatic link was decided; the names are the proto's `LinkMethod` values.
///
/// The Digit-id marker tier has no method of its own in the proto: it is reported as
/// [`LinkMethod::AutoExact`] with the reason "carries this Digit customer's id marker".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LinkMethod {
    AutoExact,
    AutoNormalized,
    AutoEmail,
}

impl LinkMethod {
    /// The spelling of the `links.method` column.
    pub fn as_db_str(self) -> &'static str {
        match self {
            Self::AutoExact => "auto_exact",
            Self::AutoNormalized => "auto_normalized",
            Self::AutoEmail => "auto_email",
        }
    }
}

/// A QBO customer proposed to a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub qbo_id: String,
    pub display_name: String,
    pub active: bool,
    /// Set when this QBO customer is already linked to another Digit customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_to: Option<String>,
    /// Similarity in `[0, 1]`, higher first.
    pub score: f64,
    pub reasons: Vec<String>,
}

/// The decision for one Digit customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// An existing link stands; nothing to decide.
    AlreadyLinked { qbo_id: String },
    /// Certain enough to link without a person.
    AutoLink {
        qbo_id: String,
        method: LinkMethod,
        score: f64,
        reasons: Vec<String>,
    },
    /// A person must choose; `candidates` may be empty when the reason says why.
    Review {
        reason: String,
        candidates: Vec<Candidate>,
    },
    /// Nothing resembles this customer: it may be created in QBO.
    Unmatched,
}

/// One Digit customer and its decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchOutcome {
    pub digit_id: String,
    pub decision: Decision,
}

/// The stored matching keys of a customer (`qbo_customers.name_key`, `email_key`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerKeys {
    pub name_key: String,
    pub email_key: Option<String>,
    pub normalizer_version: u32,
}

/// Computes the keys stored with a customer for the current [`NORMALIZER_VERSION`]; two
/// customers with equal `name_key` are the same name for the exact normalized tier.
pub fn customer_keys(display_name: &str, email: Option<&str>) -> CustomerKeys {
    CustomerKeys {
        name_key: normalize_name(display_name).name_key(),
        email_key: email.and_then(normalize_email),
        normalizer_version: NORMALIZER_VERSION,
    }
}

/// Marker text qbo-sync writes into a QBO customer's `Notes` to remember its Digit id.
pub fn digit_marker_text(digit_id: &str) -> String {
    format!("[digit-id:{digit_id}]")
}

/// Reads the Digit id back from `Notes` (the first `[digit-id:...]` marker), if any.
pub fn parse_digit_marker(notes: &str) -> Option<String> {
    let start = notes.find("[digit-id:")? + "[digit-id:".len();
    let len = notes[start..].find(']')?;
    let id = notes[start..start + len].trim();
    (!id.is_empty()).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_markers_round_trip() {
        let keys = customer_keys("ACME Corp.", Some(" Billing@Acme.com"));
        assert_eq!(keys.name_key, "acme|corp");
        assert_eq!(keys.email_key.as_deref(), Some("billing@acme.com"));
        assert_eq!(keys.normalizer_version, NORMALIZER_VERSION);
        let notes = format!("call first\n{}", digit_marker_text("cus_42"));
        assert_eq!(parse_digit_marker(&notes).as_deref(), Some("cus_42"));
        assert_eq!(parse_digit_marker("no marker"), None);
        assert_eq!(parse_digit_marker("[digit-id:]"), None);
        assert_eq!(LinkMethod::AutoEmail.as_db_str(), "auto_email");
        assert_eq!(
            serde_json::to_string(&LinkMethod::AutoNormalized).unwrap(),
            "\"AUTO_NORMALIZED\""
        );
    }
}
