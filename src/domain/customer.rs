//! A Digit customer, validated.

use super::{DigitCustomerId, IdError};

/// QBO's limit on DisplayName, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 500;
/// QBO's limit on CompanyName, GivenName and FamilyName, in characters.
pub const MAX_NAME_PART_CHARS: usize = 100;
/// QBO's limit on phone numbers, in characters.
pub const MAX_PHONE_CHARS: usize = 30;
/// The longest e-mail address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// A customer as Digit reports it, with every field checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitCustomer {
    /// Digit's id.
    pub id: DigitCustomerId,
    /// The name on invoices.
    pub display_name: String,
    /// Company, if any.
    pub company_name: Option<String>,
    /// Given name, if a person.
    pub given_name: Option<String>,
    /// Family name, if a person.
    pub family_name: Option<String>,
    /// Primary e-mail.
    pub email: Option<String>,
    /// Primary phone.
    pub phone: Option<String>,
    /// Active in Digit.
    pub active: bool,
}

/// The raw fields of a Digit customer, before checking.
#[derive(Debug, Clone, Default)]
pub struct RawDigitCustomer<'a> {
    pub id: &'a str,
    pub display_name: &'a str,
    pub company_name: &'a str,
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
    pub active: Option<bool>,
}

/// One field that failed a check: its name (relative to the customer) and why.
pub type FieldProblem = (&'static str, String);

impl DigitCustomer {
    /// Checks every field and returns all the problems found, not only the first.
    ///
    /// # Errors
    /// The list of fields that are not acceptable.
    pub fn parse(raw: &RawDigitCustomer<'_>) -> Result<Self, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let id = DigitCustomerId::parse(raw.id)
            .map_err(|e: IdError| problems.push(("id", e.to_string())))
            .ok();
        let display_name = text(
            &mut problems,
            "display_name",
            raw.display_name,
            MAX_DISPLAY_NAME_CHARS,
        );
        if display_name.is_none() && !problems.iter().any(|(f, _)| *f == "display_name") {
            problems.push(("display_name", "must not be empty".into()));
        }
        let company_name = text(
            &mut problems,
            "company_name",
            raw.company_name,
            MAX_NAME_PART_CHARS,
        );
        let given_name = text(
            &mut problems,
            "given_name",
            raw.given_name,
            MAX_NAME_PART_CHARS,
        );
        let family_name = text(
            &mut problems,
            "family_name",
            raw.family_name,
            MAX_NAME_PART_CHARS,
        );
        let phone = text(&mut problems, "phone", raw.phone, MAX_PHONE_CHARS);
        let email = text(&mut problems, "email", raw.email, MAX_EMAIL_CHARS);
        if let Some(address) = &email
            && !looks_like_email(address)
        {
            problems.push(("email", "must look like name@example.com".into()));
        }
        match (id, display_name) {
            (Some(id), Some(display_name)) if problems.is_empty() => Ok(Self {
                id,
                display_name,
                company_name,
                given_name,
                family_name,
                email,
                phone,
                active: raw.active.unwrap_or(true),
            }),
            _ => Err(problems),
        }
    }
}

/// An optional text field: empty means absent; otherwise bounded and free of control characters.
fn text(
    problems: &mut Vec<FieldProblem>,
    field: &'static str,
    value: &str,
    max_chars: usize,
) -> Option<String> {
    if value.trim().is_empty() {
        return None;
    }
    let chars = value.chars().count();
    if chars > max_chars {
        problems.push((
            field,
            format!("must be at most {max_chars} characters, got {chars}"),
        ));
        return None;
    }
    if value.chars().any(char::is_control) {
        problems.push((field, "must not contain control characters".into()));
        return None;
    }
    Some(value.trim().to_owned())
}

fn looks_like_email(address: &str) -> bool {
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !address.contains(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(id: &'a str, name: &'a str) -> RawDigitCustomer<'a> {
        RawDigitCustomer {
            id,
            display_name: name,
            ..Default::default()
        }
    }

    #[test]
    fn accepts_a_plain_customer_and_defaults_to_active() {
        let customer = DigitCustomer::parse(&RawDigitCustomer {
            email: "a@b.co",
            ..raw("c1", " Acme Corp ")
        })
        .unwrap();
        assert_eq!(customer.display_name, "Acme Corp");
        assert_eq!(customer.email.as_deref(), Some("a@b.co"));
        assert!(customer.active);
        assert_eq!(customer.phone, None);
    }

    #[test]
    fn reports_every_bad_field() {
        let long = "x".repeat(MAX_DISPLAY_NAME_CHARS + 1);
        let problems = DigitCustomer::parse(&RawDigitCustomer {
            email: "not-an-email",
            phone: "555\u{7}",
            ..raw("", &long)
        })
        .unwrap_err();
        let fields: Vec<_> = problems.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["id", "display_name", "phone", "email"]);
    }

    #[test]
    fn a_name_of_exactly_500_characters_is_fine_and_multibyte_counts_as_one() {
        assert!(DigitCustomer::parse(&raw("c1", &"é".repeat(MAX_DISPLAY_NAME_CHARS))).is_ok());
    }

    #[test]
    fn rejects_control_characters_and_blank_names() {
        assert!(DigitCustomer::parse(&raw("c1", "Acme\nCorp")).is_err());
        assert!(DigitCustomer::parse(&raw("c1", "   ")).is_err());
    }
}
