//! Both sides of a match, normalized once and indexed by every key the tiers look up.

use std::collections::{HashMap, HashSet};

use super::hierarchy::{PathIndex, digit_paths, qbo_path};
use super::index::{KeyIndex, fuzzy_keys, hash_key};
use super::normalize::{NormalizedName, normalize_email, normalize_name, normalize_phone};
use super::types::{DigitCustomerRecord, MatchContext, QboCustomerRecord};

/// A customer's normalized name and contact keys.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub name: NormalizedName,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Builds a [`Prepared`]; an empty display name falls back to the company or person name.
pub(crate) fn prepare(
    display: &str,
    company: Option<&str>,
    given: Option<&str>,
    family: Option<&str>,
    email: Option<&str>,
    phone: Option<&str>,
) -> Prepared {
    let fallback;
    let shown = if display.trim().is_empty() {
        fallback = company
            .map(str::to_string)
            .unwrap_or_else(|| format!("{} {}", given.unwrap_or(""), family.unwrap_or("")));
        fallback.as_str()
    } else {
        display
    };
    Prepared {
        name: normalize_name(shown),
        email: email.and_then(normalize_email),
        phone: phone.and_then(normalize_phone),
    }
}

pub(crate) fn name_hash(n: &NormalizedName) -> u32 {
    hash_key(&[
        "n",
        &n.core,
        n.qualifier.as_deref().unwrap_or(""),
        n.legal.as_deref().unwrap_or(""),
    ])
}

/// The exact-name key of the name with German and Nordic letters spelled out (`Müller` →
/// `mueller`), when it has any.
pub(crate) fn spelled_hash(n: &NormalizedName) -> Option<u32> {
    Some(name_hash(&n.with_core(n.spelled.clone()?)))
}

pub(crate) fn core_hash(n: &NormalizedName) -> u32 {
    hash_key(&["c", &n.core])
}

pub(crate) fn sorted_hash(n: &NormalizedName) -> u32 {
    hash_key(&[
        "s",
        &n.sorted_core(),
        n.qualifier.as_deref().unwrap_or(""),
        n.legal.as_deref().unwrap_or(""),
    ])
}

pub(crate) fn contact_hash(kind: &str, value: &str) -> u32 {
    hash_key(&[kind, value])
}

fn position(i: usize) -> u32 {
    u32::try_from(i).expect("fewer than 2^32 customers")
}

/// The QBO side: records, normalized forms and indexes.
pub(crate) struct QboSide<'a> {
    pub recs: &'a [QboCustomerRecord],
    pub prep: Vec<Prepared>,
    pub by_name: KeyIndex,
    /// Names with German or Nordic letters, by their spelled-out name (`Müller` → `mueller`).
    pub by_spelled: KeyIndex,
    pub by_core: KeyIndex,
    pub by_sorted: KeyIndex,
    pub by_email: KeyIndex,
    pub by_phone: KeyIndex,
    pub by_marker: KeyIndex,
    pub fuzzy: KeyIndex,
    /// Jobs by their `FullyQualifiedName`, read as a path.
    pub paths: PathIndex,
    /// qbo_id -> the Digit customer it is linked to.
    pub linked_to: HashMap<&'a str, &'a str>,
    /// Fuzzy keys crowded in the whole mirror when only part of it is given (see
    /// [`MatchContext::crowded_fuzzy_keys`]).
    pub crowded: HashSet<u32>,
}

