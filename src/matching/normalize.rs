//! The versioned name normalizer.
//!
//! A name goes through fixed stages (see [`Stage`]); each stage is a small pure function so that
//! [`crate::matching::explain`] can replay them one by one and say *which* differences were
//! ignored. Changing any stage's behaviour changes stored keys, so it must bump
//! [`NORMALIZER_VERSION`].

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::abbrev::{expand_business, generation, honorific, spell_out};
use super::legal::strip_legal_forms;

/// Version of the normalization rules; stored with every key and every link.
pub const NORMALIZER_VERSION: u32 = 3;

/// Suffixes our own systems add to names: Digit pushes `(c)`/`(v)`, QBO's UI shows `(deleted)`.
const DECORATIONS: [&str; 3] = ["(c)", "(v)", "(deleted)"];

/// Words that carry no identity and are ignored by fuzzy blocking.
pub(crate) const STOP_WORDS: [&str; 3] = ["and", "of", "the"];

/// A name reduced to what identifies the entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedName {
    /// The identifying words, in order, joined by single spaces (legal form and qualifier removed).
    pub core: String,
    /// Canonical legal form(s), e.g. `inc` or `pty ltd`; a separate key on purpose.
    pub legal: Option<String>,
    /// What tells twins apart: a trailing `(Dallas)` or a small trailing number (`John Smith 2`).
    pub qualifier: Option<String>,
    /// A leading honorific (`dr`, `mrs`…), kept out of the core: only a person carries one, and
    /// a name that gains or loses one links only when confirmed as a person's name.
    pub title: Option<String>,
    /// `Smith, John` read as a person's name, family name first: the core turned around
    /// (`john smith`). The core itself keeps the words in their written order.
    pub comma_reading: Option<String>,
    /// The core with German and Nordic letters spelled out (`Müller` → `mueller`), when the name
    /// has any; the core holds the plain reading (`muller`).
    pub spelled: Option<String>,
}

impl NormalizedName {
    /// The exact-tier key: core, qualifier and legal form.
    pub fn name_key(&self) -> String {
        let mut key = self.core.clone();
        if let Some(q) = &self.qualifier {
            key.push_str(" (");
            key.push_str(q);
            key.push(')');
        }
        if let Some(l) = &self.legal {
            key.push('|');
            key.push_str(l);
        }
        key
    }

    /// The same name with another core (for lookups of another reading).
    pub fn with_core(&self, core: String) -> NormalizedName {
        NormalizedName {
            core,
            legal: self.legal.clone(),
            qualifier: self.qualifier.clone(),
            title: None,
            comma_reading: None,
            spelled: None,
        }
    }

    /// Core words sorted, so that `john smith` and `smith john` agree.
    pub fn sorted_core(&self) -> String {
        let mut words: Vec<&str> = self.core.split(' ').collect();
        words.sort_unstable();
        words.join(" ")
    }

    /// Every word that holds a digit (core and qualifier), sorted: these must agree exactly.
    pub fn numbers(&self) -> Vec<&str> {
        let quals = self
            .qualifier
            .as_deref()
            .into_iter()
            .flat_map(|q| q.split(' '));
        let mut nums: Vec<&str> = self
            .core
            .split(' ')
            .chain(quals)
            .filter(|w| has_digit(w))
            .collect();
        nums.sort_unstable();
        nums
    }
}

pub(crate) fn has_digit(word: &str) -> bool {
    word.bytes().any(|b| b.is_ascii_digit())
}

/// Normalizes a display name; see the module docs and `docs/matching.md` for the rules.
pub fn normalize_name(raw: &str) -> NormalizedName {
    let folded = fold_case(&collapse_spaces(&compose_nfkc(raw)));
    let mut name = normalize_folded(&folded);
    if let Some(spelled) = spell_out(&folded) {
        let core = normalize_folded(&spelled).core;
        name.spelled = (core != name.core).then_some(core);
    }
    name
}

