//! Request checking: collects every bad field of a request, then fails once with all of them.

use crate::{
    domain::{DigitCustomer, RawDigitCustomer},
    error::{ApiError, Violation},
    proto::v1 as pb,
};

/// Collects field violations while a request is converted to domain values.
#[derive(Debug, Default)]
pub struct Checker {
    violations: Vec<Violation>,
}

impl Checker {
    /// A checker with no violations yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation.
    pub fn violation(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push(Violation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Parses an identifier field; records a violation and returns `None` when it is bad.
    pub fn id<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        value: &str,
        parse: impl FnOnce(String) -> Result<T, E>,
    ) -> Option<T> {
        parse(value.to_owned())
            .map_err(|e| self.violation(field, e.to_string()))
            .ok()
    }

    /// Checks an enum field: it must be a known value other than the zero value.
    pub fn known_enum<T: TryFrom<i32>>(
        &mut self,
        field: &str,
        value: i32,
        unspecified: i32,
    ) -> Option<T> {
        match T::try_from(value) {
            Ok(_) if value == unspecified => {
                self.violation(field, "must be set");
                None
            }
            Ok(known) => Some(known),
            Err(_) => {
                self.violation(field, format!("unknown value {value}"));
                None
            }
        }
    }

    /// Checks an optional free-text field (reasons, keys): at most `max_bytes`, no control characters.
    pub fn text(&mut self, field: &str, value: &str, max_bytes: usize) {
        if value.len() > max_bytes {
            self.violation(
                field,
                format!("must be at most {max_bytes} bytes, got {}", value.len()),
            );
        } else if value.chars().any(char::is_control) {
            self.violation(field, "must not contain control characters");
        }
    }

    /// Converts a customer message; `prefix` is its field path, e.g. `customer` or `customers[3]`.
    pub fn customer(
        &mut self,
        prefix: &str,
        customer: Option<&pb::DigitCustomer>,
    ) -> Option<DigitCustomer> {
        let Some(customer) = customer else {
            self.violation(prefix, "must be set");
            return None;
        };
        let raw = RawDigitCustomer {
            id: &customer.id,
            display_name: &customer.display_name,
            company_name: &customer.company_name,
            given_name: &customer.given_name,
            family_name: &customer.family_name,
            email: &customer.email,
            phone: &customer.phone,
            active: customer.active,
        };
        DigitCustomer::parse(&raw)
            .map_err(|problems| {
                for (field, description) in problems {
                    self.violation(format!("{prefix}.{field}"), description);
                }
            })
            .ok()
    }

    /// Fails with every violation recorded, or passes when there is none.
    ///
    /// # Errors
    /// [`ApiError::InvalidArgument`] listing the violations.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.is_clean() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }

    /// Whether no violation has been recorded.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// The error listing every violation (a generic one if, by a bug, there is none).
    #[must_use]
    pub fn into_error(mut self) -> ApiError {
        if self.violations.is_empty() {
            self.violation("request", "is not acceptable");
        }
        ApiError::InvalidArgument(self.violations)
    }
}
