//! Identifiers: non-empty, at most 64 bytes, no control characters.

use std::fmt;

/// The longest identifier accepted, in bytes.
pub const MAX_ID_BYTES: usize = 64;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The string is empty or only white space.
    #[error("must not be empty")]
    Empty,
    /// The string is longer than [`MAX_ID_BYTES`].
    #[error("must be at most {MAX_ID_BYTES} bytes, got {0}")]
    TooLong(usize),
    /// The string holds a control character or surrounding white space.
    #[error("must not contain control characters or leading/trailing white space")]
    BadCharacter,
}

fn check_id(value: &str) -> Result<(), IdError> {
    if value.trim().is_empty() {
        return Err(IdError::Empty);
    }
    if value.len() > MAX_ID_BYTES {
        return Err(IdError::TooLong(value.len()));
    }
    if value.chars().any(char::is_control) || value.trim() != value {
        return Err(IdError::BadCharacter);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses an identifier.
            ///
            /// # Errors
            /// [`IdError`] when the value is empty, too long or holds control characters.
            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check_id(&value)?;
                Ok(Self(value))
            }

            /// The identifier as a string.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A Digit company using qbo-sync; every stored row belongs to one.
    TenantId
);
id_type!(
    /// Digit's id of a customer.
    DigitCustomerId
);
id_type!(
    /// QBO's id of a customer (opaque; numeric in practice).
    QboCustomerId
);
id_type!(
    /// A QBO company id (`realmId`).
    RealmId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        assert_eq!(TenantId::parse("tenant-1").unwrap().as_str(), "tenant-1");
        assert!(TenantId::parse("x".repeat(MAX_ID_BYTES)).is_ok());
    }

    #[test]
    fn rejects_bad_ids() {
        let cases = [
            ("", IdError::Empty),
            ("   ", IdError::Empty),
            (
                &"x".repeat(MAX_ID_BYTES + 1),
                IdError::TooLong(MAX_ID_BYTES + 1),
            ),
            ("a\u{0}b", IdError::BadCharacter),
            ("a\nb", IdError::BadCharacter),
            (" a", IdError::BadCharacter),
        ];
        for (input, want) in cases {
            assert_eq!(TenantId::parse(input).unwrap_err(), want, "input {input:?}");
        }
    }

    #[test]
    fn counts_bytes_not_characters() {
        // 22 three-byte characters are 66 bytes.
        assert_eq!(
            DigitCustomerId::parse("€".repeat(22)).unwrap_err(),
            IdError::TooLong(66)
        );
    }
}
