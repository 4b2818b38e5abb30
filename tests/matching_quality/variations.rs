//! Normalizer version 2's categories: punctuation between words, business abbreviations,
//! titles and generational suffixes, transliteration, and parents whose name holds ` - `, each
//! with hard negatives.
//!
//! Generated after every version-1 case, so the version-1 records are unchanged.

use rand::Rng;

use qbo_sync::matching::normalize_name;

use super::generator::{Class, Entity, Gen};
use super::vocab::{CITIES, FIRST, INDUSTRY, LAST, WORDS};

/// Unambiguous abbreviations: (abbreviation as people type it, expansion).
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("Intl", "International"),
    ("Int'l", "International"),
    ("Bros", "Brothers"),
    ("Bros.", "Brothers"),
    ("Grp", "Group"),
    ("Mfg", "Manufacturing"),
    ("Mfg.", "Manufacturing"),
    ("Svc", "Service"),
    ("Svcs", "Services"),
    ("Natl", "National"),
    ("Mgmt", "Management"),
    ("Dept", "Department"),
    ("Ctr", "Center"),
    ("Assn", "Association"),
];

/// Ambiguous abbreviations: only a person can tell which word is meant.
const AMBIGUOUS: &[(&str, &str)] = &[
    ("Tech", "Technology"),
    ("Tech", "Technical"),
    ("Tech", "Technologies"),
    ("Assoc", "Associates"),
    ("Assoc", "Association"),
    ("Dist", "Distribution"),
    ("Dist", "District"),
];

const TITLES: &[&str] = &["Dr.", "Dr", "Mr.", "Mrs.", "Ms", "Prof.", "Mr", "Mrs"];

/// (letter, plain, spelled out) and surnames holding the letter.
const TRANSLIT: &[(&str, &[&str])] = &[
    ("ü", &["Müller", "Schüler", "Grün", "Füchs", "Küster"]),
    ("ö", &["Schröder", "Höfler", "Möller", "Köhler", "Jönsson"]),
    ("ä", &["Jäger", "Bäcker", "Mäder", "Gärtner", "Häusler"]),
    (
        "ø",
        &["Sørensen", "Bjørn", "Møller", "Løvland", "Dahlstrøm"],
    ),
    ("å", &["Åberg", "Ståhl", "Håkansson", "Dåvik", "Åsgård"]),
];

fn spell_out(s: &str) -> String {
    s.replace('ü', "ue")
        .replace('ö', "oe")
        .replace('ä', "ae")
        .replace('ø', "oe")
        .replace('å', "aa")
        .replace('Å', "Aa")
}

fn plain(s: &str) -> String {
    s.replace('ü', "u")
        .replace('ö', "o")
        .replace('ä', "a")
        .replace('ø', "o")
        .replace('å', "a")
        .replace('Å', "A")
}

fn entity(name: &str, person: Option<(&str, &str)>) -> Entity {
    Entity {
        base: name.to_string(),
        legal: None,
        person: person.map(|(f, l)| (f.to_string(), l.to_string())),
        email: None,
        phone: None,
    }
}

/// A company name no other entity has, built by `make`.
fn fresh(g: &mut Gen, mut make: impl FnMut(&mut Gen) -> String) -> String {
    loop {
        let name = make(g);
        if g.reserve(&name) {
            return name;
        }
    }
}

fn fresh_pair(g: &mut Gen, mut make: impl FnMut(&mut Gen) -> (String, String)) -> (String, String) {
    loop {
        let (a, b) = make(g);
        // Two spellings of one name hold one reservation.
        let key = |s: &str| {
            let n = normalize_name(s);
            (n.sorted_core(), n.qualifier)
        };
        if g.reserve(&a) && (key(&a) == key(&b) || g.reserve(&b)) {
            return (a, b);
        }
    }
}

