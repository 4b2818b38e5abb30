//! What the indexes say about one Digit customer, gathered once and read by every tier.

use super::normalize::NormalizedName;
use super::prepare::{
    DigitSide, QboSide, contact_hash, core_hash, name_hash, sorted_hash, spelled_hash,
};

/// QBO (and Digit) positions related to one Digit customer, each list checked against the real
/// key (the indexes hash keys, so a lookup may include a collision).
#[derive(Debug, Default)]
pub(crate) struct Evidence {
    /// QBO customers carrying this Digit customer's id marker.
    pub marker: Vec<u32>,
    /// QBO customers with the same e-mail address.
    pub email: Vec<u32>,
    /// QBO customers with the same normalized name (jobs removed when a non-job shares it).
    pub exact: Vec<u32>,
    /// QBO customers in `exact` only by transliteration: one side spells out the other's German
    /// or Nordic letters (`Müller` / `Mueller`).
    pub spelled: Vec<u32>,
    /// True when jobs with this name were set aside in favour of a parent-level customer.
    pub jobs_set_aside: bool,
    /// QBO customers whose names differ only by a qualifier (`John Smith` / `John Smith 2`).
    pub twins: Vec<u32>,
    /// QBO customers with the same words in another order.
    pub reordered: Vec<u32>,
    /// QBO customers with the same name but another (or no) legal form.
    pub other_legal: Vec<u32>,
    /// Digit customers (this one included) with the same normalized name.
    pub digit_same_name: usize,
    /// Digit customers (this one included) with the same words in any order.
    pub digit_same_sorted: usize,
    /// Another Digit customer differs from this one only by a qualifier.
    pub digit_twin: bool,
    /// Digit customers (this one included) with the same e-mail address.
    pub digit_same_email: usize,
    /// Jobs whose full name (`Parent:Job`) is this Digit customer's name; also in `exact`.
    pub full_name: Vec<u32>,
    /// Jobs whose full name differs from this one only by a qualifier at some level.
    pub full_name_twins: Vec<u32>,
    /// Digit customers (this one included) spelling the same parent and job.
    pub digit_same_path: usize,
}

/// Twins: same core words, different qualifier, and at least one of the two has none, so
/// `Store 12` and `Store 13` are not twins but `John Smith` and `John Smith (Dallas)` are.
fn is_twin(a: &NormalizedName, b: &NormalizedName) -> bool {
    a.core == b.core
        && a.qualifier != b.qualifier
        && (a.qualifier.is_none() || b.qualifier.is_none())
}

fn same_name(a: &NormalizedName, b: &NormalizedName) -> bool {
    a.core == b.core && a.qualifier == b.qualifier && a.legal == b.legal
}

fn same_sorted(a: &NormalizedName, b: &NormalizedName) -> bool {
    a.qualifier == b.qualifier && a.legal == b.legal && a.sorted_core() == b.sorted_core()
}

/// Name and e-mail groups are read up to this many entries: enough to tell "one" from "several"
/// while a tenant with thousands of identical names stays linear.
pub(crate) const GROUP_CAP: usize = 100;

impl Evidence {
    pub fn gather(q: &QboSide<'_>, d: &DigitSide<'_>, i: usize) -> Self {
        let me = &d.prep[i];
        let mut ev = Evidence::default();
        let digit_id = d.recs[i].id.as_str();
        ev.marker = q
            .by_marker
            .get(contact_hash("m", digit_id))
            .take(GROUP_CAP)
            .filter(|p| q.recs[*p as usize].digit_marker.as_deref() == Some(digit_id))
            .collect();
        if let Some(email) = &me.email {
            let key = contact_hash("e", email);
            let q_has = |p: &u32| q.prep[*p as usize].email.as_ref() == Some(email);
            ev.email = q.by_email.get(key).take(GROUP_CAP).filter(q_has).collect();
            let d_has = |p: &u32| d.prep[*p as usize].email.as_ref() == Some(email);
            ev.digit_same_email = d.by_email.get(key).take(GROUP_CAP).filter(d_has).count();
        }
        // A name of punctuation only resembles nothing.
        if !me.name.core.is_empty() {
            ev.gather_names(q, d, &me.name);
        }
        if let Some(readings) = d.paths.paths.get(&(i as u32)) {
            for path in readings {
                ev.gather_path(q, d, path);
            }
        }
        ev
    }

