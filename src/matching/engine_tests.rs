//! Table-driven tests of the tiers, one issue rule per case.

use super::*;
use crate::matching::types::{Candidate, LinkMethod};

fn qbo(id: &str, name: &str) -> QboCustomerRecord {
    QboCustomerRecord {
        id: id.into(),
        display_name: name.into(),
        active: true,
        ..Default::default()
    }
}

fn digit(id: &str, name: &str) -> DigitCustomerRecord {
    DigitCustomerRecord {
        id: id.into(),
        display_name: name.into(),
        ..Default::default()
    }
}

fn decide_one(qbos: &[QboCustomerRecord], d: DigitCustomerRecord, ctx: &MatchContext) -> Decision {
    match_customers(qbos, &[d], ctx).remove(0).decision
}

fn ids(candidates: &[Candidate]) -> Vec<&str> {
    let mut ids: Vec<&str> = candidates.iter().map(|c| c.qbo_id.as_str()).collect();
    ids.sort_unstable();
    ids
}

#[derive(Debug)]
enum Want {
    Auto(&'static str, LinkMethod),
    /// Review that proposes exactly these QBO ids (sorted).
    Review(&'static [&'static str]),
    /// Review that proposes at least this one.
    ReviewWith(&'static str),
    Unmatched,
    /// Review or unmatched, never an automatic link.
    NotAuto,
}

fn check(case: &str, got: &Decision, want: &Want) {
    match (got, want) {
        (
            Decision::AutoLink {
                qbo_id,
                method,
                reasons,
                ..
            },
            Want::Auto(id, m),
        ) => {
            assert_eq!((qbo_id.as_str(), method), (*id, m), "{case}");
            assert!(!reasons.is_empty(), "{case}: reasons");
        }
        (Decision::Review { candidates, reason }, Want::Review(want)) => {
            assert_eq!(ids(candidates), want.to_vec(), "{case}: {reason}");
            assert!(
                candidates.iter().all(|c| !c.reasons.is_empty()),
                "{case}: reasons"
            );
        }
        (Decision::Review { candidates, .. }, Want::ReviewWith(id)) => {
            assert!(ids(candidates).contains(id), "{case}: {candidates:?}");
        }
        (Decision::Unmatched, Want::Unmatched) => {}
        (Decision::Unmatched | Decision::Review { .. }, Want::NotAuto) => {}
        _ => panic!("{case}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn name_rules() {
    use LinkMethod::*;
    let with_job = |id: &str, name: &str, parent: &str| QboCustomerRecord {
        is_job: true,
        parent_id: Some(parent.into()),
        ..qbo(id, name)
    };
    let cases: Vec<(&str, Vec<QboCustomerRecord>, &str, Want)> = vec![
        (
            "identical",
            vec![qbo("1", "Acme Corp"), qbo("2", "Zed")],
            "Acme Corp",
            Want::Auto("1", AutoExact),
        ),
        (
            "normalized",
            vec![qbo("1", "Acme Corporation")],
            "ACME CORP.",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "comma order",
            vec![qbo("1", "John Smith")],
            "Smith, John",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "decorations",
            vec![qbo("1", "Acme Corp (deleted)"), qbo("2", "Bo")],
            "Acme Corp (c)",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "twin qualifier",
            vec![qbo("1", "John Smith"), qbo("2", "John Smith (Dallas)")],
            "John Smith",
            Want::Review(&["1", "2"]),
        ),
        (
            "twin number",
            vec![qbo("1", "John Smith"), qbo("2", "John Smith 2")],
            "John Smith 2",
            Want::Review(&["1", "2"]),
        ),
        (
            "twin only qualified",
            vec![qbo("2", "John Smith (Dallas)")],
            "John Smith",
            Want::Review(&["2"]),
        ),
        (
            "both qualified",
            vec![qbo("1", "Store 12"), qbo("2", "Store 13")],
            "Store 12",
            Want::Auto("1", AutoExact),
        ),
        (
            "numbers disagree",
            vec![qbo("1", "Store #1235")],
            "Store #1234",
            Want::Unmatched,
        ),
        (
            "sibling",
            vec![qbo("1", "Acme Corp")],
            "Acme Corp West",
            Want::NotAuto,
        ),
        (
            "sibling 2",
            vec![qbo("1", "Smith Plumbing")],
            "Smith Plumbing Supply",
            Want::ReviewWith("1"),
        ),
        (
            "dropped legal form",
            vec![qbo("1", "Acme Plumbing LLC")],
            "Acme Plumbing",
            Want::Review(&["1"]),
        ),
        (
            "two equal QBO",
            vec![qbo("1", "Acme Inc"), qbo("2", "ACME, Inc.")],
            "Acme Inc",
            Want::Review(&["1", "2"]),
        ),
        (
            "typo",
            vec![qbo("1", "John Smith"), qbo("2", "Mary Jones")],
            "Jonh Smith",
            Want::Review(&["1"]),
        ),
        (
            "nothing alike",
            vec![qbo("1", "Acme Corp")],
            "Zebra Logistics",
            Want::Unmatched,
        ),
        (
            "parent over jobs",
            vec![
                qbo("1", "Acme Corp"),
                with_job("2", "Acme Corp (Kitchen)", "1"),
                with_job("3", "Acme Corp", "1"),
            ],
            "Acme Corp",
            Want::Auto("1", AutoExact),
        ),
        (
            "inactive",
            vec![QboCustomerRecord {
                active: false,
                ..qbo("1", "Old Co")
            }],
            "Old Co",
            Want::Review(&["1"]),
        ),
    ];
    for (case, qbos, name, want) in cases {
        check(
            case,
            &decide_one(&qbos, digit("d", name), &MatchContext::default()),
            &want,
        );
    }
}

#[test]
fn review_reasons_name_the_blocker() {
    let reason = |qbos: &[QboCustomerRecord], name: &str| match decide_one(
        qbos,
        digit("d", name),
        &MatchContext::default(),
    ) {
        Decision::Review { reason, .. } => reason,
        other => panic!("{other:?}"),
    };
    assert!(reason(&[qbo("2", "John Smith (Dallas)")], "John Smith").contains("qualifier"));
    assert!(reason(&[qbo("1", "Acme LLC")], "Acme").contains("legal form"));
    assert!(reason(&[qbo("1", "Acme"), qbo("2", "ACME")], "Acme").starts_with("2 QBO customers"));
    assert!(reason(&[qbo("1", "John Smith")], "Jonh Smith").contains("similar"));
}

#[test]
fn inactive_candidates_are_flagged() {
    let qbos = [QboCustomerRecord {
        active: false,
        ..qbo("1", "Old Co")
    }];
    let Decision::Review { candidates, reason } =
        decide_one(&qbos, digit("d", "Old Co"), &MatchContext::default())
    else {
        panic!("expected review")
    };
    assert!(reason.contains("inactive"), "{reason}");
    assert!(!candidates[0].active);
}

#[test]
fn uniqueness_on_the_digit_side() {
    let out = match_customers(
        &[qbo("1", "Acme")],
        &[digit("a", "Acme"), digit("b", "ACME")],
        &MatchContext::default(),
    );
    for o in &out {
        assert!(
            matches!(&o.decision, Decision::Review { reason, .. } if reason.contains("2 Digit customers")),
            "{o:?}"
        );
    }
    let out = match_customers(
        &[qbo("1", "John Smith")],
        &[digit("a", "John Smith"), digit("b", "John Smith (Dallas)")],
        &MatchContext::default(),
    );
    assert!(
        matches!(&out[0].decision, Decision::Review { .. }),
        "{:?}",
        out[0]
    );
}

#[test]
fn links_and_rejections_from_the_context() {
    let qbos = [
        qbo("1", "Acme Corp"),
        qbo("2", "Acme Corporation (v)"),
        qbo("3", "Beta"),
    ];
    let ctx = MatchContext {
        links: vec![("x".into(), "3".into())],
        rejected: vec![("d".into(), "1".into())],
        ..MatchContext::default()
    };
    let Decision::Review { candidates, .. } = decide_one(&qbos, digit("d", "Acme Corp"), &ctx)
    else {
        panic!("expected review")
    };
    assert_eq!(
        ids(&candidates),
        vec!["2"],
        "the rejected pair is never proposed"
    );
    let out = match_customers(&qbos, &[digit("x", "Beta"), digit("y", "Beta")], &ctx);
    assert_eq!(
        out[0].decision,
        Decision::AlreadyLinked { qbo_id: "3".into() }
    );
    let Decision::Review { candidates, reason } = &out[1].decision else {
        panic!("expected review")
    };
    assert!(
        reason.contains("already linked to Digit customer x"),
        "{reason}"
    );
    assert_eq!(candidates[0].linked_to.as_deref(), Some("x"));
}

#[test]
fn email_and_marker_tiers() {
    let email = |r: QboCustomerRecord, e: &str| QboCustomerRecord {
        email: Some(e.into()),
        ..r
    };
    let demail = |r: DigitCustomerRecord, e: &str| DigitCustomerRecord {
        email: Some(e.into()),
        ..r
    };
    let qbos = [
        email(qbo("1", "Bobs Garage LLC"), "bob@garage.com"),
        email(qbo("2", "Acme"), "ap@acme.com"),
    ];
    let ctx = MatchContext::default();
    let got = decide_one(
        &qbos,
        demail(digit("d", "Bob's Garage"), "BOB@garage.com"),
        &ctx,
    );
    check(
        "email compatible",
        &got,
        &Want::Auto("1", LinkMethod::AutoEmail),
    );
    let got = decide_one(
        &qbos,
        demail(digit("d", "Zed Holdings"), "ap@acme.com"),
        &ctx,
    );
    let Decision::Review { candidates, .. } = &got else {
        panic!("{got:?}")
    };
    assert_eq!(ids(candidates), vec!["2"]);
    assert!(
        candidates[0]
            .reasons
            .iter()
            .any(|r| r == "same e-mail address")
    );
    // An address held by two customers links nothing by itself, and says so.
    let shared = [
        email(qbo("7", "Gamma Ltd"), "books@firm.com"),
        email(qbo("8", "Delta Ltd"), "books@firm.com"),
    ];
    let got = decide_one(
        &shared,
        demail(digit("d", "Epsilon"), "books@firm.com"),
        &ctx,
    );
    let Decision::Review { reason, candidates } = &got else {
        panic!("{got:?}")
    };
    assert_eq!(reason, "2 QBO customers share the e-mail address");
    assert_eq!(ids(candidates), vec!["7", "8"]);
    // ... but a unique name among them still links.
    let got = decide_one(
        &shared,
        demail(digit("d", "GAMMA LTD"), "books@firm.com"),
        &ctx,
    );
    check(
        "shared email, unique name",
        &got,
        &Want::Auto("7", LinkMethod::AutoNormalized),
    );
    // Jobs that copy their parent's address do not make it ambiguous.
    let job = QboCustomerRecord {
        is_job: true,
        parent_id: Some("5".into()),
        ..email(qbo("6", "Site Works"), "ops@beta.com")
    };
    let family = [email(qbo("5", "Beta Builders Inc"), "ops@beta.com"), job];
    let got = decide_one(
        &family,
        demail(digit("d", "Beta Builders"), "ops@beta.com"),
        &ctx,
    );
    check(
        "email parent over job",
        &got,
        &Want::Auto("5", LinkMethod::AutoEmail),
    );
    // The marker outranks names and numbers.
    let marked = [
        QboCustomerRecord {
            digit_marker: Some("d".into()),
            ..qbo("9", "Store 7")
        },
        qbo("1", "Store 8"),
    ];
    let got = decide_one(&marked, digit("d", "Store 8"), &ctx);
    check("marker", &got, &Want::Auto("9", LinkMethod::AutoExact));
}

#[test]
fn reordered_person_names_need_both_sides_to_agree() {
    let named = |given: &str, family: &str| (Some(given.to_string()), Some(family.to_string()));
    let person = |id: &str, name: &str, (given, family): (Option<String>, Option<String>)| {
        DigitCustomerRecord {
            given_name: given,
            family_name: family,
            ..digit(id, name)
        }
    };
    let qperson = |id: &str, name: &str, (given, family): (Option<String>, Option<String>)| {
        QboCustomerRecord {
            given_name: given,
            family_name: family,
            ..qbo(id, name)
        }
    };
    let ctx = MatchContext::default();
    let qbos = [qperson("1", "John Smith", named("John", "Smith"))];
    let got = decide_one(
        &qbos,
        person("d", "Smith John", named("John", "Smith")),
        &ctx,
    );
    check(
        "same person",
        &got,
        &Want::Auto("1", LinkMethod::AutoNormalized),
    );
    let got = decide_one(&qbos, digit("d", "Smith John"), &ctx);
    check("unknown person", &got, &Want::Review(&["1"]));
    let Decision::Review { candidates, .. } = got else {
        unreachable!()
    };
    assert_eq!(
        candidates[0].reasons[0],
        "same words in another order: 'Smith John' ~ 'John Smith'"
    );
    let swapped = [qperson("1", "Lee Kim", named("Lee", "Kim"))];
    let got = decide_one(&swapped, person("d", "Kim Lee", named("Kim", "Lee")), &ctx);
    check("two people", &got, &Want::Review(&["1"]));
}

#[test]
fn one_qbo_customer_never_gets_two_automatic_links() {
    let qbos = [QboCustomerRecord {
        email: Some("a@acme.com".into()),
        ..qbo("1", "Acme")
    }];
    let by_email = DigitCustomerRecord {
        email: Some("a@acme.com".into()),
        ..digit("a", "Acme LLC")
    };
    let out = match_customers(
        &qbos,
        &[by_email, digit("b", "Acme")],
        &MatchContext::default(),
    );
    for o in &out {
        assert!(
            matches!(&o.decision, Decision::Review { reason, .. } if reason.contains("same QBO customer")),
            "{o:?}"
        );
    }
}

#[test]
fn thousands_of_identical_names_stay_bounded() {
    // e.g. point-of-sale "Cash Sale" customers: every one goes to review, and reading the name
    // groups stops at the cap instead of comparing every pair.
    let digits: Vec<DigitCustomerRecord> = (0..5_000)
        .map(|i| digit(&format!("d{i}"), "Cash Sale"))
        .collect();
    let out = match_customers(&[qbo("1", "Cash Sale")], &digits, &MatchContext::default());
    assert_eq!(out.len(), 5_000);
    for o in &out {
        let Decision::Review { reason, candidates } = &o.decision else {
            panic!("{o:?}")
        };
        assert_eq!(reason, "100 or more Digit customers have this name");
        assert_eq!(ids(candidates), vec!["1"]);
    }
}

#[path = "engine_full_name_tests.rs"]
mod full_names;

#[path = "engine_v2_tests.rs"]
mod version_2;