/// One case: a QBO customer named `qbo`, a Digit customer named `digit`.
fn pair(g: &mut Gen, qbo: &str, digit: &str, e: &Entity, case: &str, class: Class) -> String {
    let id = g.add_qbo(qbo, e, true, &[]);
    let truth = matches!(class, Class::Safe | Class::Risky).then(|| id.clone());
    g.add_digit(digit, Some(e), 0, (case, class, truth));
    id
}

pub fn variations(g: &mut Gen) {
    punctuation(g);
    abbreviations(g);
    people(g);
    transliteration(g);
    dashed_parents(g);
}

fn punctuation(g: &mut Gen) {
    for k in 0..60 {
        let name = fresh(g, |g| format!("{} {}", g.pick(LAST), g.pick(INDUSTRY)));
        let (first, rest) = name.split_once(' ').expect("two words");
        let legal = ["", " LLC", " Inc"][k % 3];
        let digit = match k % 4 {
            0 => format!("{first}, {rest}{legal}"),
            1 => format!("{first}. {rest}{legal}"),
            2 => format!("{first}/{rest}{legal}"),
            _ if legal.is_empty() => format!("{first}; {rest}"),
            _ => format!("{first} ({rest}){legal}"),
        };
        let e = entity(&name, None);
        pair(
            g,
            &format!("{name}{legal}"),
            &digit,
            &e,
            "punctuation_between_words",
            Class::Safe,
        );
    }
    // Hard negatives: the same words, another number, written with other punctuation.
    for k in 0..30 {
        let n = g.rng.random_range(10..99);
        let (qbo, digit) = fresh_pair(g, |g| {
            let (last, industry) = (g.pick(LAST), g.pick(INDUSTRY));
            match k % 2 {
                0 => (
                    format!("{last} {industry} {n}"),
                    format!("{last}, {industry} {}", n + 1),
                ),
                _ => (
                    format!("{last} {industry} {}-{}", n / 10, n % 10),
                    format!("{last}. {industry} {n}"),
                ),
            }
        });
        pair(
            g,
            &qbo,
            &digit,
            &entity(&qbo, None),
            "punctuation_and_number",
            Class::Negative,
        );
    }
    // Hard negatives: a comma does not turn two companies' words around.
    for _ in 0..20 {
        let (a, b) = (g.pick(WORDS), g.pick(LAST));
        let Some(qbo) = Some(format!("{a} {b} LLC")).filter(|n| g.reserve(n)) else {
            continue;
        };
        let digit = format!("{b}, {a} LLC");
        pair(
            g,
            &qbo,
            &digit,
            &entity(&qbo, None),
            "comma_two_companies",
            Class::Negative,
        );
    }
}

