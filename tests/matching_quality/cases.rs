//! The labelled cases of the data set, one function per class of the issue.

use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::json;

use super::generator::{Class, Entity, Gen, strip_accents};
use super::vocab::*;

fn vary_case(g: &mut Gen, s: &str) -> String {
    match g.rng.random_range(0..3) {
        0 => s.to_uppercase(),
        1 => s.to_lowercase(),
        _ => s
            .split(' ')
            .map(|w| {
                if w.len() > 3 {
                    w.to_uppercase()
                } else {
                    w.to_lowercase()
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn vary_spacing(g: &mut Gen, s: &str) -> String {
    let gaps = ["  ", " ", "   "];
    let words: Vec<&str> = s.split(' ').collect();
    let mut out = String::from(if g.chance(0.5) { " " } else { "" });
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push_str(g.pick(&gaps));
        }
        out.push_str(w);
    }
    out.push_str(if g.chance(0.5) { "  " } else { "" });
    if out == s { format!(" {s} ") } else { out }
}

fn other_spelling(g: &mut Gen, l: usize) -> &'static str {
    LEGAL[l][1..]
        .choose(&mut g.rng)
        .copied()
        .expect("every legal form has another spelling")
}

fn vary_punctuation(g: &mut Gen, e: &Entity) -> String {
    if let Some(l) = e.legal {
        let legal = LEGAL[l][0];
        let dotted = if legal.ends_with('.') || legal.contains(' ') {
            legal.to_string()
        } else {
            format!("{legal}.")
        };
        return format!("{}, {dotted}", e.base);
    }
    // An apostrophe before a final s (`Rogers` / `Roger's`) changes punctuation only.
    let words: Vec<&str> = e.base.split(' ').collect();
    let with_s = words.iter().position(|w| w.len() > 3 && w.ends_with('s'));
    match (g.rng.random_range(0..3), with_s) {
        (0, _) => format!("{}.", e.base),
        (2, Some(i)) => {
            let mut out: Vec<String> = words.iter().map(|w| (*w).to_string()).collect();
            let at = out[i].len() - 1;
            out[i].insert(at, '\'');
            out.join(" ")
        }
        _ => e.base.replacen(' ', "-", 1),
    }
}

/// One edit (swap, drop, double or replace a letter) in one long word.
fn typo(g: &mut Gen, s: &str) -> String {
    typo_in(g, s, 5..=usize::MAX)
}

/// One edit in one word whose length is in `lengths` (any word of 3+ letters if none is).
fn typo_in(g: &mut Gen, s: &str, lengths: std::ops::RangeInclusive<usize>) -> String {
    let words: Vec<&str> = s.split(' ').collect();
    let fits = |w: &str, r: &std::ops::RangeInclusive<usize>| {
        r.contains(&w.chars().count()) && w.chars().all(char::is_alphabetic)
    };
    let mut long: Vec<usize> = (0..words.len())
        .filter(|i| fits(words[*i], &lengths))
        .collect();
    if long.is_empty() {
        long = (0..words.len())
            .filter(|i| fits(words[*i], &(3..=usize::MAX)))
            .collect();
    }
    let Some(&w) = long.choose(&mut g.rng) else {
        return format!("{s}x");
    };
    let mut chars: Vec<char> = words[w].chars().collect();
    let at = g.rng.random_range(1..chars.len() - 1);
    match g.rng.random_range(0..4) {
        0 => chars.swap(at, at + 1),
        1 => {
            chars.remove(at);
        }
        2 => chars.insert(at, chars[at]),
        _ => chars[at] = if chars[at] == 'e' { 'a' } else { 'e' },
    }
    let mut out: Vec<String> = words.iter().map(|w| (*w).to_string()).collect();
    out[w] = chars.into_iter().collect();
    out.join(" ")
}

fn slug(name: &str) -> String {
    strip_accents(name)
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn any_entity(g: &mut Gen, legal: bool) -> Entity {
    if g.chance(0.35) {
        g.person(false)
    } else {
        {
            let legal = legal && g.chance(0.6);
            g.company(legal)
        }
    }
}

/// The QBO side of a plain case: one active customer; returns its id.
fn qbo_for(g: &mut Gen, e: &Entity) -> String {
    let display = e.display();
    g.add_qbo(&display, e, true, &[])
}

fn safe_case(g: &mut Gen, kind: &str) {
    let (e, qbo_name, digit_name) = match kind {
        "exact" => {
            let e = any_entity(g, true);
            let d = e.display();
            (e, d.clone(), d)
        }
        "case" | "spacing" | "punctuation" | "combo" => {
            let e = if kind == "punctuation" && g.chance(0.7) {
                g.company(true)
            } else {
                any_entity(g, true)
            };
            let d = e.display();
            let variant = match kind {
                "case" => vary_case(g, &d),
                "spacing" => vary_spacing(g, &d),
                "punctuation" => vary_punctuation(g, &e),
                _ => {
                    let p = vary_punctuation(g, &e);
                    let c = vary_case(g, &p);
                    vary_spacing(g, &c)
                }
            };
            (e, d, variant)
        }
        "ampersand" => {
            let e = loop {
                let base = format!("{} & {}", g.pick(LAST), g.pick(LAST));
                if let Some(e) = g.company_from(base, None) {
                    break e;
                }
            };
            let d = e.display();
            let v = if g.chance(0.5) {
                d.replace(" & ", " and ")
            } else {
                d.replace(" & ", "&")
            };
            (e, d, v)
        }
        "legal_spelling" => {
            let e = g.company(true);
            let l = e.legal.expect("legal");
            let v = format!("{} {}", e.base, other_spelling(g, l));
            let d = e.display();
            (e, d, v)
        }
        "accents" => {
            let e = if g.chance(0.5) {
                g.person(true)
            } else {
                loop {
                    let base = format!("{} {}", g.pick(WORDS_ACCENTED), g.pick(INDUSTRY));
                    if let Some(e) = g.company_from(base, None) {
                        break e;
                    }
                }
            };
            let d = e.display();
            if g.chance(0.5) {
                (e, d.clone(), strip_accents(&d))
            } else {
                (e, strip_accents(&d), d)
            }
        }
        "unicode_forms" => {
            // What copy-paste brings: no-break spaces, full-width letters, ligatures.
            let e = any_entity(g, true);
            let d = e.display();
            let v = match g.rng.random_range(0..3) {
                0 => d.replace(' ', "\u{a0}"),
                1 => d
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            char::from_u32(c as u32 + 0xFEE0).unwrap_or(c)
                        } else {
                            c
                        }
                    })
                    .collect(),
                _ => format!(
                    "{}\u{2002}",
                    d.replace("fi", "\u{fb01}").replace(' ', "\u{2009}")
                ),
            };
            (e, d, v)
        }
        "name_order" => {
            let e = g.person(false);
            let (first, last) = e.person.clone().expect("person");
            (e, format!("{first} {last}"), format!("{last}, {first}"))
        }
        "decoration" => {
            let e = any_entity(g, true);
            let d = e.display();
            let deco = if g.chance(0.5) { " (c)" } else { " (v)" };
            (e, format!("{d}{deco}"), d)
        }
        "leading_the" => {
            let e = g.company(false);
            let d = e.display();
            if g.chance(0.5) {
                (e, format!("The {d}"), d)
            } else {
                (e, d.clone(), format!("The {d}"))
            }
        }
        other => panic!("unknown safe case {other}"),
    };
    let id = g.add_qbo(&qbo_name, &e, true, &[]);
    g.add_digit(&digit_name, Some(&e), 2, (kind, Class::Safe, Some(id)));
}

