//! Contract tests of creates against the simulator: duplicate names (6240 both ways), lost
//! answers, batches.

use std::time::Duration;

use qbo_sim::{DropStyle, FaultConfig, SimulatorConfig};
use qbo_sync::{
    domain::{DigitCustomerId, TenantId},
    quickbooks::{BatchCreate, CreateOutcome, Lane, NameHolderKind, QboError, RequestId},
};

use crate::{
    qbo_client::{default_harness, new_customer},
    qbo_harness::harness,
};

#[tokio::test]
async fn duplicate_name_with_id_in_detail_resolves_to_the_customer() {
    let h = default_harness().await;
    h.seed(&[("Acme Holdings", true)]);
    let outcome = h.create_named("ACME holdings", "a").await;
    let CreateOutcome::NameTaken { holder, customer } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(holder.kind, NameHolderKind::Customer);
    assert_eq!(customer.unwrap().display_name, "Acme Holdings");
    assert_eq!(h.sim.customers(h.realm.as_str()).len(), 1);
}

#[tokio::test]
async fn duplicate_name_without_id_is_found_across_vendor_employee_and_inactive() {
    let h = default_harness().await;
    let vendor_id = h
        .sim
        .add_vendor(h.realm.as_str(), "Paper Supplies Ltd", true);
    let employee_id = h.sim.add_employee(h.realm.as_str(), "Jane O'Hara", false);
    h.seed(&[("Old Customer", false)]);
    let cases = [
        (
            "paper supplies ltd",
            NameHolderKind::Vendor,
            Some(vendor_id.as_str()),
            true,
        ),
        (
            "Jane O'Hara",
            NameHolderKind::Employee,
            Some(employee_id.as_str()),
            false,
        ),
        ("OLD CUSTOMER", NameHolderKind::Customer, None, false),
    ];
    for (i, (name, kind, id, active)) in cases.into_iter().enumerate() {
        let outcome = h.create_named(name, &format!("x{i}")).await;
        let CreateOutcome::NameTaken { holder, customer } = outcome else {
            panic!("{name}: {outcome:?}")
        };
        assert_eq!(holder.kind, kind, "{name}");
        assert_eq!(holder.active, active, "{name}");
        if let Some(id) = id {
            assert_eq!(holder.id, id);
        }
        assert_eq!(customer.is_some(), kind == NameHolderKind::Customer);
    }
    assert_eq!(
        h.sim.customers(h.realm.as_str()).len(),
        1,
        "no customer was created"
    );
}

#[tokio::test]
async fn lower_cased_faults_are_understood() {
    let h = default_harness().await;
    h.seed(&[("Lower Case Co", true)]);
    h.sim.set_faults(FaultConfig {
        lowercase_faults: true,
        ..FaultConfig::default()
    });
    let outcome = h.create_named("Lower Case Co", "l").await;
    assert!(
        matches!(outcome, CreateOutcome::NameTaken { .. }),
        "{outcome:?}"
    );
    let missing = h
        .client
        .read_customer(&h.tenant, "999999", Lane::Interactive)
        .await;
    assert!(matches!(missing, Err(QboError::NotFound)), "{missing:?}");
}

#[tokio::test]
async fn uncertain_single_creates_never_duplicate() {
    for style in [DropStyle::Reset, DropStyle::Hang(Duration::from_secs(5))] {
        let h = harness(SimulatorConfig::default(), |c| {
            c.qbo_timeout = Duration::from_secs(1)
        })
        .await;
        h.sim.set_faults(FaultConfig {
            drop_response_after_create: 1,
            drop_style: style,
            ..FaultConfig::default()
        });
        let name = "Lost Answer Ltd";
        let outcome = h.create_named(name, "u1").await;
        assert!(
            matches!(outcome, CreateOutcome::FoundAfterUncertain(ref c) if c.display_name == name),
            "{style:?}: {outcome:?}"
        );
        assert_eq!(h.customers_named(name), 1, "{style:?}");
        assert_eq!(h.sim.stats().dropped_responses, 1);
        // Creating it again with the same requestid is replayed, not duplicated.
        let again = h.create_named(name, "u1").await;
        assert!(
            matches!(
                again,
                CreateOutcome::Created(_) | CreateOutcome::NameTaken { .. }
            ),
            "{again:?}"
        );
        assert_eq!(h.customers_named(name), 1, "{style:?}");
    }
}

