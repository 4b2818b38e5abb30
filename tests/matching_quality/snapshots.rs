//! Recorded decisions of earlier matchers, and the tests that nothing they linked correctly
//! regresses: each record holds one matcher's decisions on the data set of its own version,
//! written before the next version changed the matcher.

use std::collections::BTreeMap;

use qbo_sync::matching::NORMALIZER_VERSION;
use qbo_sync::matching::cli::read_qbo_file;

use super::generator::{DataSet, Labels, SEED, generate_v1, generate_v2};
use super::{Outcome, compact, data_dir, engine_outcomes};

/// One decision as a short line: `link 123`, `review 123 456`, `existing 123`, `unmatched`.
fn decision_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Linked(q) => format!("link {q}"),
        Outcome::Existing(q) => format!("existing {q}"),
        Outcome::Proposed(c) => {
            let ids: Vec<&str> = c.iter().map(|(q, _)| q.as_str()).collect();
            format!("review {}", ids.join(" ")).trim_end().to_string()
        }
        Outcome::Nothing => "unmatched".into(),
    }
}

/// The current matcher's decisions on `set`, by Digit id.
fn decisions(set: DataSet, tag: &str) -> (Labels, BTreeMap<String, String>) {
    // The generator holds QBO customers as the API's JSON; the CLI's reader turns them into
    // records exactly as the committed data set is read.
    let dir = std::env::temp_dir().join(format!("qbo-sync-{tag}-set-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("qbo.json");
    std::fs::write(&path, compact(&set.qbo)).unwrap();
    let qbo = read_qbo_file(&path).expect("qbo records");
    std::fs::remove_dir_all(&dir).ok();
    let out = engine_outcomes(&qbo, &set.digit, &set.labels);
    let decisions = out
        .iter()
        .map(|(d, o)| (d.clone(), decision_text(o)))
        .collect();
    (set.labels, decisions)
}

fn write_record(file: &str, recorded_version: u32, set: DataSet, tag: &str) {
    // A record is what its version decided; writing it again with a later matcher erases it.
    assert_eq!(
        NORMALIZER_VERSION, recorded_version,
        "{file} records the version-{recorded_version} matcher; keep it as it is"
    );
    let (_, decisions) = decisions(set, tag);
    let body = serde_json::to_string_pretty(&decisions).unwrap() + "\n";
    std::fs::write(data_dir().join(file), body).unwrap();
}

/// Every correct automatic link of the record is still made, to the same customer. Returns how
/// many were checked.
fn correct_links_still_link(file: &str, set: DataSet, tag: &str) -> usize {
    let recorded: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(data_dir().join(file)).unwrap()).unwrap();
    let (labels, now) = decisions(set, tag);
    assert_eq!(
        recorded.len(),
        labels.cases.len(),
        "{file}: one decision per Digit customer"
    );
    let mut checked = 0;
    let mut changed = Vec::new();
    for label in &labels.cases {
        let (before, after) = (&recorded[&label.digit_id], &now[&label.digit_id]);
        let correct = label
            .truth
            .as_ref()
            .is_some_and(|t| *before == format!("link {t}"));
        if correct {
            checked += 1;
            assert_eq!(
                after, before,
                "{} ({}) regressed",
                label.digit_id, label.case
            );
        } else if after != before {
            changed.push(format!(
                "{} ({}): {before} -> {after}",
                label.digit_id, label.case
            ));
        }
    }
    println!("{file}: {checked} correct links still made; other changes: {changed:#?}");
    checked
}

#[test]
#[ignore = "writes tests/data/matching/decisions_v1.json; only for the version-1 matcher"]
fn snapshot_v1_decisions() {
    write_record("decisions_v1.json", 1, generate_v1(SEED), "v1");
}

#[test]
#[ignore = "writes tests/data/matching/decisions_v2.json; only for the version-2 matcher"]
fn snapshot_v2_decisions() {
    write_record("decisions_v2.json", 2, generate_v2(SEED), "v2");
}

/// Nothing that linked correctly before normalizer version 2 regresses.
#[test]
fn correct_v1_links_still_link() {
    let checked = correct_links_still_link("decisions_v1.json", generate_v1(SEED), "v1");
    assert!(
        checked >= 1_298,
        "the record holds 1,298 correct links, checked {checked}"
    );
}

/// Nothing that linked correctly before normalizer version 3 regresses.
#[test]
fn correct_v2_links_still_link() {
    let checked = correct_links_still_link("decisions_v2.json", generate_v2(SEED), "v2");
    assert!(
        checked >= 1_634,
        "the record holds 1,634 correct links, checked {checked}"
    );
}