pub fn safe(g: &mut Gen) {
    let kinds = [
        ("exact", 100),
        ("case", 120),
        ("spacing", 100),
        ("punctuation", 120),
        ("ampersand", 80),
        ("legal_spelling", 140),
        ("accents", 80),
        ("unicode_forms", 40),
        ("name_order", 100),
        ("decoration", 60),
        ("leading_the", 40),
        ("combo", 60),
    ];
    for (kind, n) in kinds {
        for _ in 0..n {
            safe_case(g, kind);
        }
    }
    numbered_and_parents(g);
}

/// Chain stores with branch numbers, and parents with sub-customers (jobs).
fn numbered_and_parents(g: &mut Gen) {
    for _ in 0..40 {
        let name = loop {
            let n = format!("{} #{:04}", g.pick(CHAINS), g.rng.random_range(1..10_000));
            if g.reserve(&n) {
                break n;
            }
        };
        let e = Entity {
            base: name.clone(),
            legal: None,
            person: None,
            email: None,
            phone: None,
        };
        let id = g.add_qbo(&name, &e, true, &[]);
        let variant = if g.chance(0.5) {
            name.to_uppercase()
        } else {
            name.replace('#', "# ")
        };
        g.add_digit(
            &variant,
            Some(&e),
            0,
            ("numbered_store", Class::Safe, Some(id)),
        );
    }
    for _ in 0..40 {
        let e = {
            let legal = g.chance(0.4);
            g.company(legal)
        };
        let d = e.display();
        let id = qbo_for(g, &e);
        let city = g.pick(CITIES);
        g.add_job(&format!("{d} ({city})"), &id, &d);
        let site = format!("{} {} Project", g.pick(WORDS), g.pick(LAST));
        if g.reserve(&site) {
            g.add_job(&site, &id, &d);
        }
        let variant = if g.chance(0.5) {
            d.to_uppercase()
        } else {
            d.clone()
        };
        g.add_digit(
            &variant,
            Some(&e),
            2,
            ("parent_with_jobs", Class::Safe, Some(id)),
        );
    }
}

