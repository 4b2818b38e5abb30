//! Human-readable reasons: which differences between two names the normalizer ignored.

use super::abbrev::generation;
use super::legal::strip_legal_forms;
use super::normalize::{
    amp_to_and, collapse_spaces, compose_nfkc, drop_commas, drop_leading_the, expand_abbreviations,
    fold_accents, fold_case, split_paren_qualifier, split_title, strip_decorations, tokenize,
};

/// One normalization stage: its name in reasons, and the transformation of the text so far.
struct Stage {
    label: &'static str,
    apply: fn(&str) -> String,
}

fn words_to_text(words: Vec<String>) -> String {
    words.join(" ")
}

fn split_words(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// Replays the normalizer; stays in step with `normalize_name` (a test checks that).
const STAGES: &[Stage] = &[
    Stage {
        label: "Unicode forms",
        apply: |s| compose_nfkc(s),
    },
    Stage {
        label: "spacing",
        apply: |s| collapse_spaces(s),
    },
    Stage {
        label: "case",
        apply: |s| fold_case(s),
    },
    Stage {
        label: "accents",
        apply: |s| fold_accents(s),
    },
    Stage {
        label: "our (c)/(v)/(deleted) suffixes",
        apply: |s| strip_decorations(s),
    },
    Stage {
        label: "punctuation",
        apply: |s| {
            let (head, qualifier) = split_paren_qualifier(s);
            let mut text = drop_commas(tokenize(head)).join(" ");
            if let Some(q) = qualifier {
                text.push_str(&format!(" ({q})"));
            }
            text
        },
    },
    Stage {
        label: "'&' vs 'and'",
        apply: |s| words_to_text(amp_to_and(split_words(s))),
    },
    Stage {
        label: "business abbreviations",
        apply: |s| with_words(s, expand_abbreviations),
    },
    Stage {
        label: "the spelling of 'Jr'/'Sr'",
        apply: |s| with_words(s, canonical_generation),
    },
    Stage {
        label: "a leading 'The'",
        apply: |s| with_words(s, drop_leading_the),
    },
    Stage {
        label: "a title such as 'Dr.'",
        apply: |s| with_words(s, |words| split_title(words).0),
    },
    Stage {
        label: "legal form spelling",
        apply: canonical_legal,
    },
];

/// Applies a word-level stage to the text before a `(qualifier)`, keeping the qualifier.
fn with_words(s: &str, f: fn(Vec<String>) -> Vec<String>) -> String {
    let (head, tail) = match s.find(" (") {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    format!("{}{tail}", words_to_text(f(split_words(head))))
}

/// `Junior` → `jr`: the suffix stays where it is, in its canonical spelling.
fn canonical_generation(mut words: Vec<String>) -> Vec<String> {
    if words.len() >= 3
        && let Some(canonical) = words.last().and_then(|w| generation(w))
    {
        let last = words.len() - 1;
        words[last] = canonical.to_string();
    }
    words
}

fn canonical_legal(s: &str) -> String {
    with_words(s, |words| {
        let (mut core, legal) = strip_legal_forms(words);
        core.extend(legal.into_iter().flat_map(|l| split_words(&l)));
        core
    })
}

fn replay(raw: &str, skip: Option<usize>) -> String {
    STAGES
        .iter()
        .enumerate()
        .filter(|(k, _)| Some(*k) != skip)
        .fold(raw.to_string(), |text, (_, stage)| (stage.apply)(&text))
}

/// The text after each stage.
fn trace(raw: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(STAGES.len());
    for stage in STAGES {
        let next = (stage.apply)(out.last().map_or(raw, String::as_str));
        out.push(next);
    }
    out
}

/// The stages without which `a` and `b` would not become equal, in pipeline order.
pub fn ignored_differences(a: &str, b: &str) -> Vec<&'static str> {
    if a == b {
        return Vec::new();
    }
    let (ta, tb) = (trace(a), trace(b));
    let changed =
        |t: &[String], raw: &str, k: usize| t[k] != if k == 0 { raw } else { t[k - 1].as_str() };
    // A stage that changed neither side cannot matter, so only the others are replayed.
    let needed: Vec<&'static str> = (0..STAGES.len())
        .filter(|k| changed(&ta, a, *k) || changed(&tb, b, *k))
        .filter(|k| replay(a, Some(*k)) != replay(b, Some(*k)))
        .map(|k| STAGES[k].label)
        .collect();
    if needed.is_empty() {
        first_changes(a, b)
    } else {
        needed
    }
}

/// When several stages would each do (spacing is also fixed by word splitting), name the
/// first ones that changed either side.
fn first_changes(a: &str, b: &str) -> Vec<&'static str> {
    let (mut x, mut y) = (a.to_string(), b.to_string());
    let mut labels = Vec::new();
    for stage in STAGES {
        if x == y {
            break;
        }
        let (nx, ny) = ((stage.apply)(&x), (stage.apply)(&y));
        if nx != x || ny != y {
            labels.push(stage.label);
        }
        (x, y) = (nx, ny);
    }
    labels
}

