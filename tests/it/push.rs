//! "Create in Digit first" through the gRPC API, with no sync at all: the push finds the QBO
//! customer someone made first, creates only what QBO lacks, and turns every 6240 into a link,
//! a qualified name or a review item, never a duplicate.

use qbo_sim::{FaultConfig, SimulatorConfig, StringMatch};
use qbo_sync::{
    domain::{DigitCustomerId, LinkMethod, TenantId},
    proto::v1 as pb,
    store::links::{LinkInsert, NewLink, insert_links},
};

use crate::push_support::{REALM, customer, world};

fn case_sensitive() -> SimulatorConfig {
    SimulatorConfig {
        string_match: StringMatch::CaseSensitive,
        ..SimulatorConfig::default()
    }
}

#[tokio::test]
async fn a_customer_created_in_qbo_first_is_linked_not_duplicated() {
    let w = world(SimulatorConfig::default(), &[]).await;
    // QBO's name, the name Digit reports: case, legal form, punctuation and &/and differ.
    let pairs = [
        ("Acme Corp", "acme corp"),
        ("Globex Corporation", "GLOBEX CORP."),
        ("Smith & Sons Plumbing", "Smith and Sons Plumbing"),
        ("Johnson Bakery, LLC", "johnson bakery llc"),
    ];
    let qbo_names: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    let ids = w.seed(&qbo_names);
    for (i, (_, digit_name)) in pairs.iter().enumerate() {
        let answer = w.upsert_named(&format!("d{i}"), digit_name).await;
        assert!(answer.push_queued, "a new customer is queued for push");
    }
    let reports = w.run_jobs().await;
    assert!(!reports.is_empty());
    for (i, qbo_id) in ids.iter().enumerate() {
        let (linked_to, method, reasons) = w.linked(&format!("d{i}")).await;
        assert_eq!(&linked_to, qbo_id, "{:?} {method:?} {reasons:?}", pairs[i]);
        assert!(
            matches!(
                method,
                pb::LinkMethod::AutoExact | pb::LinkMethod::AutoNormalized
            ),
            "{method:?}"
        );
        assert!(!reasons.is_empty(), "the link says why");
    }
    assert_eq!(w.qbo_count(), pairs.len(), "no customer was created in QBO");
    assert_eq!(w.sim.stats().creates, 0);
}

#[tokio::test]
async fn a_similar_name_the_matcher_cannot_place_goes_to_review_not_create() {
    let w = world(SimulatorConfig::default(), &[]).await;
    let ids = w.seed(&["Acme Corporation Holdings"]);
    w.upsert_named("d1", "ACME CORP. HOLDINGS").await;
    w.run_jobs().await;
    let status = w.status("d1").await;
    assert_eq!(
        status.state(),
        pb::LinkState::PendingReview,
        "{}",
        status.explanation
    );
    assert_eq!(status.candidates[0].qbo_customer_id, ids[0]);
    assert_eq!(w.qbo_count(), 1, "no duplicate of a similar name");
}

#[tokio::test]
async fn a_brand_new_customer_is_created_once_and_linked() {
    let w = world(SimulatorConfig::default(), &[]).await;
    w.seed(&["Unrelated Traders"]);
    w.upsert(pb::DigitCustomer {
        email: "ops@zephyr.example".into(),
        phone: "+1 555 0100".into(),
        ..customer("z1", "Zephyr Analytics")
    })
    .await;
    w.run_jobs().await;
    let (qbo_id, method, _) = w.linked("z1").await;
    assert_eq!(method, pb::LinkMethod::CreatedInQbo);
    assert_eq!(w.qbo_id("Zephyr Analytics"), qbo_id);
    let created = w.sim.customer(REALM, &qbo_id).unwrap();
    assert_eq!(created["PrimaryEmailAddr"]["Address"], "ops@zephyr.example");
    // Reporting it again queues nothing; a stray second push job finds it linked.
    let again = w.upsert_named("z1", "Zephyr Analytics").await;
    assert!(!again.push_queued);
    sqlx::query(
        "INSERT INTO jobs (id, tenant_id, kind, payload, state)
         VALUES (gen_random_uuid(), $1, 'push_customer', '{\"digit_customer_id\":\"z1\"}', 'queued')",
    )
    .bind(crate::push_support::TENANT)
    .execute(&w.app.db.pool)
    .await
    .unwrap();
    w.run_jobs().await;
    assert_eq!(w.qbo_count(), 2);
    assert_eq!(w.sim.stats().creates, 1, "created exactly once");
}

