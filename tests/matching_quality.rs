//! Matching quality on the committed labelled data set (`tests/data/matching/`), against two
//! baselines: exact case-sensitive name match (today's behaviour) and case-insensitive match.
//!
//! Regenerate the data set with `cargo test --test matching_quality -- --ignored regenerate`.

#[path = "matching_quality/cases.rs"]
mod cases;
#[path = "matching_quality/categories.rs"]
mod categories;
#[path = "matching_quality/generator.rs"]
mod generator;
#[path = "matching_quality/snapshots.rs"]
mod snapshots;
#[path = "matching_quality/sub_customers.rs"]
mod sub_customers;
#[path = "matching_quality/variations.rs"]
mod variations;
#[path = "matching_quality/version3.rs"]
mod version3;
#[path = "matching_quality/vocab.rs"]
mod vocab;

use std::collections::HashMap;
use std::path::PathBuf;

use categories::{per_category, print_categories};
use generator::{Class, DataSet, Label, Labels, SEED, generate};
use qbo_sync::matching::cli::{read_digit_file, read_qbo_file};
use qbo_sync::matching::{
    Decision, DigitCustomerRecord, MatchContext, QboCustomerRecord, match_customers,
};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/matching")
}

fn compact<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("serializable")
}

/// A JSON array with one compact element per line: small and diff-friendly.
fn one_per_line<T: serde::Serialize>(items: &[T]) -> String {
    let lines: Vec<String> = items.iter().map(compact).collect();
    format!("[\n{}\n]", lines.join(",\n"))
}

