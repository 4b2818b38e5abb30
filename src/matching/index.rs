//! Blocking indexes: compact multimaps from a hashed key to record positions.
//!
//! Each entry is one `u64` (32-bit key hash, 32-bit position), sorted once, so an index over a
//! million customers is a few flat arrays instead of a million small `Vec`s. Hash collisions only
//! add candidates; callers re-check the real key before trusting an exact match.

use super::abbrev::{ambiguous_expansions, fold_spelled};
use super::normalize::{NormalizedName, STOP_WORDS, has_digit};

/// Keys with more entries than this are too common to narrow anything down (e.g. `john smith`
/// variants) and are skipped by fuzzy blocking; exact keys are never capped.
pub const FUZZY_POSTING_CAP: usize = 64;

/// A multimap from key hash to positions.
#[derive(Debug, Default)]
pub struct KeyIndex {
    entries: Vec<u64>,
    /// `offsets[b]` is the first entry whose key starts with bucket `b` (the top `bits` bits),
    /// so a lookup searches one small bucket instead of the whole array.
    offsets: Vec<u32>,
    bits: u32,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME);
    }
    h
}

fn fold(h: u64) -> u32 {
    let h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (h ^ (h >> 32)) as u32
}

/// FNV-1a over the parts (with a separator), folded to 32 bits: fast and stable across runs.
pub fn hash_key(parts: &[&str]) -> u32 {
    let mut h = FNV_OFFSET;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h = fnv(h, &[0x1f]);
        }
        h = fnv(h, part.as_bytes());
    }
    fold(h)
}

impl KeyIndex {
    /// Builds the index from (key hash, position) pairs.
    pub fn build(pairs: impl Iterator<Item = (u32, u32)>) -> Self {
        let mut entries: Vec<u64> = pairs
            .map(|(k, pos)| (u64::from(k) << 32) | u64::from(pos))
            .collect();
        entries.sort_unstable();
        entries.dedup();
        entries.shrink_to_fit();
        let bits = (usize::BITS - entries.len().leading_zeros()).clamp(1, 24);
        let mut offsets = vec![0u32; (1usize << bits) + 1];
        for e in &entries {
            offsets[((*e >> 32) as u32 >> (32 - bits)) as usize + 1] += 1;
        }
        for b in 1..offsets.len() {
            offsets[b] += offsets[b - 1];
        }
        Self {
            entries,
            offsets,
            bits,
        }
    }

    /// The entries filed under `key` (possibly including hash collisions).
    fn slice(&self, key: u32) -> &[u64] {
        if self.entries.is_empty() {
            return &[];
        }
        let bucket = (key >> (32 - self.bits)) as usize;
        let within =
            &self.entries[self.offsets[bucket] as usize..self.offsets[bucket + 1] as usize];
        let lo = u64::from(key) << 32;
        let start = within.partition_point(|e| *e < lo);
        let len = within[start..].partition_point(|e| (*e >> 32) as u32 == key);
        &within[start..start + len]
    }

    /// Positions filed under `key` (possibly including hash collisions).
    pub fn get(&self, key: u32) -> impl Iterator<Item = u32> + '_ {
        self.slice(key).iter().map(|e| *e as u32)
    }

    /// Positions filed under `key`, or none when there are more than `cap` (a key that common
    /// narrows nothing down).
    pub fn get_unless_over(&self, key: u32, cap: usize) -> impl Iterator<Item = u32> + '_ {
        let slice = self.slice(key);
        let slice = if slice.len() > cap {
            &slice[..0]
        } else {
            slice
        };
        slice.iter().map(|e| *e as u32)
    }
}

/// Hashes of a word and of its one-deletion variants: two words one edit apart (insert,
/// delete, substitute, swap) always share one. Short words and words with digits must match
/// exactly. Computed without building the variant strings.
fn word_variant_hashes(word: &str, out: &mut Vec<u64>) {
    out.clear();
    out.push(fnv(FNV_OFFSET, word.as_bytes()));
    let n = word.chars().count();
    if !(3..=20).contains(&n) || has_digit(word) {
        return;
    }
    for (at, c) in word.char_indices() {
        let h = fnv(
            fnv(FNV_OFFSET, &word.as_bytes()[..at]),
            &word.as_bytes()[at + c.len_utf8()..],
        );
        out.push(h);
    }
}

/// Fuzzy blocking keys of a name. Multi-word names: each pair of neighbouring content words,
/// order ignored, with one of the two allowed one typo. One-word names: the word's variants.
/// A name with an ambiguous abbreviation (`Tech`) also gets the keys of each of its expansions,
/// so `Acme Tech` and `Acme Technology` meet.
pub fn fuzzy_keys(name: &NormalizedName, mut emit: impl FnMut(u32)) {
    let words: Vec<&str> = name
        .core
        .split(' ')
        .filter(|w| !STOP_WORDS.contains(w))
        .collect();
    word_keys(&words, &mut emit);
    // `Müller Bakrey` must still meet `Mueller Bakery` (a typo beside a spelled-out letter), and
    // `Aasgaard` meet `Asgard` (two spelled-out letters in one word).
    for reading in [name.spelled.clone(), fold_spelled(&name.core)]
        .into_iter()
        .flatten()
    {
        let words: Vec<&str> = reading
            .split(' ')
            .filter(|w| !STOP_WORDS.contains(w))
            .collect();
        word_keys(&words, &mut emit);
    }
    for expanded in ambiguous_readings(&words) {
        word_keys(&expanded, &mut emit);
    }
}