/// The stages after case folding (see [`normalize_name`]).
fn normalize_folded(folded: &str) -> NormalizedName {
    let text = strip_decorations(&fold_accents(folded));
    let (text, paren_qualifier) = split_paren_qualifier(&text);
    let words = expand_abbreviations(amp_to_and(tokenize(text)));
    let (words, generation) = split_generation(words);
    let (words, comma_title) = split_comma_title(words);
    let comma_reading = comma_reading(&words);
    let (words, title) = split_title(drop_leading_the(drop_commas(words)));
    let title = title.or(comma_title);
    let (mut words, legal) = strip_legal_forms(words);
    let mut qualifier = join_qualifiers(generation, paren_qualifier);
    if qualifier.is_none() && words.len() >= 2 && is_small_number(words.last().map_or("", |w| w)) {
        qualifier = words.pop();
    }
    NormalizedName {
        core: words.join(" "),
        // A person has no legal form: `Acme, Inc.` and `Smith, John LLC` are never turned.
        comma_reading: comma_reading.filter(|_| legal.is_none()),
        legal,
        qualifier,
        title,
        spelled: None,
    }
}

fn join_qualifiers(generation: Option<String>, paren: Option<String>) -> Option<String> {
    match (generation, paren) {
        (Some(g), Some(p)) => Some(format!("{g} {p}")),
        (g, p) => g.or(p),
    }
}

/// The stored e-mail key: trimmed and lower-cased; `None` unless it looks like an address.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    (!local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace))
        .then_some(email)
}

/// Phone key: the last ten digits, if there are at least seven.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 7).then(|| digits[digits.len().saturating_sub(10)..].to_string())
}

// ---- stages (each one also used by `explain`) -------------------------------------------------

/// Unicode compatibility forms: full-width letters, ligatures, no-break spaces.
pub(crate) fn compose_nfkc(s: &str) -> String {
    // NFKC leaves ASCII unchanged; skipping it keeps large tenants fast.
    if s.is_ascii() {
        s.to_string()
    } else {
        s.nfkc().collect()
    }
}

pub(crate) fn collapse_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn fold_case(s: &str) -> String {
    s.to_lowercase().replace('ß', "ss")
}

pub(crate) fn fold_accents(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.nfd().filter(|c| !is_combining_mark(*c)) {
        match c {
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            'ø' => out.push('o'),
            'đ' | 'ð' => out.push('d'),
            'ł' => out.push('l'),
            'þ' => out.push_str("th"),
            'ı' => out.push('i'),
            _ => out.push(c),
        }
    }
    out.nfc().collect()
}

pub(crate) fn strip_decorations(s: &str) -> String {
    let mut text = s.trim();
    loop {
        let before = text;
        for deco in DECORATIONS {
            if let Some(rest) = text.strip_suffix(deco) {
                text = rest.trim_end();
            }
        }
        if before == text {
            return text.to_string();
        }
    }
}

/// Splits a trailing `(...)` that is not one of our decorations: it tells twins apart.
pub(crate) fn split_paren_qualifier(s: &str) -> (&str, Option<String>) {
    let Some(inner) = s.strip_suffix(')') else {
        return (s, None);
    };
    let Some(open) = inner.rfind('(') else {
        return (s, None);
    };
    let head = inner[..open].trim_end();
    let qualifier = amp_to_and(tokenize(&inner[open + 1..])).join(" ");
    if head.chars().any(char::is_alphanumeric) && !qualifier.is_empty() {
        (head, Some(qualifier))
    } else {
        (s, None)
    }
}

/// Splits into words: letters and digits form words, apostrophes are dropped (`O'Brien` =
/// `OBrien`), `&` and `,` are kept as their own tokens, everything else separates. Runs of
/// single letters merge so that `L.L.C.` = `LLC` and `A B C` = `ABC`.
pub(crate) fn tokenize(s: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    for c in s.chars() {
        if c.is_alphanumeric() {
            current.push(c);
        } else if matches!(c, '\'' | '’' | '`' | '´') {
            continue;
        } else {
            flush(&mut words, &mut current);
            if c == '&' || c == ',' {
                words.push(c.to_string());
            }
        }
    }
    flush(&mut words, &mut current);
    merge_single_letters(words)
}