#[tokio::test]
async fn a_doubtful_match_goes_to_review_and_nothing_is_created() {
    let w = world(SimulatorConfig::default(), &[]).await;
    w.seed(&["John Smith (Dallas)", "John Smith (Austin)"]);
    w.upsert_named("js", "John Smith").await;
    w.run_jobs().await;
    let status = w.status("js").await;
    assert_eq!(status.state(), pb::LinkState::PendingReview);
    assert!(status.candidates.len() >= 2, "{:?}", status.candidates);
    assert_eq!(w.qbo_count(), 2);
    assert_eq!(w.review("js").await.unwrap().0, "match");
}

#[tokio::test]
async fn a_name_held_by_a_vendor_or_employee_gets_a_qualified_customer_name() {
    let w = world(SimulatorConfig::default(), &[]).await;
    w.sim.add_vendor(REALM, "Bolt Supply", true);
    w.sim.add_employee(REALM, "Dana Reyes", true);
    w.upsert_named("v1", "Bolt Supply").await;
    w.upsert_named("e1", "Dana Reyes").await;
    w.run_jobs().await;
    for (id, holder, qualified) in [
        ("v1", "vendor", "Bolt Supply (c)"),
        ("e1", "employee", "Dana Reyes (c)"),
    ] {
        let (qbo_id, method, reasons) = w.linked(id).await;
        assert_eq!(method, pb::LinkMethod::CreatedInQbo);
        assert_eq!(w.qbo_id(qualified), qbo_id);
        assert!(
            reasons
                .iter()
                .any(|r| r.contains(holder) && r.contains(qualified)),
            "{reasons:?}"
        );
    }
    assert_eq!(w.qbo_count(), 2);
}

#[tokio::test]
async fn a_6240_from_an_active_customer_the_lookup_missed_becomes_a_link() {
    // A server that compares case-sensitively: the LIKE lookup misses 'aCME wIDGETS', the
    // create meets 6240, and the holder is found and accepted by the matcher.
    let w = world(case_sensitive(), &[]).await;
    let ids = w.seed(&["aCME wIDGETS"]);
    w.upsert_named("d1", "Acme Widgets").await;
    w.run_jobs().await;
    let (qbo_id, method, reasons) = w.linked("d1").await;
    assert_eq!(qbo_id, ids[0]);
    assert_eq!(method, pb::LinkMethod::DuplicateNameRecovery);
    assert!(reasons[0].contains("6240"), "{reasons:?}");
    assert_eq!(w.qbo_count(), 1);
}

#[tokio::test]
async fn an_inactive_holder_of_the_name_goes_to_review_to_reactivate() {
    let w = world(case_sensitive(), &[]).await;
    w.sim
        .seed_customers(
            REALM,
            serde_json::json!([{"DisplayName": "oLD mILL bAKERY", "Active": false}]),
        )
        .unwrap();
    w.upsert_named("d1", "Old Mill Bakery").await;
    w.run_jobs().await;
    let status = w.status("d1").await;
    assert_eq!(status.state(), pb::LinkState::PendingReview);
    let (kind, reason) = w.review("d1").await.unwrap();
    assert_eq!(kind, "reactivate");
    assert!(reason.contains("inactive"), "{reason}");
    assert_eq!(status.candidates.len(), 1);
    assert!(!status.candidates[0].active);
    assert_eq!(
        w.qbo_count(),
        1,
        "no duplicate beside the inactive customer"
    );
}

#[tokio::test]
async fn an_inactive_lookalike_found_by_the_lookup_goes_to_review() {
    let w = world(SimulatorConfig::default(), &[]).await;
    w.sim
        .seed_customers(
            REALM,
            serde_json::json!([{"DisplayName": "Harbor Freight Lines", "Active": false}]),
        )
        .unwrap();
    w.upsert_named("d1", "harbor freight lines").await;
    w.run_jobs().await;
    assert_eq!(w.status("d1").await.state(), pb::LinkState::PendingReview);
    assert_eq!(w.qbo_count(), 1);
}

#[tokio::test]
async fn a_qbo_customer_linked_to_someone_else_is_never_shared() {
    let w = world(SimulatorConfig::default(), &[]).await;
    w.upsert_named("first", "Bolt Labs").await;
    w.run_jobs().await;
    let (created, method, _) = w.linked("first").await;
    assert_eq!(method, pb::LinkMethod::CreatedInQbo);
    w.upsert_named("second", "BOLT LABS").await;
    w.run_jobs().await;
    let status = w.status("second").await;
    assert_eq!(status.state(), pb::LinkState::PendingReview);
    assert!(
        status
            .candidates
            .iter()
            .any(|c| c.qbo_customer_id == created)
    );
    assert_eq!(w.qbo_count(), 1);
}