pub fn strong(g: &mut Gen) {
    for _ in 0..40 {
        let e = {
            let legal = g.chance(0.5);
            g.company(legal)
        };
        let renamed = format!("{} {}", e.display(), g.pick(SIBLING_WORDS));
        if !g.reserve(&renamed) {
            continue;
        }
        let id = g.add_qbo(&renamed, &e, true, &[]);
        let qbo_pos = g.qbo.len() - 1;
        let digit_id = g.add_digit(
            &e.display(),
            Some(&e),
            0,
            ("id_marker", Class::Strong, Some(id)),
        );
        g.qbo[qbo_pos]["Notes"] = json!(format!(
            "migrated {}",
            qbo_sync::matching::digit_marker_text(&digit_id)
        ));
    }
    for _ in 0..60 {
        let mut e = g.company(true);
        let billing = format!("billing@{}.example.test", slug(&e.base));
        e.email.get_or_insert(billing);
        let id = qbo_for(g, &e);
        let base = e.base.clone();
        g.add_digit(
            &base,
            Some(&e),
            1,
            ("email_compatible_name", Class::Strong, Some(id)),
        );
    }
}

pub fn risky(g: &mut Gen) {
    for _ in 0..250 {
        let e = any_entity(g, true);
        let d = e.display();
        let t = loop {
            let t = typo(g, &d);
            if g.reserve(&t) {
                break t;
            }
        };
        let id = qbo_for(g, &e);
        g.add_digit(&t, Some(&e), 2, ("typo", Class::Risky, Some(id)));
    }
    for _ in 0..60 {
        let e = any_entity(g, true);
        let t = loop {
            let t = typo_in(g, &e.display(), 3..=4);
            if g.reserve(&t) {
                break t;
            }
        };
        let id = qbo_for(g, &e);
        g.add_digit(&t, Some(&e), 0, ("typo_short_word", Class::Risky, Some(id)));
    }
    for _ in 0..60 {
        let e = g.company(true);
        let t = loop {
            let t = typo(g, &e.base);
            if g.reserve(&t) {
                break t;
            }
        };
        let id = qbo_for(g, &e);
        g.add_digit(
            &t,
            Some(&e),
            0,
            ("typo_and_dropped_legal_form", Class::Risky, Some(id)),
        );
    }
    for _ in 0..100 {
        let mut e = g.company(true);
        let with_legal = e.display();
        let (qbo_name, digit_name) = if g.chance(0.7) {
            (with_legal, e.base.clone())
        } else {
            (e.base.clone(), with_legal)
        };
        e.legal = None;
        let id = g.add_qbo(&qbo_name, &e, true, &[]);
        g.add_digit(
            &digit_name,
            Some(&e),
            2,
            ("dropped_legal_form", Class::Risky, Some(id)),
        );
    }
    for _ in 0..80 {
        let mut e = {
            let legal = g.chance(0.5);
            g.company(legal)
        };
        let contact_person = g.person(false);
        e.email.get_or_insert(format!(
            "office@{}.example.test",
            slug(&contact_person.base)
        ));
        let id = qbo_for(g, &e);
        g.add_digit(
            &contact_person.base,
            None,
            0,
            ("same_email_other_name", Class::Risky, Some(id)),
        );
        g.digit
            .last_mut()
            .expect("digit")
            .email
            .clone_from(&e.email);
    }
}