fn flush(words: &mut Vec<String>, current: &mut String) {
    if !current.is_empty() {
        words.push(std::mem::take(current));
    }
}

fn merge_single_letters(words: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut prev_single = false;
    for w in words {
        let single = w.chars().count() == 1 && w.chars().all(char::is_alphabetic);
        match out.last_mut() {
            Some(last) if single && prev_single => last.push_str(&w),
            _ => out.push(w),
        }
        prev_single = single;
    }
    out
}

pub(crate) fn amp_to_and(words: Vec<String>) -> Vec<String> {
    words
        .into_iter()
        .map(|w| if w == "&" { "and".to_string() } else { w })
        .collect()
}

/// Unambiguous business abbreviations become their expansion (`intl` → `international`).
pub(crate) fn expand_abbreviations(words: Vec<String>) -> Vec<String> {
    words
        .into_iter()
        .map(|w| expand_business(&w).map_or(w, String::from))
        .collect()
}

/// A trailing generational suffix (`Jr`, `Junior`, `III`) of a name of two or more other words
/// leaves the core; it becomes the qualifier, so `John Smith Jr` and `John Smith` are twins and
/// `John Smith Jr` / `John Smith Sr` differ.
pub(crate) fn split_generation(mut words: Vec<String>) -> (Vec<String>, Option<String>) {
    let others = words.iter().filter(|w| *w != ",").count().saturating_sub(1);
    match words.last().and_then(|w| generation(w)) {
        Some(canonical) if others >= 2 => {
            words.pop();
            while words.last().is_some_and(|w| w == ",") {
                words.pop();
            }
            (words, Some(canonical.to_string()))
        }
        _ => split_generation_before_comma(words),
    }
}

/// `Smith Jr., John` and `Smith, Jr., John`: a person's name written family name first, with
/// the suffix after the family name. Only a name that reads as a person's once the suffix is
/// out (see [`comma_reading`]) and has no legal form is taken this way.
fn split_generation_before_comma(words: Vec<String>) -> (Vec<String>, Option<String>) {
    let at = words
        .windows(2)
        .position(|w| w[1] == "," && generation(&w[0]).is_some());
    let Some(at) = at.filter(|at| *at >= 1) else {
        return (words, None);
    };
    let mut turned = words.clone();
    let canonical = generation(&turned.remove(at)).map(String::from);
    if turned[at - 1] == "," {
        turned.remove(at - 1);
    }
    let legal_tail = turned
        .last()
        .is_some_and(|w| super::legal::is_all_legal(std::slice::from_ref(w)));
    if comma_reading(&turned).is_some() && !legal_tail {
        (turned, canonical)
    } else {
        (words, None)
    }
}

/// `Doe, Dr. Jane`: a title written after the comma of a family-name-first name leaves the
/// words like a leading one.
fn split_comma_title(words: Vec<String>) -> (Vec<String>, Option<String>) {
    let Some(at) = words.iter().position(|w| w == ",") else {
        return (words, None);
    };
    let title = words.get(at + 1).and_then(|w| honorific(w));
    match title {
        Some(canonical) if at >= 1 && words.len() > at + 2 && words[at + 2] != "," => {
            let mut turned = words.clone();
            turned.remove(at + 1);
            if comma_reading(&turned).is_some() {
                return (turned, Some(canonical.to_string()));
            }
            (words, None)
        }
        _ => (words, None),
    }
}

/// `Smith, John` read as a person's name: the words turned around the comma. Only a short
/// two-part name without digits or `and` has this reading, and not `Acme, Inc.`.
pub(crate) fn comma_reading(words: &[String]) -> Option<String> {
    let parts: Vec<&[String]> = words.split(|w| w == ",").collect();
    let personal =
        |p: &[String]| (1..=3).contains(&p.len()) && p.iter().all(|w| w != "and" && !has_digit(w));
    let legal_tail = parts.len() == 2 && super::legal::is_all_legal(parts[1]);
    (parts.len() == 2
        && !legal_tail
        && personal(parts[0])
        && personal(parts[1])
        && parts[0].len() <= 2)
        .then(|| {
            let turned: Vec<&str> = parts[1]
                .iter()
                .chain(parts[0])
                .map(String::as_str)
                .collect();
            turned.join(" ")
        })
}

