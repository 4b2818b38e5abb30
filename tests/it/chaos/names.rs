//! Deterministic, distinct customer names for the chaos suite, and the comparison key the
//! checks use (case and spaces ignored, a push's ` (c)` qualifier too).

const SYLLABLES: [&str; 32] = [
    "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ba", "de", "fi", "go", "hu", "ja", "ke", "li",
    "mo", "nu", "pa", "qui", "re", "so", "tu", "vi", "wa", "xe", "yo", "zu", "bra", "cle", "dro",
    "flo",
];

fn word(mut n: u64, syllables: usize) -> String {
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(SYLLABLES[(n % 32) as usize]);
        n /= 32;
    }
    let mut chars = w.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The `i`-th name: two words scrambled from `i` and `i` itself. The matcher never proposes
/// customers whose numbers differ, so only a customer's own twin is ever its candidate; and
/// no word is common to many names (a push looking its name up by a word that thousands of
/// QBO customers share sends it to review rather than risk a duplicate).
pub fn name(i: u64) -> String {
    let scramble = i.wrapping_mul(2_654_435_761) % (1 << 20);
    format!("{} {} {i}", word(scramble, 3), word(i, 3))
}

/// How Digit writes the twin of a QBO name: upper case, lower case or with doubled spaces.
pub fn digit_variant(name: &str, i: u64) -> String {
    match i % 3 {
        0 => name.to_uppercase(),
        1 => name.to_lowercase(),
        _ => name.replace(' ', "  "),
    }
}

/// The key two names are the same customer by: lower case, no white space, and no trailing
/// ` (c)` / ` (cN)` a push adds when another record holds the name.
pub fn key(name: &str) -> String {
    let trimmed = name.trim_end();
    let base = match trimmed.rfind(" (c") {
        Some(at)
            if trimmed.ends_with(')')
                && trimmed[at + 3..trimmed.len() - 1]
                    .chars()
                    .all(|c| c.is_ascii_digit()) =>
        {
            &trimmed[..at]
        }
        _ => trimmed,
    };
    base.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

#[test]
fn keys_ignore_case_spaces_and_the_qualifier() {
    let n = name(7);
    assert_eq!(key(&n), key(&digit_variant(&n, 0)));
    assert_eq!(key(&n), key(&digit_variant(&n, 1)));
    assert_eq!(key(&n), key(&digit_variant(&n, 2)));
    assert_eq!(key(&n), key(&format!("{n} (c)")));
    assert_eq!(key(&n), key(&format!("{n} (c2)")));
    assert_ne!(key(&n), key(&name(8)));
    let all: std::collections::HashSet<String> = (0..50_000).map(|i| key(&name(i))).collect();
    assert_eq!(all.len(), 50_000);
}

/// Whether `word` (lower case) is three of the syllables: a word of a chaos name.
fn is_name_word(word: &str) -> bool {
    fn split(rest: &str, left: usize) -> bool {
        if rest.is_empty() || left == 0 {
            return rest.is_empty() && left == 0;
        }
        SYLLABLES
            .iter()
            .any(|s| rest.strip_prefix(s).is_some_and(|r| split(r, left - 1)))
    }
    split(word, 3)
}

/// The chaos names in `text`: two words of three syllables each in a row, case and spacing
/// ignored (every name of the suite starts so; ordinary words of a log line never do).
pub fn names_in(text: &str) -> Vec<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words
        .windows(2)
        .filter(|pair| is_name_word(&pair[0]) && is_name_word(&pair[1]))
        .map(|pair| pair.join(" "))
        .collect()
}

#[test]
fn names_are_found_in_any_case_and_spacing_and_log_words_are_not() {
    let n = name(4_242);
    let upper = digit_variant(&n, 0);
    let spaced = digit_variant(&n, 2);
    let line = format!(r#"{{"level":"WARN","message":"push of {upper} failed","x":"{spaced}"}}"#);
    assert_eq!(names_in(&line).len(), 2, "{line}");
    let ordinary = r#"{"level":"INFO","message":"job failed; will retry","kind":"push_customer","tenant":"chaos-tenant","error":"QuickBooks answered 429 Too Many Requests"}"#;
    assert!(names_in(ordinary).is_empty());
}