pub fn ambiguous(g: &mut Gen) {
    for _ in 0..60 {
        let e = if g.chance(0.8) {
            g.person(false)
        } else {
            g.company(false)
        };
        let d = e.display();
        let a = qbo_for(g, &e);
        let qualifier = if g.chance(0.5) {
            format!(" ({})", g.pick(CITIES))
        } else {
            format!(" {}", g.rng.random_range(2..5))
        };
        let b = g.add_qbo(&format!("{d}{qualifier}"), &e, true, &[]);
        let digit_name = if g.chance(0.7) {
            d
        } else {
            format!("{d}{qualifier}")
        };
        g.add_digit(
            &digit_name,
            Some(&e),
            0,
            ("disambiguated_twins", Class::Ambiguous, None),
        );
        g.last_label().related = vec![a, b];
    }
    for _ in 0..20 {
        let e = any_entity(g, true);
        let d = e.display();
        let id = qbo_for(g, &e);
        for name in [d.clone(), d.to_uppercase()] {
            g.add_digit(
                &name,
                Some(&e),
                0,
                ("duplicate_digit_names", Class::Ambiguous, None),
            );
            g.last_label().related = vec![id.clone()];
        }
    }
    for _ in 0..30 {
        let mut e = g.company(true);
        let l = e.legal.take().expect("legal");
        let a = g.add_qbo(&format!("{} {}", e.base, LEGAL[l][0]), &e, true, &[]);
        let b = g.add_qbo(&format!("{}, {}", e.base, LEGAL[l][1]), &e, true, &[]);
        g.add_digit(
            &format!("{} {}", e.base, LEGAL[l][0]),
            Some(&e),
            0,
            ("two_equal_qbo_customers", Class::Ambiguous, None),
        );
        g.last_label().related = vec![a, b];
    }
    inactive_rejected_linked(g);
}

fn inactive_rejected_linked(g: &mut Gen) {
    for _ in 0..40 {
        let e = any_entity(g, true);
        let d = e.display();
        let shown = if g.chance(0.5) {
            format!("{d} (deleted)")
        } else {
            d.clone()
        };
        let id = g.add_qbo(&shown, &e, false, &[]);
        g.add_digit(
            &d,
            Some(&e),
            2,
            ("inactive_qbo_customer", Class::Inactive, Some(id.clone())),
        );
        g.last_label().related = vec![id];
    }
    for _ in 0..30 {
        let e = any_entity(g, true);
        let id = qbo_for(g, &e);
        let digit_id = g.add_digit(
            &e.display(),
            Some(&e),
            0,
            ("rejected_pair", Class::Rejected, None),
        );
        g.last_label().forbidden = vec![id.clone()];
        g.labels.rejected.push((digit_id, id));
    }
    for _ in 0..20 {
        let e = any_entity(g, true);
        let id = qbo_for(g, &e);
        let name = vary_case(g, &e.display());
        let digit_id = g.add_digit(
            &name,
            Some(&e),
            2,
            ("existing_link", Class::Linked, Some(id.clone())),
        );
        g.labels.links.push((digit_id, id));
    }
}

