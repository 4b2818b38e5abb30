//! Runs a parsed query against one realm. Linear in the records scanned per page at worst;
//! `Id` and (case-insensitive) `DisplayName` equality go through indexes instead.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value, json};

use super::{
    config::{SimulatorConfig, StringMatch},
    lock,
    query::{Condition, Literal, Op, Query},
    realm::{Cursor, Kind, Realm, Record},
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

/// The result of a query, borrowing the realm's records (serialised without copying).
pub enum Output<'a> {
    /// `SELECT COUNT(*)`
    Count(usize),
    /// One page of `SELECT *`, possibly empty.
    Rows {
        entity: Kind,
        start: usize,
        rows: Vec<&'a Map<String, Value>>,
    },
}

impl Output<'_> {
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
                out.extend_from_slice(format!("{{\"{}\":", entity.name()).as_bytes());
                serde_json::to_writer(&mut *out, rows)?;
                let tail = format!(",\"startPosition\":{start},\"maxResults\":{}}}", rows.len());
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

/// Runs a query. Pages read one after another in Id order resume from a cursor, so reading a
/// whole realm page by page stays linear.
pub fn run<'a>(realm: &'a Realm, q: &Query, config: &SimulatorConfig) -> Output<'a> {
    let mode = config.string_match;
    let conditions = with_active_default(q);
    let keep =
        |r: &(u64, &Record)| !r.1.gone && conditions.iter().all(|c| matches(&r.1.json, c, mode));
    let all = realm.all(q.entity);
    let indexed = indexed_candidates(realm, q, mode);
    let natural =
        q.order.is_empty() || (q.order.len() == 1 && q.order[0].0 == "Id" && !q.order[0].1);
    let key = format!("{:?}|{conditions:?}", q.entity);
    let cursor = (natural && indexed.is_none() && !q.count)
        .then(|| lock(&realm.cursors).get(&key).copied())
        .flatten()
        .filter(|c| c.version == realm.version() && c.next_start == q.start);
    let (skip, from_id) = cursor.map_or((q.start - 1, 0), |c| (0, c.next_id));
    let candidates: Box<dyn Iterator<Item = (u64, &Record)>> = match indexed {
        Some(ids) => Box::new(
            ids.into_iter()
                .filter_map(|id| all.get(&id).map(|r| (id, r))),
        ),
        None => Box::new(all.range(from_id..).map(|(id, r)| (*id, r))),
    };
    let filtered = candidates.filter(keep);
    if q.count {
        return Output::Count(filtered.count());
    }
    let max = q
        .max
        .unwrap_or(config.default_page_size)
        .min(config.max_page_size);
    let page: Vec<(u64, &Record)> = if natural {
        filtered.skip(skip).take(max).collect()
    } else {
        let mut rows: Vec<(u64, &Record)> = filtered.collect();
        order_records(&mut rows, &q.order, mode);
        rows.into_iter().skip(q.start - 1).take(max).collect()
    };
    if natural && page.len() == max {
        remember_cursor(
            realm,
            key,
            q.start + max,
            page.last().map_or(0, |r| r.0 + 1),
        );
    }
    let rows = page.into_iter().map(|(_, r)| &r.json).collect();
    Output::Rows {
        entity: q.entity,
        start: q.start,
        rows,
    }
}

fn remember_cursor(realm: &Realm, key: String, next_start: usize, next_id: u64) {
    let mut cursors = lock(&realm.cursors);
    if cursors.len() >= 64 {
        cursors.clear();
    }
    let cursor = Cursor {
        version: realm.version(),
        next_start,
        next_id,
    };
    cursors.insert(key, cursor);
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
