//! Sub-customers matched by their full name (`FullyQualifiedName`), without weakening the
//! preference for a parent over its jobs.

use super::*;

fn job(id: &str, name: &str, parent: &QboCustomerRecord) -> QboCustomerRecord {
    let parent_full = parent
        .fully_qualified_name
        .clone()
        .unwrap_or_else(|| parent.display_name.clone());
    QboCustomerRecord {
        is_job: true,
        parent_id: Some(parent.id.clone()),
        fully_qualified_name: Some(format!("{parent_full}:{name}")),
        ..qbo(id, name)
    }
}

/// Acme Corp (1) with the job Kitchen Remodel (2); Beta LLC (3) with the job Deck (4).
fn acme_and_beta() -> Vec<QboCustomerRecord> {
    let (acme, beta) = (qbo("1", "Acme Corp"), qbo("3", "Beta LLC"));
    vec![
        job("2", "Kitchen Remodel", &acme),
        job("4", "Deck", &beta),
        acme,
        beta,
    ]
}

/// Two parents (1, 3), each with a job named Kitchen Remodel (2, 4).
fn shared_job_name() -> Vec<QboCustomerRecord> {
    let (acme, beta) = (qbo("1", "Acme Corp"), qbo("3", "Beta LLC"));
    vec![
        job("2", "Kitchen Remodel", &acme),
        job("4", "Kitchen Remodel", &beta),
        acme,
        beta,
    ]
}

fn with(mut qbos: Vec<QboCustomerRecord>, more: QboCustomerRecord) -> Vec<QboCustomerRecord> {
    qbos.push(more);
    qbos
}

#[test]
fn jobs_match_by_their_full_name() {
    use LinkMethod::*;
    let acme = qbo("1", "Acme Corp");
    let twin_parents = {
        let (a, b) = (qbo("1", "John Smith"), qbo("3", "John Smith 2"));
        vec![job("2", "Bathroom", &a), job("4", "Bathroom", &b), a, b]
    };
    let inactive_job = QboCustomerRecord {
        active: false,
        ..job("2", "Kitchen Remodel", &acme)
    };
    let cases: Vec<(&str, Vec<QboCustomerRecord>, &str, Want)> = vec![
        (
            "FQN identical",
            acme_and_beta(),
            "Acme Corp:Kitchen Remodel",
            Want::Auto("2", AutoExact),
        ),
        (
            "FQN case and punctuation",
            acme_and_beta(),
            "ACME CORP. : kitchen remodel",
            Want::Auto("2", AutoNormalized),
        ),
        (
            "FQN dash and legal form",
            acme_and_beta(),
            "Acme Corporation - Kitchen Remodel",
            Want::Auto("2", AutoNormalized),
        ),
        (
            "FQN slash and suffix",
            acme_and_beta(),
            "acme corp / Kitchen  Remodel (c)",
            Want::Auto("2", AutoNormalized),
        ),
        (
            "FQN of the other parent",
            acme_and_beta(),
            "Beta, LLC - Deck",
            Want::Auto("4", AutoNormalized),
        ),
        (
            "FQN under a shared job name",
            shared_job_name(),
            "Beta LLC:Kitchen Remodel",
            Want::Auto("4", AutoExact),
        ),
        (
            "job short name shared by two parents",
            shared_job_name(),
            "Kitchen Remodel",
            Want::Review(&["2", "4"]),
        ),
        (
            "parent name links to the parent",
            shared_job_name(),
            "Acme Corp",
            Want::Auto("1", AutoExact),
        ),
        (
            "parent name, job named like the parent",
            with(acme_and_beta(), job("5", "Acme Corp", &acme)),
            "ACME Corp.",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "job named like the parent, by full name",
            with(acme_and_beta(), job("5", "Acme Corp", &acme)),
            "Acme Corp:Acme Corp",
            Want::Auto("5", AutoExact),
        ),
        (
            "no separator is not a path",
            acme_and_beta(),
            "Acme Corp Kitchen Remodel",
            Want::NotAuto,
        ),
        (
            "hyphen without spaces is not a path",
            acme_and_beta(),
            "Acme Corp-Kitchen Remodel",
            Want::NotAuto,
        ),
        (
            "other job of the same parent",
            acme_and_beta(),
            "Acme Corp:Bathroom",
            Want::NotAuto,
        ),
        (
            "top-level customer with the same name",
            with(acme_and_beta(), qbo("5", "Acme Corp - Kitchen Remodel")),
            "Acme Corp - Kitchen Remodel",
            Want::Review(&["2", "5"]),
        ),
        (
            "parents are twins",
            twin_parents,
            "John Smith:Bathroom",
            Want::ReviewWith("4"),
        ),
        (
            "job twin by qualifier",
            with(
                acme_and_beta(),
                job("5", "Kitchen Remodel (2nd floor)", &acme),
            ),
            "Acme Corp:Kitchen Remodel",
            Want::ReviewWith("5"),
        ),
        (
            "inactive job",
            vec![acme.clone(), inactive_job],
            "Acme Corp:Kitchen Remodel",
            Want::Review(&["2"]),
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
fn full_name_links_explain_the_hierarchy() {
    let out = decide_one(
        &acme_and_beta(),
        digit("d", "ACME CORP. - kitchen remodel"),
        &MatchContext::default(),
    );
    let Decision::AutoLink { reasons, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        reasons[0],
        "matches sub-customer 'Kitchen Remodel' of 'Acme Corp' by its full name 'Acme Corp:Kitchen Remodel'"
    );
    assert!(
        reasons.iter().any(|r| r.contains("the only customer")),
        "{reasons:?}"
    );
}

#[test]
fn full_names_must_be_unique_among_digit_customers() {
    let out = match_customers(
        &acme_and_beta(),
        &[
            digit("a", "Acme Corp:Kitchen Remodel"),
            digit("b", "Acme Corp - Kitchen Remodel"),
            digit("c", "Beta LLC:Deck"),
            digit("e", "Beta LLC:Deck (2)"),
        ],
        &MatchContext::default(),
    );
    for o in &out {
        assert!(
            matches!(o.decision, Decision::Review { .. }),
            "{}: {:?}",
            o.digit_id,
            o.decision
        );
    }
}