/// Commas separate words like any other punctuation: the words keep their written order.
pub(crate) fn drop_commas(words: Vec<String>) -> Vec<String> {
    words.into_iter().filter(|w| w != ",").collect()
}

/// A leading honorific (`Dr.`, `Mrs`) leaves the core when a word follows it.
pub(crate) fn split_title(mut words: Vec<String>) -> (Vec<String>, Option<String>) {
    match words.first().and_then(|w| honorific(w)) {
        Some(canonical) if words.len() >= 2 => {
            words.remove(0);
            (words, Some(canonical.to_string()))
        }
        _ => (words, None),
    }
}

pub(crate) fn drop_leading_the(mut words: Vec<String>) -> Vec<String> {
    if words.len() >= 2 && words[0] == "the" {
        words.remove(0);
    }
    words
}

fn is_small_number(word: &str) -> bool {
    (1..=2).contains(&word.len()) && word.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
#[path = "normalize_props.rs"]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> String {
        normalize_name(raw).name_key()
    }

    #[test]
    fn equivalent_spellings_share_a_key() {
        let same = [
            ("Acme Corp.", "ACME CORP"),
            ("Acme Corp.", "Acme Corporation"),
            ("A&W", "A & W"),
            ("A&W Restaurants", "A and W Restaurants"),
            ("  Acme   Corp ", "Acme Corp"),
            ("Barnes, Bakery LLC", "Barnes Bakery LLC"),
            ("Shepherd, Landscaping", "Shepherd Landscaping"),
            ("Barnes/Bakery", "Barnes. Bakery"),
            ("Intl Trading Co", "International Trading Company"),
            ("Brown Bros Roofing", "Brown Brothers Roofing"),
            ("Golden Gate Dental Grp", "Golden Gate Dental Group"),
            ("Acme Mfg. Svcs", "Acme Manufacturing Services"),
            ("Int'l Ctr", "International Centre"),
            ("Dr. Jane Doe", "Jane Doe"),
            ("John Smith Jr", "John Smith Jr."),
            ("John Smith Jr", "John Smith Junior"),
            ("Smith, John Jr.", "Smith John Jr"),
            ("Smith Jr., John", "Smith, John Jr"),
            ("Smith, Jr., John", "Smith, John Junior"),
            ("Doe, Dr. Jane", "Doe, Jane"),
            ("Acme II, Inc.", "Acme II Inc"),
            ("The Home Depot", "Home Depot"),
            ("Café Zoë", "Cafe Zoe"),
            ("Müller GmbH", "muller gmbh"),
            ("Acme LLC", "Acme L.L.C."),
            ("Acme Ltd", "Acme Limited"),
            ("Acme, Inc.", "Acme Incorporated"),
            ("Acme Co", "Acme Company"),
            ("Acme S.A.", "ACME SA"),
            ("Acme Pty Ltd", "Acme Pty. Limited"),
            ("Acme Corp (c)", "Acme Corp"),
            ("Acme Corp (v)", "Acme Corp"),
            ("Acme Corp (deleted)", "Acme Corp"),
            ("O'Brien Plumbing", "OBrien Plumbing"),
            ("Straße Bau", "Strasse Bau"),
            ("Ｆｕｌｌｗｉｄｔｈ", "fullwidth"),
        ];
        for (a, b) in same {
            assert_eq!(key(a), key(b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn version_2_readings() {
        // A comma keeps the written order; the person's reading is kept beside it.
        let n = normalize_name("Smith, John");
        assert_eq!(n.core, "smith john");
        assert_eq!(n.comma_reading.as_deref(), Some("john smith"));
        assert_eq!(normalize_name("Acme, Inc.").comma_reading, None);
        assert_eq!(normalize_name("Smith, John LLC").comma_reading, None);
        assert_eq!(
            normalize_name("Smith, John Jr.").comma_reading.as_deref(),
            Some("john smith")
        );
        // Version 3: a suffix before the comma, a title after it.
        let n = normalize_name("Smith Jr., John");
        assert_eq!(
            (n.core.as_str(), n.qualifier.as_deref()),
            ("smith john", Some("jr"))
        );
        assert_eq!(n.comma_reading.as_deref(), Some("john smith"));
        let n = normalize_name("Doe, Dr. Jane");
        assert_eq!(
            (n.core.as_str(), n.title.as_deref()),
            ("doe jane", Some("dr"))
        );
        assert_eq!(n.comma_reading.as_deref(), Some("jane doe"));
        assert_eq!(normalize_name("Smith Jr, John LLC").qualifier, None);
        // Titles leave the core; generational suffixes become the qualifier.
        let n = normalize_name("Dr. Jane Doe Jr.");
        assert_eq!(
            (n.core.as_str(), n.title.as_deref(), n.qualifier.as_deref()),
            ("jane doe", Some("dr"), Some("jr"))
        );
        assert_eq!(normalize_name("Dr Pepper").title.as_deref(), Some("dr"));
        assert_eq!(normalize_name("Dr").core, "dr");
        assert_eq!(normalize_name("Acme Tech").core, "acme tech");
        // The spelled-out reading of German and Nordic letters.
        let n = normalize_name("Müller GmbH");
        assert_eq!(
            (n.core.as_str(), n.spelled.as_deref()),
            ("muller", Some("mueller"))
        );
        assert_eq!(
            normalize_name("Åberg Sørensen").spelled.as_deref(),
            Some("aaberg soerensen")
        );
        assert_eq!(normalize_name("Mueller GmbH").spelled, None);
        assert_eq!(normalize_name("Café").spelled, None);
    }

    #[test]
    fn different_entities_keep_different_keys() {
        let differ = [
            ("Store #1234", "Store #1235"),
            ("Acme Corp West", "Acme Corp"),
            ("Smith Plumbing Supply", "Smith Plumbing"),
            ("John Smith (Dallas)", "John Smith"),
            ("John Smith 2", "John Smith"),
            ("Acme Inc", "Acme LLC"),
            ("Acme", "Acme Inc"),
            ("John Smith Jr", "John Smith Sr"),
            ("John Smith Jr", "John Smith"),
            ("Harbor Intl Trading", "Harbor International Shipping"),
            ("Smith, Bakery 12", "Smith Bakery 13"),
            ("Route 6-6 Diner", "Route 66 Diner"),
            ("Acme Tech", "Acme Technology"),
            ("Muller", "Mueller"),
        ];
        for (a, b) in differ {
            assert_ne!(key(a), key(b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn parts_are_split_as_documented() {
        let n = normalize_name("The Smith & Co., Ltd. (Dallas) (c)");
        assert_eq!(n.core, "smith");
        assert_eq!(n.legal.as_deref(), Some("co ltd"));
        assert_eq!(n.qualifier.as_deref(), Some("dallas"));
        let n = normalize_name("John Smith 2");
        assert_eq!(
            (n.core.as_str(), n.qualifier.as_deref()),
            ("john smith", Some("2"))
        );
        let n = normalize_name("Store #1234");
        assert_eq!(
            (n.core.as_str(), n.qualifier.as_deref()),
            ("store 1234", None)
        );
        assert_eq!(n.numbers(), vec!["1234"]);
        assert_eq!(normalize_name("Company").core, "company");
        assert_eq!(normalize_name("Smith, Jones and Co").core, "smith jones");
    }

    #[test]
    fn contact_keys() {
        assert_eq!(
            normalize_email(" Bob@Example.COM "),
            Some("bob@example.com".into())
        );
        assert_eq!(normalize_email("not an email"), None);
        assert_eq!(normalize_email("a@b"), None);
        assert_eq!(
            normalize_phone("+1 (555) 123-4567"),
            Some("5551234567".into())
        );
        assert_eq!(normalize_phone("123"), None);
    }
}