    /// A Digit name that spells a parent and a job is also looked up among the jobs' full
    /// names. Those jobs join `exact`, so the exact tier's rules (unique on both sides, active,
    /// no twins) apply unchanged; a parent-level customer with the same display name makes two.
    fn gather_path(&mut self, q: &QboSide<'_>, d: &DigitSide<'_>, path: &[NormalizedName]) {
        for p in q.paths.same(path, GROUP_CAP) {
            if !self.full_name.contains(&p) {
                self.full_name.push(p);
            }
            if !self.exact.contains(&p) {
                self.exact.push(p);
            }
        }
        for p in q.paths.twins(path, GROUP_CAP) {
            if !self.full_name_twins.contains(&p) {
                self.full_name_twins.push(p);
            }
        }
        let peers = d.paths.same(path, GROUP_CAP).len();
        self.digit_same_path = self.digit_same_path.max(peers);
        self.digit_twin |= !d.paths.twins(path, GROUP_CAP).is_empty();
    }

    /// `Müller` finds `Mueller` by its spelled-out name, and `Mueller` finds `Müller` through the
    /// QBO names indexed by theirs. The plain reading (`Muller`) is already the core.
    fn gather_spelled(&mut self, q: &QboSide<'_>, name: &NormalizedName) {
        let qname = |p: &u32| &q.prep[*p as usize].name;
        let mut found: Vec<u32> = Vec::new();
        if let (Some(spelled), Some(key)) = (&name.spelled, spelled_hash(name)) {
            let probe = name.with_core(spelled.clone());
            found.extend(
                q.by_name
                    .get(key)
                    .take(GROUP_CAP)
                    .filter(|p| same_name(qname(p), &probe)),
            );
        }
        found.extend(
            q.by_spelled
                .get(name_hash(name))
                .take(GROUP_CAP)
                .filter(|p| {
                    let other = qname(p);
                    other.spelled.as_deref() == Some(name.core.as_str())
                        && same_name(&other.with_core(name.core.clone()), name)
                }),
        );
        for p in found {
            if !self.exact.contains(&p) {
                self.exact.push(p);
                self.spelled.push(p);
            }
        }
    }

    fn gather_names(&mut self, q: &QboSide<'_>, d: &DigitSide<'_>, name: &NormalizedName) {
        let qname = |p: &u32| &q.prep[*p as usize].name;
        let dname = |p: &u32| &d.prep[*p as usize].name;
        let is_job = |p: &u32| q.recs[*p as usize].is_job;
        self.exact = q
            .by_name
            .get(name_hash(name))
            .take(GROUP_CAP)
            .filter(|p| same_name(qname(p), name))
            .collect();
        if self.exact.iter().any(|p| !is_job(p)) {
            let before = self.exact.len();
            self.exact.retain(|p| !is_job(p));
            self.jobs_set_aside = self.exact.len() < before;
        }
        self.gather_spelled(q, name);
        let parent_level = self.exact.iter().any(|p| !is_job(p));
        for p in q.by_core.get(core_hash(name)).take(GROUP_CAP) {
            let other = qname(&p);
            // A parent's jobs often carry its name plus a qualifier; they are not its twins.
            if is_twin(name, other) && !(parent_level && is_job(&p)) {
                self.twins.push(p);
            } else if other.core == name.core
                && other.qualifier == name.qualifier
                && other.legal != name.legal
            {
                self.other_legal.push(p);
            }
        }
        let sorted = sorted_hash(name);
        self.reordered = q
            .by_sorted
            .get(sorted)
            .take(GROUP_CAP)
            .filter(|p| qname(p).core != name.core && same_sorted(qname(p), name))
            .collect();
        self.digit_same_name = d
            .by_name
            .get(name_hash(name))
            .take(GROUP_CAP)
            .filter(|p| same_name(dname(p), name))
            .count();
        self.digit_same_sorted = d
            .by_sorted
            .get(sorted)
            .take(GROUP_CAP)
            .filter(|p| same_sorted(dname(p), name))
            .count();
        self.digit_twin = d
            .by_core
            .get(core_hash(name))
            .take(GROUP_CAP)
            .any(|p| is_twin(dname(&p), name));
    }
}
