//! Blocking keys: every hashed key the batch matcher files a customer under, or looks another
//! one up by, tagged with the index it belongs to.
//!
//! They let one Digit customer be decided from a part of the mirror that provably holds
//! everything the batch would have looked at (see `docs/matching.md`): a QBO customer reaches
//! the batch's decision for a Digit customer only through an index lookup, and a lookup of key
//! `k` in index `I` sees exactly the customers filed under `(I, k)`. So the customers sharing a
//! tagged key with the Digit customer's lookups are all the batch can see, hash collisions
//! included, and in the same relative order when read in the same order.

use super::hierarchy::{digit_paths, path_core_hash, path_hash, qbo_path};
use super::index::fuzzy_keys;
use super::prepare::{
    Prepared, contact_hash, core_hash, name_hash, prepare, sorted_hash, spelled_hash,
};
use super::types::{DigitCustomerRecord, QboCustomerRecord};

/// The index a blocking key belongs to (the tag in the key's upper half).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
enum Role {
    /// Exact normalized name (`by_name`, both sides).
    Name = 1,
    /// A QBO name by its spelled-out German or Nordic letters (`by_spelled`).
    Spelled = 2,
    /// Core words (`by_core`: twins, other legal forms).
    Core = 3,
    /// Sorted core words (`by_sorted`: reordered names).
    Sorted = 4,
    Email = 5,
    Phone = 6,
    /// The Digit id marker written into a QBO customer.
    Marker = 7,
    /// A full name read as a path (`Parent:Job`).
    Path = 8,
    /// A path's words (twin paths).
    PathCore = 9,
    /// Fuzzy blocking (typos, abbreviations, transliterations); capped by posting count.
    Fuzzy = 10,
}

/// One blocking key: the matcher's 32-bit key hash tagged with its index, so keys of two
/// indexes never meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockingKey(u64);

impl BlockingKey {
    fn new(role: Role, hash: u32) -> Self {
        Self((u64::from(role as u8) << 32) | u64::from(hash))
    }

    /// The key as one number (the index tag in the upper 32 bits).
    #[must_use]
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// Fuzzy keys are skipped by the batch when they have more than
    /// [`super::FUZZY_POSTING_CAP`] postings; exact keys never are.
    #[must_use]
    pub fn is_fuzzy(self) -> bool {
        self.0 >> 32 == Role::Fuzzy as u64
    }

    /// The matcher's own hash of a fuzzy key (what [`super::MatchContext::crowded_fuzzy_keys`]
    /// holds).
    #[must_use]
    pub fn hash(self) -> u32 {
        self.0 as u32
    }
}

/// Collects keys, sorted and without repeats.
#[derive(Default)]
struct Keys(Vec<BlockingKey>);

impl Keys {
    fn add(&mut self, role: Role, hash: u32) {
        self.0.push(BlockingKey::new(role, hash));
    }

    fn done(mut self) -> Vec<BlockingKey> {
        self.0.sort_unstable();
        self.0.dedup();
        self.0
    }
}

fn prepared_qbo(r: &QboCustomerRecord) -> Prepared {
    prepare(
        &r.display_name,
        r.company_name.as_deref(),
        r.given_name.as_deref(),
        r.family_name.as_deref(),
        r.email.as_deref(),
        r.phone.as_deref(),
    )
}

fn prepared_digit(r: &DigitCustomerRecord) -> Prepared {
    prepare(
        &r.display_name,
        r.company_name.as_deref(),
        r.given_name.as_deref(),
        r.family_name.as_deref(),
        r.email.as_deref(),
        r.phone.as_deref(),
    )
}

/// Keys of a QBO customer through which a Digit customer can link it automatically (marker,
/// e-mail, exact name, spelled name, sorted words, full name).
fn qbo_auto(p: &Prepared, r: &QboCustomerRecord, k: &mut Keys) {
    k.add(Role::Name, name_hash(&p.name));
    if let Some(h) = spelled_hash(&p.name) {
        k.add(Role::Spelled, h);
    }
    k.add(Role::Sorted, sorted_hash(&p.name));
    if let Some(e) = &p.email {
        k.add(Role::Email, contact_hash("e", e));
    }
    if let Some(m) = &r.digit_marker {
        k.add(Role::Marker, contact_hash("m", m));
    }
    if let Some(path) = r.fully_qualified_name.as_deref().and_then(qbo_path) {
        k.add(Role::Path, path_hash(&path));
    }
}

