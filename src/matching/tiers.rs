//! The automatic tiers, each returning a link or the reason it may not link.

use super::evidence::{Evidence, GROUP_CAP};
use super::explain::same_name_reason;
use super::hierarchy::full_name_reason;
use super::normalize::normalize_name;
use super::prepare::{DigitSide, QboSide};
use super::score::{name_similarity, names_compatible};
use super::types::{Decision, LinkMethod};

/// Why a tier could not link: becomes the review reason.
pub(super) type Blocker = String;

/// Group reads stop at [`GROUP_CAP`], so a full group is "at least" that many.
fn count_text(n: usize) -> String {
    if n >= GROUP_CAP {
        format!("{GROUP_CAP} or more")
    } else {
        n.to_string()
    }
}

pub(super) fn link(
    q: &QboSide<'_>,
    pos: u32,
    method: LinkMethod,
    score: f64,
    reasons: Vec<String>,
) -> Decision {
    Decision::AutoLink {
        qbo_id: q.recs[pos as usize].id.clone(),
        method,
        score,
        reasons,
    }
}

/// Checks that apply to every tier: the target is active, free and not rejected for this customer.
pub(super) fn eligible(
    q: &QboSide<'_>,
    d: &DigitSide<'_>,
    i: usize,
    pos: u32,
) -> Result<(), Blocker> {
    let rec = &q.recs[pos as usize];
    let name = &rec.display_name;
    if d.rejected
        .contains(&(d.recs[i].id.as_str(), rec.id.as_str()))
    {
        return Err(format!("a person rejected the match with '{name}'"));
    }
    if !rec.active {
        return Err(format!("the matching QBO customer '{name}' is inactive"));
    }
    match q.linked_to.get(rec.id.as_str()) {
        Some(other) => Err(format!(
            "the matching QBO customer '{name}' is already linked to Digit customer {other}"
        )),
        None => Ok(()),
    }
}

pub(super) fn marker_tier(
    q: &QboSide<'_>,
    d: &DigitSide<'_>,
    i: usize,
    ev: &Evidence,
) -> Result<Decision, Blocker> {
    let [pos] = ev.marker[..] else {
        return Err(format!(
            "{} QBO customers carry this Digit customer's id marker",
            count_text(ev.marker.len())
        ));
    };
    eligible(q, d, i, pos)?;
    let reasons = vec![format!(
        "QBO customer '{}' carries this Digit customer's id marker",
        q.recs[pos as usize].display_name
    )];
    Ok(link(q, pos, LinkMethod::AutoExact, 1.0, reasons))
}

/// E-mail agreement links only when the address is unique on both sides, the names are
/// compatible, and no other QBO customer has exactly this name. `Err(Some(note))` says why an
/// address that matched could not link.
pub(super) fn email_tier(
    q: &QboSide<'_>,
    d: &DigitSide<'_>,
    i: usize,
    ev: &Evidence,
) -> Result<Decision, Option<Blocker>> {
    // Jobs often copy their parent's address; the parent-level customer is the one meant.
    let is_job = |p: &u32| q.recs[*p as usize].is_job;
    let parents: Vec<u32> = ev.email.iter().copied().filter(|p| !is_job(p)).collect();
    let group = if parents.is_empty() {
        &ev.email
    } else {
        &parents
    };
    let pos = match group[..] {
        [] => return Err(None),
        [pos] => pos,
        _ => {
            return Err(Some(format!(
                "{} QBO customers share the e-mail address",
                count_text(group.len())
            )));
        }
    };
    let (me, other) = (&d.prep[i].name, &q.prep[pos as usize].name);
    if ev.digit_same_email != 1 {
        return Err(Some(format!(
            "{} Digit customers share the e-mail address",
            count_text(ev.digit_same_email)
        )));
    }
    if ev.exact.iter().any(|p| *p != pos) || !names_compatible(me, other) {
        let qname = &q.recs[pos as usize].display_name;
        return Err(Some(format!(
            "the e-mail address matches '{qname}' but the names are not compatible"
        )));
    }
    // `Mr. Lee Smith` and `Mrs. Lee Smith` share an address but are two people: titles are
    // held to the name tiers' rule here too.
    titles_agree(q, d, i, pos).map_err(Some)?;
    eligible(q, d, i, pos).map_err(Some)?;
    let qname = &q.recs[pos as usize].display_name;
    let mut reasons = vec![
        format!("same e-mail address as '{qname}'"),
        format!("compatible names: '{}' ~ '{qname}'", d.recs[i].display_name),
    ];
    if group.len() < ev.email.len() {
        reasons
            .push("sub-customers (jobs) with the same address set aside for their parent".into());
    }
    let score = (name_similarity(me, other) * 1000.0).round() / 1000.0;
    Ok(link(q, pos, LinkMethod::AutoEmail, score, reasons))
}