#[tokio::test]
async fn an_uncertain_create_makes_one_customer() {
    let w = world(SimulatorConfig::default(), &[]).await;
    w.sim.set_faults(FaultConfig {
        drop_response_after_create: 1,
        ..FaultConfig::default()
    });
    w.upsert_named("q1", "Quantum Ledger Partners").await;
    w.run_jobs().await;
    let (qbo_id, method, reasons) = w.linked("q1").await;
    assert_eq!(method, pb::LinkMethod::CreatedInQbo);
    assert!(reasons[0].contains("lost"), "{reasons:?}");
    assert_eq!(w.qbo_id("Quantum Ledger Partners"), qbo_id);
    assert_eq!(w.qbo_count(), 1);
    assert_eq!(w.sim.stats().dropped_responses, 1, "the fault fired");
}

#[tokio::test]
async fn many_new_customers_go_to_qbo_in_batches_of_30() {
    let w = world(SimulatorConfig::default(), &[]).await;
    let customers: Vec<pb::DigitCustomer> = (0..45)
        .map(|i| customer(&format!("b{i}"), &format!("Batchworth {i:02} Holdings")))
        .collect();
    let answer = w.batch_upsert(customers).await;
    assert!(answer.results.iter().all(|r| r.push_queued));
    let reports = w.run_jobs().await;
    assert_eq!(reports.len(), 2, "two groups: 30 and 15");
    for i in 0..45 {
        let (_, method, _) = w.linked(&format!("b{i}")).await;
        assert_eq!(method, pb::LinkMethod::CreatedInQbo);
    }
    assert_eq!(w.qbo_count(), 45);
    let batches = w
        .sim
        .stats()
        .per_endpoint
        .get("batch")
        .copied()
        .unwrap_or(0);
    assert_eq!(batches, 2, "{:?}", w.sim.stats().per_endpoint);
}

#[tokio::test]
async fn a_colon_in_a_name_is_replaced_and_recorded() {
    let w = world(SimulatorConfig::default(), &[]).await;
    w.upsert_named("c1", "12:30 Supper Club").await;
    w.run_jobs().await;
    let (qbo_id, _, reasons) = w.linked("c1").await;
    assert_eq!(w.qbo_id("12 - 30 Supper Club"), qbo_id);
    assert!(reasons.iter().any(|r| r.contains("':'")), "{reasons:?}");
}

#[tokio::test]
async fn storms_and_expiring_tokens_spend_no_attempts() {
    let w = world(SimulatorConfig::default(), &[]).await;
    w.sim.set_faults(FaultConfig {
        throttle_rate: 0.3,
        server_error_rate: 0.2,
        server_error_status: 503,
        ..FaultConfig::default()
    });
    for i in 0..12 {
        w.upsert_named(&format!("s{i}"), &format!("Stormfront {i:02} Outfitters"))
            .await;
        if i == 6 {
            w.sim.expire_access_tokens(REALM);
        }
    }
    for _ in 0..20 {
        w.run_jobs().await;
        if w.jobs().await.iter().all(|j| j.state == "succeeded") {
            break;
        }
        w.make_jobs_due().await;
    }
    for i in 0..12 {
        w.linked(&format!("s{i}")).await;
    }
    assert_eq!(w.qbo_count(), 12, "no duplicates");
    let stats = w.sim.stats();
    assert!(stats.injected_throttles > 0 && stats.injected_server_errors > 0);
    assert_eq!(stats.limit_violations.total(), 0);
    for job in w.jobs().await {
        assert_eq!(job.state, "succeeded");
        assert!(job.attempts <= 1, "throttles spent no attempts: {job:?}");
    }
}

#[tokio::test]
async fn a_throttled_push_is_rescheduled_without_spending_an_attempt() {
    // No throttle budget: the first 429 gives the job back to the queue.
    let w = world(
        SimulatorConfig::default(),
        &[("--qbo-throttle-budget", "0s")],
    )
    .await;
    w.sim.set_faults(FaultConfig {
        throttle_rate: 1.0,
        ..FaultConfig::default()
    });
    w.upsert_named("t1", "Throttle Test Foods").await;
    w.run_jobs().await;
    let jobs = w.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, "queued");
    assert_eq!(jobs[0].attempts, 0, "no attempt spent");
    assert_eq!(jobs[0].throttled, 1);
    assert!(jobs[0].run_at > chrono::Utc::now(), "rescheduled for later");
    w.sim.set_faults(FaultConfig::default());
    w.make_jobs_due().await;
    w.run_jobs().await;
    w.linked("t1").await;
    assert_eq!(w.jobs().await[0].attempts, 1);
}

