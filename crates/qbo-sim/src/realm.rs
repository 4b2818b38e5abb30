//! One company's data: customers, vendors and employees, the case-insensitive name index shared
//! by all three, and the `requestid` replay cache.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, atomic::AtomicU64},
};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::results::ResultCache;

/// The three name-list entities whose DisplayNames must be unique together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `Customer`
    Customer,
    /// `Vendor`
    Vendor,
    /// `Employee`
    Employee,
}

impl Kind {
    /// The entity name as QBO spells it in JSON and queries.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Customer => "Customer",
            Kind::Vendor => "Vendor",
            Kind::Employee => "Employee",
        }
    }

    /// Parses an entity name, ignoring case (QBO accepts `from customer` in practice).
    pub fn parse(name: &str) -> Option<Kind> {
        [Kind::Customer, Kind::Vendor, Kind::Employee]
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One stored entity: its QBO JSON plus the fields the simulator consults often.
#[derive(Debug, Clone)]
pub struct Record {
    /// The object exactly as QBO would send it; shared so a query can copy a page out of the
    /// realm lock cheaply and serialise it after releasing the lock.
    pub json: Arc<Map<String, Value>>,
    /// `MetaData.LastUpdatedTime`, for CDC.
    pub updated: DateTime<Utc>,
    /// Merged away under [`super::MergeVariant::Deleted`] or `Missing`: invisible to reads
    /// and queries.
    pub gone: bool,
}

impl Record {
    /// The object for changing in place (copied first if a query still holds it).
    pub fn json_mut(&mut self) -> &mut Map<String, Value> {
        Arc::make_mut(&mut self.json)
    }

    /// `Active`, true when absent.
    pub fn active(&self) -> bool {
        self.json
            .get("Active")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }

    /// `DisplayName`, empty when absent.
    pub fn display_name(&self) -> &str {
        self.json
            .get("DisplayName")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The SyncToken as a number.
    pub fn sync_token(&self) -> u64 {
        self.json
            .get("SyncToken")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

/// A cached answer for `requestid` replay.
#[derive(Debug, Clone)]
pub struct StoredAnswer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

/// Everything one realm holds.
#[derive(Debug, Default)]
pub struct Realm {
    entities: [BTreeMap<u64, Record>; 3],
    next_id: [u64; 3],
    /// Lower-cased DisplayName → holder; inactive records included, merged-away ones not.
    names: HashMap<String, (Kind, u64)>,
    /// Parent customer id → its direct sub-customers.
    pub children: HashMap<u64, Vec<u64>>,
    /// `requestid` → the answer first given.
    pub replays: HashMap<String, StoredAnswer>,
    /// Bumped on every change, so cached query results know when they are stale.
    version: u64,
    /// The matching Ids of recently run queries, in answer order (see `select::run`).
    pub results: Mutex<ResultCache>,
    /// Records a query has examined, so tests can check what a page costs.
    pub examined: AtomicU64,
}

/// The case-folded key of the name index.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

impl Realm {
    /// The records of one kind, ordered by Id.
    pub fn all(&self, kind: Kind) -> &BTreeMap<u64, Record> {
        &self.entities[kind.index()]
    }

    /// Changes so far; any write moves it.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// One record, merged-away ones included.
    pub fn get(&self, kind: Kind, id: u64) -> Option<&Record> {
        self.entities[kind.index()].get(&id)
    }

    /// One record for changing in place; the caller keeps the name index right.
    pub fn get_mut(&mut self, kind: Kind, id: u64) -> Option<&mut Record> {
        self.version += 1;
        self.entities[kind.index()].get_mut(&id)
    }

    /// Who holds a DisplayName, compared case-insensitively.
    pub fn name_holder(&self, name: &str) -> Option<(Kind, u64)> {
        self.names.get(&name_key(name)).copied()
    }

    /// Takes the next Id of a kind; Ids are sequential per realm and kind, as in QBO.
    pub fn allocate_id(&mut self, kind: Kind) -> u64 {
        let next = &mut self.next_id[kind.index()];
        *next = (*next).max(1);
        let id = *next;
        *next += 1;
        id
    }

    /// Stores a record under its Id and indexes its name.
    pub fn insert(&mut self, kind: Kind, id: u64, record: Record) {
        self.version += 1;
        let next = &mut self.next_id[kind.index()];
        *next = (*next).max(id + 1);
        if !record.gone {
            self.names
                .insert(name_key(record.display_name()), (kind, id));
        }
        self.entities[kind.index()].insert(id, record);
    }

    /// Moves a record's name in the index (on rename or merge).
    pub fn reindex(&mut self, kind: Kind, id: u64, old: Option<&str>, new: Option<&str>) {
        self.version += 1;
        if let Some(old) = old
            && self.names.get(&name_key(old)) == Some(&(kind, id))
        {
            self.names.remove(&name_key(old));
        }
        if let Some(new) = new {
            self.names.insert(name_key(new), (kind, id));
        }
    }
}

/// Formats a time as QBO does: ISO-8601 with the company's offset, e.g. `2016-05-17T10:36:03-07:00`.
pub fn format_time(time: DateTime<Utc>, offset: FixedOffset) -> String {
    time.with_timezone(&offset)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// The envelope `time`, with milliseconds as QBO sends it.
pub fn format_envelope_time(time: DateTime<Utc>, offset: FixedOffset) -> String {
    time.with_timezone(&offset)
        .to_rfc3339_opts(SecondsFormat::Millis, false)
}