impl<'a> QboSide<'a> {
    pub fn build(recs: &'a [QboCustomerRecord], ctx: &'a MatchContext) -> Self {
        let prep: Vec<Prepared> = recs
            .iter()
            .map(|r| {
                prepare(
                    &r.display_name,
                    r.company_name.as_deref(),
                    r.given_name.as_deref(),
                    r.family_name.as_deref(),
                    r.email.as_deref(),
                    r.phone.as_deref(),
                )
            })
            .collect();
        let mut fuzzy = Vec::new();
        for (i, p) in prep.iter().enumerate() {
            fuzzy_keys(&p.name, |k| fuzzy.push((k, position(i))));
        }
        let markers = recs.iter().enumerate().filter_map(|(i, r)| {
            Some((contact_hash("m", r.digit_marker.as_deref()?), position(i)))
        });
        Self {
            by_name: index_by(&prep, |p| Some(name_hash(&p.name))),
            by_spelled: index_by(&prep, |p| spelled_hash(&p.name)),
            by_core: index_by(&prep, |p| Some(core_hash(&p.name))),
            by_sorted: index_by(&prep, |p| Some(sorted_hash(&p.name))),
            by_email: index_by(&prep, |p| Some(contact_hash("e", p.email.as_deref()?))),
            by_phone: index_by(&prep, |p| Some(contact_hash("p", p.phone.as_deref()?))),
            by_marker: KeyIndex::build(markers),
            fuzzy: KeyIndex::build(fuzzy.into_iter()),
            paths: PathIndex::build(
                recs.iter()
                    .enumerate()
                    .filter_map(|(i, r)| {
                        let path = qbo_path(r.fully_qualified_name.as_deref()?)?;
                        Some((position(i), vec![path]))
                    })
                    .collect(),
            ),
            linked_to: ctx
                .links
                .iter()
                .map(|(d, q)| (q.as_str(), d.as_str()))
                .collect(),
            crowded: ctx.crowded_fuzzy_keys.iter().copied().collect(),
            recs,
            prep,
        }
    }
}

/// The Digit side: normalized forms and the indexes that check uniqueness among Digit customers.
pub(crate) struct DigitSide<'a> {
    pub recs: &'a [DigitCustomerRecord],
    pub prep: Vec<Prepared>,
    pub by_name: KeyIndex,
    pub by_core: KeyIndex,
    pub by_sorted: KeyIndex,
    pub by_email: KeyIndex,
    /// Names that spell a parent and a job (`Acme Corp - Kitchen Remodel`), read as a path.
    pub paths: PathIndex,
    /// digit_id -> qbo_id of existing links.
    pub links: HashMap<&'a str, &'a str>,
    pub rejected: HashSet<(&'a str, &'a str)>,
}

impl<'a> DigitSide<'a> {
    pub fn build(recs: &'a [DigitCustomerRecord], ctx: &'a MatchContext) -> Self {
        let prep: Vec<Prepared> = recs
            .iter()
            .map(|r| {
                prepare(
                    &r.display_name,
                    r.company_name.as_deref(),
                    r.given_name.as_deref(),
                    r.family_name.as_deref(),
                    r.email.as_deref(),
                    r.phone.as_deref(),
                )
            })
            .collect();
        Self {
            by_name: index_by(&prep, |p| Some(name_hash(&p.name))),
            by_core: index_by(&prep, |p| Some(core_hash(&p.name))),
            by_sorted: index_by(&prep, |p| Some(sorted_hash(&p.name))),
            by_email: index_by(&prep, |p| Some(contact_hash("e", p.email.as_deref()?))),
            paths: PathIndex::build(
                recs.iter()
                    .enumerate()
                    .filter_map(|(i, r)| {
                        let readings = digit_paths(&r.display_name);
                        (!readings.is_empty()).then(|| (position(i), readings))
                    })
                    .collect(),
            ),
            links: ctx
                .links
                .iter()
                .map(|(d, q)| (d.as_str(), q.as_str()))
                .collect(),
            rejected: ctx
                .rejected
                .iter()
                .map(|(d, q)| (d.as_str(), q.as_str()))
                .collect(),
            recs,
            prep,
        }
    }
}

fn index_by(prep: &[Prepared], key: impl Fn(&Prepared) -> Option<u32>) -> KeyIndex {
    KeyIndex::build(
        prep.iter()
            .enumerate()
            .filter_map(|(i, p)| Some((key(p)?, position(i)))),
    )
}