#[tokio::test]
async fn needs_reauth_parks_the_tenants_jobs_until_it_is_connected_again() {
    let w = world(SimulatorConfig::default(), &[]).await;
    // Another app instance refreshes with our token: ours is superseded (rotation).
    let ours = crate::connections_support::stored_refresh_token_of(
        &w.app,
        crate::push_support::TENANT,
        REALM,
    )
    .await;
    let _ = crate::connections_support::refresh_elsewhere(&w.sim, &ours).await;
    w.sim.expire_access_tokens(REALM);
    for i in 0..3 {
        w.upsert_named(&format!("p{i}"), &format!("Parkside {i} Dental"))
            .await;
    }
    w.run_jobs().await;
    let jobs = w.jobs().await;
    assert!(
        jobs.iter().all(|j| j.state == "parked" && j.attempts == 0),
        "{jobs:?}"
    );
    assert_eq!(w.status("p0").await.state(), pb::LinkState::PendingPush);
    assert!(w.run_jobs().await.is_empty(), "parked jobs are not claimed");
    w.connect().await;
    w.run_jobs().await;
    for i in 0..3 {
        w.linked(&format!("p{i}")).await;
    }
    assert_eq!(w.qbo_count(), 3);
}

#[tokio::test]
async fn a_changed_name_email_or_phone_is_sent_to_qbo() {
    let w = world(SimulatorConfig::default(), &[]).await;
    w.upsert_named("n1", "Nimbus Co").await;
    w.run_jobs().await;
    let (qbo_id, _, _) = w.linked("n1").await;
    w.upsert(pb::DigitCustomer {
        email: "billing@nimbus.example".into(),
        ..customer("n1", "Nimbus Cloud Co")
    })
    .await;
    w.run_jobs().await;
    let now = w.sim.customer(REALM, &qbo_id).unwrap();
    assert_eq!(now["DisplayName"], "Nimbus Cloud Co");
    assert_eq!(now["PrimaryEmailAddr"]["Address"], "billing@nimbus.example");
    assert_eq!(w.qbo_count(), 1);
}

#[tokio::test]
async fn a_rename_that_collides_in_qbo_goes_to_review() {
    let w = world(SimulatorConfig::default(), &[]).await;
    w.sim.add_vendor(REALM, "Granite Works", true);
    w.upsert_named("r1", "Granite Holdings").await;
    w.run_jobs().await;
    let (qbo_id, _, _) = w.linked("r1").await;
    w.upsert_named("r1", "Granite Works").await;
    w.run_jobs().await;
    let (kind, _) = w.review("r1").await.expect("a review item");
    assert_eq!(kind, "rename_collision");
    assert_eq!(
        w.sim.customer(REALM, &qbo_id).unwrap()["DisplayName"],
        "Granite Holdings"
    );
    assert!(w.jobs().await.iter().all(|j| j.state == "succeeded"));
}

#[tokio::test]
async fn a_job_of_a_replica_that_died_mid_push_is_finished_without_a_duplicate() {
    let w = world(SimulatorConfig::default(), &[]).await;
    w.upsert_named("k1", "Phoenix Works").await;
    // A replica claims the job, creates the customer in QBO, and dies before linking.
    let pool = &w.app.db.pool;
    let kinds = vec!["push_customer".to_owned()];
    let claimed = qbo_sync::store::jobs::claim_next_job(
        pool,
        &kinds,
        "dead-replica:1",
        std::time::Duration::from_millis(1),
    )
    .await
    .unwrap()
    .expect("claimed");
    let created = w.seed(&["Phoenix Works"]);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(
        w.run_jobs().await.is_empty(),
        "a running job is not claimed twice"
    );
    let rescued = qbo_sync::store::jobs::rescue_expired_jobs(pool)
        .await
        .unwrap();
    assert_eq!(rescued, 1);
    w.run_jobs().await;
    let (qbo_id, _, _) = w.linked("k1").await;
    assert_eq!(qbo_id, created[0]);
    assert_eq!(w.qbo_count(), 1, "zero duplicates");
    let job = w
        .jobs()
        .await
        .into_iter()
        .find(|j| j.id == claimed.id)
        .unwrap();
    assert_eq!((job.state.as_str(), job.attempts), ("succeeded", 2));
}