/// At most this many ambiguous abbreviations of one name are expanded for blocking (three
/// meanings each: 63 readings at most).
const MAX_AMBIGUOUS_WORDS: usize = 3;

/// The words with their ambiguous abbreviations read as each combination of meanings, the
/// written words left as they are: `tech dist` gives `technology dist`, `technology
/// distribution`, `tech distribution`… so a name made only of such words (`Tech Dist` /
/// `Technical Distributors`) still meets its expansion.
fn ambiguous_readings<'w>(words: &[&'w str]) -> Vec<Vec<&'w str>> {
    // Most names hold none: answer them without allocating.
    if !words.iter().any(|w| !ambiguous_expansions(w).is_empty()) {
        return Vec::new();
    }
    let mut readings: Vec<Vec<&'w str>> = vec![words.to_vec()];
    let ambiguous = words
        .iter()
        .enumerate()
        .filter(|(_, w)| !ambiguous_expansions(w).is_empty())
        .take(MAX_AMBIGUOUS_WORDS);
    for (at, word) in ambiguous {
        let mut next = Vec::with_capacity(readings.len() * 4);
        for reading in &readings {
            next.push(reading.clone());
            for full in ambiguous_expansions(word) {
                let mut expanded = reading.clone();
                expanded[at] = full;
                next.push(expanded);
            }
        }
        readings = next;
    }
    readings.remove(0);
    readings
}

fn word_keys(words: &[&str], emit: &mut impl FnMut(u32)) {
    let mut variants = Vec::with_capacity(24);
    if words.len() == 1 {
        word_variant_hashes(words[0], &mut variants);
        variants.iter().for_each(|v| emit(fold(v ^ 0x5157)));
        return;
    }
    for pair in words.windows(2) {
        for (typo, exact) in [(pair[0], pair[1]), (pair[1], pair[0])] {
            let exact = fnv(FNV_OFFSET, exact.as_bytes());
            word_variant_hashes(typo, &mut variants);
            for v in &variants {
                // Order-free combination, so `john smith` and `smith john` share keys.
                let (lo, hi) = if *v <= exact {
                    (*v, exact)
                } else {
                    (exact, *v)
                };
                emit(fold(
                    lo.wrapping_mul(31).wrapping_add(hi.rotate_left(17)) ^ 0x2a2a,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::normalize::normalize_name;

    fn keys(raw: &str) -> Vec<u32> {
        let mut out = Vec::new();
        fuzzy_keys(&normalize_name(raw), |k| out.push(k));
        out
    }

    fn share_a_key(a: &str, b: &str) -> bool {
        let kb = keys(b);
        keys(a).iter().any(|k| kb.contains(k))
    }

    #[test]
    fn typos_share_a_blocking_key() {
        for (a, b) in [
            ("Jonh Smith", "John Smith"),
            ("Acme Plumbng", "Acme Plumbing"),
            ("Microsft", "Microsoft"),
            ("Smith John", "John Smith"),
            ("Acme Plumbing & Heating", "Acme Plumbing Heating"),
            ("Acmee Plumbing Heating Co", "Acme Plumbing Heating"),
            ("Acme Tech", "Acme Technology"),
            ("Tech", "Technical"),
            ("Müller Bakery", "Mueller Bakery"),
            ("Müller Bakrey", "Mueller Bakery"),
            ("Aasgaard Landscaping", "Asgard Landscaping"),
            ("Harbor Dist Supply", "Harbor District Supply"),
            ("Tech Dist", "Technical Distributors"),
            ("Assoc Dist", "Associates Distribution"),
            ("Acme Tech Assoc", "Acme Technology Associates"),
        ] {
            assert!(share_a_key(a, b), "{a} / {b}");
        }
        assert!(!share_a_key("Zebra Logistics", "Acme Plumbing"));
        assert!(!share_a_key("Store 1234", "Store 1235"));
    }

    #[test]
    fn index_returns_all_positions_of_a_key() {
        let idx = KeyIndex::build([(7, 1), (3, 0), (7, 5), (9, 2), (7, 1)].into_iter());
        assert_eq!(idx.get(7).collect::<Vec<_>>(), vec![1, 5]);
        assert_eq!(idx.get(3).count(), 1);
        assert_eq!(idx.get(4).count(), 0);
        assert_eq!(idx.get_unless_over(7, 1).count(), 0);
        assert_eq!(hash_key(&["a", "bc"]), hash_key(&["a", "bc"]));
        assert_ne!(hash_key(&["ab", "c"]), hash_key(&["a", "bc"]));
    }
}
