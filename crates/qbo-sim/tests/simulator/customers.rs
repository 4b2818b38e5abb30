//! Customer create / read / update, name rules, 6240 variants, 5010, sub-customers, merges,
//! seeding and requestid replay.

use qbo_sim::{DuplicateDetail, DuplicateDetailPolicy, MergeVariant, SimulatorConfig};
use reqwest::StatusCode;
use serde_json::json;

use crate::env::{Env, REALM, first_error};

#[tokio::test]
async fn create_read_and_metadata() {
    let env = Env::start().await;
    let first = env.create("Amy's Bird Sanctuary").await;
    let second = env.create("Bill's Windsurf Shop").await;
    assert_eq!(
        (first["Id"].as_str(), second["Id"].as_str()),
        (Some("1"), Some("2"))
    );
    assert_eq!(first["SyncToken"], "0");
    assert_eq!(first["Active"], true);
    assert_eq!(first["FullyQualifiedName"], "Amy's Bird Sanctuary");
    let created = first["MetaData"]["CreateTime"].as_str().unwrap();
    assert!(
        created.ends_with("-07:00"),
        "times carry an offset: {created}"
    );
    let (status, body) = env.get("customer/1", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["Customer"], first);
    assert!(body["time"].is_string());
    let (status, body) = env.get("customer/999", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(first_error(&body)["code"], "610");
    assert_eq!(env.sim.stats().creates, 2);
}

#[tokio::test]
async fn sparse_and_full_updates_check_the_sync_token() {
    let env = Env::start().await;
    let body = json!({"DisplayName": "Cool Cars", "CompanyName": "Cool Cars Ltd", "Notes": "vip"});
    let (_, created) = env.post("customer", &[], &body).await;
    let id = created["Customer"]["Id"].as_str().unwrap();
    let sparse = json!({"Id": id, "SyncToken": "0", "sparse": true, "Notes": "changed"});
    let (status, updated) = env.post("customer", &[], &sparse).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["Customer"]["SyncToken"], "1");
    assert_eq!(updated["Customer"]["Notes"], "changed");
    assert_eq!(
        updated["Customer"]["CompanyName"], "Cool Cars Ltd",
        "sparse keeps the rest"
    );

    let (status, stale) = env.post("customer", &[], &sparse).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(first_error(&stale)["code"], "5010");
    assert_eq!(stale["Fault"]["type"], "ValidationFault");

    let full = json!({"Id": id, "SyncToken": "1", "DisplayName": "Cool Cars"});
    let (_, replaced) = env.post("customer", &[], &full).await;
    assert_eq!(replaced["Customer"]["SyncToken"], "2");
    assert!(
        replaced["Customer"].get("CompanyName").is_none(),
        "a full update clears omitted fields"
    );

    // A user edit in the "UI" makes the client's token stale.
    env.sim
        .edit_customer(REALM, id, json!({"Notes": "edited in QBO"}))
        .unwrap();
    let (_, stale) = env
        .post(
            "customer",
            &[],
            &json!({"Id": id, "SyncToken": "2", "sparse": true, "Notes": "x"}),
        )
        .await;
    assert_eq!(first_error(&stale)["code"], "5010");
    assert_eq!(
        env.sim.stats().updates,
        2,
        "edits made in the \"UI\" are not API updates"
    );
}

