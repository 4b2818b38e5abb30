//! QBO webhooks over real HTTP: the signature is checked over the raw body, both payload
//! shapes queue one incremental run per company however often and in whatever order events
//! come, and merges move links to the surviving customer (or to a person) once.
//!
//! The simulator sends no webhooks, so the tests sign and POST the bodies Intuit would send.

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, Mac};
use qbo_sim::SimulatorConfig;
use qbo_sync::proto::v1 as pb;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::push_support::{REALM, TENANT, World, customer, world};

const TOKEN: &str = "verifier-token-for-tests";

async fn hooked() -> World {
    world(
        SimulatorConfig::default(),
        &[("--webhook-verifier-token", TOKEN)],
    )
    .await
}

fn sign_with(token: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

fn sign(body: &str) -> String {
    sign_with(TOKEN, body)
}

/// POSTs a body as Intuit would, with `signature` as `intuit-signature` when given.
async fn post(w: &World, body: &str, signature: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/webhooks/qbo", w.app.http_addr))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("intuit-signature", signature);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn post_signed(w: &World, body: &str) -> u16 {
    let (status, text) = post(w, body, Some(&sign(body))).await;
    assert!(status == 200 || status == 400, "{status}: {text}");
    status
}

/// A legacy notification: (entity id, operation, deletedId).
fn legacy(realm: &str, entities: &[(&str, &str, Option<&str>)]) -> String {
    let entities: Vec<Value> = entities
        .iter()
        .map(|(id, operation, deleted)| {
            let mut entity = json!({"name": "Customer", "id": id, "operation": operation,
                                    "lastUpdated": "2026-12-03T10:42:19-0800"});
            if let Some(deleted) = deleted {
                entity["deletedId"] = json!(deleted);
            }
            entity
        })
        .collect();
    json!({"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": entities}}]})
        .to_string()
}

/// A CloudEvents body: (type, entity id, data.deletedid).
fn cloud(realm: &str, events: &[(&str, &str, Option<&str>)]) -> String {
    let events: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, (kind, id, deleted))| {
            let data = deleted.map_or_else(|| json!({}), |d| json!({"deletedid": d}));
            json!({"specversion": "1.0", "id": format!("evt-{i}-{id}"), "source": "intuit.abc123",
                   "type": kind, "datacontenttype": "application/json",
                   "time": "2026-12-03T18:42:19.179851517Z", "intuitentityid": id,
                   "intuitaccountid": realm, "data": data})
        })
        .collect();
    Value::Array(events).to_string()
}

/// The tenant's runs: (mode, trigger, requested_by, state), oldest first.
async fn runs(w: &World) -> Vec<(String, String, String, String)> {
    sqlx::query_as(
        "SELECT mode, trigger, requested_by, state FROM sync_runs
         WHERE tenant_id = $1 ORDER BY created_at",
    )
    .bind(TENANT)
    .fetch_all(&w.app.db.pool)
    .await
    .unwrap()
}

fn webhook_run(state: &str) -> (String, String, String, String) {
    (
        "incremental".into(),
        "webhook".into(),
        "qbo-sync:webhook".into(),
        state.into(),
    )
}

async fn count(w: &World, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(TENANT)
        .fetch_one(&w.app.db.pool)
        .await
        .unwrap()
}

/// Runs jobs until the tenant has no active run (the runs must end).
async fn finish_runs(w: &World) {
    for _ in 0..20 {
        w.run_jobs().await;
        let active = count(
            w,
            "SELECT count(*) FROM sync_runs WHERE tenant_id = $1 AND state IN ('queued', 'running')",
        )
        .await;
        if active == 0 {
            return;
        }
        w.make_jobs_due().await;
    }
    panic!("the runs did not end: {:?}", runs(w).await);
}