/// Blocks a name match when the e-mail address says otherwise or either side has twins.
pub(super) fn name_tier_checks(
    q: &QboSide<'_>,
    d: &DigitSide<'_>,
    i: usize,
    ev: &Evidence,
    pos: u32,
    digit_peers: usize,
) -> Result<(), Blocker> {
    eligible(q, d, i, pos)?;
    if digit_peers > 1 {
        return Err(format!(
            "{} Digit customers have this name",
            count_text(digit_peers)
        ));
    }
    if let Some(twin) = ev.twins.first() {
        let other = &q.recs[*twin as usize].display_name;
        return Err(format!(
            "names differ only by a qualifier from QBO customer '{other}': ambiguous"
        ));
    }
    if let Some(twin) = ev.full_name_twins.first() {
        let other = q.full_name(*twin);
        return Err(format!(
            "full names differ only by a qualifier from QBO sub-customer '{other}': ambiguous"
        ));
    }
    if ev.digit_twin {
        return Err(
            "another Digit customer's name differs from this one only by a qualifier: ambiguous"
                .into(),
        );
    }
    if !ev.email.is_empty() && !ev.email.contains(&pos) {
        return Err("the e-mail address belongs to another QBO customer".into());
    }
    Ok(())
}

pub(super) fn exact_tier(
    q: &QboSide<'_>,
    d: &DigitSide<'_>,
    i: usize,
    ev: &Evidence,
) -> Result<Decision, Blocker> {
    let [pos] = ev.exact[..] else {
        return Err(format!(
            "{} QBO customers have the same normalized name",
            count_text(ev.exact.len())
        ));
    };
    let digit_peers = ev.digit_same_name.max(ev.digit_same_path);
    name_tier_checks(q, d, i, ev, pos, digit_peers)?;
    titles_agree(q, d, i, pos)?;
    comma_unambiguous(q, d, i, ev)?;
    let dname = &d.recs[i].display_name;
    // A job found by its full name is compared, and explained, with that full name.
    let by_full_name = ev.full_name.contains(&pos);
    let qname = if by_full_name {
        q.full_name(pos)
    } else {
        &q.recs[pos as usize].display_name
    };
    let method = if dname == qname {
        LinkMethod::AutoExact
    } else {
        LinkMethod::AutoNormalized
    };
    let mut reasons = Vec::with_capacity(3);
    if by_full_name {
        reasons.push(full_name_reason(&q.recs[pos as usize].display_name, qname));
    }
    if ev.spelled.contains(&pos) {
        reasons.push(format!(
            "same name once German or Nordic letters are spelled out (ü = ue, ø = oe, å = aa…): \
             '{dname}' ~ '{qname}'"
        ));
    } else if !by_full_name || dname != qname {
        reasons.push(same_name_reason(dname, qname));
    }
    reasons.push("the only customer with this name on both sides".into());
    if ev.jobs_set_aside {
        reasons.push(
            "linked to the parent customer, not to its sub-customers (jobs) of the same name"
                .into(),
        );
    }
    Ok(link(q, pos, method, 1.0, reasons))
}

/// A title (`Dr.`, `Mrs`) on one side only is allowed when a given and family name confirm
/// that the name is a person's: `Dr Pepper Bottling` is not `Pepper Bottling`.
fn titles_agree(q: &QboSide<'_>, d: &DigitSide<'_>, i: usize, pos: u32) -> Result<(), Blocker> {
    let (mine, theirs) = (&d.prep[i].name, &q.prep[pos as usize].name);
    let qname = &q.recs[pos as usize].display_name;
    match (&mine.title, &theirs.title) {
        (None, None) => Ok(()),
        (Some(a), Some(b)) if a == b => Ok(()),
        (Some(a), Some(b)) => Err(format!(
            "the titles differ ('{a}' vs '{b}') from QBO customer '{qname}'"
        )),
        (Some(t), None) | (None, Some(t)) => {
            let (drec, qrec) = (&d.recs[i], &q.recs[pos as usize]);
            // `Doe, Dr. Jane` is confirmed by its person's reading, `jane doe`.
            let confirms = |k: Option<(String, String)>| {
                k.is_some_and(|(given, family)| {
                    let person = format!("{given} {family}");
                    person == mine.core || Some(&person) == mine.comma_reading.as_ref()
                })
            };
            if confirms(person_key(&drec.given_name, &drec.family_name))
                || confirms(person_key(&qrec.given_name, &qrec.family_name))
            {
                Ok(())
            } else {
                Err(format!(
                    "same name apart from the title '{t}', but not confirmed as a person's name: \
                     '{}' ~ '{qname}'",
                    drec.display_name
                ))
            }
        }
    }
}

