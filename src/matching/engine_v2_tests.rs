//! Normalizer version 2: the name variations of issue 10, each with its hard negative.

use super::*;

fn person(id: &str, name: &str, given: &str, family: &str) -> QboCustomerRecord {
    QboCustomerRecord {
        given_name: Some(given.into()),
        family_name: Some(family.into()),
        ..qbo(id, name)
    }
}

#[test]
fn issue_examples_link_or_propose() {
    use LinkMethod::AutoNormalized;
    let ctx = MatchContext::default();
    let cases: Vec<(&str, Vec<QboCustomerRecord>, &str, Want)> = vec![
        (
            "comma between words in order",
            vec![qbo("1", "Barnes Bakery LLC"), qbo("2", "Bakery Barnes")],
            "Barnes, Bakery LLC",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "comma is not a reordered person name",
            vec![qbo("1", "Shepherd Landscaping")],
            "Shepherd, Landscaping",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "comma with both readings in QBO",
            vec![qbo("1", "Smith John"), qbo("2", "John Smith")],
            "Smith, John",
            Want::Review(&["1", "2"]),
        ),
        (
            "comma does not turn two companies' words around",
            vec![qbo("1", "Harbor Barnes LLC")],
            "Barnes, Harbor LLC",
            Want::NotAuto,
        ),
        (
            "punctuation and another number",
            vec![qbo("1", "Barnes Bakery 12")],
            "Barnes, Bakery 13",
            Want::Unmatched,
        ),
        (
            "Intl and Co",
            vec![qbo("1", "International Trading Company")],
            "Intl Trading Co",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "Bros",
            vec![qbo("1", "Brown Brothers Roofing")],
            "Brown Bros Roofing",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "Grp",
            vec![qbo("1", "Golden Gate Dental Group")],
            "Golden Gate Dental Grp",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "abbreviation beside another word",
            vec![qbo("1", "Harbor International Shipping")],
            "Harbor Intl Trading",
            Want::NotAuto,
        ),
        (
            "ambiguous abbreviation only proposes",
            vec![qbo("1", "Acme Technology"), qbo("2", "Zed Roofing")],
            "Acme Tech",
            Want::Review(&["1"]),
        ),
        (
            "title confirmed by the person's name",
            vec![person("1", "Jane Doe", "Jane", "Doe")],
            "Dr. Jane Doe",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "title before a company's name",
            vec![qbo("1", "Pepper Bottling")],
            "Dr Pepper Bottling",
            Want::Review(&["1"]),
        ),
        (
            "two titles",
            vec![person("1", "Mr. Lee Smith", "Lee", "Smith")],
            "Mrs. Lee Smith",
            Want::Review(&["1"]),
        ),
        (
            "Jr spellings",
            vec![qbo("1", "John Smith Jr.")],
            "John Smith Junior",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "Jr is not Sr",
            vec![qbo("1", "John Smith Sr")],
            "John Smith Jr",
            Want::NotAuto,
        ),
        (
            "Jr is not a bare name",
            vec![qbo("1", "John Smith")],
            "John Smith Jr",
            Want::Review(&["1"]),
        ),
        (
            "bare name with father and son",
            vec![qbo("1", "John Smith"), qbo("2", "John Smith Jr")],
            "John Smith",
            Want::Review(&["1", "2"]),
        ),
        (
            "umlaut spelled out",
            vec![qbo("1", "Mueller GmbH")],
            "Müller GmbH",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "spelled out to umlaut",
            vec![qbo("1", "Sørensen Florist")],
            "Soerensen Florist",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "umlaut to plain",
            vec![qbo("1", "Muller GmbH")],
            "Müller GmbH",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "umlaut with both spellings in QBO",
            vec![qbo("1", "Muller GmbH"), qbo("2", "Mueller GmbH")],
            "Müller GmbH",
            Want::Review(&["1", "2"]),
        ),
        (
            "Tech with both meanings in QBO",
            vec![qbo("1", "Acme Technology"), qbo("2", "Acme Technical")],
            "Acme Tech",
            Want::Review(&["1", "2"]),
        ),
        (
            "a name made only of ambiguous abbreviations",
            vec![qbo("1", "Technical Distributors")],
            "Tech Dist",
            Want::Review(&["1"]),
        ),
        (
            "Jr before the comma (version 3)",
            vec![qbo("1", "John Smith Jr.")],
            "Smith Jr., John",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "Jr before the comma is not a bare name",
            vec![qbo("1", "John Smith")],
            "Smith Jr, John",
            Want::Review(&["1"]),
        ),
        (
            "Jr before the comma is not Sr",
            vec![qbo("1", "John Smith Sr")],
            "Smith, Jr., John",
            Want::NotAuto,
        ),
        (
            "a title after the comma (version 3)",
            vec![person("1", "Jane Doe", "Jane", "Doe")],
            "Doe, Dr. Jane",
            Want::Auto("1", AutoNormalized),
        ),
        (
            "plain and spelled out are two surnames",
            vec![qbo("1", "Muller GmbH")],
            "Mueller GmbH",
            Want::Review(&["1"]),
        ),
    ];
    for (case, qbos, name, want) in cases {
        check(case, &decide_one(&qbos, digit("d", name), &ctx), &want);
    }
}

