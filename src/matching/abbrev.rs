//! Word tables of normalizer version 2: business abbreviations, honorifics, generational
//! suffixes and the spelled-out forms of German and Nordic letters.
//!
//! Words are as [`super::normalize::tokenize`] leaves them: lower case, no dots or apostrophes
//! (`Int'l` → `intl`). Any change here changes stored keys and must bump
//! [`super::normalize::NORMALIZER_VERSION`].

/// Abbreviations with one meaning in business names: the abbreviation and its expansion are the
/// same word for matching, so they link.
const BUSINESS: &[(&str, &str)] = &[
    ("intl", "international"),
    ("bros", "brothers"),
    ("grp", "group"),
    ("mfg", "manufacturing"),
    ("svc", "service"),
    ("svcs", "services"),
    ("natl", "national"),
    ("mgmt", "management"),
    ("mgt", "management"),
    ("dept", "department"),
    ("ctr", "center"),
    ("centre", "center"),
    ("assn", "association"),
    ("mktg", "marketing"),
];

/// Abbreviations with several meanings: `Tech` is Technology or Technical. They only propose
/// (review with the candidate found), never link.
const AMBIGUOUS: &[(&str, &[&str])] = &[
    ("tech", &["technology", "technologies", "technical"]),
    ("assoc", &["associates", "association"]),
    ("dist", &["distribution", "distributors", "district"]),
];

/// Leading honorifics: dropped from the core and kept as the name's title.
const HONORIFICS: &[(&str, &str)] = &[
    ("mr", "mr"),
    ("mrs", "mrs"),
    ("ms", "ms"),
    ("miss", "miss"),
    ("mx", "mx"),
    ("dr", "dr"),
    ("doctor", "dr"),
    ("prof", "prof"),
    ("professor", "prof"),
    ("rev", "rev"),
];

/// Trailing generational suffixes, in their canonical spelling: they tell people apart.
const GENERATIONS: &[(&str, &str)] = &[
    ("jr", "jr"),
    ("junior", "jr"),
    ("sr", "sr"),
    ("senior", "sr"),
    ("ii", "ii"),
    ("iii", "iii"),
    ("iv", "iv"),
];

/// German and Nordic letters spelled out (`ü` → `ue`); the plain reading (`ü` → `u`) is the
/// accent stage's.
const SPELLED_OUT: &[(char, &str)] = &[
    ('ä', "ae"),
    ('ö', "oe"),
    ('ü', "ue"),
    ('ø', "oe"),
    ('å', "aa"),
];

fn lookup<T: Copy>(table: &[(&str, T)], word: &str) -> Option<T> {
    table.iter().find(|(k, _)| *k == word).map(|(_, v)| *v)
}

/// The expansion of an unambiguous business abbreviation (`intl` → `international`).
pub(crate) fn expand_business(word: &str) -> Option<&'static str> {
    lookup(BUSINESS, word)
}

/// The possible expansions of an ambiguous abbreviation (`tech` → technology, technical…).
pub(crate) fn ambiguous_expansions(word: &str) -> &'static [&'static str] {
    lookup(AMBIGUOUS, word).unwrap_or(&[])
}

/// The canonical honorific, if `word` is one.
pub(crate) fn honorific(word: &str) -> Option<&'static str> {
    lookup(HONORIFICS, word)
}

/// The canonical generational suffix, if `word` is one.
pub(crate) fn generation(word: &str) -> Option<&'static str> {
    lookup(GENERATIONS, word)
}

/// The text with German and Nordic letters spelled out, or `None` when it has none.
pub(crate) fn spell_out(text: &str) -> Option<String> {
    if !text
        .chars()
        .any(|c| SPELLED_OUT.iter().any(|(l, _)| *l == c))
    {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        match SPELLED_OUT.iter().find(|(l, _)| *l == c) {
            Some((_, s)) => out.push_str(s),
            None => out.push(c),
        }
    }
    Some(out)
}

/// A blocking-only reading with spelled-out letters folded back (`aasgaard` → `asgard`,
/// `mueller` → `muller`), so a word with two transliterated letters still meets its plain
/// spelling; `None` when nothing changes. Lossy on purpose: it only finds candidates.
pub(crate) fn fold_spelled(core: &str) -> Option<String> {
    // Most names hold none of these pairs: answer them without allocating.
    if !["ae", "oe", "ue", "aa"]
        .iter()
        .any(|pair| core.contains(pair))
    {
        return None;
    }
    let folded = core
        .replace("ae", "a")
        .replace("oe", "o")
        .replace("ue", "u")
        .replace("aa", "a");
    (folded != core).then_some(folded)
}

/// When `a` and `b` have the same words except that some words of one side are ambiguous
/// abbreviations of the other side's words, the first such pair (`tech`, `technology`).
pub(crate) fn ambiguous_reading<'w>(a: &'w str, b: &'w str) -> Option<(&'w str, &'w str)> {
    let (wa, wb): (Vec<&str>, Vec<&str>) = (a.split(' ').collect(), b.split(' ').collect());
    if wa.len() != wb.len() || a == b {
        return None;
    }
    let mut first = None;
    for (x, y) in wa.iter().zip(&wb) {
        if x == y {
            continue;
        }
        let pair = if ambiguous_expansions(x).contains(y) {
            (*x, *y)
        } else if ambiguous_expansions(y).contains(x) {
            (*y, *x)
        } else {
            return None;
        };
        first.get_or_insert(pair);
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_answer_as_documented() {
        assert_eq!(expand_business("intl"), Some("international"));
        assert_eq!(expand_business("tech"), None);
        assert!(ambiguous_expansions("tech").contains(&"technical"));
        assert_eq!(honorific("doctor"), Some("dr"));
        assert_eq!(generation("junior"), Some("jr"));
        assert_eq!(spell_out("müller"), Some("mueller".into()));
        assert_eq!(spell_out("åberg øst"), Some("aaberg oest".into()));
        assert_eq!(spell_out("muller"), None);
        assert_eq!(
            fold_spelled("aasgaard mueller"),
            Some("asgard muller".into())
        );
        assert_eq!(fold_spelled("asgard"), None);
        assert_eq!(
            ambiguous_reading("acme tech", "acme technology"),
            Some(("tech", "technology"))
        );
        assert_eq!(ambiguous_reading("acme tech", "acme trading"), None);
        assert_eq!(ambiguous_reading("acme tech", "acme tech"), None);
    }
}
