//! The seeded world the hostile requests aim at, and the database's state before and after.

use std::collections::BTreeMap;

use qbo_sim::{Simulator, SimulatorConfig};
use qbo_sync::proto::v1 as pb;
use sqlx::PgPool;

use super::requests::Facts;
use crate::{
    connections_support::token_key,
    helpers::{TEST_TOKEN, TestApp, TestCaller, write_callers},
    push_support::{REALM, TENANT, World, customer},
};

pub const OTHER_TENANT: &str = "tenant-other";
pub const READER_TOKEN: &str = "reader-token-77a1";
pub const VALIDATOR_TOKEN: &str = "validator-token-19c4";
pub const OTHER_TOKEN: &str = "other-tenant-token-5be2";

/// A connected tenant with links, review items, audit events and finished runs, another tenant
/// with customers and no company, and four callers.
pub async fn seeded_world() -> (World, Facts) {
    let callers = write_callers(&[
        TestCaller {
            name: "test-caller",
            token: TEST_TOKEN,
            scopes: &["validate", "read", "write", "admin"],
            tenants: &["*"],
        },
        TestCaller {
            name: "reader",
            token: READER_TOKEN,
            scopes: &["read"],
            tenants: &["*"],
        },
        TestCaller {
            name: "validator",
            token: VALIDATOR_TOKEN,
            scopes: &["validate"],
            tenants: &[TENANT],
        },
        TestCaller {
            name: "other-tenant",
            token: OTHER_TOKEN,
            scopes: &["validate", "read", "write", "admin"],
            tenants: &[OTHER_TENANT],
        },
    ]);
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let flags = [
        ("--workers", "0"),
        ("--callers-file", callers.to_str().unwrap()),
        ("--qbo-backoff-base", "20ms"),
        ("--qbo-backoff-max", "200ms"),
    ];
    let mut app = TestApp::spawn_against(&sim, Some(&token_key()), &flags).await;
    app.token = Some(TEST_TOKEN.to_owned());
    let world = World { sim, app };
    world.connect().await;

    let qbo_names = [
        "Acme Technology",
        "John Smith (Dallas)",
        "John Smith (Austin)",
        "Granite Peak Dental",
        "Bluewater Marine",
        "O'Brien Plumbing",
        "'; DROP TABLE links;--",
        "100% Organic_Farms",
        "Back\\slash Books",
        "Harbor Freight Lines",
    ];
    let mut names: Vec<String> = qbo_names.iter().map(|n| (*n).to_owned()).collect();
    names.extend((1..=20).map(|i| format!("Customer {i}")));
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let qbo_ids = world.seed(&name_refs);

    let mut digit: Vec<(String, String)> = [
        ("d-acme", "Acme Tech"),
        ("d-smith", "John Smith"),
        ("d-granite", "Granite Peak Dental"),
        ("d-blue", "bluewater marine"),
        ("d-obrien", "OBrien Plumbing"),
        ("d-drop", "'; DROP TABLE links;--"),
        ("d-organic", "100% Organic_Farms"),
        ("d-harbour", "Harbour Freight Lines Inc"),
        ("d-none-1", "Nobody Matches This One"),
        ("d-none-2", "Zyxw Quvt Holdings"),
    ]
    .iter()
    .map(|(i, n)| ((*i).to_owned(), (*n).to_owned()))
    .collect();
    digit.extend((1..=10).map(|i| (format!("d-{i}"), format!("Customer {i}"))));
    report(&world, TENANT, &digit).await;
    let other: Vec<(String, String)> = (1..=5)
        .map(|i| (format!("o-{i}"), format!("Other Customer {i}")))
        .collect();
    report(&world, OTHER_TENANT, &other).await;

    run_sync(&world, false).await;
    // An audit trail with a manual link and an unlink in it, and a dry run with a plan.
    let free = qbo_ids.last().unwrap().clone();
    let mut client = world.app.customers();
    client
        .link_customers(pb::LinkCustomersRequest {
            tenant_id: TENANT.into(),
            digit_customer_id: "d-none-1".into(),
            qbo_customer_id: free,
            reason: "checked by hand".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .unlink_customer(pb::UnlinkCustomerRequest {
            tenant_id: TENANT.into(),
            digit_customer_id: "d-none-1".into(),
            reason: "wrong one".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    run_sync(&world, true).await;

    let facts = facts_of(&world, &digit, &other, qbo_ids).await;
    assert!(
        !facts.linked.is_empty()
            && !facts.unlinked.is_empty()
            && !facts.in_review.is_empty()
            && !facts.review_items.is_empty()
            && facts.runs.len() >= 2
            && facts.issued_tokens.len() == 2,
        "the seeded world lacks something the requests aim at: {facts:?}"
    );
    (world, facts)
}

async fn report(world: &World, tenant: &str, customers: &[(String, String)]) {
    world
        .app
        .customers()
        .batch_upsert_customers(pb::BatchUpsertCustomersRequest {
            tenant_id: tenant.into(),
            customers: customers.iter().map(|(i, n)| customer(i, n)).collect(),
            skip_push: true,
        })
        .await
        .unwrap();
}

/// A link-only full sync (or a dry run), run to its end by hand.
async fn run_sync(world: &World, dry_run: bool) {
    world
        .app
        .customers()
        .trigger_sync(pb::TriggerSyncRequest {
            tenant_id: TENANT.into(),
            mode: pb::SyncMode::Full.into(),
            link_only: true,
            dry_run,
            ..Default::default()
        })
        .await
        .unwrap();
    for _ in 0..10 {
        world.run_jobs().await;
        world.make_jobs_due().await;
    }
    let active: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sync_runs WHERE state NOT IN ('succeeded', 'failed', 'cancelled')",
    )
    .fetch_one(&world.app.db.pool)
    .await
    .unwrap();
    assert_eq!(active, 0, "a seeded sync run did not finish");
}

/// What the seeding made, read back through the API.
async fn facts_of(
    world: &World,
    digit: &[(String, String)],
    other: &[(String, String)],
    qbo_ids: Vec<String>,
) -> Facts {
    let mut client = world.app.customers();
    let mut facts = Facts {
        tenant: TENANT.into(),
        other_tenant: OTHER_TENANT.into(),
        realm: REALM.into(),
        other_customers: other.iter().map(|(i, _)| i.clone()).collect(),
        qbo_ids,
        max_message_bytes: 8 * 1024 * 1024,
        ..Default::default()
    };
    for (id, _) in digit {
        let status = world.status(id).await;
        match status.state() {
            pb::LinkState::Linked => facts.linked.push(id.clone()),
            pb::LinkState::PendingReview => facts.in_review.push(id.clone()),
            _ => facts.unlinked.push(id.clone()),
        }
    }
    let reviews = client
        .list_review_items(pb::ListReviewItemsRequest {
            tenant_id: TENANT.into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    facts.issued_tokens.push(reviews.next_page_token);
    let all = client
        .list_review_items(pb::ListReviewItemsRequest {
            tenant_id: TENANT.into(),
            page_size: 500,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    facts.review_items = all
        .review_items
        .into_iter()
        .map(|r| r.review_item_id)
        .collect();
    let events = client
        .list_link_events(pb::ListLinkEventsRequest {
            tenant_id: TENANT.into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    facts.issued_tokens.push(events.next_page_token);
    facts.issued_tokens.retain(|t| !t.is_empty());
    facts.runs = sqlx::query_scalar("SELECT id::text FROM sync_runs WHERE tenant_id = $1")
        .bind(TENANT)
        .fetch_all(&world.app.db.pool)
        .await
        .unwrap();
    facts
}

/// Every table's row count and a checksum of its rows.
pub async fn snapshot(pool: &PgPool) -> BTreeMap<String, (i64, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for table in tables {
        let row: (i64, String) = sqlx::query_as(&format!(
            "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '')
             FROM \"{table}\" t"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out.insert(table, row);
    }
    out
}

pub fn assert_unchanged(
    before: &BTreeMap<String, (i64, String)>,
    after: &BTreeMap<String, (i64, String)>,
) {
    let changed: Vec<String> = before
        .iter()
        .filter(|(table, row)| after.get(*table) != Some(row))
        .map(|(table, (count, _))| {
            let now = after.get(table).map_or(-1, |(c, _)| *c);
            format!("{table}: {count} rows before, {now} after")
        })
        .collect();
    assert!(
        changed.is_empty(),
        "refused requests changed the database: {changed:?}"
    );
    assert_eq!(before.len(), after.len(), "tables appeared or vanished");
}