#[test]
fn reasons_name_the_variation() {
    let ctx = MatchContext::default();
    let reasons =
        |qbos: &[QboCustomerRecord], name: &str| match decide_one(qbos, digit("d", name), &ctx) {
            Decision::AutoLink { reasons, .. } => reasons,
            Decision::Review { candidates, .. } => candidates[0].reasons.clone(),
            other => panic!("{other:?}"),
        };
    assert_eq!(
        reasons(&[qbo("1", "Brown Brothers Roofing")], "Brown Bros Roofing")[0],
        "same name ignoring case and business abbreviations: 'Brown Bros Roofing' ~ \
         'Brown Brothers Roofing'"
    );
    assert!(reasons(&[qbo("1", "Mueller GmbH")], "Müller GmbH")[0].contains("spelled out"));
    assert_eq!(
        reasons(&[qbo("1", "Acme Technology")], "Acme Tech")[0],
        "same name if 'tech' stands for 'technology' (an abbreviation with several meanings): \
         'Acme Tech' ~ 'Acme Technology'"
    );
    assert!(reasons(&[qbo("1", "John Smith")], "Smith, John")[0].contains("family name first"));
    assert_eq!(
        reasons(&[qbo("1", "John Smith Sr")], "John Smith Jr")[0],
        "same name but another generation ('jr' vs 'sr'): maybe two people"
    );
}

#[test]
fn a_shared_address_does_not_join_father_and_son() {
    let with_email = |r: QboCustomerRecord| QboCustomerRecord {
        email: Some("smiths@example.com".into()),
        ..r
    };
    let d = DigitCustomerRecord {
        email: Some("smiths@example.com".into()),
        ..digit("d", "John Smith Jr")
    };
    let got = decide_one(
        &[with_email(qbo("1", "John Smith"))],
        d,
        &MatchContext::default(),
    );
    check("Jr and a bare name", &got, &Want::Review(&["1"]));
}

#[test]
fn a_shared_address_does_not_join_two_titles() {
    let shared = |name: &str| DigitCustomerRecord {
        email: Some("smiths@example.com".into()),
        ..digit("d", name)
    };
    let qbo_shared = |r: QboCustomerRecord| QboCustomerRecord {
        email: Some("smiths@example.com".into()),
        ..r
    };
    let ctx = MatchContext::default();
    for (case, q, name, want) in [
        (
            "two titles, two people",
            qbo("1", "Mr. Lee Smith"),
            "Mrs. Lee Smith",
            Want::Review(&["1"]),
        ),
        (
            "a title before a company's name",
            qbo("1", "Harbor Plumbing"),
            "Dr Harbor Plumbing",
            Want::Review(&["1"]),
        ),
        (
            "a title confirmed by the person's name",
            person("1", "Jane Doe", "Jane", "Doe"),
            "Dr. Jane Doe",
            Want::Auto("1", LinkMethod::AutoEmail),
        ),
        (
            "the same title",
            qbo("1", "Mrs. Lee Smith"),
            "Mrs Lee Smith",
            Want::Auto("1", LinkMethod::AutoEmail),
        ),
    ] {
        let got = decide_one(&[qbo_shared(q)], shared(name), &ctx);
        check(case, &got, &want);
    }
}

#[test]
fn a_parent_whose_name_holds_a_dash() {
    let parent = qbo("1", "Smith - Jones Plumbing");
    let job = QboCustomerRecord {
        is_job: true,
        parent_id: Some("1".into()),
        fully_qualified_name: Some("Smith - Jones Plumbing:Kitchen".into()),
        ..qbo("2", "Kitchen")
    };
    let qbos = vec![parent, job];
    let ctx = MatchContext::default();
    for (name, method) in [
        (
            "Smith - Jones Plumbing - Kitchen",
            LinkMethod::AutoNormalized,
        ),
        ("Smith - Jones Plumbing:Kitchen", LinkMethod::AutoExact),
        (
            "SMITH - JONES PLUMBING / kitchen",
            LinkMethod::AutoNormalized,
        ),
    ] {
        let got = decide_one(&qbos, digit("d", name), &ctx);
        check(name, &got, &Want::Auto("2", method));
    }
    let got = decide_one(&qbos, digit("d", "Smith - Jones Plumbing"), &ctx);
    check(
        "the parent itself",
        &got,
        &Want::Auto("1", LinkMethod::AutoExact),
    );
}
