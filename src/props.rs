//! What the property tests share: their case counts and the hostile text they draw from.
//!
//! The properties live beside the code they check (`*_props.rs`), in the library's unit-test
//! binary, so they reach crate-private parsers without widening any API. Each property sets its
//! own case count, sized so that the whole suite runs in about a minute in a debug build;
//! `PROPTEST_CASES=<n>` replaces every count for a longer (or shorter) run. Failures found are
//! kept as seeds in `proptest-regressions/` (the corpus, committed) and replayed first on every
//! run.

use proptest::prelude::*;
use proptest::test_runner::Config;

/// The settings of a property that runs `cases` cases unless `PROPTEST_CASES` says otherwise.
pub(crate) fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        ..Config::default()
    }
}

/// Inputs that broke or fooled parsers elsewhere: injections, escapes, odd Unicode.
pub(crate) const HOSTILE: &[&str] = &[
    "",
    " ",
    "'; DROP TABLE links;--",
    "\\' OR 1=1",
    "\\\\' OR 1=1 --",
    "' OR '1'='1",
    "%",
    "_",
    "%_%",
    "\\",
    "\\\\",
    "'",
    "''",
    "\"",
    "`",
    "\u{2019}",
    "O\u{2019}Brien's",
    "Robert'); DROP TABLE digit_customers;--",
    "SELECT * FROM Customer WHERE Id = '1'",
    "1 OR 1=1",
    "<Fault><Error code=\"6240\">",
    "&amp;&lt;",
    "{\"Fault\":{}}",
    "(c)",
    "(deleted)",
    "()",
    "(",
    ")",
    "&",
    ",",
    "\u{0}",
    "a\u{0}b",
    "\r\n",
    "\u{202E}evil\u{202C}",
    "\u{200B}\u{200D}\u{FEFF}",
    "e\u{301}\u{301}\u{301}",
    "\u{FDFD}",
    "\u{FFFD}\u{FFFF}\u{10FFFF}",
    "ǅ ß ẞ İ ı ς Σ ﬀ",
    "Ｆｕｌｌｗｉｄｔｈ",
    "שלום עולם",
    "مرحبا",
    "𝔄𝔠𝔪𝔢",
    "👨‍👩‍👧",
    "..",
    "../../etc/passwd",
    "${jndi:ldap://x}",
    "%00",
    "%27",
    "Id=12",
];

/// Characters from the places where text handling goes wrong.
pub(crate) fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::char::range(' ', '~'),
        2 => any::<char>(),
        1 => prop::char::range('\u{0}', '\u{1F}'),
        1 => prop::char::range('\u{7F}', '\u{9F}'),
        // combining marks
        1 => prop::char::range('\u{300}', '\u{36F}'),
        // Latin-1 and Latin Extended-A letters
        2 => prop::char::range('\u{C0}', '\u{17F}'),
        // Hebrew and Arabic, and the bidirectional controls
        1 => prop::char::range('\u{590}', '\u{6FF}'),
        1 => prop::char::range('\u{2000}', '\u{206F}'),
        // full-width forms and specials
        1 => prop::char::range('\u{FF01}', '\u{FF5E}'),
        1 => prop::char::range('\u{FFF0}', '\u{FFFF}'),
        1 => prop::sample::select(vec!['\'', '\\', '%', '_', '&', ',', '(', ')', '"', '<', '>', '=']),
    ]
}

/// Text of up to `max` hostile characters.
pub(crate) fn hostile_chars(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(hostile_char(), 0..=max).prop_map(String::from_iter)
}

/// Any text a caller or QBO could send: short hostile strings, the [`HOSTILE`] corpus, corpus
/// entries glued together, and now and then a huge one (up to about 100 KB).
pub(crate) fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => hostile_chars(40),
        2 => prop::sample::select(HOSTILE).prop_map(str::to_owned),
        2 => (prop::sample::select(HOSTILE), hostile_chars(8), prop::sample::select(HOSTILE))
            .prop_map(|(a, b, c)| format!("{a}{b}{c}")),
        1 => (hostile_chars(6), 1_000..16_000usize).prop_map(|(piece, n)| {
            let piece = if piece.is_empty() { "x".to_owned() } else { piece };
            piece.repeat(n).chars().take(100_000).collect()
        }),
    ]
}

/// Names as people write them in the Latin alphabet: letters (accented ones too), digits,
/// spaces and the punctuation names carry.
pub(crate) fn latin_name() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        8 => prop::char::range('a', 'z'),
        4 => prop::char::range('A', 'Z'),
        3 => Just(' '),
        2 => prop::char::range('0', '9'),
        2 => prop::char::range('\u{C0}', '\u{17F}'),
        2 => prop::sample::select(vec!['.', ',', '&', '-', '/', '#', '\'', '(', ')']),
    ];
    prop::collection::vec(c, 0..40).prop_map(String::from_iter)
}