/// "same name ignoring case and legal form spelling: 'ACME CORP.' ~ 'Acme Corporation'".
pub fn same_name_reason(digit_name: &str, qbo_name: &str) -> String {
    if digit_name == qbo_name {
        return format!("identical display name: '{qbo_name}'");
    }
    if replay(digit_name, None) != replay(qbo_name, None) {
        // Equal keys that the replay cannot show equal (`John Smith 2` / `John Smith (2)`).
        return format!("same name once normalized: '{digit_name}' ~ '{qbo_name}'");
    }
    let labels = ignored_differences(digit_name, qbo_name);
    let list = match labels.as_slice() {
        [] => String::from("normalization"),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    format!("same name ignoring {list}: '{digit_name}' ~ '{qbo_name}'")
}

/// True when the staged replay reaches the same key as the normalizer.
#[cfg(test)]
pub(crate) fn replays_normalizer(raw: &str) -> bool {
    use super::normalize::normalize_name;
    let replayed = replay(raw, None);
    let n = normalize_name(raw);
    let mut expected = n.core.clone();
    if let Some(l) = &n.legal {
        expected.push(' ');
        expected.push_str(l);
    }
    let replayed_core = replayed.split(" (").next().unwrap_or_default().to_string();
    replayed_core == expected
        || n.qualifier
            .is_some_and(|q| replayed_core == format!("{} {q}", n.core))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_ignored_differences() {
        assert_eq!(
            same_name_reason("ACME CORP.", "Acme Corporation"),
            "same name ignoring case, punctuation and legal form spelling: 'ACME CORP.' ~ 'Acme Corporation'"
        );
        assert_eq!(
            ignored_differences("Barnes, Bakery LLC", "Barnes Bakery LLC"),
            vec!["punctuation"]
        );
        assert_eq!(
            ignored_differences("Intl Trading Co", "International Trading Company"),
            vec!["case", "business abbreviations", "legal form spelling"]
        );
        assert_eq!(
            ignored_differences("John Smith Jr.", "John Smith Junior"),
            vec!["case", "punctuation", "the spelling of 'Jr'/'Sr'"]
        );
        assert_eq!(
            ignored_differences("Dr. Jane Doe", "Jane Doe"),
            vec!["case", "punctuation", "a title such as 'Dr.'"]
        );
        assert_eq!(
            ignored_differences("A&W", "A and W"),
            vec!["punctuation", "'&' vs 'and'"]
        );
        assert_eq!(ignored_differences("Café", "Cafe"), vec!["accents"]);
        assert_eq!(
            ignored_differences("Acme (c)", "Acme"),
            vec!["our (c)/(v)/(deleted) suffixes"]
        );
        assert_eq!(
            ignored_differences("The Gap", "Gap"),
            vec!["case", "a leading 'The'"]
        );
        assert_eq!(
            ignored_differences("Acme  Corp", "Acme Corp"),
            vec!["spacing"]
        );
        assert_eq!(
            same_name_reason("Acme", "Acme"),
            "identical display name: 'Acme'"
        );
        assert_eq!(
            ignored_differences("Ａｃｍｅ", "Acme"),
            vec!["Unicode forms"]
        );
        assert_eq!(
            same_name_reason("John Smith 2", "John Smith (2)"),
            "same name once normalized: 'John Smith 2' ~ 'John Smith (2)'"
        );
    }

    #[test]
    fn replay_agrees_with_the_normalizer() {
        for raw in [
            "ACME Corp.",
            "Smith, John",
            "The A&W Co., Ltd.",
            "John Smith (Dallas)",
            "Zoë  Café (c)",
            "Dr. Jane Doe Jr.",
            "Brown Bros Roofing Intl",
        ] {
            assert!(replays_normalizer(raw), "{raw}");
        }
    }
}
