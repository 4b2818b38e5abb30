//! Figures per category of the issue: version 2's categories by name, the rest together.

use std::collections::{BTreeMap, HashMap};

use super::generator::Label;
use super::{Figures, Outcome, ratio, score};

/// The issue category of a case: version 2's categories by name, everything else "version 1".
fn category(case: &str) -> &'static str {
    match case {
        "punctuation_between_words" | "punctuation_and_number" | "comma_two_companies" => {
            "punctuation"
        }
        "abbreviation"
        | "ambiguous_abbreviation"
        | "abbreviation_and_typo"
        | "abbreviation_sibling"
        | "ambiguous_abbreviation_both_meanings"
        | "only_ambiguous_abbreviations" => "abbreviations",
        "honorific"
        | "generational_suffix"
        | "generation_differs"
        | "bare_name_with_jr"
        | "title_before_company"
        | "titles_differ"
        | "suffix_before_comma"
        | "title_after_comma"
        | "suffix_before_comma_differs"
        | "titles_differ_shared_email" => "person names",
        "transliteration"
        | "transliteration_plain"
        | "transliteration_plain_spelled"
        | "transliteration_and_typo"
        | "transliteration_other_name" => "transliteration",
        "parent_name_with_dash" => "parent name with ' - '",
        _ => "version 1 cases",
    }
}

/// Figures per category, for one matcher.
pub fn per_category(
    labels: &[Label],
    outcomes: &HashMap<String, Outcome>,
) -> BTreeMap<&'static str, Figures> {
    let mut groups: BTreeMap<&'static str, Vec<Label>> = BTreeMap::new();
    for label in labels {
        groups
            .entry(category(&label.case))
            .or_default()
            .push(label.clone());
    }
    groups
        .into_iter()
        .map(|(c, ls)| (c, score(&ls, outcomes)))
        .collect()
}

/// One markdown row per category and matcher: what the README and docs/matching.md show.
pub fn print_categories(matchers: &[(&str, &HashMap<String, Outcome>)], labels: &[Label]) {
    println!(
        "| category | matcher | precision | false links | safe recall | risky: right candidate proposed |"
    );
    println!("|---|---|---|---|---|---|");
    let per: Vec<_> = matchers
        .iter()
        .map(|(name, out)| (*name, per_category(labels, out)))
        .collect();
    for cat in per[0].1.keys() {
        for (name, figures) in &per {
            let f = &figures[cat];
            let frac = |(hit, n): (usize, usize)| {
                if n == 0 {
                    "–".to_string()
                } else {
                    format!("{:.3} ({hit} of {n})", ratio((hit, n)))
                }
            };
            let precision = if f.auto_links == 0 {
                "–".to_string()
            } else {
                format!("{:.3}", f.precision())
            };
            println!(
                "| {cat} | {name} | {precision} | {} of {} | {} | {} |",
                f.false_links,
                f.auto_links,
                frac(f.safe),
                frac(f.risky)
            );
        }
    }
}
