//! Manual links, the audit trail, and the invoice preflight through the gRPC API.

use std::time::Duration;

use qbo_sim::{FaultConfig, SimulatorConfig};
use qbo_sync::proto::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::push_support::{REALM, TENANT, World, customer, world};

impl World {
    /// Reports customers without pushing them.
    async fn report_only(&self, customers: &[(&str, &str)]) {
        self.app
            .customers()
            .batch_upsert_customers(pb::BatchUpsertCustomersRequest {
                tenant_id: TENANT.into(),
                customers: customers.iter().map(|(i, n)| customer(i, n)).collect(),
                skip_push: true,
            })
            .await
            .unwrap();
    }

    /// Reads the company into the mirror with a link-only full sync.
    async fn mirror_company(&self) {
        let run = self
            .app
            .customers()
            .trigger_sync(pb::TriggerSyncRequest {
                tenant_id: TENANT.into(),
                mode: pb::SyncMode::Full.into(),
                link_only: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .run
            .unwrap();
        for _ in 0..10 {
            self.run_jobs().await;
            self.make_jobs_due().await;
        }
        let state: String = sqlx::query_scalar("SELECT state FROM sync_runs WHERE id = $1::uuid")
            .bind(&run.run_id)
            .fetch_one(&self.app.db.pool)
            .await
            .unwrap();
        assert_eq!(state, "succeeded");
    }

    async fn link(
        &self,
        digit: &str,
        qbo: &str,
        replace: bool,
    ) -> Result<pb::LinkCustomersResponse, tonic::Status> {
        self.app
            .customers()
            .link_customers(pb::LinkCustomersRequest {
                tenant_id: TENANT.into(),
                digit_customer_id: digit.into(),
                qbo_customer_id: qbo.into(),
                replace_existing: replace,
                reason: format!("checked by hand: {digit}"),
                on_behalf_of: "user-77".into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    async fn unlink(&self, digit: &str) -> Result<pb::UnlinkCustomerResponse, tonic::Status> {
        self.app
            .customers()
            .unlink_customer(pb::UnlinkCustomerRequest {
                tenant_id: TENANT.into(),
                digit_customer_id: digit.into(),
                reason: "wrong customer".into(),
                on_behalf_of: String::new(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    async fn events(
        &self,
        digit: &str,
        page_size: i32,
        token: &str,
    ) -> Result<pb::ListLinkEventsResponse, tonic::Status> {
        self.app
            .customers()
            .list_link_events(pb::ListLinkEventsRequest {
                tenant_id: TENANT.into(),
                digit_customer_id: digit.into(),
                page_size,
                page_token: token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    async fn validate(&self, digit: &str, repair: bool) -> pb::ValidateInvoiceCustomerResponse {
        self.app
            .customers()
            .validate_invoice_customer(pb::ValidateInvoiceCustomerRequest {
                tenant_id: TENANT.into(),
                digit_customer_id: digit.into(),
                repair,
            })
            .await
            .unwrap()
            .into_inner()
    }
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn link_unlink_and_relink_by_hand_keep_the_whole_history() {
    let w = world(SimulatorConfig::default(), &[]).await;
    let ids = w.seed(&["Harbor Freight Lines", "Summit Ridge Outfitters"]);
    w.report_only(&[("d1", "Harbour Shipping"), ("d2", "Peak Supplies")])
        .await;
    w.mirror_company().await;

    let linked = w.link("d1", &ids[0], false).await.unwrap();
    let link = linked.link.unwrap();
    assert_eq!(link.qbo_customer_id, ids[0]);
    assert_eq!(link.method(), pb::LinkMethod::Manual);
    assert_eq!(link.linked_by, crate::helpers::TEST_CALLER);
    assert_eq!(link.qbo_display_name, "Harbor Freight Lines");
    assert!(linked.replaced.is_empty());
    // The same pair again: OK, no new event.
    w.link("d1", &ids[0], false).await.unwrap();
    assert_eq!(w.events("d1", 0, "").await.unwrap().events.len(), 1);

    let removed = w.unlink("d1").await.unwrap().removed.unwrap();
    assert_eq!(removed.qbo_customer_id, ids[0]);
    assert_eq!(w.status("d1").await.state(), pb::LinkState::Unlinked);
    let again = w.unlink("d1").await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(reason(&again), "NOT_LINKED");
    w.link("d1", &ids[1], false).await.unwrap();

    let events = w.events("d1", 0, "").await.unwrap().events;
    let actions: Vec<pb::LinkEventAction> = events.iter().map(|e| e.action()).collect();
    assert_eq!(
        actions,
        [
            pb::LinkEventAction::Link,
            pb::LinkEventAction::Unlink,
            pb::LinkEventAction::Link
        ],
        "newest first"
    );
    assert_eq!(events[0].after.as_ref().unwrap().qbo_customer_id, ids[1]);
    assert_eq!(events[1].before.as_ref().unwrap().qbo_customer_id, ids[0]);
    assert!(events[1].after.is_none());
    assert_eq!(events[1].reason, "wrong customer");
    assert_eq!(events[2].actor, crate::helpers::TEST_CALLER);
    assert_eq!(events[2].on_behalf_of, "user-77");
    assert_eq!(events[2].reason, "checked by hand: d1");
    assert_eq!(
        events[2].after.as_ref().unwrap().method(),
        pb::LinkMethod::Manual
    );
}

#[tokio::test]
async fn a_link_is_refused_precisely_unless_it_may_replace() {
    let w = world(SimulatorConfig::default(), &[]).await;
    let ids = w.seed(&["Granite Peak Dental", "Bluewater Marine", "Old Mill Bakery"]);
    w.sim
        .edit_customer(REALM, &ids[2], serde_json::json!({"Active": false}))
        .unwrap();
    w.report_only(&[("a", "Alpha"), ("b", "Beta"), ("c", "Gamma")])
        .await;
    w.mirror_company().await;

    let unknown = w.link("nobody", &ids[0], false).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let not_mirrored = w.link("a", "999999", false).await.unwrap_err();
    assert_eq!(
        (not_mirrored.code(), reason(&not_mirrored).as_str()),
        (Code::FailedPrecondition, "QBO_CUSTOMER_UNKNOWN")
    );
    let inactive = w.link("a", &ids[2], false).await.unwrap_err();
    assert_eq!(reason(&inactive), "QBO_CUSTOMER_INACTIVE");
    let bad = w.link("a", "", false).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    w.link("a", &ids[0], false).await.unwrap();
    // The Digit side is linked elsewhere.
    let taken = w.link("a", &ids[1], false).await.unwrap_err();
    assert_eq!(reason(&taken), "DIGIT_CUSTOMER_ALREADY_LINKED");
    assert!(taken.message().contains(&ids[0]), "{}", taken.message());
    // The QBO side is linked elsewhere.
    let held = w.link("b", &ids[0], false).await.unwrap_err();
    assert_eq!(reason(&held), "QBO_CUSTOMER_ALREADY_LINKED");
    assert!(held.message().contains("'a'"), "{}", held.message());

    // With replace_existing both old links go, and the answer lists them.
    w.link("b", &ids[1], false).await.unwrap();
    let replaced = w.link("a", &ids[1], true).await.unwrap();
    let mut gone: Vec<(String, String)> = replaced
        .replaced
        .iter()
        .map(|l| (l.digit_customer_id.clone(), l.qbo_customer_id.clone()))
        .collect();
    gone.sort();
    assert_eq!(
        gone,
        [
            ("a".to_owned(), ids[0].clone()),
            ("b".to_owned(), ids[1].clone())
        ]
    );
    assert_eq!(w.status("b").await.state(), pb::LinkState::Unlinked);
    let b_events = w.events("b", 0, "").await.unwrap().events;
    assert_eq!(b_events[0].action(), pb::LinkEventAction::Replace);
    let links: i64 = sqlx::query_scalar("SELECT count(*) FROM links WHERE tenant_id = $1")
        .bind(TENANT)
        .fetch_one(&w.app.db.pool)
        .await
        .unwrap();
    assert_eq!(links, 1);
}

#[tokio::test]
async fn the_audit_trail_pages_newest_first_and_refuses_foreign_tokens() {
    let w = world(SimulatorConfig::default(), &[]).await;
    let ids = w.seed(&["Cobalt Systems", "Ember Foods"]);
    w.report_only(&[("p1", "Pine One"), ("p2", "Pine Two")])
        .await;
    w.mirror_company().await;
    w.link("p1", &ids[0], false).await.unwrap();
    w.unlink("p1").await.unwrap();
    w.link("p1", &ids[1], false).await.unwrap();
    w.link("p2", &ids[0], false).await.unwrap();
    w.unlink("p2").await.unwrap();

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = w.events("", 2, &token).await.unwrap();
        assert!(page.events.len() <= 2);
        seen.extend(page.events.iter().map(|e| e.event_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 5);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );

    let first = w.events("", 2, "").await.unwrap();
    let foreign = w.events("p1", 2, &first.next_page_token).await.unwrap_err();
    assert_eq!(
        foreign.code(),
        Code::InvalidArgument,
        "a token of another request"
    );
    let forged = w.events("", 2, "not-a-token").await.unwrap_err();
    assert_eq!(forged.code(), Code::InvalidArgument);
    let too_big = w.events("", 501, "").await.unwrap_err();
    assert_eq!(too_big.code(), Code::InvalidArgument);
    let other = w
        .app
        .customers()
        .list_link_events(pb::ListLinkEventsRequest {
            tenant_id: "another-tenant".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(other.events.is_empty(), "another tenant sees none of it");
}

#[tokio::test]
async fn the_preflight_answers_each_state_with_what_fixes_it() {
    let w = world(SimulatorConfig::default(), &[]).await;
    let ids = w.seed(&[
        "Acme Corp",
        "Globex Corporation",
        "Initech",
        "John Smith (Dallas)",
        "John Smith (Austin)",
        "Acme Corporation Holdings",
    ]);
    w.report_only(&[
        ("linked", "acme corp"),
        ("inactive", "Globex Corp."),
        ("missing", "INITECH"),
        ("review", "John Smith"),
    ])
    .await;
    w.mirror_company().await;
    // Reported after the sync: nothing decided it yet.
    w.report_only(&[("nolink", "ACME CORP. HOLDINGS")]).await;
    w.upsert_named("pushing", "Brand New Venture").await;

    let ok = w.validate("linked", false).await;
    assert!(ok.ok);
    assert_eq!(ok.problem(), pb::InvoiceCustomerProblem::None);
    assert_eq!(ok.qbo_customer_id, ids[0]);
    assert_eq!(ok.qbo_display_name, "Acme Corp");

    w.sim
        .edit_customer(REALM, &ids[1], serde_json::json!({"Active": false}))
        .unwrap();
    sqlx::query("UPDATE qbo_customers SET active = false WHERE qbo_id = $1")
        .bind(&ids[1])
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    let inactive = w.validate("inactive", false).await;
    assert_eq!(
        inactive.problem(),
        pb::InvoiceCustomerProblem::QboCustomerInactive
    );
    assert!(!inactive.ok && inactive.action.contains("reactivate"));

    sqlx::query("UPDATE qbo_customers SET missing = true WHERE qbo_id = $1")
        .bind(&ids[2])
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    let missing = w.validate("missing", false).await;
    assert_eq!(
        missing.problem(),
        pb::InvoiceCustomerProblem::QboCustomerMissing
    );

    let review = w.validate("review", false).await;
    assert_eq!(review.problem(), pb::InvoiceCustomerProblem::PendingReview);
    assert!(!review.review_item_id.is_empty());
    assert!(review.action.contains("ResolveReviewItem"));

    let pushing = w.validate("pushing", false).await;
    assert_eq!(pushing.problem(), pb::InvoiceCustomerProblem::PendingPush);

    let unlinked = w.validate("nolink", false).await;
    assert_eq!(unlinked.problem(), pb::InvoiceCustomerProblem::NotLinked);
    assert!(
        (1..=3).contains(&unlinked.candidates.len()),
        "one to three candidates: {:?}",
        unlinked.candidates
    );
    assert_eq!(unlinked.candidates[0].qbo_customer_id, ids[5]);
    assert!(unlinked.action.contains("LinkCustomers"));
    // GetLinkStatus proposes the same candidates, decided now against the mirror.
    let status = w.status("nolink").await;
    assert_eq!(status.state(), pb::LinkState::Unlinked);
    assert_eq!(status.candidates[0].qbo_customer_id, ids[5]);
    assert!(
        status.explanation.contains("look"),
        "{}",
        status.explanation
    );

    let unknown = w.validate("never-reported", false).await;
    assert_eq!(
        unknown.problem(),
        pb::InvoiceCustomerProblem::UnknownCustomer
    );
    assert!(unknown.action.contains("UpsertCustomer"));

    // The connection needs a person: every customer's answer says so.
    sqlx::query("UPDATE connections SET state = 'needs_reauth' WHERE tenant_id = $1")
        .bind(TENANT)
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    let reauth = w.validate("linked", false).await;
    assert_eq!(
        reauth.problem(),
        pb::InvoiceCustomerProblem::ConnectionNeedsReauth
    );
    sqlx::query("UPDATE connections SET state = 'disconnected' WHERE tenant_id = $1")
        .bind(TENANT)
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    let disconnected = w.validate("linked", false).await;
    assert_eq!(
        disconnected.problem(),
        pb::InvoiceCustomerProblem::CompanyNotConnected
    );
}

#[tokio::test]
async fn a_repairing_preflight_links_or_creates_within_the_deadline() {
    let w = world(SimulatorConfig::default(), &[]).await;
    let ids = w.seed(&["Lakeside Veterinary Clinic"]);
    w.report_only(&[
        ("vet", "lakeside veterinary clinic"),
        ("new", "Quartz Lantern Studio"),
    ])
    .await;

    // A safe match in QuickBooks: linked now.
    let vet = w.validate("vet", true).await;
    assert!(vet.ok, "{vet:?}");
    assert!(vet.repaired);
    assert_eq!(vet.qbo_customer_id, ids[0]);
    let event = w.events("vet", 0, "").await.unwrap().events.remove(0);
    assert_eq!(
        event.actor,
        crate::helpers::TEST_CALLER,
        "the caller who asked for the repair"
    );
    // No counterpart: created now.
    let new = w.validate("new", true).await;
    assert!(new.ok, "{new:?}");
    assert!(new.repaired);
    assert_eq!(
        w.sim.customer(REALM, &new.qbo_customer_id).unwrap()["DisplayName"],
        "Quartz Lantern Studio"
    );
    assert_eq!(w.qbo_count(), 2);
    // The queued push finds the customer linked and does nothing more.
    w.run_jobs().await;
    assert_eq!(w.qbo_count(), 2);

    // A deadline too short: the answer says what is under way, and the worker finishes it.
    w.report_only(&[("slow", "Velvet Anchor Bistro")]).await;
    w.sim.set_faults(FaultConfig {
        latency: Duration::from_millis(700),
        ..FaultConfig::default()
    });
    let mut request = tonic::Request::new(pb::ValidateInvoiceCustomerRequest {
        tenant_id: TENANT.into(),
        digit_customer_id: "slow".into(),
        repair: true,
    });
    request.set_timeout(Duration::from_millis(500));
    let answer = w
        .app
        .customers()
        .validate_invoice_customer(request)
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.ok);
    assert_eq!(answer.problem(), pb::InvoiceCustomerProblem::PendingPush);
    assert!(!answer.repaired);
    w.sim.set_faults(FaultConfig::default());
    tokio::time::sleep(Duration::from_millis(800)).await;
    w.make_jobs_due().await;
    w.run_jobs().await;
    let (qbo, _, _) = w.linked("slow").await;
    assert_eq!(
        w.sim.customer(REALM, &qbo).unwrap()["DisplayName"],
        "Velvet Anchor Bistro"
    );
    let named: usize = w
        .sim
        .customers(REALM)
        .iter()
        .filter(|c| c["DisplayName"] == "Velvet Anchor Bistro")
        .count();
    assert_eq!(named, 1, "one customer, however the repair was cut short");
}

impl World {
    async fn reviews(
        &self,
        page_size: i32,
        token: &str,
    ) -> Result<pb::ListReviewItemsResponse, tonic::Status> {
        self.app
            .customers()
            .list_review_items(pb::ListReviewItemsRequest {
                tenant_id: TENANT.into(),
                page_size,
                page_token: token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    async fn resolve(
        &self,
        item: &str,
        decision: pb::ReviewDecision,
        qbo: &str,
    ) -> Result<pb::ResolveReviewItemResponse, tonic::Status> {
        self.app
            .customers()
            .resolve_review_item(pb::ResolveReviewItemRequest {
                tenant_id: TENANT.into(),
                review_item_id: item.into(),
                decision: decision.into(),
                qbo_customer_id: qbo.into(),
                reason: "looked it up".into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    async fn item_of(&self, digit: &str) -> pb::ReviewItem {
        let mut token = String::new();
        loop {
            let page = self.reviews(500, &token).await.unwrap();
            if let Some(item) = page
                .review_items
                .into_iter()
                .find(|i| i.digit_customer_id == digit)
            {
                return item;
            }
            assert!(!page.next_page_token.is_empty(), "no open item for {digit}");
            token = page.next_page_token;
        }
    }
}

#[tokio::test]
async fn the_review_flow_accepts_rejects_and_creates_new() {
    let w = world(SimulatorConfig::default(), &[]).await;
    let ids = w.seed(&[
        "John Smith (Dallas)",
        "John Smith (Austin)",
        "Jane Doe (NY)",
        "Jane Doe (LA)",
        "Bob Stone (Shop)",
        "Bob Stone (Home)",
        "Ann Lee (East)",
        "Ann Lee (West)",
    ]);
    w.report_only(&[
        ("john", "John Smith"),
        ("jane", "Jane Doe"),
        ("bob", "Bob Stone"),
        ("ann", "Ann Lee"),
    ])
    .await;
    w.mirror_company().await;

    // Paged, oldest first, four open items.
    let first = w.reviews(2, "").await.unwrap();
    assert_eq!(first.review_items.len(), 2);
    let second = w.reviews(2, &first.next_page_token).await.unwrap();
    assert_eq!(second.review_items.len(), 2);
    assert!(second.next_page_token.is_empty());
    let mut all: Vec<String> = first
        .review_items
        .iter()
        .chain(&second.review_items)
        .map(|i| i.digit_customer_id.clone())
        .collect();
    all.sort();
    assert_eq!(all, ["ann", "bob", "jane", "john"]);
    assert_eq!(
        w.reviews(501, "").await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        w.reviews(-1, "").await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        w.reviews(2, "forged").await.unwrap_err().code(),
        Code::InvalidArgument
    );

    // Accept a candidate: linked by hand; the same decision again is an OK.
    let john = w.item_of("john").await;
    assert_eq!(john.digit_display_name, "John Smith");
    assert_eq!(john.candidates.len(), 2);
    let not_candidate = w
        .resolve(
            &john.review_item_id,
            pb::ReviewDecision::AcceptCandidate,
            &ids[2],
        )
        .await
        .unwrap_err();
    assert_eq!(not_candidate.code(), Code::InvalidArgument);
    let accepted = w
        .resolve(
            &john.review_item_id,
            pb::ReviewDecision::AcceptCandidate,
            &ids[0],
        )
        .await
        .unwrap();
    assert_eq!(accepted.state(), pb::LinkState::Linked);
    assert_eq!(accepted.link.unwrap().method(), pb::LinkMethod::Manual);
    let again = w
        .resolve(
            &john.review_item_id,
            pb::ReviewDecision::AcceptCandidate,
            &ids[0],
        )
        .await
        .unwrap();
    assert_eq!(again.state(), pb::LinkState::Linked);
    let other = w
        .resolve(&john.review_item_id, pb::ReviewDecision::RejectAll, "")
        .await
        .unwrap_err();
    assert_eq!(reason(&other), "REVIEW_ITEM_RESOLVED");

    // Reject all: never proposed again, by a sync or by the preflight.
    let jane = w.item_of("jane").await;
    let rejected = w
        .resolve(&jane.review_item_id, pb::ReviewDecision::RejectAll, "")
        .await
        .unwrap();
    assert_eq!(rejected.state(), pb::LinkState::Unlinked);
    let pairs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM rejected_pairs WHERE tenant_id = $1 AND digit_customer_id = 'jane'",
    )
    .bind(TENANT)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(pairs, 2);
    let preflight = w.validate("jane", false).await;
    assert!(
        preflight
            .candidates
            .iter()
            .all(|c| c.qbo_customer_id != ids[2] && c.qbo_customer_id != ids[3]),
        "{preflight:?}"
    );

    // Create new: pushed, and the rejected lookalikes do not hold the create back.
    let bob = w.item_of("bob").await;
    let created = w
        .resolve(&bob.review_item_id, pb::ReviewDecision::CreateNew, "")
        .await
        .unwrap();
    assert_eq!(created.state(), pb::LinkState::PendingPush);
    w.run_jobs().await;
    let (bob_qbo, method, _) = w.linked("bob").await;
    assert_eq!(method, pb::LinkMethod::CreatedInQbo);
    assert_eq!(
        w.sim.customer(REALM, &bob_qbo).unwrap()["DisplayName"],
        "Bob Stone"
    );

    // A stale item: the customer got linked by hand meanwhile.
    let ann = w.item_of("ann").await;
    w.link("ann", &ids[6], false).await.unwrap();
    let stale = w
        .resolve(
            &ann.review_item_id,
            pb::ReviewDecision::AcceptCandidate,
            &ids[7],
        )
        .await
        .unwrap_err();
    assert_eq!(
        (stale.code(), reason(&stale).as_str()),
        (Code::FailedPrecondition, "REVIEW_ITEM_STALE")
    );
    let unknown = w
        .resolve(
            &uuid::Uuid::new_v4().to_string(),
            pb::ReviewDecision::RejectAll,
            "",
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // A later sync proposes none of the rejected pairs again.
    w.mirror_company().await;
    let reopened: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM review_items
         WHERE tenant_id = $1 AND digit_customer_id = 'jane' AND state = 'open'
           AND (candidates @> $2::jsonb OR candidates @> $3::jsonb)",
    )
    .bind(TENANT)
    .bind(serde_json::json!([{ "qbo_customer_id": ids[2] }]))
    .bind(serde_json::json!([{ "qbo_customer_id": ids[3] }]))
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(reopened, 0);
}
