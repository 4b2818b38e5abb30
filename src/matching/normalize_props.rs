//! Properties of the name normalizer over arbitrary and hostile text: it never panics, its
//! parts keep the shape `docs/matching.md` (Normalization) gives them, each stage is
//! idempotent, and the differences the rules say to ignore change no key.

use proptest::prelude::*;

use super::*;
use crate::matching::explain::same_name_reason;
use crate::props::{config, hostile_text, latin_name};

/// Words joined by single spaces, each word letters and digits only.
fn check_words(what: &str, text: &str) -> Result<(), TestCaseError> {
    if text.is_empty() {
        return Ok(());
    }
    for word in text.split(' ') {
        prop_assert!(!word.is_empty(), "{what} {text:?} has an empty word");
        prop_assert!(
            word.chars().all(char::is_alphanumeric),
            "{what} {text:?}: word {word:?} is not letters and digits"
        );
    }
    Ok(())
}

fn check_parts(raw: &str, n: &NormalizedName) -> Result<(), TestCaseError> {
    check_words("core", &n.core)?;
    for (what, part) in [
        ("legal", &n.legal),
        ("title", &n.title),
        ("comma reading", &n.comma_reading),
        ("spelled", &n.spelled),
    ] {
        if let Some(part) = part {
            prop_assert!(!part.is_empty(), "{what} is Some(\"\")");
            check_words(what, part)?;
        }
    }
    if let Some(q) = &n.qualifier {
        prop_assert!(!q.is_empty(), "qualifier is Some(\"\")");
    }
    // The core is case folded already (a symbol such as `🅐` has no lower case to fold to).
    prop_assert_eq!(fold_case(&n.core), n.core.as_str());
    if n.core.is_empty() {
        prop_assert!(n.legal.is_none() && n.title.is_none(), "{n:?}");
    }
    // A name keeps at least one word: whatever has words once our own suffixes are gone.
    let text = fold_accents(&fold_case(&collapse_spaces(&compose_nfkc(raw))));
    let words = tokenize(&strip_decorations(&text));
    if words.iter().any(|w| w.chars().all(char::is_alphanumeric)) {
        prop_assert!(!n.name_key().is_empty(), "{raw:?} lost every word");
    }
    for number in n.numbers() {
        prop_assert!(has_digit(number));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn never_panics_and_keeps_the_documented_shape(raw in hostile_text()) {
        let n = normalize_name(&raw);
        check_parts(&raw, &n)?;
        let _ = (n.sorted_core(), n.name_key(), n.with_core(String::new()));
        let _ = (normalize_email(&raw), normalize_phone(&raw));
        let _ = same_name_reason(&raw, "Acme Corp");
        let _ = same_name_reason("Acme Corp", &raw);
        if let Some(email) = normalize_email(&raw) {
            prop_assert_eq!(normalize_email(&email), Some(email));
        }
        if let Some(phone) = normalize_phone(&raw) {
            prop_assert!(phone.len() >= 7 && phone.len() <= 10);
            prop_assert_eq!(normalize_phone(&phone), Some(phone));
        }
    }

    #[test]
    fn every_stage_is_idempotent(raw in hostile_text()) {
        for stage in [compose_nfkc, collapse_spaces, fold_case, fold_accents, strip_decorations] {
            let once = stage(&raw);
            prop_assert_eq!(stage(&once), once);
        }
        let words = tokenize(&raw).join(" ");
        prop_assert_eq!(tokenize(&words).join(" "), words);
    }

    #[test]
    fn text_already_folded_normalizes_the_same(raw in hostile_text()) {
        // Feeding the normalizer its own early stages' output changes nothing...
        let folded = fold_case(&collapse_spaces(&compose_nfkc(&raw)));
        prop_assert_eq!(normalize_name(&folded), normalize_name(&raw));
        // ...and with the accents folded too, only the spelled reading (which needs them) goes.
        let plain = fold_accents(&folded);
        prop_assert_eq!(normalize_name(&plain).name_key(), normalize_name(&raw).name_key());
    }

    #[test]
    fn ignored_differences_change_no_key(name in latin_name()) {
        let key = normalize_name(&name).name_key();
        prop_assert_eq!(normalize_name(&name.to_uppercase()).name_key(), key.as_str(), "case");
        prop_assert_eq!(normalize_name(&name.to_lowercase()).name_key(), key.as_str(), "case");
        prop_assert_eq!(
            normalize_name(&format!("  {}\t ", name.replace(' ', " \u{A0} "))).name_key(),
            key.as_str(),
            "spacing"
        );
        for deco in [" (c)", " (v)", "(deleted)", " (c) (deleted)"] {
            prop_assert_eq!(normalize_name(&format!("{name}{deco}")).name_key(), key.as_str(), "{}", deco);
        }
        prop_assert_eq!(normalize_name(&name.replace(" & ", " and ")).name_key(), key.as_str(), "&");
        if !name.contains(['(', ')']) {
            prop_assert_eq!(normalize_name(&name.replace('\'', "")).name_key(), key.as_str(), "apostrophes");
        }
    }
}
