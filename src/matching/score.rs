//! Similarity of two normalized names, used only to rank candidates for review.

use strsim::jaro_winkler;

use super::abbrev::generation;
use super::normalize::{NormalizedName, STOP_WORDS};

/// Added when the e-mail addresses agree.
pub const EMAIL_BOOST: f64 = 0.10;
/// Added when the phone numbers agree.
pub const PHONE_BOOST: f64 = 0.05;
/// Review scores stay below 1.0, which only automatic links carry.
pub const MAX_REVIEW_SCORE: f64 = 0.99;
/// Below this name similarity a candidate is only kept with other evidence (e-mail, phone).
pub const MIN_NAME_SIMILARITY: f64 = 0.82;

/// Name similarity in `[0, 1]`: the better of Jaro-Winkler on the whole core and a token-set
/// score (each word paired with its most similar word on the other side, order ignored).
pub fn name_similarity(a: &NormalizedName, b: &NormalizedName) -> f64 {
    if a.core == b.core {
        return 1.0;
    }
    let whole = jaro_winkler(&a.core, &b.core);
    whole.max(token_set_similarity(&a.core, &b.core))
}

fn content_words(core: &str) -> Vec<&str> {
    let words: Vec<&str> = core
        .split(' ')
        .filter(|w| !STOP_WORDS.contains(w))
        .collect();
    if words.is_empty() {
        core.split(' ').collect()
    } else {
        words
    }
}

/// Mean best-match Jaro-Winkler over the words of the longer side; a word missing on one side
/// scores 0, so `acme corp west` vs `acme corp` stays well below an exact match.
fn token_set_similarity(a: &str, b: &str) -> f64 {
    let (wa, wb) = (content_words(a), content_words(b));
    let (long, short) = if wa.len() >= wb.len() {
        (wa, wb)
    } else {
        (wb, wa)
    };
    let mut used = vec![false; short.len()];
    let mut total = 0.0;
    for w in &long {
        let best = short
            .iter()
            .enumerate()
            .filter(|(i, _)| !used[*i])
            .map(|(i, s)| (i, jaro_winkler(w, s)))
            .max_by(|x, y| x.1.total_cmp(&y.1));
        if let Some((i, sim)) = best {
            used[i] = true;
            total += sim;
        }
    }
    total / long.len() as f64
}

/// True when the names could be the same entity once e-mail agrees: the same words in any
/// order, legal form aside, and no two different qualifiers (`Store 12` / `Store 13`). Typos are
/// not forgiven here: spouses share addresses, and `Mark Smith` / `Mary Smith` are two people.
pub fn names_compatible(a: &NormalizedName, b: &NormalizedName) -> bool {
    // A father and son may share an address: `Jr` must agree even with a bare name.
    let qualifiers_agree = if is_generation(a) || is_generation(b) {
        a.qualifier == b.qualifier
    } else {
        a.qualifier.is_none() || b.qualifier.is_none() || a.qualifier == b.qualifier
    };
    qualifiers_agree && a.sorted_core() == b.sorted_core()
}

/// True when the name's qualifier starts with a generational suffix (`jr`, `sr`, `iii`).
pub(crate) fn is_generation(n: &NormalizedName) -> bool {
    n.qualifier
        .as_deref()
        .and_then(|q| q.split(' ').next())
        .is_some_and(|w| generation(w).is_some())
}

/// Review score: name similarity plus contact boosts, capped below 1.0.
pub fn review_score(name_sim: f64, email_agrees: bool, phone_agrees: bool) -> f64 {
    let mut score = name_sim;
    if email_agrees {
        score += EMAIL_BOOST;
    }
    if phone_agrees {
        score += PHONE_BOOST;
    }
    (score.min(MAX_REVIEW_SCORE) * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::normalize::normalize_name;

    fn sim(a: &str, b: &str) -> f64 {
        name_similarity(&normalize_name(a), &normalize_name(b))
    }

    #[test]
    fn typos_score_high_and_siblings_lower() {
        let cases = [
            ("Jonh Smith", "John Smith", 0.9, 1.0),
            ("Acme Plumbng", "Acme Plumbing", 0.9, 1.0),
            ("Smith John", "John Smith", 0.99, 1.0),
            ("Acme Corp West", "Acme Corp", 0.0, 0.9),
            ("Zebra Logistics", "Acme Plumbing", 0.0, 0.7),
        ];
        for (a, b, lo, hi) in cases {
            let s = sim(a, b);
            assert!((lo..=hi).contains(&s), "{a} ~ {b}: {s}");
        }
    }

    #[test]
    fn compatibility_for_the_email_tier() {
        let ok = |a: &str, b: &str| names_compatible(&normalize_name(a), &normalize_name(b));
        assert!(ok("Smith John", "John Smith"));
        assert!(!ok("Mary Smith", "Mark Smith"));
        assert!(!ok("Daniela Smith", "Daniel Smith"));
        assert!(ok("John Smith", "John Smith (Dallas)"));
        assert!(!ok("Store 12", "Store 13"));
        assert!(ok("Acme", "Acme LLC"));
        assert!(!ok("Acme West", "Acme"));
        assert!(!ok("Bob's Garage", "Acme Plumbing"));
        assert!(!ok("Store 12 East", "Store 13 East"));
        assert!(!ok("John Smith Jr", "John Smith"));
        assert!(!ok("John Smith Jr", "John Smith Sr"));
        assert!(ok("John Smith Jr.", "John Smith Junior"));
    }

    #[test]
    fn boosts_are_capped() {
        assert_eq!(review_score(0.95, true, true), MAX_REVIEW_SCORE);
        assert_eq!(review_score(0.8, false, false), 0.8);
        assert_eq!(review_score(0.8, true, false), 0.9);
    }
}