fn files(set: &DataSet) -> [(&'static str, String); 3] {
    let l = &set.labels;
    let labels = format!(
        "{{\"seed\": {}, \"links\": {}, \"rejected\": {}, \"cases\": {}}}\n",
        l.seed,
        compact(&l.links),
        compact(&l.rejected),
        one_per_line(&l.cases)
    );
    [
        ("qbo.json", one_per_line(&set.qbo) + "\n"),
        ("digit.json", one_per_line(&set.digit) + "\n"),
        ("labels.json", labels),
    ]
}

#[test]
#[ignore = "writes tests/data/matching; run by hand after changing the generator"]
fn regenerate_data_set() {
    std::fs::create_dir_all(data_dir()).unwrap();
    for (name, body) in files(&generate(SEED)) {
        std::fs::write(data_dir().join(name), body).unwrap();
    }
}

#[test]
fn committed_data_set_is_the_generators_output() {
    for (name, body) in files(&generate(SEED)) {
        let committed = std::fs::read_to_string(data_dir().join(name)).unwrap();
        assert!(
            committed == body,
            "{name} differs from the generator's output: regenerate it"
        );
    }
}

/// What one matcher did with one Digit customer.
enum Outcome {
    Linked(String),
    Proposed(Vec<(String, bool)>),
    Existing(String),
    Nothing,
}

#[derive(Default, Debug)]
struct Figures {
    auto_links: usize,
    false_links: usize,
    safe: (usize, usize),
    strong: (usize, usize),
    risky: (usize, usize),
    ambiguous_related: (usize, usize),
    inactive_flagged: (usize, usize),
    rejected_reproposed: usize,
    linked_kept: (usize, usize),
}

fn ratio((hit, n): (usize, usize)) -> f64 {
    if n == 0 { 1.0 } else { hit as f64 / n as f64 }
}

impl Figures {
    fn precision(&self) -> f64 {
        ratio((self.auto_links - self.false_links, self.auto_links))
    }
}

fn score(labels: &[Label], outcomes: &HashMap<String, Outcome>) -> Figures {
    let mut f = Figures::default();
    for label in labels {
        let outcome = &outcomes[&label.digit_id];
        let truth = label.truth.as_deref();
        let allowed = matches!(
            label.class,
            Class::Safe | Class::Strong | Class::Risky | Class::Linked
        );
        if let Outcome::Linked(q) = outcome {
            f.auto_links += 1;
            f.false_links += usize::from(!allowed || truth != Some(q.as_str()));
        }
        let linked_to_truth = matches!(outcome, Outcome::Linked(q) if Some(q.as_str()) == truth);
        let proposes = |id: &str| match outcome {
            Outcome::Linked(q) => q == id,
            Outcome::Proposed(c) => c.iter().any(|(q, _)| q == id),
            _ => false,
        };
        let tally = |t: &mut (usize, usize), ok: bool| {
            t.0 += usize::from(ok);
            t.1 += 1;
        };
        match label.class {
            Class::Safe => tally(&mut f.safe, linked_to_truth),
            Class::Strong => tally(&mut f.strong, linked_to_truth),
            Class::Risky => tally(&mut f.risky, truth.is_some_and(proposes)),
            Class::Ambiguous => tally(
                &mut f.ambiguous_related,
                label.related.iter().all(|r| proposes(r)),
            ),
            Class::Inactive => {
                let flagged = matches!(outcome, Outcome::Proposed(c) if c.iter().any(|(q, active)| Some(q.as_str()) == truth && !active));
                tally(&mut f.inactive_flagged, flagged);
            }
            Class::Rejected => {
                f.rejected_reproposed += usize::from(label.forbidden.iter().any(|r| proposes(r)))
            }
            Class::Linked => tally(
                &mut f.linked_kept,
                matches!(outcome, Outcome::Existing(q) if Some(q.as_str()) == truth),
            ),
            Class::Negative => {}
        }
    }
    f
}

fn engine_outcomes(
    qbo: &[QboCustomerRecord],
    digit: &[DigitCustomerRecord],
    labels: &Labels,
) -> HashMap<String, Outcome> {
    let ctx = MatchContext {
        links: labels.links.clone(),
        rejected: labels.rejected.clone(),
        ..MatchContext::default()
    };
    match_customers(qbo, digit, &ctx)
        .into_iter()
        .map(|o| {
            let outcome = match o.decision {
                Decision::AlreadyLinked { qbo_id } => Outcome::Existing(qbo_id),
                Decision::AutoLink {
                    qbo_id, reasons, ..
                } => {
                    assert!(!reasons.is_empty(), "every decision carries reasons");
                    Outcome::Linked(qbo_id)
                }
                Decision::Review { candidates, reason } => {
                    assert!(!reason.is_empty() && candidates.iter().all(|c| !c.reasons.is_empty()));
                    Outcome::Proposed(
                        candidates
                            .into_iter()
                            .map(|c| (c.qbo_id, c.active))
                            .collect(),
                    )
                }
                Decision::Unmatched => Outcome::Nothing,
            };
            (o.digit_id, outcome)
        })
        .collect()
}

/// Today's behaviour: link when an active QBO customer has the same display name.
fn baseline_outcomes(
    qbo: &[QboCustomerRecord],
    digit: &[DigitCustomerRecord],
    fold: fn(&str) -> String,
) -> HashMap<String, Outcome> {
    let mut by_name: HashMap<String, &str> = HashMap::new();
    for q in qbo.iter().filter(|q| q.active) {
        by_name.entry(fold(&q.display_name)).or_insert(&q.id);
    }
    digit
        .iter()
        .map(|d| {
            let outcome = by_name
                .get(&fold(&d.display_name))
                .map_or(Outcome::Nothing, |q| Outcome::Linked((*q).to_string()));
            (d.id.clone(), outcome)
        })
        .collect()
}

/// Per case: how many Digit customers were linked, proposed for review, or left unmatched.
fn print_breakdown(labels: &[Label], outcomes: &HashMap<String, Outcome>) {
    let mut rows: std::collections::BTreeMap<&str, [usize; 4]> = std::collections::BTreeMap::new();
    for label in labels {
        let slot = match &outcomes[&label.digit_id] {
            Outcome::Linked(_) => 0,
            Outcome::Proposed(_) => 1,
            Outcome::Nothing => 2,
            Outcome::Existing(_) => 3,
        };
        rows.entry(label.case.as_str()).or_default()[slot] += 1;
    }
    println!(
        "{:<28} {:>6} {:>6} {:>9} {:>8}",
        "case", "linked", "review", "unmatched", "existing"
    );
    for (case, [l, r, u, e]) in rows {
        println!("{case:<28} {l:>6} {r:>6} {u:>9} {e:>8}");
    }
}

/// False links of a baseline, per case, so the figures can be read honestly.
fn print_false_links(name: &str, labels: &[Label], outcomes: &HashMap<String, Outcome>) {
    let mut rows: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for label in labels {
        let allowed = matches!(
            label.class,
            Class::Safe | Class::Strong | Class::Risky | Class::Linked
        );
        if let Outcome::Linked(q) = &outcomes[&label.digit_id]
            && (label.truth.as_deref() != Some(q.as_str()) || !allowed)
        {
            *rows.entry(label.case.as_str()).or_default() += 1;
        }
    }
    println!("{name} false links by case: {rows:?}");
}

fn print_row(name: &str, f: &Figures) {
    println!(
        "{name:<28} precision {:.4} ({} false of {} links) | safe recall {:.4} | strong recall {:.4} | risky proposed {:.4}",
        f.precision(),
        f.false_links,
        f.auto_links,
        ratio(f.safe),
        ratio(f.strong),
        ratio(f.risky)
    );
}

#[test]
fn matching_quality_beats_the_baselines() {
    let dir = data_dir();
    let qbo = read_qbo_file(&dir.join("qbo.json")).expect("qbo.json");
    let digit = read_digit_file(&dir.join("digit.json")).expect("digit.json");
    let labels: Labels =
        serde_json::from_str(&std::fs::read_to_string(dir.join("labels.json")).unwrap()).unwrap();
    assert!(
        digit.len() >= 2_000 && qbo.len() >= 2_500,
        "{} Digit, {} QBO",
        digit.len(),
        qbo.len()
    );
    assert_eq!(
        labels.cases.len(),
        digit.len(),
        "one label per Digit customer"
    );

    let engine_out = engine_outcomes(&qbo, &digit, &labels);
    let exact_out = baseline_outcomes(&qbo, &digit, |s| s.to_string());
    let folded_out = baseline_outcomes(&qbo, &digit, |s| s.to_lowercase());
    let engine = score(&labels.cases, &engine_out);
    let exact = score(&labels.cases, &exact_out);
    let folded = score(&labels.cases, &folded_out);
    println!(
        "data set: {} Digit x {} QBO customers, {} labelled cases",
        digit.len(),
        qbo.len(),
        labels.cases.len()
    );
    print_row("baseline exact (case)", &exact);
    print_row("baseline case-insensitive", &folded);
    print_row("matcher", &engine);
    println!("matcher details: {engine:?}");
    print_false_links("baseline exact", &labels.cases, &exact_out);
    print_false_links("baseline case-insensitive", &labels.cases, &folded_out);
    print_breakdown(&labels.cases, &engine_out);
    let matchers = [
        ("exact name", &exact_out),
        ("case-insensitive name", &folded_out),
        ("matcher", &engine_out),
    ];
    print_categories(&matchers, &labels.cases);
    for (cat, f) in per_category(&labels.cases, &engine_out) {
        assert_eq!(f.false_links, 0, "{cat}: no false link");
        assert!(ratio(f.safe) >= 0.995, "{cat}: safe recall {:?}", f.safe);
        assert!(
            ratio(f.risky) >= 0.98,
            "{cat}: risky proposed {:?}",
            f.risky
        );
    }

    assert_eq!(engine.false_links, 0, "auto-link precision must be 1.0");
    assert!(ratio(engine.safe) >= 0.995, "safe recall {:?}", engine.safe);
    assert!(
        ratio(engine.risky) >= 0.98,
        "risky proposed {:?}",
        engine.risky
    );
    assert!(
        ratio(engine.strong) >= 0.95,
        "strong recall {:?}",
        engine.strong
    );
    assert!(
        ratio(engine.ambiguous_related) >= 0.95,
        "ambiguous: all related proposed {:?}",
        engine.ambiguous_related
    );
    assert_eq!(
        engine.inactive_flagged.0, engine.inactive_flagged.1,
        "inactive proposed and flagged"
    );
    assert_eq!(
        engine.rejected_reproposed, 0,
        "rejected pairs are never proposed again"
    );
    assert_eq!(
        engine.linked_kept.0, engine.linked_kept.1,
        "existing links stand"
    );
    assert!(ratio(engine.safe) > ratio(folded.safe) && ratio(folded.safe) >= ratio(exact.safe));
}
