//! Runs a parsed query against one realm. `Id` and (case-insensitive) `DisplayName` equality go
//! through indexes; other queries scan the realm once per change and keep their ordered result
//! (see `results`), so a page costs its size wherever it starts.

use std::{
    cmp::Ordering,
    sync::{Arc, atomic::Ordering as AtomicOrdering},
};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use super::{
    config::{SimulatorConfig, StringMatch},
    query::{Condition, Literal, Op, Query},
    realm::{Kind, Realm, Record},
    results::{self, Output},
};

/// Looks a dotted path (`MetaData.LastUpdatedTime`) up in an object.
fn lookup<'a>(json: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let first = json.get(parts.next()?)?;
    parts.try_fold(first, |v, p| v.get(p))
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(text, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

/// Parses a `changedSince` or time literal (date, or date-time with offset or `Z`).
pub fn parse_time_literal(text: &str) -> Option<DateTime<Utc>> {
    // An unencoded `+` of an offset arrives as a space.
    parse_time(&text.trim().replace(' ', "+"))
}

fn fold(s: &str, mode: StringMatch) -> String {
    match mode {
        StringMatch::CaseInsensitive => s.to_lowercase(),
        StringMatch::CaseSensitive => s.to_owned(),
    }
}

/// Compares a stored value with a literal; `None` when they cannot be compared.
fn compare(value: &Value, literal: &Literal, field: &str, mode: StringMatch) -> Option<Ordering> {
    match (value, literal) {
        (Value::Bool(b), Literal::Bool(l)) => Some(b.cmp(l)),
        (Value::Bool(b), Literal::Str(s)) => s.parse::<bool>().ok().map(|l| b.cmp(&l)),
        (Value::Number(n), Literal::Num(l)) => n.as_f64()?.partial_cmp(l),
        (Value::Number(n), Literal::Str(s)) => n.as_f64()?.partial_cmp(&s.trim().parse().ok()?),
        (Value::String(s), Literal::Num(l)) => s.parse::<f64>().ok()?.partial_cmp(l),
        (Value::String(s), Literal::Str(l)) => {
            if field.ends_with("Time")
                && let (Some(a), Some(b)) = (parse_time(s), parse_time(l))
            {
                return Some(a.cmp(&b));
            }
            // Ids, SyncTokens and references are numeric strings: compare them as numbers (but
            // never names, where "007" and "7" differ).
            let numeric = field == "Id" || field == "SyncToken" || field.ends_with(".value");
            if let (true, Ok(a), Ok(b)) = (numeric, s.parse::<u64>(), l.parse::<u64>()) {
                return Some(a.cmp(&b));
            }
            Some(fold(s, mode).cmp(&fold(l, mode)))
        }
        _ => None,
    }
}

/// `%` is LIKE's only wildcard in QBO.
fn like(text: &str, pattern: &str) -> bool {
    let parts: Vec<&str> = pattern.split('%').collect();
    if parts.len() == 1 {
        return text == pattern;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

fn matches(json: &Map<String, Value>, cond: &Condition, mode: StringMatch) -> bool {
    let Some(value) = lookup(json, &cond.field) else {
        return false;
    };
    let cmp = |l: &Literal| compare(value, l, &cond.field, mode);
    match cond.op {
        Op::Eq => cmp(&cond.values[0]) == Some(Ordering::Equal),
        Op::Ne => cmp(&cond.values[0]).is_some_and(|o| o != Ordering::Equal),
        Op::Lt => cmp(&cond.values[0]) == Some(Ordering::Less),
        Op::Gt => cmp(&cond.values[0]) == Some(Ordering::Greater),
        Op::Le => cmp(&cond.values[0]).is_some_and(|o| o != Ordering::Greater),
        Op::Ge => cmp(&cond.values[0]).is_some_and(|o| o != Ordering::Less),
        Op::In => cond.values.iter().any(|l| cmp(l) == Some(Ordering::Equal)),
        Op::Like => match (value.as_str(), &cond.values[0]) {
            (Some(text), Literal::Str(pattern)) => like(&fold(text, mode), &fold(pattern, mode)),
            _ => false,
        },
    }
}

/// Ids to look at, when an index can narrow the scan.
fn indexed_candidates(realm: &Realm, q: &Query, mode: StringMatch) -> Option<Vec<u64>> {
    let equality = |c: &&Condition| matches!(c.op, Op::Eq | Op::In);
    if let Some(c) = q
        .conditions
        .iter()
        .filter(equality)
        .find(|c| c.field == "Id")
    {
        let mut ids: Vec<u64> = c.values.iter().filter_map(literal_id).collect();
        ids.sort_unstable();
        ids.dedup();
        return Some(ids);
    }
    if mode == StringMatch::CaseInsensitive
        && let Some(c) = q
            .conditions
            .iter()
            .filter(equality)
            .find(|c| c.field == "DisplayName")
    {
        let mut ids: Vec<u64> = c
            .values
            .iter()
            .filter_map(|l| match l {
                Literal::Str(name) => realm
                    .name_holder(name)
                    .filter(|h| h.0 == q.entity)
                    .map(|h| h.1),
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        return Some(ids);
    }
    None
}

fn literal_id(l: &Literal) -> Option<u64> {
    match l {
        Literal::Str(s) => s.parse().ok(),
        Literal::Num(n) if *n >= 0.0 => Some(*n as u64),
        _ => None,
    }
}

fn order_records(records: &mut [(u64, &Record)], order: &[(String, bool)], mode: StringMatch) {
    records.sort_by(|(_, a), (_, b)| {
        for (field, desc) in order {
            let (x, y) = (lookup(&a.json, field), lookup(&b.json, field));
            let o = match (x, y) {
                (Some(x), Some(y)) => value_literal(y)
                    .and_then(|l| compare(x, &l, field, mode))
                    .unwrap_or(Ordering::Equal),
                (Some(_), None) => Ordering::Greater,
                (None, Some(_)) => Ordering::Less,
                (None, None) => Ordering::Equal,
            };
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

fn value_literal(v: &Value) -> Option<Literal> {
    match v {
        Value::String(s) => Some(Literal::Str(s.clone())),
        Value::Number(n) => n.as_f64().map(Literal::Num),
        Value::Bool(b) => Some(Literal::Bool(*b)),
        _ => None,
    }
}

fn with_active_default(q: &Query) -> Vec<Condition> {
    let mut conditions = q.conditions.clone();
    // Plain queries see active records only; naming Active in WHERE lifts that.
    if !conditions.iter().any(|c| c.field == "Active") {
        conditions.push(Condition {
            field: "Active".into(),
            op: Op::Eq,
            values: vec![Literal::Bool(true)],
        });
    }
    conditions
}

fn passes(record: &Record, conditions: &[Condition], mode: StringMatch) -> bool {
    !record.gone && conditions.iter().all(|c| matches(&record.json, c, mode))
}

fn natural_order(q: &Query) -> bool {
    q.order.is_empty() || (q.order.len() == 1 && q.order[0].0 == "Id" && !q.order[0].1)
}

/// Ids of the candidates that pass every condition, in the query's order.
fn matching_ids<'a>(
    realm: &Realm,
    q: &Query,
    conditions: &[Condition],
    mode: StringMatch,
    candidates: impl Iterator<Item = (u64, &'a Record)>,
) -> Vec<u64> {
    let mut examined = 0;
    let passing = candidates
        .inspect(|_| examined += 1)
        .filter(|(_, r)| passes(r, conditions, mode));
    let ids = if natural_order(q) {
        passing.map(|(id, _)| id).collect()
    } else {
        let mut rows: Vec<(u64, &Record)> = passing.collect();
        order_records(&mut rows, &q.order, mode);
        rows.into_iter().map(|(id, _)| id).collect()
    };
    realm.examined.fetch_add(examined, AtomicOrdering::Relaxed);
    ids
}

/// The first `max` matches in Id order, scanning no further than needed.
fn first_matches(
    realm: &Realm,
    q: &Query,
    conditions: &[Condition],
    mode: StringMatch,
    max: usize,
) -> Vec<u64> {
    let all = realm.all(q.entity).iter().map(|(id, r)| (*id, r));
    let mut examined = 0;
    let ids = all
        .inspect(|_| examined += 1)
        .filter(|(_, r)| passes(r, conditions, mode))
        .map(|(id, _)| id)
        .take(max)
        .collect();
    realm.examined.fetch_add(examined, AtomicOrdering::Relaxed);
    ids
}

/// Runs a query. Its full result is an ordered Id list, cached per realm version, so a page
/// costs O(page size · log n) wherever it starts; only the first query of a shape after a
/// change scans the whole realm.
pub fn run(realm: &Realm, q: &Query, config: &SimulatorConfig) -> Output {
    let mode = config.string_match;
    let conditions = with_active_default(q);
    let max = q
        .max
        .unwrap_or(config.default_page_size)
        .min(config.max_page_size);
    let all = realm.all(q.entity);
    let key = format!("{:?}|{conditions:?}|{:?}", q.entity, q.order);
    let ids = if let Some(ids) = indexed_candidates(realm, q, mode) {
        let found = ids
            .into_iter()
            .filter_map(|id| all.get(&id).map(|r| (id, r)));
        Arc::new(matching_ids(realm, q, &conditions, mode, found))
    } else if let Some(ids) = results::cached_list(realm, &key) {
        ids
    } else if q.start == 1 && natural_order(q) && !q.count {
        // A first page needs no full list: a write followed by a first-page query then stays
        // cheap on a large realm.
        Arc::new(first_matches(realm, q, &conditions, mode, max))
    } else {
        let scan = all.iter().map(|(id, r)| (*id, r));
        let ids = Arc::new(matching_ids(realm, q, &conditions, mode, scan));
        results::remember_list(realm, key, Arc::clone(&ids));
        ids
    };
    if q.count {
        return Output::Count(ids.len());
    }
    let page = ids.get(q.start - 1..).unwrap_or_default();
    let rows: Vec<_> = page
        .iter()
        .take(max)
        .filter_map(|id| all.get(id).map(|r| Arc::clone(&r.json)))
        .collect();
    realm
        .examined
        .fetch_add(rows.len() as u64, AtomicOrdering::Relaxed);
    Output::Rows {
        entity: q.entity,
        start: q.start,
        rows,
    }
}

/// Every record of `kind` changed at or after `since`, for CDC (merged-away ones included).
pub fn changed_since(realm: &Realm, kind: Kind, since: DateTime<Utc>) -> Vec<&Record> {
    realm
        .all(kind)
        .values()
        .filter(|r| r.updated >= since)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn like_supports_percent_only() {
        assert!(like("o'brien & sons", "%brien%"));
        assert!(like("abc", "a%"));
        assert!(like("abc", "%c"));
        assert!(!like("abc", "%d%"));
        assert!(!like("a_c", "abc"));
        assert!(like("aXbXc", "a%b%c"));
        assert!(!like("ab", "a%b%b"));
    }
}
