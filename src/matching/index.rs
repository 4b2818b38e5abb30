//! Blocking indexes: compact multimaps from a hashed key to record positions.
//!
//! Each entry is one `u64` (32-bit key hash, 32-bit position), sorted once, so an index over a
//! million customers is a few flat arrays instead of a million small `Vec`s. Hash collisions only
//! add candidates; callers re-check the real key before trusting an exact match.

use super::normalize::{NormalizedName, STOP_WORDS, has_digit};

/// Keys with more entries than this are too common to narrow anything down (e.g. `john smith`
/// variants) and are skipped by fuzzy blocking; exact keys are never capped.
pub const FUZZY_POSTING_CAP: usize = 64;

/// A multimap from key hash to positions.
#[derive(Debug, Default)]
pub struct KeyIndex {
    entries: Vec<u64>,
}

/// FNV-1a, folded to 32 bits: fast, stable across runs, good enough for blocking.
pub fn hash_key(parts: &[&str]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h = (h ^ 0x1f).wrapping_mul(0x0100_0000_01b3);
        }
        for b in part.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    (h ^ (h >> 32)) as u32
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
        Self { entries }
    }

    /// Positions filed under `key` (possibly including hash collisions).
    pub fn get(&self, key: u32) -> impl Iterator<Item = u32> + '_ {
        let lo = u64::from(key) << 32;
        let start = self.entries.partition_point(|e| *e < lo);
        self.entries[start..]
            .iter()
            .take_while(move |e| (*e >> 32) as u32 == key)
            .map(|e| *e as u32)
    }

    /// How many positions are filed under `key`.
    pub fn count(&self, key: u32) -> usize {
        self.get(key).count()
    }
}

/// A word and its one-deletion variants: two words one edit apart (insert, delete, substitute,
/// swap) always share one of them. Short words and words with digits must match exactly.
fn word_variants(word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = vec![word.to_string()];
    if chars.len() < 4 || chars.len() > 20 || has_digit(word) {
        return out;
    }
    for skip in 0..chars.len() {
        let v: String = chars
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, c)| c)
            .collect();
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Fuzzy blocking keys of a name. Multi-word names: each pair of neighbouring content words,
/// order ignored, with one of the two allowed one typo. One-word names: the word's variants.
pub fn fuzzy_keys(name: &NormalizedName, mut emit: impl FnMut(u32)) {
    let words: Vec<&str> = name
        .core
        .split(' ')
        .filter(|w| !STOP_WORDS.contains(w))
        .collect();
    if words.len() == 1 {
        for v in word_variants(words[0]) {
            emit(hash_key(&["1", &v]));
        }
        return;
    }
    for pair in words.windows(2) {
        for (typo, exact) in [(pair[0], pair[1]), (pair[1], pair[0])] {
            for v in word_variants(typo) {
                let (x, y) = if v.as_str() <= exact {
                    (v.as_str(), exact)
                } else {
                    (exact, v.as_str())
                };
                emit(hash_key(&["2", x, y]));
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
        assert_eq!(idx.count(3), 1);
        assert_eq!(idx.count(4), 0);
        assert_eq!(hash_key(&["a", "bc"]), hash_key(&["a", "bc"]));
        assert_ne!(hash_key(&["ab", "c"]), hash_key(&["a", "bc"]));
    }
}