#[tokio::test]
async fn display_name_rules() {
    let env = Env::start().await;
    let (status, body) = env
        .post("customer", &[], &json!({"DisplayName": "Parent:Child"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(first_error(&body)["code"], "2040");
    let (status, body) = env
        .post("customer", &[], &json!({"DisplayName": "x".repeat(501)}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(first_error(&body)["code"], "2050");
    assert_eq!(first_error(&body)["element"], "DisplayName");
    env.create(&"é".repeat(500)).await;
    let (_, derived) = env
        .post(
            "customer",
            &[],
            &json!({"GivenName": "Ada", "FamilyName": "Lovelace"}),
        )
        .await;
    assert_eq!(derived["Customer"]["DisplayName"], "Ada Lovelace");
    let (status, _) = env
        .post("customer", &[], &json!({"Notes": "no name"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn duplicate_names_across_kinds_with_and_without_id() {
    let env = Env::start().await;
    let customer = env.create("Acme Corp").await;
    env.sim.add_vendor(REALM, "Shared Supplier", true);
    env.sim.add_employee(REALM, "Old Employee", false);
    let sleeping = env.create("Sleeping Co").await;
    env.sim
        .edit_customer(
            REALM,
            sleeping["Id"].as_str().unwrap(),
            json!({"Active": false}),
        )
        .unwrap();

    let detail = |name: &'static str| {
        let env = &env;
        async move {
            let (status, body) = env
                .post("customer", &[], &json!({"DisplayName": name}))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(first_error(&body)["code"], "6240");
            assert_eq!(first_error(&body)["Message"], "Duplicate Name Exists Error");
            first_error(&body)["Detail"].as_str().unwrap().to_owned()
        }
    };
    let id = customer["Id"].as_str().unwrap();
    // Case-insensitive, against an active customer: the Id is given.
    assert_eq!(
        detail("ACME corp").await,
        format!("The name supplied already exists. : Id={id}")
    );
    // Vendors, inactive employees and inactive customers: no Id.
    assert_eq!(
        detail("shared supplier").await,
        "The name supplied already exists. : null"
    );
    assert_eq!(
        detail("Old Employee").await,
        "The name supplied already exists. : null"
    );
    assert_eq!(
        detail("SLEEPING CO").await,
        "The name supplied already exists. : null"
    );
}

#[tokio::test]
async fn duplicate_detail_policy_is_configurable() {
    let config = SimulatorConfig {
        duplicate_detail: DuplicateDetailPolicy::always(DuplicateDetail::WithId),
        ..SimulatorConfig::default()
    };
    let env = Env::with_config(config).await;
    let vendor_id = env.sim.add_vendor(REALM, "Vend", false);
    let (_, body) = env
        .post("customer", &[], &json!({"DisplayName": "vend"}))
        .await;
    assert_eq!(
        first_error(&body)["Detail"],
        format!("The name supplied already exists. : Id={vendor_id}")
    );
    let config = SimulatorConfig {
        duplicate_detail: DuplicateDetailPolicy::always(DuplicateDetail::AnotherUsing),
        ..SimulatorConfig::default()
    };
    let env = Env::with_config(config).await;
    env.create("Taken").await;
    let (_, body) = env
        .post("customer", &[], &json!({"DisplayName": "Taken"}))
        .await;
    assert!(
        first_error(&body)["Detail"]
            .as_str()
            .unwrap()
            .contains("Another customer, vendor or employee")
    );
}

#[tokio::test]
async fn sub_customers_carry_their_hierarchy() {
    let env = Env::start().await;
    let parent = env.create("Parent Co").await;
    let pid = parent["Id"].as_str().unwrap();
    let body = json!({"DisplayName": "Kitchen Job", "Job": true, "ParentRef": {"value": pid}});
    let (status, child) = env.post("customer", &[], &body).await;
    assert_eq!(status, StatusCode::OK, "{child}");
    let child = &child["Customer"];
    assert_eq!(child["FullyQualifiedName"], "Parent Co:Kitchen Job");
    assert_eq!(
        (child["Level"].as_u64(), child["Job"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(child["ParentRef"]["value"], pid);
    let rename = json!({"Id": pid, "SyncToken": "0", "sparse": true, "DisplayName": "Parent Inc"});
    env.post("customer", &[], &rename).await;
    let (_, reread) = env
        .get(&format!("customer/{}", child["Id"].as_str().unwrap()), &[])
        .await;
    assert_eq!(
        reread["Customer"]["FullyQualifiedName"],
        "Parent Inc:Kitchen Job"
    );
    let orphan = json!({"DisplayName": "Orphan", "ParentRef": {"value": "999"}});
    let (_, body) = env.post("customer", &[], &orphan).await;
    assert_eq!(first_error(&body)["code"], "2500");
}

#[tokio::test]
async fn requestid_replays_the_first_answer() {
    let env = Env::start().await;
    let params = [("requestid", "tenant1-digit42-g1")];
    let (s1, a) = env
        .post("customer", &params, &json!({"DisplayName": "Once Only"}))
        .await;
    let (s2, b) = env
        .post("customer", &params, &json!({"DisplayName": "Once Only"}))
        .await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(a, b, "same requestid, same answer");
    assert_eq!(env.sim.customers(REALM).len(), 1);
    let stats = env.sim.stats();
    assert_eq!((stats.creates, stats.replays), (1, 1));
    // Without the requestid, a retry is a new request (and here a duplicate name).
    let (status, _) = env
        .post("customer", &[], &json!({"DisplayName": "Once Only"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let recorded = env.sim.requests();
    assert_eq!(recorded[0].requestid.as_deref(), Some("tenant1-digit42-g1"));
    assert_eq!(recorded[0].minorversion.as_deref(), Some("75"));
    assert_eq!(recorded[0].status, 200);
}

#[tokio::test]
async fn seeding_sets_ids_and_enforces_names() {
    let env = Env::start().await;
    let seed = json!([
        {"Id": "58", "DisplayName": "Seeded One", "SyncToken": "3", "Active": true},
        {"Id": "59", "DisplayName": "Seeded Job", "ParentRef": {"value": "58"}},
        {"DisplayName": "Seeded Inactive", "Active": false,
         "MetaData": {"CreateTime": "2026-01-02T03:04:05-08:00", "LastUpdatedTime": "2026-01-02T03:04:05-08:00"}}
    ]);
    env.sim.seed_customers(REALM, seed).unwrap();
    let all = env.sim.customers(REALM);
    assert_eq!(all.len(), 3);
    assert_eq!(all[1]["FullyQualifiedName"], "Seeded One:Seeded Job");
    assert_eq!(all[2]["Id"], "60");
    assert_eq!(
        all[2]["MetaData"]["LastUpdatedTime"],
        "2026-01-02T03:04:05-08:00"
    );
    assert_eq!(env.create("Fresh").await["Id"], "61");
    assert!(
        env.sim
            .seed_customers(REALM, json!([{"DisplayName": "seeded one"}]))
            .is_err()
    );
}

#[tokio::test]
async fn merge_variants() {
    for variant in [
        MergeVariant::Inactive,
        MergeVariant::Deleted,
        MergeVariant::Missing,
    ] {
        let env = Env::with_config(SimulatorConfig {
            merge_variant: variant,
            ..SimulatorConfig::default()
        })
        .await;
        let absorbed = env.create("Dup Customer").await;
        let survivor = env.create("Real Customer").await;
        let (a, s) = (
            absorbed["Id"].as_str().unwrap(),
            survivor["Id"].as_str().unwrap(),
        );
        env.sim.merge_customers(REALM, a, s);
        let (status, read) = env.get(&format!("customer/{a}"), &[]).await;
        let visible = env
            .query("select * from Customer where Active in (true, false)")
            .await;
        let listed = visible["Customer"].as_array().unwrap().len();
        match variant {
            MergeVariant::Inactive => {
                assert_eq!(status, StatusCode::OK);
                assert_eq!(read["Customer"]["Active"], false);
                assert_eq!(listed, 2);
            }
            MergeVariant::Deleted | MergeVariant::Missing => {
                assert_eq!(first_error(&read)["code"], "610");
                assert_eq!(listed, 1);
            }
        }
        let (_, survivor) = env.get(&format!("customer/{s}"), &[]).await;
        assert_eq!(survivor["Customer"]["SyncToken"], "1");
    }
}

#[tokio::test]
async fn hierarchy_stops_at_five_levels_and_refuses_cycles() {
    let env = Env::start().await;
    let mut parent = env.create("Level 0").await["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    for level in 1..=4 {
        let body = json!({"DisplayName": format!("Level {level}"), "ParentRef": {"value": parent}});
        let (status, child) = env.post("customer", &[], &body).await;
        assert_eq!(status, StatusCode::OK, "{child}");
        assert_eq!(child["Customer"]["Level"], level);
        parent = child["Customer"]["Id"].as_str().unwrap().to_owned();
    }
    let too_deep = json!({"DisplayName": "Level 5", "ParentRef": {"value": parent}});
    let (_, body) = env.post("customer", &[], &too_deep).await;
    assert_eq!(first_error(&body)["code"], "6000");
    let leaf = env.sim.customer(REALM, &parent).unwrap();
    assert_eq!(
        leaf["FullyQualifiedName"],
        "Level 0:Level 1:Level 2:Level 3:Level 4"
    );
    // Level 0 cannot move below its own descendant.
    let cycle = json!({"Id": "1", "SyncToken": "0", "sparse": true, "ParentRef": {"value": "3"}});
    let (_, body) = env.post("customer", &[], &cycle).await;
    assert_eq!(first_error(&body)["code"], "6000");
}

#[tokio::test]
async fn updates_of_inactive_customers_can_be_refused_until_reactivated() {
    let config = SimulatorConfig {
        reject_updates_to_inactive: true,
        ..SimulatorConfig::default()
    };
    let env = Env::with_config(config).await;
    env.create("Dormant").await;
    env.sim
        .edit_customer(REALM, "1", json!({"Active": false}))
        .unwrap();
    let edit = json!({"Id": "1", "SyncToken": "1", "sparse": true, "Notes": "x"});
    let (status, body) = env.post("customer", &[], &edit).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        first_error(&body)["Detail"]
            .as_str()
            .unwrap()
            .contains("has been deleted")
    );
    let revive = json!({"Id": "1", "SyncToken": "1", "sparse": true, "Active": true, "Notes": "x"});
    let (status, body) = env.post("customer", &[], &revive).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["Customer"]["Active"], true);
}
