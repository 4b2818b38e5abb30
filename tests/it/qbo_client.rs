//! Contract tests of the QBO client against the simulator (real HTTP, real PostgreSQL):
//! reads, queries, updates, CDC and retry rules.

use std::time::Duration;

use chrono::Utc;
use qbo_sim::{FaultConfig, SimulatorConfig};
use qbo_sync::{
    domain::DigitCustomerId,
    quickbooks::{CreateOutcome, CustomerPatch, Lane, NewCustomer, QboError, RequestId},
};
use serde_json::json;

use crate::qbo_harness::{Harness, harness};

const HOSTILE: &[&str] = &[
    r"O'Brien \ Sons' OR 1=1",
    "O\u{2019}Neil \u{201C}Smart\u{201D} Quotes",
    r"Back\\slash\ End\",
    "100% Fun & Games #1 + more = fun?",
    "' OR ''='",
];

pub fn new_customer(name: &str) -> NewCustomer {
    NewCustomer {
        display_name: name.to_owned(),
        company_name: Some("Co".to_owned()),
        ..NewCustomer::default()
    }
}

pub fn rid(h: &Harness, digit_id: &str) -> RequestId {
    RequestId::for_create(&h.tenant, &DigitCustomerId::parse(digit_id).unwrap(), 0)
}

pub async fn default_harness() -> Harness {
    harness(SimulatorConfig::default(), |_| {}).await
}

#[tokio::test]
async fn pages_through_customers_and_includes_inactive_on_request() {
    let h = harness(SimulatorConfig::default(), |c| c.qbo_page_size = 100).await;
    let names: Vec<(String, bool)> = (0..250)
        .map(|i| (format!("Customer {i:04}"), i % 5 != 0))
        .collect();
    let refs: Vec<(&str, bool)> = names.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    h.seed(&refs);
    let active = h.all_customers(false, Lane::Background).await;
    let all = h.all_customers(true, Lane::Background).await;
    assert_eq!(active.len(), 200);
    assert!(active.iter().all(|c| c.active));
    assert_eq!(all.len(), 250);
    let mut ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 250, "pages must not overlap");
    assert_eq!(
        h.client
            .count_customers(&h.tenant, true, Lane::Interactive)
            .await
            .unwrap(),
        250
    );
    // Every API call carried minorversion=75.
    let api: Vec<_> = h
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v3/"))
        .collect();
    assert!(api.len() >= 6);
    assert!(
        api.iter().all(|r| r.minorversion.as_deref() == Some("75")),
        "{api:?}"
    );
    let query = api.iter().find(|r| r.path.ends_with("/query")).unwrap();
    assert!(
        query
            .query
            .as_deref()
            .unwrap()
            .contains("STARTPOSITION%201%20MAXRESULTS%20100")
    );
}

#[tokio::test]
async fn hostile_names_round_trip_through_create_and_queries() {
    let h = default_harness().await;
    h.seed(&[("O'Brien", true), ("Sons", true)]);
    for (i, name) in HOSTILE.iter().enumerate() {
        let outcome = h.create_named(name, &format!("d{i}")).await;
        let CreateOutcome::Created(created) = outcome else {
            panic!("{name}: {outcome:?}")
        };
        assert_eq!(created.display_name, *name);
        let holders = h
            .client
            .find_name_holders(&h.tenant, name, Lane::Interactive)
            .await
            .unwrap();
        assert_eq!(holders.len(), 1, "{name}: {holders:?}");
        assert_eq!(holders[0].id, created.id);
        assert_eq!(holders[0].display_name, *name);
        let read = h
            .client
            .read_customer(&h.tenant, &created.id, Lane::Interactive)
            .await
            .unwrap();
        assert_eq!(read.display_name, *name);
    }
    // The injection attempt did not widen the query to other customers.
    let obrien = h
        .client
        .find_name_holders(&h.tenant, "O'Brien", Lane::Interactive)
        .await
        .unwrap();
    assert_eq!(obrien.len(), 1);
}

#[tokio::test]
async fn stale_sync_token_is_reread_merged_and_retried() {
    let h = default_harness().await;
    h.seed(&[("Stale Co", true)]);
    let before = h.all_customers(false, Lane::Interactive).await.remove(0);
    // A user edits another field in the QBO UI meanwhile: the SyncToken moves on.
    h.sim
        .edit_customer(
            h.realm.as_str(),
            &before.id,
            json!({"FamilyName": "UserEdit"}),
        )
        .unwrap();
    let patch = CustomerPatch {
        company_name: Some("Ours".to_owned()),
        ..CustomerPatch::default()
    };
    let after = h
        .client
        .update_customer(
            &h.tenant,
            &before.id,
            &before.sync_token,
            &patch,
            Lane::Interactive,
        )
        .await
        .unwrap();
    assert_eq!(after.company_name.as_deref(), Some("Ours"));
    assert_eq!(
        after.family_name.as_deref(),
        Some("UserEdit"),
        "the user's change survives"
    );
    assert_ne!(after.sync_token, before.sync_token);
    let stored = h.sim.customer(h.realm.as_str(), &before.id).unwrap();
    assert_eq!(stored["CompanyName"], "Ours");
    assert_eq!(stored["FamilyName"], "UserEdit");
    let posts = h
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/customer"))
        .count();
    assert_eq!(posts, 2, "one stale attempt, one retry");
}

