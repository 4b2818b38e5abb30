//! Legal forms of several countries, kept apart from the name as their own key.
//!
//! Word sequences are as [`super::normalize::tokenize`] leaves them: lower case, no dots, runs of
//! single letters merged (`L.L.C.` → `llc`, `S.A.` → `sa`).

/// (canonical form, spellings). Longer spellings come first so they win.
const LEGAL_FORMS: &[(&str, &[&[&str]])] = &[
    ("llc", &[&["limited", "liability", "company"], &["llc"]]),
    ("plc", &[&["public", "limited", "company"], &["plc"]]),
    ("lp", &[&["limited", "partnership"], &["lp"]]),
    ("llp", &[&["limited", "liability", "partnership"], &["llp"]]),
    ("sa de cv", &[&["sa", "de", "cv"]]),
    ("inc", &[&["inc"], &["incorporated"]]),
    ("ltd", &[&["ltd"], &["limited"]]),
    ("corp", &[&["corp"], &["corporation"]]),
    ("co", &[&["co"], &["company"]]),
    ("pllc", &[&["pllc"]]),
    ("pc", &[&["pc"]]),
    ("gmbh", &[&["gmbh"]]),
    ("ag", &[&["ag"]]),
    ("kg", &[&["kg"]]),
    ("ug", &[&["ug"]]),
    ("sa", &[&["sa"]]),
    ("sas", &[&["sas"]]),
    ("sarl", &[&["sarl"]]),
    ("srl", &[&["srl"]]),
    ("spa", &[&["spa"]]),
    ("sl", &[&["sl"]]),
    ("bv", &[&["bv"]]),
    ("nv", &[&["nv"]]),
    ("pty", &[&["pty"], &["proprietary"]]),
    ("ab", &[&["ab"]]),
    ("oy", &[&["oy"]]),
    ("aps", &[&["aps"]]),
    ("kk", &[&["kk"]]),
    ("ltda", &[&["ltda"]]),
];

/// The canonical form of the legal-form spelling that ends `words`, and its length in words.
fn trailing_legal_form(words: &[String]) -> Option<(&'static str, usize)> {
    LEGAL_FORMS.iter().find_map(|(canonical, spellings)| {
        spellings.iter().find_map(|spelling| {
            let n = spelling.len();
            let tail = words.len().checked_sub(n).map(|start| &words[start..])?;
            tail.iter()
                .zip(spelling.iter())
                .all(|(w, s)| w == s)
                .then_some((*canonical, n))
        })
    })
}

/// Removes trailing legal forms (and an `and` left between them, as in `Smith & Co`), keeping
/// at least one word. Returns the remaining words and the canonical forms in their order.
pub(crate) fn strip_legal_forms(mut words: Vec<String>) -> (Vec<String>, Option<String>) {
    let mut found: Vec<&'static str> = Vec::new();
    loop {
        match trailing_legal_form(&words) {
            Some((canonical, n)) if words.len() > n => {
                words.truncate(words.len() - n);
                found.push(canonical);
                while words.len() > 1 && words.last().is_some_and(|w| w == "and") {
                    words.pop();
                }
            }
            _ => break,
        }
    }
    found.reverse();
    let legal = (!found.is_empty()).then(|| found.join(" "));
    (words, legal)
}

/// True when every word is part of some legal form (`Inc`, `Co Ltd`): a comma before such a
/// tail is not a `Last, First` name.
pub(crate) fn is_all_legal(words: &[String]) -> bool {
    let mut rest = words.to_vec();
    rest.insert(0, String::from("x"));
    let (left, legal) = strip_legal_forms(rest);
    legal.is_some() && left.len() == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn strips_trailing_forms_only() {
        let cases = [
            ("acme corp", "acme", Some("corp")),
            ("acme corporation", "acme", Some("corp")),
            ("smith and co ltd", "smith", Some("co ltd")),
            ("acme limited liability company", "acme", Some("llc")),
            ("acme sa de cv", "acme", Some("sa de cv")),
            ("company", "company", None),
            ("inc acme", "inc acme", None),
            ("acme pty ltd", "acme", Some("pty ltd")),
        ];
        for (input, core, legal) in cases {
            let (left, found) = strip_legal_forms(words(input));
            assert_eq!(left.join(" "), core, "{input}");
            assert_eq!(found.as_deref(), legal, "{input}");
        }
    }

    #[test]
    fn recognises_legal_tails() {
        assert!(is_all_legal(&words("inc")));
        assert!(is_all_legal(&words("co ltd")));
        assert!(!is_all_legal(&words("john")));
    }
}