fn abbreviations(g: &mut Gen) {
    for k in 0..84 {
        let (abbr, full) = ABBREVIATIONS[k % ABBREVIATIONS.len()];
        let (qbo, digit) = fresh_pair(g, |g| {
            let (a, b) = (g.pick(LAST), g.pick(INDUSTRY));
            let long = format!("{a} {full} {b}");
            let short = format!("{a} {abbr} {b}");
            // Both directions, with a legal form now and then (`Intl Trading Co`).
            match k % 3 {
                0 => (long, short),
                1 => (short, long),
                _ => (format!("{long} Company"), format!("{short} Co")),
            }
        });
        pair(
            g,
            &qbo,
            &digit,
            &entity(&qbo, None),
            "abbreviation",
            Class::Safe,
        );
    }
    for k in 0..42 {
        let (abbr, full) = AMBIGUOUS[k % AMBIGUOUS.len()];
        let (qbo, digit) = fresh_pair(g, |g| {
            let a = g.pick(WORDS);
            (format!("{a} {full}"), format!("{a} {abbr}"))
        });
        pair(
            g,
            &qbo,
            &digit,
            &entity(&qbo, None),
            "ambiguous_abbreviation",
            Class::Risky,
        );
    }
    // An abbreviation and a typo in another word: blocking must still find the pair.
    for k in 0..28 {
        let (abbr, full) = ABBREVIATIONS[k % ABBREVIATIONS.len()];
        let (qbo, digit) = fresh_pair(g, |g| {
            let (a, b) = (g.pick(LAST), g.pick(INDUSTRY));
            let typo: String = {
                let mut c: Vec<char> = a.chars().collect();
                let at = 1 + (k % (c.len() - 2));
                c.swap(at, at + 1);
                c.into_iter().collect()
            };
            (format!("{a} {full} {b}"), format!("{typo} {abbr} {b}"))
        });
        pair(
            g,
            &qbo,
            &digit,
            &entity(&qbo, None),
            "abbreviation_and_typo",
            Class::Risky,
        );
    }
    // Hard negatives: siblings that differ only by the abbreviation's neighbour word.
    for k in 0..40 {
        let (abbr, full) = ABBREVIATIONS[k % ABBREVIATIONS.len()];
        let (qbo, digit) = fresh_pair(g, |g| {
            let a = g.pick(LAST);
            let (b, c) = (g.pick(INDUSTRY), g.pick(INDUSTRY));
            (format!("{a} {full} {b}"), format!("{a} {abbr} {c}"))
        });
        if qbo.ends_with(digit.rsplit(' ').next().unwrap_or_default()) {
            continue;
        }
        pair(
            g,
            &qbo,
            &digit,
            &entity(&qbo, None),
            "abbreviation_sibling",
            Class::Negative,
        );
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

fn people(g: &mut Gen) {
    for k in 0..50 {
        let (first, last) = person_name(g);
        let title = TITLES[k % TITLES.len()];
        let bare = format!("{first} {last}");
        let titled = format!("{title} {first} {last}");
        let e = entity(&bare, Some((&first, &last)));
        let (qbo, digit) = if k % 2 == 0 {
            (&bare, &titled)
        } else {
            (&titled, &bare)
        };
        pair(g, qbo, digit, &e, "honorific", Class::Safe);
    }
    let suffixes = [
        ("Jr", "Jr."),
        ("Jr.", "Junior"),
        ("Sr", "Senior"),
        ("III", "iii"),
        ("II", "II"),
    ];
    for k in 0..40 {
        let (first, last) = person_name(g);
        let (a, b) = suffixes[k % suffixes.len()];
        let e = entity(&format!("{first} {last}"), Some((&first, &last)));
        let (qbo, digit) = (format!("{first} {last} {a}"), format!("{first} {last} {b}"));
        pair(g, &qbo, &digit, &e, "generational_suffix", Class::Safe);
    }
    // Hard negatives: Jr against Sr, and Jr against a bare name (father or son?).
    for k in 0..40 {
        let (first, last) = person_name(g);
        let e = entity(&format!("{first} {last}"), Some((&first, &last)));
        let qbo = if k % 2 == 0 {
            format!("{first} {last} Sr")
        } else {
            format!("{first} {last}")
        };
        pair(
            g,
            &qbo,
            &format!("{first} {last} Jr."),
            &e,
            "generation_differs",
            Class::Negative,
        );
    }
    // Both exist: a bare name is the father or the son.
    for _ in 0..20 {
        let (first, last) = person_name(g);
        let e = entity(&format!("{first} {last}"), Some((&first, &last)));
        let a = g.add_qbo(&format!("{first} {last}"), &e, true, &[]);
        let b = g.add_qbo(&format!("{first} {last} Jr"), &e, true, &[]);
        g.add_digit(
            &format!("{first} {last}"),
            None,
            0,
            ("bare_name_with_jr", Class::Ambiguous, None),
        );
        g.last_label().related = vec![a, b];
    }
    title_negatives(g);
}

fn title_negatives(g: &mut Gen) {
    // A title in front of a company's name makes another company (`Dr Pepper Bottling`).
    for k in 0..20 {
        let title = ["Dr", "Mr.", "Mrs", "Doctor"][k % 4];
        let name = fresh(g, |g| format!("{} {}", g.pick(WORDS), g.pick(INDUSTRY)));
        let e = entity(&name, None);
        pair(
            g,
            &name,
            &format!("{title} {name}"),
            &e,
            "title_before_company",
            Class::Negative,
        );
    }
    // Two titles, two people (`Mr. Lee Smith` / `Mrs. Lee Smith`).
    for _ in 0..20 {
        let (first, last) = person_name(g);
        let e = entity(&format!("{first} {last}"), None);
        let (qbo, digit) = (
            format!("Mr. {first} {last}"),
            format!("Mrs. {first} {last}"),
        );
        pair(g, &qbo, &digit, &e, "titles_differ", Class::Negative);
    }
}

fn translit_name(g: &mut Gen, k: usize) -> String {
    let (_, names) = TRANSLIT[k % TRANSLIT.len()];
    let surname = names[(k / TRANSLIT.len()) % names.len()];
    fresh(g, |g| format!("{surname} {}", g.pick(INDUSTRY)))
}

fn transliteration(g: &mut Gen) {
    // The letter against its spelled-out form, both ways, with a legal form now and then.
    for k in 0..60 {
        let name = translit_name(g, k);
        let legal = ["", " GmbH", " AB"][k % 3];
        let (qbo, digit) = (
            format!("{name}{legal}"),
            format!("{}{legal}", spell_out(&name)),
        );
        let (qbo, digit) = if k % 2 == 0 {
            (qbo, digit)
        } else {
            (digit, qbo)
        };
        pair(
            g,
            &qbo,
            &digit,
            &entity(&name, None),
            "transliteration",
            Class::Safe,
        );
    }
    // The letter against its plain form (links, as in version 1).
    for k in 0..20 {
        let name = translit_name(g, k + 3);
        pair(
            g,
            &name,
            &plain(&name),
            &entity(&name, None),
            "transliteration_plain",
            Class::Safe,
        );
    }
    // Plain against spelled out (`Muller` / `Mueller`): two real surnames, so only proposed.
    for k in 0..30 {
        let name = translit_name(g, k + 7);
        let (qbo, digit) = (plain(&name), spell_out(&name));
        pair(
            g,
            &qbo,
            &digit,
            &entity(&name, None),
            "transliteration_plain_spelled",
            Class::Risky,
        );
    }
    // A spelled-out letter and a typo in another word.
    for k in 0..20 {
        let name = translit_name(g, k + 11);
        let (surname, industry) = name.split_once(' ').expect("two words");
        let typo = format!("{} {}x", spell_out(surname), industry);
        pair(
            g,
            &name,
            &typo,
            &entity(&name, None),
            "transliteration_and_typo",
            Class::Risky,
        );
    }
    // Hard negatives: another letter is another name (`Mueller` / `Möller`).
    for k in 0..20 {
        let name = translit_name(g, k);
        let (surname, industry) = name.split_once(' ').expect("two words");
        let other = spell_out(surname).replacen('e', "o", 1);
        if other == spell_out(surname) {
            continue;
        }
        let Some(digit) = Some(format!("{other} {industry}")).filter(|n| g.reserve(n)) else {
            continue;
        };
        pair(
            g,
            &spell_out(&name),
            &digit,
            &entity(&name, None),
            "transliteration_other_name",
            Class::Negative,
        );
    }
}

/// Parents whose own name holds ` - `, and a Digit name that spells the job's full path.
fn dashed_parents(g: &mut Gen) {
    for k in 0..20 {
        let parent = fresh(g, |g| {
            format!("{} - {} {}", g.pick(LAST), g.pick(LAST), g.pick(INDUSTRY))
        });
        let e = entity(&parent, None);
        let parent_id = g.add_qbo(&parent, &e, true, &[]);
        let job = fresh(g, |g| format!("{} {} Site", g.pick(CITIES), g.pick(WORDS)));
        let job_id = g.add_job(&job, &parent_id, &parent);
        let digit = if k % 2 == 0 {
            format!("{parent} - {job}")
        } else {
            format!("{parent}:{job}")
        };
        g.add_digit(
            &digit,
            None,
            0,
            ("parent_name_with_dash", Class::Safe, Some(job_id)),
        );
    }
}