pub fn negatives(g: &mut Gen) {
    for _ in 0..60 {
        let chain = g.pick(CHAINS);
        let n = g.rng.random_range(1..9_999);
        let (have, want) = (format!("{chain} #{n:04}"), format!("{chain} #{:04}", n + 1));
        if !g.reserve(&have) || !g.reserve(&want) {
            continue;
        }
        let e = Entity {
            base: have.clone(),
            legal: None,
            person: None,
            email: None,
            phone: None,
        };
        g.add_qbo(&have, &e, true, &[]);
        g.add_digit(
            &want,
            None,
            0,
            ("store_number_differs", Class::Negative, None),
        );
    }
    for _ in 0..80 {
        let e = {
            let legal = g.chance(0.5);
            g.company(legal)
        };
        let sibling = format!("{} {}", e.base, g.pick(SIBLING_WORDS));
        if !g.reserve(&sibling) {
            continue;
        }
        let (qbo_name, digit_name) = if g.chance(0.5) {
            (e.display(), sibling)
        } else {
            (sibling, e.display())
        };
        g.add_qbo(&qbo_name, &e, true, &[]);
        g.add_digit(
            &digit_name,
            None,
            0,
            ("sibling_entity", Class::Negative, None),
        );
    }
    near_and_new(g);
}

fn near_and_new(g: &mut Gen) {
    for _ in 0..60 {
        let (a, b) = *NEAR_NAMES.choose(&mut g.rng).expect("pairs");
        let industry = g.pick(INDUSTRY);
        let (have, want) = (format!("{a} {industry}"), format!("{b} {industry}"));
        if !g.reserve(&have) || !g.reserve(&want) {
            continue;
        }
        let e = Entity {
            base: have.clone(),
            legal: None,
            person: None,
            email: None,
            phone: None,
        };
        g.add_qbo(&have, &e, true, &[]);
        g.add_digit(
            &want,
            None,
            0,
            ("similar_name_other_entity", Class::Negative, None),
        );
    }
    for _ in 0..40 {
        let (a, b) = *NEAR_FIRST.choose(&mut g.rng).expect("pairs");
        let last = g.pick(LAST);
        let (have, want) = (format!("{a} {last}"), format!("{b} {last}"));
        if !g.reserve(&have) || !g.reserve(&want) {
            continue;
        }
        let email = Some(format!("the.{}s@family-mail.test", last.to_lowercase()));
        let person = Some((a.to_string(), last.to_string()));
        let e = Entity {
            base: have.clone(),
            legal: None,
            person,
            email: email.clone(),
            phone: None,
        };
        g.add_qbo(&have, &e, true, &[]);
        g.add_digit(
            &want,
            None,
            0,
            ("shared_family_email", Class::Negative, None),
        );
        g.digit.last_mut().expect("digit").email = email;
    }
    let distinct = [0, 1, 2, 3, 5];
    for _ in 0..40 {
        let e = g.company(false);
        let l = *distinct.choose(&mut g.rng).expect("forms");
        let k = *distinct
            .iter()
            .filter(|k| **k != l)
            .collect::<Vec<_>>()
            .choose(&mut g.rng)
            .expect("forms");
        g.add_qbo(&format!("{} {}", e.base, LEGAL[l][0]), &e, true, &[]);
        g.add_digit(
            &format!("{} {}", e.base, LEGAL[*k][0]),
            None,
            0,
            ("other_legal_form", Class::Negative, None),
        );
    }
    for _ in 0..200 {
        let e = any_entity(g, true);
        g.add_digit(
            &e.display(),
            Some(&e),
            2,
            ("new_customer", Class::Negative, None),
        );
    }
}

/// Unrelated QBO customers up to `total`, a few of them inactive.
pub fn distractors(g: &mut Gen, total: usize) {
    while g.qbo.len() < total {
        let e = any_entity(g, true);
        let active = !g.chance(0.05);
        let d = e.display();
        g.add_qbo(&d, &e, active, &[]);
    }
}