#[tokio::test]
async fn batch_creates_correlate_by_bid_and_survive_a_lost_answer() {
    let h = default_harness().await;
    h.seed(&[("Batch Taken", true)]);
    let tenant = TenantId::parse("tenant-1").unwrap();
    let items: Vec<BatchCreate> = (0..65)
        .map(|i| {
            let name = if i == 40 {
                "batch taken".to_owned()
            } else {
                format!("Batch {i:02}")
            };
            BatchCreate {
                request_id: RequestId::for_create(
                    &tenant,
                    &DigitCustomerId::parse(format!("b{i}")).unwrap(),
                    0,
                ),
                customer: new_customer(&name),
            }
        })
        .collect();
    // The second batch call's answer is lost after its creates are committed.
    h.sim.set_faults(FaultConfig {
        drop_response_after_create: 1,
        ..FaultConfig::default()
    });
    let first = h
        .client
        .batch_create_customers(&h.tenant, &items[..1], Lane::Background)
        .await
        .unwrap();
    assert!(
        matches!(&first[0], Ok(CreateOutcome::FoundAfterUncertain(c)) if c.display_name == "Batch 00"),
        "{first:?}"
    );
    let results = h
        .client
        .batch_create_customers(&h.tenant, &items[1..], Lane::Background)
        .await
        .unwrap();
    assert_eq!(results.len(), 64);
    for (item, result) in items[1..].iter().zip(&results) {
        match result {
            Ok(CreateOutcome::Created(c)) => assert_eq!(c.display_name, item.customer.display_name),
            Ok(CreateOutcome::NameTaken { holder, .. }) => {
                assert_eq!(item.customer.display_name, "batch taken");
                assert_eq!(holder.display_name, "Batch Taken");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        h.sim.customers(h.realm.as_str()).len(),
        65,
        "64 new + the seeded one, no duplicates"
    );
    let batch_calls = h
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/batch"))
        .count();
    assert_eq!(batch_calls, 4, "1 + ceil(64 / 30)");
    assert!(
        h.sim
            .requests()
            .iter()
            .filter_map(|r| r.requestid.as_ref())
            .all(|id| id.len() <= 36 || !id.starts_with("b1-"))
    );
}

#[tokio::test]
async fn a_case_sensitive_server_still_finds_the_holder_by_scanning() {
    let config = SimulatorConfig {
        string_match: qbo_sim::StringMatch::CaseSensitive,
        ..SimulatorConfig::default()
    };
    let h = harness(config, |_| {}).await;
    h.seed(&[("aCmE hOlDiNgS", false), ("Other", true)]);
    let outcome = h.create_named("Acme HOLDINGS", "cs").await;
    let CreateOutcome::NameTaken { holder, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(holder.display_name, "aCmE hOlDiNgS");
    assert!(!holder.active);
    // The targeted IN query could not match this casing; the scan did.
    let scans = h
        .sim
        .requests()
        .iter()
        .filter(|r| {
            r.query.as_deref().is_some_and(|q| {
                q.contains("STARTPOSITION%201%20MAXRESULTS%201000") && !q.contains("DisplayName")
            })
        })
        .count();
    assert!(scans >= 1);
}

#[tokio::test]
async fn an_id_in_the_detail_that_belongs_to_a_vendor_is_not_mistaken_for_a_customer() {
    let config = SimulatorConfig {
        duplicate_detail: qbo_sim::DuplicateDetailPolicy::always(qbo_sim::DuplicateDetail::WithId),
        ..SimulatorConfig::default()
    };
    let h = harness(config, |_| {}).await;
    // Customers take Ids 1..=3, so the vendor's Id is also a customer Id (another name).
    h.seed(&[("First", true), ("Second", true), ("Third", true)]);
    let vendor_id = h
        .sim
        .add_vendor(h.realm.as_str(), "Shared Name Supplies", true);
    let outcome = h.create_named("Shared Name Supplies", "v").await;
    let CreateOutcome::NameTaken { holder, customer } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (holder.kind, holder.id.as_str()),
        (NameHolderKind::Vendor, vendor_id.as_str())
    );
    assert!(customer.is_none());
}