/// A connected company whose customers `names` are linked, by a full sync, to Digit customers
/// `d-0`, `d-1`, ... (the first `linked` of them); returns the QBO ids of all of them.
async fn linked_world(names: &[&str], linked: usize) -> (World, Vec<String>) {
    let w = hooked().await;
    let ids = w.seed(names);
    let customers = names
        .iter()
        .take(linked)
        .enumerate()
        .map(|(i, name)| customer(&format!("d-{i}"), name))
        .collect();
    let answer = w
        .app
        .customers()
        .batch_upsert_customers(pb::BatchUpsertCustomersRequest {
            tenant_id: TENANT.into(),
            customers,
            skip_push: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.results.iter().all(|r| r.code == 0), "{answer:?}");
    w.app
        .customers()
        .trigger_sync(pb::TriggerSyncRequest {
            tenant_id: TENANT.into(),
            mode: pb::SyncMode::Full.into(),
            link_only: true,
            ..Default::default()
        })
        .await
        .unwrap();
    finish_runs(&w).await;
    for (i, id) in ids.iter().take(linked).enumerate() {
        assert_eq!(&w.linked(&format!("d-{i}")).await.0, id);
    }
    (w, ids)
}

/// The mirrored QBO customer's (missing, merged_into_qbo_id).
async fn mirror_state(w: &World, qbo_id: &str) -> (bool, Option<String>) {
    sqlx::query_as(
        "SELECT missing, merged_into_qbo_id FROM qbo_customers WHERE tenant_id = $1 AND qbo_id = $2",
    )
    .bind(TENANT)
    .bind(qbo_id)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap()
}

/// The `repoint` audit events: (digit id, qbo id before, qbo id after, actor, reason).
async fn repoints(w: &World) -> Vec<(String, String, String, String, String)> {
    sqlx::query_as(
        "SELECT digit_customer_id, before->>'qbo_customer_id', after->>'qbo_customer_id', actor,
                reason
         FROM link_events WHERE tenant_id = $1 AND action = 'repoint' ORDER BY id",
    )
    .bind(TENANT)
    .fetch_all(&w.app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_missing_or_wrong_signature_is_refused_and_queues_nothing() {
    // The tests' signer agrees with openssl:
    // printf '%s' '{"a":1}' | openssl dgst -sha256 -hmac verifier -binary | base64
    assert_eq!(
        sign_with("verifier", r#"{"a":1}"#),
        "dgQRJSqDHmB7uXBRprMquDYc4x9Sf+1q/ebUT0swqbg="
    );
    let w = hooked().await;
    let body = legacy(REALM, &[("1", "Update", None)]);
    let other_body = legacy(REALM, &[("2", "Update", None)]);
    let refusals = [
        ("missing", None),
        ("empty", Some(String::new())),
        ("not base64", Some("not base64!".to_owned())),
        ("another token", Some(sign_with("client-secret", &body))),
        ("another body", Some(sign(&other_body))),
        ("re-serialised body", Some(sign(&body.replace(':', ": ")))),
    ];
    for (case, signature) in refusals {
        let (status, text) = post(&w, &body, signature.as_deref()).await;
        assert_eq!(status, 401, "{case}: {text}");
        assert!(text.contains("intuit-signature"), "{case}: {text}");
    }
    assert!(runs(&w).await.is_empty(), "nothing queued");

    // Signed but malformed: 400. Signed, nothing about customers or an unknown company: 200.
    for malformed in ["not json", "{}", r#"[{"specversion":"1.0"}]"#] {
        assert_eq!(post_signed(&w, malformed).await, 400, "{malformed}");
    }
    let vendor = r#"[{"specversion":"1.0","type":"qbo.vendor.updated.v1","intuitaccountid":"x"}]"#;
    assert_eq!(post_signed(&w, vendor).await, 200);
    assert_eq!(post_signed(&w, "[]").await, 200);
    let stranger = cloud(
        "4620816365999999999",
        &[("qbo.customer.updated.v1", "1", None)],
    );
    assert_eq!(post_signed(&w, &stranger).await, 200);
    assert!(runs(&w).await.is_empty(), "still nothing queued");
}

#[tokio::test]
async fn without_a_verifier_token_webhooks_are_unavailable() {
    let w = world(SimulatorConfig::default(), &[]).await;
    let body = legacy(REALM, &[("1", "Update", None)]);
    let (status, text) = post(&w, &body, Some(&sign(&body))).await;
    assert_eq!(status, 503);
    assert!(text.contains("QBO_SYNC_WEBHOOK_VERIFIER_TOKEN"), "{text}");
    assert!(runs(&w).await.is_empty());
}

#[tokio::test]
async fn a_legacy_notification_queues_one_incremental_run() {
    let w = hooked().await;
    w.seed(&["Birch Dental"]);
    let body = legacy(REALM, &[("1", "Create", None), ("1", "Update", None)]);
    assert_eq!(post_signed(&w, &body).await, 200);
    assert_eq!(runs(&w).await, [webhook_run("queued")]);
    let priority: i16 = sqlx::query_scalar("SELECT priority FROM jobs WHERE kind = 'sync_run'")
        .fetch_one(&w.app.db.pool)
        .await
        .unwrap();
    assert_eq!(priority, 10, "webhook runs are background work");

    // The run reads the company (its first read is a full one) into the mirror.
    finish_runs(&w).await;
    assert_eq!(runs(&w).await, [webhook_run("succeeded")]);
    let mirrored = count(
        &w,
        "SELECT count(*) FROM qbo_customers WHERE tenant_id = $1",
    )
    .await;
    assert_eq!(mirrored, 1);
}

#[tokio::test]
async fn a_cloudevents_notification_queues_one_incremental_run() {
    let w = hooked().await;
    let body = cloud(
        REALM,
        &[
            ("qbo.customer.created.v1", "7", None),
            ("qbo.customer.updated.v1", "7", None),
            ("qbo.invoice.created.v1", "130", None),
        ],
    );
    assert_eq!(post_signed(&w, &body).await, 200);
    assert_eq!(runs(&w).await, [webhook_run("queued")]);
    finish_runs(&w).await;
    assert_eq!(runs(&w).await, [webhook_run("succeeded")]);
}

#[tokio::test]
async fn repeated_and_out_of_order_events_leave_one_active_run() {
    let w = hooked().await;
    let bodies = [
        cloud(REALM, &[("qbo.customer.updated.v1", "3", None)]),
        legacy(REALM, &[("3", "Update", None), ("2", "Create", None)]),
        cloud(
            REALM,
            &[
                ("qbo.customer.updated.v1", "3", None),
                ("qbo.customer.created.v1", "3", None),
            ],
        ),
        legacy(REALM, &[("2", "Create", None)]),
    ];
    // Each body three times, all at once, in mixed order.
    let order = [3, 1, 0, 2, 2, 0, 3, 1, 1, 3, 2, 0];
    let posts = order.iter().map(|&i| post_signed(&w, &bodies[i]));
    let statuses = futures::future::join_all(posts).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(runs(&w).await, [webhook_run("queued")]);

    // Once it has ended, the next notification queues the next run.
    finish_runs(&w).await;
    assert_eq!(post_signed(&w, &bodies[0]).await, 200);
    assert_eq!(
        runs(&w).await,
        [webhook_run("succeeded"), webhook_run("queued")]
    );
}

#[tokio::test]
async fn a_merge_moves_the_link_to_the_survivor() {
    let (w, ids) = linked_world(&["Birch Dental", "Juniper Logistics"], 1).await;
    let (absorbed, survivor) = (ids[0].as_str(), ids[1].as_str());
    w.sim.merge_customers(REALM, absorbed, survivor);
    let body = cloud(
        REALM,
        &[("qbo.customer.merged.v1", survivor, Some(absorbed))],
    );
    assert_eq!(post_signed(&w, &body).await, 200);

    let reason = format!("QuickBooks merged {absorbed} into {survivor}");
    let (qbo, method, reasons) = w.linked("d-0").await;
    assert_eq!(qbo, survivor);
    assert_eq!(method, pb::LinkMethod::MergeRepoint);
    assert_eq!(reasons.first(), Some(&reason));
    let linked_by: String = sqlx::query_scalar(
        "SELECT linked_by FROM links WHERE tenant_id = $1 AND digit_customer_id = 'd-0'",
    )
    .bind(TENANT)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(linked_by, "qbo-sync:webhook");
    assert_eq!(
        repoints(&w).await,
        [(
            "d-0".to_owned(),
            absorbed.to_owned(),
            survivor.to_owned(),
            "qbo-sync:webhook".to_owned(),
            reason
        )]
    );
    let method_before: String = sqlx::query_scalar(
        "SELECT before->>'method' FROM link_events WHERE tenant_id = $1 AND action = 'repoint'",
    )
    .bind(TENANT)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(method_before, "auto_exact");
    assert_eq!(
        mirror_state(&w, absorbed).await,
        (true, Some(survivor.to_owned()))
    );
    let webhook_runs = count(
        &w,
        "SELECT count(*) FROM sync_runs WHERE tenant_id = $1 AND trigger = 'webhook'",
    )
    .await;
    assert_eq!(webhook_runs, 1);

    // The run the notification queued keeps the link, and the absorbed customer stays gone
    // although QBO still returns it (inactive).
    finish_runs(&w).await;
    assert_eq!(w.linked("d-0").await.0, survivor);
    assert_eq!(
        mirror_state(&w, absorbed).await,
        (true, Some(survivor.to_owned()))
    );
    assert_eq!(mirror_state(&w, survivor).await, (false, None));
    assert_eq!(repoints(&w).await.len(), 1);
}

#[tokio::test]
async fn a_merge_into_a_customer_linked_elsewhere_goes_to_review() {
    let (w, ids) = linked_world(&["Birch Dental", "Cedar Clinic"], 2).await;
    let (absorbed, survivor) = (ids[0].as_str(), ids[1].as_str());
    w.sim.merge_customers(REALM, absorbed, survivor);
    let body = legacy(REALM, &[(survivor, "Merge", Some(absorbed))]);
    let events_before = count(&w, "SELECT count(*) FROM link_events WHERE tenant_id = $1").await;
    // Delivered twice: one review item.
    assert_eq!(post_signed(&w, &body).await, 200);
    assert_eq!(post_signed(&w, &body).await, 200);

    let (qbo, method, _) = w.linked("d-0").await;
    assert_eq!(qbo, absorbed, "the link stays as it is");
    assert_ne!(method, pb::LinkMethod::MergeRepoint);
    assert_eq!(w.linked("d-1").await.0, survivor);
    let (kind, reason) = w.review("d-0").await.expect("a person decides");
    assert_eq!(kind, "match");
    for named in [absorbed, survivor, "d-1"] {
        assert!(reason.contains(named), "{named} in {reason}");
    }
    let candidates: Value = sqlx::query_scalar(
        "SELECT candidates FROM review_items WHERE tenant_id = $1 AND digit_customer_id = 'd-0'",
    )
    .bind(TENANT)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(candidates[0]["qbo_customer_id"], json!(survivor));
    assert_eq!(candidates[0]["display_name"], "Cedar Clinic");
    let items = count(&w, "SELECT count(*) FROM review_items WHERE tenant_id = $1").await;
    assert_eq!(items, 1);
    let events = count(&w, "SELECT count(*) FROM link_events WHERE tenant_id = $1").await;
    assert_eq!(events, events_before, "no link changed");
    assert_eq!(
        mirror_state(&w, absorbed).await,
        (true, Some(survivor.to_owned()))
    );
}

#[tokio::test]
async fn the_same_merge_twice_writes_one_audit_event() {
    let (w, ids) = linked_world(&["Birch Dental", "Juniper Logistics"], 1).await;
    let (absorbed, survivor) = (ids[0].as_str(), ids[1].as_str());
    w.sim.merge_customers(REALM, absorbed, survivor);
    let as_cloud = cloud(
        REALM,
        &[("qbo.customer.merged.v1", survivor, Some(absorbed))],
    );
    let as_legacy = legacy(REALM, &[(survivor, "Merge", Some(absorbed))]);
    assert_eq!(post_signed(&w, &as_cloud).await, 200);
    let events = count(&w, "SELECT count(*) FROM link_events WHERE tenant_id = $1").await;
    let link: (String, String, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "SELECT qbo_customer_id, method, linked_at FROM links
         WHERE tenant_id = $1 AND digit_customer_id = 'd-0'",
    )
    .bind(TENANT)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();

    // Again, in both shapes, one after the other and at once.
    assert_eq!(post_signed(&w, &as_cloud).await, 200);
    let (a, b) = tokio::join!(post_signed(&w, &as_legacy), post_signed(&w, &as_cloud));
    assert_eq!((a, b), (200, 200));

    assert_eq!(repoints(&w).await.len(), 1);
    let events_after = count(&w, "SELECT count(*) FROM link_events WHERE tenant_id = $1").await;
    assert_eq!(events_after, events);
    let link_after: (String, String, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "SELECT qbo_customer_id, method, linked_at FROM links
         WHERE tenant_id = $1 AND digit_customer_id = 'd-0'",
    )
    .bind(TENANT)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(link_after, link, "the second delivery changed nothing");
    assert_eq!(link.0, survivor);
    assert_eq!(runs(&w).await.last(), Some(&webhook_run("queued")));
    let active = count(
        &w,
        "SELECT count(*) FROM sync_runs WHERE tenant_id = $1 AND state IN ('queued', 'running')",
    )
    .await;
    assert_eq!(active, 1);
}

#[tokio::test]
async fn merges_delivered_out_of_order_follow_the_chain() {
    // QBO merges A into B, then B into C; the second notification arrives first.
    let (w, ids) = linked_world(&["Birch Dental", "Juniper Logistics", "Cedar Clinic"], 1).await;
    let (a, b, c) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    w.sim.merge_customers(REALM, a, b);
    w.sim.merge_customers(REALM, b, c);
    let second = cloud(REALM, &[("qbo.customer.merged.v1", c, Some(b))]);
    let first = cloud(REALM, &[("qbo.customer.merged.v1", b, Some(a))]);
    assert_eq!(post_signed(&w, &second).await, 200);
    assert_eq!(post_signed(&w, &first).await, 200);

    let (qbo, method, reasons) = w.linked("d-0").await;
    assert_eq!(qbo, c, "the link follows the chain to its end");
    assert_eq!(method, pb::LinkMethod::MergeRepoint);
    assert_eq!(
        reasons.first(),
        Some(&format!(
            "QuickBooks merged {a} into {b}, which it merged into {c} since"
        ))
    );
    assert_eq!(repoints(&w).await.len(), 1);
    assert_eq!(mirror_state(&w, a).await, (true, Some(c.to_owned())));
    assert_eq!(mirror_state(&w, b).await, (true, Some(c.to_owned())));
}