/// Every key the batch files a QBO customer under (what `qbo_customers.match_keys` stores).
#[must_use]
pub fn qbo_blocking_keys(r: &QboCustomerRecord) -> Vec<BlockingKey> {
    let p = prepared_qbo(r);
    let mut k = Keys::default();
    qbo_auto(&p, r, &mut k);
    k.add(Role::Core, core_hash(&p.name));
    if let Some(ph) = &p.phone {
        k.add(Role::Phone, contact_hash("p", ph));
    }
    if let Some(path) = r.fully_qualified_name.as_deref().and_then(qbo_path) {
        k.add(Role::PathCore, path_core_hash(&path));
    }
    fuzzy_keys(&p.name, |h| k.add(Role::Fuzzy, h));
    k.done()
}

/// The keys of a QBO customer through which a Digit customer can link it automatically: a
/// Digit customer sharing none of them never links it, so it never competes for it.
#[must_use]
pub fn qbo_auto_link_keys(r: &QboCustomerRecord) -> Vec<BlockingKey> {
    let mut k = Keys::default();
    qbo_auto(&prepared_qbo(r), r, &mut k);
    k.done()
}

/// A Digit customer's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitBlockingKeys {
    /// What it looks QBO customers up by, fuzzy keys apart.
    pub lookup: Vec<BlockingKey>,
    /// Its fuzzy keys (looked up unless crowded).
    pub fuzzy: Vec<BlockingKey>,
    /// What other Digit customers' group facts find it by (same name, same e-mail, twins,
    /// same path…), which are also the keys it looks them up by.
    pub filed: Vec<BlockingKey>,
    /// What `digit_customers.match_keys` stores: `filed` and the lookups through which it may
    /// link a QBO customer automatically (so its rivals for one are found).
    pub stored: Vec<BlockingKey>,
}

/// A Digit customer's keys, as the batch files and looks it up.
#[must_use]
pub fn digit_blocking_keys(r: &DigitCustomerRecord) -> DigitBlockingKeys {
    let p = prepared_digit(r);
    let (mut filed, mut auto, mut other) = (Keys::default(), Keys::default(), Keys::default());
    let name = name_hash(&p.name);
    filed.add(Role::Name, name);
    filed.add(Role::Core, core_hash(&p.name));
    filed.add(Role::Sorted, sorted_hash(&p.name));
    auto.add(Role::Name, name);
    auto.add(Role::Sorted, sorted_hash(&p.name));
    // `Müller` looks for `Mueller` by its spelled-out name, and among the QBO names filed by
    // theirs.
    if let Some(h) = spelled_hash(&p.name) {
        auto.add(Role::Name, h);
    }
    auto.add(Role::Spelled, name);
    auto.add(Role::Marker, contact_hash("m", &r.id));
    if let Some(e) = &p.email {
        filed.add(Role::Email, contact_hash("e", e));
        auto.add(Role::Email, contact_hash("e", e));
    }
    for path in digit_paths(&r.display_name) {
        filed.add(Role::Path, path_hash(&path));
        filed.add(Role::PathCore, path_core_hash(&path));
        auto.add(Role::Path, path_hash(&path));
    }
    other.add(Role::Core, core_hash(&p.name));
    if let Some(ph) = &p.phone {
        other.add(Role::Phone, contact_hash("p", ph));
    }
    for path in digit_paths(&r.display_name) {
        other.add(Role::PathCore, path_core_hash(&path));
    }
    let (filed, auto) = (filed.done(), auto.done());
    let mut fuzzy = Keys::default();
    fuzzy_keys(&p.name, |h| fuzzy.add(Role::Fuzzy, h));
    let mut lookup = Keys(auto.clone());
    lookup.0.extend(other.done());
    let mut stored = Keys(filed.clone());
    stored.0.extend(auto);
    DigitBlockingKeys {
        lookup: lookup.done(),
        fuzzy: fuzzy.done(),
        filed,
        stored: stored.done(),
    }
}

#[cfg(test)]
#[path = "blocking_tests.rs"]
mod tests;
