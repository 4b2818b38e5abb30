//! The names a push sends to QBO, and the word it looks QBO's customers up by.
//!
//! * QBO refuses `:` in a DisplayName (it separates the levels of FullyQualifiedName), so a
//!   Digit name holding one is created under a substitute: each `:` becomes ` - `
//!   (`12:30 Club` → `12 - 30 Club`). The link's reasons record it.
//! * DisplayName is unique across customers, vendors and employees. When a vendor or employee
//!   holds the name, the customer is created as `Name (c)`, then `Name (c2)`, `Name (c3)`:
//!   readable, deterministic (a retried push asks for the same name under the same request
//!   id) and recognised by the matcher as a decoration.
//! * Every name stays within QBO's 500 characters.

use crate::{
    domain::MAX_DISPLAY_NAME_CHARS,
    matching::{is_legal_form, normalize_name},
};

/// How many qualified names (`(c)`, `(c2)`, …) a push tries before a person must choose.
pub const MAX_QUALIFIED_NAMES: u32 = 3;

/// The DisplayName to create a Digit customer under, and why it differs, if it does.
#[must_use]
pub fn qbo_display_name(digit_name: &str) -> (String, Option<String>) {
    if !digit_name.contains(':') {
        return (truncate(digit_name.trim(), MAX_DISPLAY_NAME_CHARS), None);
    }
    let parts: Vec<&str> = digit_name
        .split(':')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let joined = if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(" - ")
    };
    let name = truncate(&joined, MAX_DISPLAY_NAME_CHARS);
    let why = format!("QuickBooks does not allow ':' in a name: created as '{name}'");
    (name, Some(why))
}

/// The `variant`-th qualified name: `Name (c)` for 1, `Name (c2)` for 2, and so on; variant 0
/// is the name itself.
#[must_use]
pub fn qualified_name(base: &str, variant: u32) -> String {
    let suffix = match variant {
        0 => return base.to_owned(),
        1 => " (c)".to_owned(),
        n => format!(" (c{n})"),
    };
    let room = MAX_DISPLAY_NAME_CHARS - suffix.chars().count();
    format!("{}{suffix}", truncate(base, room).trim_end())
}

/// The word QBO's customers are looked up by before a create: the longest word of the name
/// that identifies it (not a legal form, not `the`, `and`, `of`), so a name written with an
/// abbreviation, an honorific or in another order still meets its twin through the other
/// words. `None` for a name without letters or digits.
#[must_use]
pub fn lookup_word(name: &str) -> Option<String> {
    let mut best: Option<&str> = None;
    for word in identifying_words(name) {
        if best.is_none_or(|b| word.chars().count() > b.chars().count()) {
            best = Some(word);
        }
    }
    best.or_else(|| raw_words(name).next()).map(str::to_owned)
}

fn raw_words(name: &str) -> impl Iterator<Item = &str> {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// Words of two characters or more that are neither a legal form nor `the`, `and`, `of`.
fn identifying_words(name: &str) -> impl Iterator<Item = &str> {
    raw_words(name).filter(|w| {
        let core = normalize_name(w).core;
        w.chars().count() >= 2
            && !core.is_empty()
            && !["the", "and", "of"].contains(&core.as_str())
            && !is_legal_form(w)
    })
}

/// The words of a name, lower case, each once: what the mirror's word index holds.
#[must_use]
pub fn name_words(name: &str) -> Vec<String> {
    let mut words: Vec<String> = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.sort();
    words.dedup();
    words
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colons_become_dashes_and_the_reason_says_so() {
        let (name, why) = qbo_display_name("12:30 Club: West");
        assert_eq!(name, "12 - 30 Club - West");
        assert!(why.unwrap().contains("12 - 30 Club - West"));
        assert_eq!(
            qbo_display_name("Acme Corp"),
            ("Acme Corp".to_owned(), None)
        );
        assert_eq!(qbo_display_name(":::").0, "-");
    }

    #[test]
    fn qualified_names_are_readable_and_bounded() {
        assert_eq!(qualified_name("Bolt Supply", 0), "Bolt Supply");
        assert_eq!(qualified_name("Bolt Supply", 1), "Bolt Supply (c)");
        assert_eq!(qualified_name("Bolt Supply", 2), "Bolt Supply (c2)");
        let long = "x".repeat(MAX_DISPLAY_NAME_CHARS);
        let q = qualified_name(&long, 3);
        assert_eq!(q.chars().count(), MAX_DISPLAY_NAME_CHARS);
        assert!(q.ends_with(" (c3)"));
    }

    #[test]
    fn name_words_are_lower_case_and_unique() {
        assert_eq!(
            name_words("Acme & ACME, Müller-Co."),
            ["acme", "co", "müller"]
        );
        assert!(name_words("!!").is_empty());
    }

    #[test]
    fn lookup_word_skips_legal_forms_and_short_words() {
        assert_eq!(lookup_word("Acme Corp").as_deref(), Some("Acme"));
        assert_eq!(lookup_word("Intl Trading Co").as_deref(), Some("Trading"));
        assert_eq!(lookup_word("Dr. Jane Doe").as_deref(), Some("Jane"));
        assert_eq!(
            lookup_word("The Bakery of Paris, Inc.").as_deref(),
            Some("Bakery")
        );
        assert_eq!(lookup_word("A B").as_deref(), Some("A"));
        assert_eq!(lookup_word("!!!"), None);
    }
}