#[tokio::test]
async fn a_backfill_reads_the_company_once_and_decides_from_the_mirror() {
    let w = world(
        SimulatorConfig::default(),
        &[("--push-mirror-backlog", "50")],
    )
    .await;
    let existing: Vec<String> = (0..80)
        .map(|i| format!("Backfill {i:03} Traders"))
        .collect();
    let names: Vec<&str> = existing.iter().map(String::as_str).collect();
    let ids = w.seed(&names);
    // 80 the company has (written in capitals in Digit), 40 it does not.
    let customers: Vec<pb::DigitCustomer> = (0..120)
        .map(|i| customer(&format!("b{i}"), &format!("BACKFILL {i:03} TRADERS")))
        .collect();
    w.batch_upsert(customers).await;
    w.run_jobs().await;
    for (i, id) in ids.iter().enumerate() {
        let (linked_to, method, _) = w.linked(&format!("b{i}")).await;
        assert_eq!(&linked_to, id);
        assert_eq!(method, pb::LinkMethod::AutoNormalized);
    }
    for i in 80..120 {
        let (_, method, _) = w.linked(&format!("b{i}")).await;
        assert_eq!(method, pb::LinkMethod::CreatedInQbo);
    }
    assert_eq!(w.qbo_count(), 120);
    let stats = w.sim.stats();
    let queries = stats.per_endpoint.get("query").copied().unwrap_or(0);
    // One read of the company: its page, and up to three more the pager asks for ahead of it
    // (read-ahead 4) before it learns there are no more; a lookup per customer would be 120.
    assert!(
        queries <= 4,
        "one read of the company, not a lookup per customer: {queries}"
    );
    assert_eq!(
        stats.per_endpoint.get("batch").copied(),
        Some(2),
        "40 creates, 2 batches"
    );
}

/// Links the way a person's manual link will (`LinkCustomers`, with the RPC surface): the
/// same store call, the same uniqueness rules.
async fn link_by_hand(w: &crate::push_support::World, digit: &str, qbo: &str) -> LinkInsert {
    let tenant = TenantId::parse(crate::push_support::TENANT).unwrap();
    let digit = DigitCustomerId::parse(digit).unwrap();
    let reasons = vec!["linked by hand".to_owned()];
    let link = NewLink {
        digit: &digit,
        qbo,
        method: LinkMethod::Manual,
        score: 1.0,
        reasons: &reasons,
        normalizer_version: 0,
        linked_by: "a person",
        reason: "test",
        run_id: None,
        on_behalf_of: None,
    };
    // A person links only a customer the mirror knows (as LinkCustomers requires), read from
    // the tenant's company.
    sqlx::query(
        "INSERT INTO qbo_customers (tenant_id, realm_id, qbo_id, sync_token, display_name,
             fully_qualified_name)
         SELECT $1, realm_id, $2, '0', 'by hand', 'by hand' FROM connections WHERE tenant_id = $1
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(qbo)
    .execute(&w.app.db.pool)
    .await
    .unwrap();
    let mut conn = w.app.db.pool.acquire().await.unwrap();
    insert_links(&mut conn, &tenant, &[link])
        .await
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn a_push_and_a_manual_link_racing_end_with_one_link_and_no_duplicate() {
    let w = world(SimulatorConfig::default(), &[]).await;
    let ids = w.seed(&["Vega Textile Importers"]);
    // The link lands while the push waits in the queue: the push stops.
    w.upsert_named("m1", "Vega Textiles").await;
    assert_eq!(link_by_hand(&w, "m1", &ids[0]).await, LinkInsert::Inserted);
    w.run_jobs().await;
    let (qbo_id, method, _) = w.linked("m1").await;
    assert_eq!((qbo_id, method), (ids[0].clone(), pb::LinkMethod::Manual));
    assert_eq!(w.qbo_count(), 1, "nothing created");
    // The push lands first: a later link of the same customer elsewhere is refused.
    w.upsert_named("m2", "Orion Fabric Works").await;
    w.run_jobs().await;
    let (created, _, _) = w.linked("m2").await;
    let other = w.seed(&["Orion Fabrics Wholesale"]);
    assert_eq!(
        link_by_hand(&w, "m2", &other[0]).await,
        LinkInsert::DigitLinkedElsewhere(created.clone())
    );
    assert_eq!(w.linked("m2").await.0, created);
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM link_events WHERE tenant_id = $1 AND digit_customer_id IN ('m1', 'm2')",
    )
    .bind(crate::push_support::TENANT)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(events, 2, "one audit event per link made");
}
