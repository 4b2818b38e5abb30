//! What a query page costs, counted in records examined (`Realm::examined`), so the proof does
//! not depend on how fast the test machine is.

use std::sync::atomic::Ordering;

use chrono::Utc;
use serde_json::{Value, json};

use super::{SimulatorConfig, admin, customers, query, realm::Realm, results::Output, select};

/// A realm of `n` customers with Ids 1..=n; every tenth is inactive.
fn realm_of(n: u64, config: &SimulatorConfig) -> Realm {
    let mut realm = Realm::default();
    let customers: Vec<Value> = (1..=n)
        .map(|i| json!({"DisplayName": format!("Customer {i:06}"), "Active": i % 10 != 0}))
        .collect();
    admin::seed(
        &mut realm,
        Value::Array(customers),
        Utc::now(),
        config.utc_offset,
        config.duplicate_detail,
    )
    .expect("seeding");
    realm
}

/// Runs a statement; returns the Ids of the page (or the count as one number) and the records
/// the query examined.
fn page(realm: &Realm, config: &SimulatorConfig, text: &str) -> (Vec<u64>, u64) {
    let before = realm.examined.load(Ordering::Relaxed);
    let output = select::run(realm, &query::parse(text).expect("parses"), config);
    let ids = match output {
        Output::Count(n) => vec![n as u64],
        Output::Rows { rows, .. } => rows
            .iter()
            .map(|r| r["Id"].as_str().expect("Id").parse().expect("numeric Id"))
            .collect(),
    };
    (ids, realm.examined.load(Ordering::Relaxed) - before)
}

fn all_states(start: u64) -> String {
    format!(
        "SELECT * FROM Customer WHERE Active IN (true, false) STARTPOSITION {start} MAXRESULTS 1000"
    )
}

#[test]
fn the_last_page_costs_what_the_first_does() {
    let config = SimulatorConfig::default();
    let realm = realm_of(20_000, &config);
    let count = "SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)";
    let (total, examined) = page(&realm, &config, count);
    assert_eq!(total, vec![20_000]);
    assert_eq!(examined, 20_000, "the count scans the realm once");
    let (last, last_cost) = page(&realm, &config, &all_states(19_001));
    assert_eq!(last, (19_001..=20_000).collect::<Vec<_>>());
    let (first, first_cost) = page(&realm, &config, &all_states(1));
    assert_eq!(first, (1..=1_000).collect::<Vec<_>>());
    // Before the result cache the last page walked 20,000 records and the first 1,000.
    assert_eq!((first_cost, last_cost), (1_000, 1_000));
}

#[test]
fn filtered_pages_in_any_order_scan_the_realm_once() {
    let config = SimulatorConfig::default();
    let realm = realm_of(20_000, &config);
    let active: Vec<u64> = (1..=20_000).filter(|i| i % 10 != 0).collect();
    let mut examined = 0;
    // Pages read out of order, as concurrent workers do; the default filter is Active = true.
    for start in [17_001, 1_001, 9_001, 1, 17_001] {
        let text =
            format!("SELECT * FROM Customer ORDERBY Id STARTPOSITION {start} MAXRESULTS 1000");
        let (ids, cost) = page(&realm, &config, &text);
        let expected: Vec<u64> = active.iter().copied().skip(start - 1).take(1000).collect();
        assert_eq!(ids, expected, "page at {start}");
        examined += cost;
    }
    assert_eq!(
        examined,
        20_000 + 5 * 1_000,
        "one scan, then only the pages"
    );
    let (past_end, _) = page(&realm, &config, &all_states(20_001));
    assert!(past_end.is_empty());
}

#[test]
fn a_change_invalidates_cached_results() {
    let config = SimulatorConfig::default();
    let mut realm = realm_of(50, &config);
    let text = "SELECT * FROM Customer ORDERBY DisplayName DESC STARTPOSITION 41 MAXRESULTS 10";
    let (before, _) = page(&realm, &config, text);
    assert_eq!(before, vec![5, 4, 3, 2, 1]);
    customers::edit_as_user(
        &mut realm,
        "3",
        json!({"Active": false}),
        Utc::now(),
        &config,
    )
    .expect("edit");
    let (after, _) = page(&realm, &config, text);
    assert_eq!(
        after,
        vec![5, 4, 2, 1],
        "the cached list is stale once the realm changes"
    );
    let (count, _) = page(&realm, &config, "SELECT COUNT(*) FROM Customer");
    assert_eq!(count, vec![44]);
}

#[test]
fn a_first_page_after_a_change_stops_scanning_early() {
    let config = SimulatorConfig::default();
    let realm = realm_of(5_000, &config);
    let (ids, examined) = page(&realm, &config, "SELECT * FROM Customer MAXRESULTS 10");
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 11]);
    assert_eq!(examined, 11 + 10, "eleven scanned, ten copied out");
}
