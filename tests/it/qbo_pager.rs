//! The customer pager against the simulator: pages in `ORDERBY Id` order stay stable while the
//! realm changes between page reads.

use std::collections::{HashMap, HashSet};

use qbo_sim::SimulatorConfig;
use qbo_sync::quickbooks::Lane;
use serde_json::json;

use crate::qbo_harness::{Harness, harness};

async fn paged_harness() -> Harness {
    let h = harness(SimulatorConfig::default(), |c| c.qbo_page_size = 100).await;
    // Ids 1..=250: they cross from two to three digits, where a string order would differ.
    let names: Vec<(String, bool)> = (0..250)
        .map(|i| (format!("Existing {i:04}"), i % 7 != 3))
        .collect();
    let refs: Vec<(&str, bool)> = names.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    h.seed(&refs);
    h
}

fn ids_of(h: &Harness, active_only: bool) -> HashSet<String> {
    h.sim
        .customers(h.realm.as_str())
        .iter()
        .filter(|c| !active_only || c["Active"] == true)
        .map(|c| c["Id"].as_str().unwrap().to_owned())
        .collect()
}

/// Creates customers whose names sort before every existing one: in a DisplayName order they
/// would shift every page still to come.
fn create_between_pages(h: &Harness, round: usize) {
    let fresh: Vec<_> = (0..40)
        .map(|i| json!({"DisplayName": format!("AAA new {round} {i:02}"), "Active": true}))
        .collect();
    h.sim
        .seed_customers(h.realm.as_str(), json!(fresh))
        .unwrap();
}

/// How often each Id was handed out, page by page, with `between` run after every page.
async fn read_counting(
    h: &Harness,
    include_inactive: bool,
    read_ahead: usize,
    mut between: impl FnMut(usize),
) -> HashMap<String, usize> {
    let mut pager = h
        .client
        .customer_pager(&h.tenant, include_inactive, Lane::Background)
        .read_ahead(read_ahead);
    let mut seen = HashMap::new();
    let mut round = 0;
    while let Some(page) = pager.next_page().await.unwrap() {
        assert!(page.customers.len() <= 100);
        for c in page.customers {
            *seen.entry(c.id).or_insert(0) += 1;
        }
        round += 1;
        between(round);
    }
    seen
}

#[tokio::test]
async fn customers_created_between_pages_never_make_an_existing_one_skipped_or_read_twice() {
    let h = paged_harness().await;
    for read_ahead in [1, 3] {
        let existing = ids_of(&h, false);
        let seen = read_counting(&h, true, read_ahead, |round| {
            create_between_pages(&h, read_ahead * 100 + round);
        })
        .await;
        for id in &existing {
            assert_eq!(seen.get(id), Some(&1), "read ahead {read_ahead}: Id {id}");
        }
        assert!(
            seen.values().all(|n| *n == 1),
            "read ahead {read_ahead}: a customer read twice"
        );
    }
    let queries: Vec<String> = h
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/query"))
        .filter_map(|r| r.query)
        .collect();
    assert!(!queries.is_empty());
    assert!(
        queries
            .iter()
            .all(|q| q.contains("ORDERBY%20Id%20STARTPOSITION")),
        "{queries:?}"
    );
}

#[tokio::test]
async fn a_customer_reactivated_between_pages_is_not_handed_out_twice() {
    let h = paged_harness().await;
    let active = ids_of(&h, true);
    // Reactivating a customer that sorts before the second page pushes that page's first
    // customer back onto the end of the first: the pager drops the repeat.
    let seen = read_counting(&h, false, 1, |round| {
        if round == 1 {
            h.sim
                .edit_customer(h.realm.as_str(), "4", json!({"Active": true}))
                .unwrap();
        }
    })
    .await;
    assert!(seen.values().all(|n| *n == 1), "a customer read twice");
    for id in &active {
        assert_eq!(seen.get(id), Some(&1), "Id {id}");
    }
}