#[tokio::test]
async fn cdc_returns_changed_customers_and_server_time() {
    let h = default_harness().await;
    h.seed(&[("Cdc One", true), ("Cdc Two", true)]);
    let since = Utc::now() - chrono::Duration::hours(1);
    let changes = h
        .client
        .customer_changes(&h.tenant, since, Lane::Background)
        .await
        .unwrap();
    let mut names: Vec<_> = changes
        .customers
        .iter()
        .map(|c| c.display_name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["Cdc One", "Cdc Two"]);
    assert!(!changes.truncated);
    let server_time = changes.server_time.expect("time");
    assert!((server_time - Utc::now()).num_seconds().abs() < 60);
}

#[tokio::test]
async fn server_error_500_is_retried_exactly_once() {
    let h = default_harness().await;
    h.seed(&[("Five Hundred", true)]);
    h.sim.set_faults(FaultConfig {
        server_error_rate: 1.0,
        server_error_status: 500,
        ..FaultConfig::default()
    });
    let before = h.sim.stats().requests;
    let result = h
        .client
        .read_customer(&h.tenant, "1", Lane::Interactive)
        .await;
    assert!(
        matches!(result, Err(QboError::Server { status: 500, .. })),
        "{result:?}"
    );
    assert_eq!(h.sim.stats().requests - before, 2);
}

#[tokio::test]
async fn outage_503_backs_off_until_the_budget_then_reports_throttle_like() {
    let h = harness(SimulatorConfig::default(), |c| {
        c.qbo_throttle_budget = Duration::from_millis(400)
    })
    .await;
    h.sim.set_faults(FaultConfig {
        server_error_rate: 1.0,
        server_error_status: 503,
        ..FaultConfig::default()
    });
    let result = h
        .client
        .read_customer(&h.tenant, "1", Lane::Interactive)
        .await;
    let error = result.unwrap_err();
    assert!(error.is_throttle_like(), "{error:?}");
    assert!(h.sim.stats().requests >= 3, "retried with backoff");
}

#[tokio::test]
async fn retry_after_is_honoured_instead_of_hammering() {
    let h = default_harness().await;
    h.seed(&[("Patient Co", true)]);
    h.sim.set_faults(FaultConfig {
        throttle_rate: 1.0,
        retry_after_secs: Some(1),
        ..FaultConfig::default()
    });
    let before = h.sim.stats().requests;
    let started = std::time::Instant::now();
    let read = {
        let (client, tenant) = (&h.client, &h.tenant);
        async move {
            client
                .count_customers(tenant, false, Lane::Interactive)
                .await
        }
    };
    let lift = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        h.sim.set_faults(FaultConfig::default());
    };
    let (result, ()) = tokio::join!(read, lift);
    assert_eq!(result.unwrap(), 1);
    let attempts = h.sim.stats().requests - before;
    assert!(started.elapsed() >= Duration::from_millis(1500));
    // With a 20 ms backoff base, ignoring Retry-After would have meant dozens of attempts.
    assert!(attempts <= 3, "{attempts} attempts in 1.5 s");
}

#[tokio::test]
async fn merged_away_customers_show_as_gone_and_sub_customers_get_their_parent() {
    let config = SimulatorConfig {
        merge_variant: qbo_sim::MergeVariant::Deleted,
        ..SimulatorConfig::default()
    };
    let h = harness(config, |_| {}).await;
    h.seed(&[("Survivor Inc", true), ("Absorbed Inc", true)]);
    let all = h.all_customers(true, Lane::Interactive).await;
    let id = |name: &str| {
        all.iter()
            .find(|c| c.display_name == name)
            .unwrap()
            .id
            .clone()
    };
    let (survivor, absorbed) = (id("Survivor Inc"), id("Absorbed Inc"));
    h.sim
        .merge_customers(h.realm.as_str(), &absorbed, &survivor);
    let read = h
        .client
        .read_customer(&h.tenant, &absorbed, Lane::Interactive)
        .await;
    assert!(matches!(read, Err(QboError::NotFound)), "{read:?}");
    let changes = h
        .client
        .customer_changes(
            &h.tenant,
            Utc::now() - chrono::Duration::hours(1),
            Lane::Background,
        )
        .await
        .unwrap();
    let gone = changes
        .customers
        .iter()
        .find(|c| c.id == absorbed)
        .expect("absorbed in CDC");
    assert!(gone.deleted);
    // A sub-customer: Job, ParentRef, and FullyQualifiedName Parent:Child.
    let child = NewCustomer {
        parent_id: Some(survivor.clone()),
        ..new_customer("Site Works")
    };
    let CreateOutcome::Created(created) = h
        .client
        .create_customer(&h.tenant, &child, &rid(&h, "sub"), Lane::Interactive)
        .await
        .unwrap()
    else {
        panic!("not created")
    };
    assert!(created.is_job);
    assert_eq!(created.parent_id.as_deref(), Some(survivor.as_str()));
    assert_eq!(
        created.fully_qualified_name.as_deref(),
        Some("Survivor Inc:Site Works")
    );
    assert_eq!(created.level, 1);
}
