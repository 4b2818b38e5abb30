//! What a query answers, and the per-realm cache of full result lists that makes every page of
//! a query cost its own size rather than its STARTPOSITION.

use std::{collections::HashMap, sync::Arc};

use serde_json::{Map, Value, json};

use super::{
    lock,
    realm::{Kind, Realm},
};

/// Result lists kept per realm; a query shape beyond this clears the cache (clients page one
/// or two shapes at a time, so this only bounds memory).
const MAX_LISTS: usize = 32;

/// The full, ordered Id lists of recent queries (paging clauses left out), valid for one
/// realm version.
#[derive(Debug, Default)]
pub struct ResultCache {
    /// Realm version the lists were computed at.
    version: u64,
    /// Query without paging → matching Ids in answer order.
    lists: HashMap<String, Arc<Vec<u64>>>,
}

/// The cached Id list of a query shape, when the realm has not changed since it was made.
pub fn cached_list(realm: &Realm, key: &str) -> Option<Arc<Vec<u64>>> {
    let cache = lock(&realm.results);
    if cache.version != realm.version() {
        return None;
    }
    cache.lists.get(key).cloned()
}

/// Keeps a query shape's Id list for the realm's current version.
pub fn remember_list(realm: &Realm, key: String, ids: Arc<Vec<u64>>) {
    let mut cache = lock(&realm.results);
    if cache.version != realm.version() || cache.lists.len() >= MAX_LISTS {
        cache.lists.clear();
        cache.version = realm.version();
    }
    cache.lists.insert(key, ids);
}

/// The result of a query. Rows share the realm's records, so a page is copied out under the
/// realm lock in O(page) and serialised after the lock is released.
pub enum Output {
    /// `SELECT COUNT(*)`
    Count(usize),
    /// One page of `SELECT *`, possibly empty.
    Rows {
        entity: Kind,
        start: usize,
        rows: Vec<Arc<Map<String, Value>>>,
    },
}

impl Output {
    /// Writes the `QueryResponse` object. QBO leaves empty fields out, so an empty page is `{}`.
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Output::Count(n) => serde_json::to_writer(&mut *out, &json!({"totalCount": n})),
            Output::Rows { rows, .. } if rows.is_empty() => {
                out.extend_from_slice(b"{}");
                Ok(())
            }
            Output::Rows {
                entity,
                start,
                rows,
            } => {
                out.extend_from_slice(format!("{{\"{}\":[", entity.name()).as_bytes());
                for (i, row) in rows.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, &**row)?;
                }
                let tail = format!(
                    "],\"startPosition\":{start},\"maxResults\":{}}}",
                    rows.len()
                );
                out.extend_from_slice(tail.as_bytes());
                Ok(())
            }
        }
    }

    /// The `QueryResponse` object as a value (for batch items).
    pub fn to_value(&self) -> Value {
        let mut out = Vec::new();
        match self.write_json(&mut out) {
            Ok(()) => serde_json::from_slice(&out).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }
}
