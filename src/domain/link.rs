//! Links and how they were made.

use chrono::{DateTime, Utc};

use super::{DigitCustomerId, QboCustomerId};

/// How a link was made. Stored as the snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkMethod {
    /// By a person.
    Manual,
    /// Identical display names.
    AutoExact,
    /// Names equal after normalization.
    AutoNormalized,
    /// E-mail agreement with a compatible name.
    AutoEmail,
    /// qbo-sync created the QBO customer.
    CreatedInQbo,
    /// A create answered "Duplicate Name Exists" and the existing customer was linked.
    DuplicateNameRecovery,
    /// Followed a QBO merge to the surviving customer.
    MergeRepoint,
}

impl LinkMethod {
    /// Every method, for round-trip tests and exhaustive mapping.
    pub const ALL: [Self; 7] = [
        Self::Manual,
        Self::AutoExact,
        Self::AutoNormalized,
        Self::AutoEmail,
        Self::CreatedInQbo,
        Self::DuplicateNameRecovery,
        Self::MergeRepoint,
    ];

    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::AutoExact => "auto_exact",
            Self::AutoNormalized => "auto_normalized",
            Self::AutoEmail => "auto_email",
            Self::CreatedInQbo => "created_in_qbo",
            Self::DuplicateNameRecovery => "duplicate_name_recovery",
            Self::MergeRepoint => "merge_repoint",
        }
    }

    /// Parses a stored name.
    #[must_use]
    pub fn from_stored(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// A Digit customer's link to a QBO customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// Digit side.
    pub digit_customer_id: DigitCustomerId,
    /// QBO side.
    pub qbo_customer_id: QboCustomerId,
    /// QBO's display name, from the mirror, when known.
    pub qbo_display_name: Option<String>,
    /// How it was made.
    pub method: LinkMethod,
    /// Why, most important first.
    pub reasons: Vec<String>,
    /// Confidence, 0 to 1.
    pub score: f64,
    /// The normalizer version of an automatic link.
    pub normalizer_version: u32,
    /// Who made it.
    pub linked_by: String,
    /// When.
    pub linked_at: DateTime<Utc>,
}

/// Where a Digit customer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Linked.
    Linked,
    /// Nothing under way.
    Unlinked,
    /// Waiting for a person.
    PendingReview,
    /// Queued to be created in QBO.
    PendingPush,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip() {
        for method in LinkMethod::ALL {
            assert_eq!(LinkMethod::from_stored(method.as_str()), Some(method));
        }
        assert_eq!(LinkMethod::from_stored("telepathy"), None);
    }
}
