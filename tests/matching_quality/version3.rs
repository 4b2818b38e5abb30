//! Normalizer version 3's cases: a generational suffix before the comma and a title after it
//! (`Smith Jr., John`, `Doe, Dr. Jane`), titles that differ behind a shared e-mail address,
//! both meanings of an ambiguous abbreviation in QBO, and names made only of ambiguous
//! abbreviations.
//!
//! Appended after every version-2 case, so the version-2 records are unchanged.

use super::generator::{Class, Entity, Gen};
use super::vocab::{FIRST, INDUSTRY, LAST, WORDS};

fn person_entity(first: &str, last: &str, email: Option<String>) -> Entity {
    Entity {
        base: format!("{first} {last}"),
        legal: None,
        person: Some((first.to_string(), last.to_string())),
        email,
        phone: None,
    }
}

fn company(name: &str, email: Option<String>) -> Entity {
    Entity {
        base: name.to_string(),
        legal: None,
        person: None,
        email,
        phone: None,
    }
}

fn person_name(g: &mut Gen) -> (String, String) {
    loop {
        let (first, last) = (g.pick(FIRST), g.pick(LAST));
        if g.reserve(&format!("{first} {last}")) {
            return (first.to_string(), last.to_string());
        }
    }
}

pub fn version3(g: &mut Gen) {
    family_name_first(g);
    shared_address_titles(g);
    ambiguous_meanings(g);
}

/// `Smith Jr., John` = `John Smith Jr`; `Doe, Dr. Jane` = `Jane Doe`.
fn family_name_first(g: &mut Gen) {
    let suffixes = [
        ("Jr", "Jr."),
        ("Jr.", "Jr"),
        ("Sr", "Senior"),
        ("III", "III"),
    ];
    for k in 0..20 {
        let (first, last) = person_name(g);
        let (a, b) = suffixes[k % suffixes.len()];
        let digit = if k % 2 == 0 {
            format!("{last} {b}, {first}")
        } else {
            format!("{last}, {b}, {first}")
        };
        let e = person_entity(&first, &last, None);
        let id = g.add_qbo(&format!("{first} {last} {a}"), &e, true, &[]);
        g.add_digit(
            &digit,
            Some(&e),
            0,
            ("suffix_before_comma", Class::Safe, Some(id)),
        );
    }
    for k in 0..20 {
        let (first, last) = person_name(g);
        let title = ["Dr.", "Mrs.", "Prof.", "Mr"][k % 4];
        let e = person_entity(&first, &last, None);
        let id = g.add_qbo(&format!("{first} {last}"), &e, true, &[]);
        g.add_digit(
            &format!("{last}, {title} {first}"),
            None,
            0,
            ("title_after_comma", Class::Safe, Some(id)),
        );
    }
    // Hard negatives: the suffix before the comma against another generation or a bare name.
    for k in 0..20 {
        let (first, last) = person_name(g);
        let e = person_entity(&first, &last, None);
        let qbo = if k % 2 == 0 {
            format!("{first} {last} Sr")
        } else {
            format!("{first} {last}")
        };
        g.add_qbo(&qbo, &e, true, &[]);
        g.add_digit(
            &format!("{last} Jr., {first}"),
            None,
            0,
            ("suffix_before_comma_differs", Class::Negative, None),
        );
    }
}

/// Hard negatives: one address, two titles (`Mr. Lee Smith` / `Mrs. Lee Smith`), or a title
/// before a company's name (`Dr Harbor Plumbing` / `Harbor Plumbing`).
fn shared_address_titles(g: &mut Gen) {
    for k in 0..30 {
        let email = Some(format!("household{k}@shared-mail.test"));
        let (qbo, digit, e) = if k % 3 == 2 {
            let name = loop {
                let name = format!("{} {}", g.pick(WORDS), g.pick(INDUSTRY));
                if g.reserve(&name) {
                    break name;
                }
            };
            let digit = format!("Dr {name}");
            (name.clone(), digit, company(&name, email))
        } else {
            let (first, last) = person_name(g);
            let (a, b) = [("Mr.", "Mrs."), ("Ms", "Mr")][k % 3];
            let e = Entity {
                person: None,
                ..person_entity(&first, &last, email)
            };
            (
                format!("{a} {first} {last}"),
                format!("{b} {first} {last}"),
                e,
            )
        };
        g.add_qbo(&qbo, &e, true, &[]);
        g.add_digit(
            &digit,
            Some(&e),
            1,
            ("titles_differ_shared_email", Class::Negative, None),
        );
    }
}

/// `Tech` when QBO holds both `Acme Technology` and `Acme Technical`: only a person can tell.
/// And a name made only of ambiguous abbreviations (`Tech Dist` / `Technical Distributors`).
fn ambiguous_meanings(g: &mut Gen) {
    let both: [(&str, &str, &str); 3] = [
        ("Tech", "Technology", "Technical"),
        ("Assoc", "Associates", "Association"),
        ("Dist", "Distribution", "District"),
    ];
    for k in 0..21 {
        let (abbr, one, other) = both[k % both.len()];
        let word = loop {
            let w = g.pick(WORDS);
            if g.reserve(&format!("{w} {abbr}")) {
                break w;
            }
        };
        let a = g.add_qbo(&format!("{word} {one}"), &company(word, None), true, &[]);
        let b = g.add_qbo(&format!("{word} {other}"), &company(word, None), true, &[]);
        g.add_digit(
            &format!("{word} {abbr}"),
            None,
            0,
            (
                "ambiguous_abbreviation_both_meanings",
                Class::Ambiguous,
                None,
            ),
        );
        g.last_label().related = vec![a, b];
    }
    let pairs: [(&str, &str, &str, &str); 6] = [
        ("Tech", "Dist", "Technical", "Distributors"),
        ("Tech", "Assoc", "Technology", "Associates"),
        ("Assoc", "Dist", "Associates", "Distribution"),
        ("Assoc", "Tech", "Association", "Technologies"),
        ("Dist", "Tech", "District", "Technical"),
        ("Dist", "Assoc", "Distribution", "Associates"),
    ];
    for (a, b, full_a, full_b) in pairs {
        let qbo = format!("{full_a} {full_b}");
        if !g.reserve(&qbo) {
            continue;
        }
        let e = company(&qbo, None);
        let id = g.add_qbo(&qbo, &e, true, &[]);
        g.add_digit(
            &format!("{a} {b}"),
            None,
            0,
            ("only_ambiguous_abbreviations", Class::Risky, Some(id)),
        );
    }
}