/// `Smith, John` is both `Smith John` (the written order) and `John Smith` (a person's name,
/// family name first): when QBO holds both, a person decides.
fn comma_unambiguous(
    q: &QboSide<'_>,
    d: &DigitSide<'_>,
    i: usize,
    ev: &Evidence,
) -> Result<(), Blocker> {
    let me = &d.prep[i].name;
    let turned = ev.reordered.iter().find(|p| {
        let other = &q.prep[**p as usize].name;
        me.comma_reading.as_ref() == Some(&other.core)
            || other.comma_reading.as_ref() == Some(&me.core)
    });
    match turned {
        Some(p) => Err(format!(
            "a comma may put the family name first: QBO customer '{}' matches that reading too",
            q.recs[*p as usize].display_name
        )),
        None => Ok(()),
    }
}

/// `Smith, John` vs `John Smith`: the comma puts the family name first. The reading holds
/// unless a given and family name on either side say otherwise.
fn comma_reading_link(
    q: &QboSide<'_>,
    d: &DigitSide<'_>,
    i: usize,
    pos: u32,
) -> Option<Result<(), Blocker>> {
    let (me, other) = (&d.prep[i].name, &q.prep[pos as usize].name);
    let reading = if me.comma_reading.as_ref() == Some(&other.core) {
        &other.core
    } else if other.comma_reading.as_ref() == Some(&me.core) {
        &me.core
    } else {
        return None;
    };
    let (drec, qrec) = (&d.recs[i], &q.recs[pos as usize]);
    let contradicts = |k: Option<(String, String)>| {
        k.is_some_and(|(given, family)| &format!("{given} {family}") != reading)
    };
    if contradicts(person_key(&drec.given_name, &drec.family_name))
        || contradicts(person_key(&qrec.given_name, &qrec.family_name))
    {
        return Some(Err(
            "a comma may put the family name first, but the given and family names say otherwise"
                .into(),
        ));
    }
    Some(Ok(()))
}

/// `John Smith` vs `Smith John`: only for person names, confirmed by a given or family name.
pub(super) fn reordered_tier(
    q: &QboSide<'_>,
    d: &DigitSide<'_>,
    i: usize,
    ev: &Evidence,
) -> Result<Decision, Blocker> {
    let [pos] = ev.reordered[..] else {
        return Err(format!(
            "{} QBO customers have these words in another order",
            count_text(ev.reordered.len())
        ));
    };
    let (drec, qrec) = (&d.recs[i], &q.recs[pos as usize]);
    let by_comma = comma_reading_link(q, d, i, pos).transpose()?.is_some();
    // `Kim Lee` and `Lee Kim` may be two people: without a comma that says which is the family
    // name, both sides must name the same given and family name.
    let digit_person = person_key(&drec.given_name, &drec.family_name);
    let confirmed =
        digit_person.is_some() && digit_person == person_key(&qrec.given_name, &qrec.family_name);
    if !by_comma && !confirmed {
        return Err(
            "same words in another order, but not confirmed as the same person's name".into(),
        );
    }
    name_tier_checks(q, d, i, ev, pos, ev.digit_same_sorted)?;
    titles_agree(q, d, i, pos)?;
    let (dname, qname) = (&d.recs[i].display_name, &q.recs[pos as usize].display_name);
    let first = if by_comma {
        format!("same person's name, family name first: '{dname}' ~ '{qname}'")
    } else {
        format!("same person's name in another order: '{dname}' ~ '{qname}'")
    };
    let reasons = vec![
        first,
        "the only customer with this name on both sides".into(),
    ];
    Ok(link(q, pos, LinkMethod::AutoNormalized, 1.0, reasons))
}

/// The normalized (given, family) name, when both are filled in.
pub(super) fn person_key(
    given: &Option<String>,
    family: &Option<String>,
) -> Option<(String, String)> {
    let part = |s: &Option<String>| {
        s.as_deref()
            .map(|v| normalize_name(v).core)
            .filter(|c| !c.is_empty())
    };
    Some((part(given)?, part(family)?))
}
