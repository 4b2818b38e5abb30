//! A tenant reconnecting to another QBO company: refused while it has links, or their
//! archiving with `reset_links`; nothing of the old company stays beside the new one; and
//! every replica drops its cached token when a connection changes.

use std::{sync::Arc, time::Duration};

use qbo_sim::SimulatorConfig;
use qbo_sync::{domain::TenantId, proto::v1 as pb, store::connections::RealmChange};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::{
    connections_support::{by_code, reason},
    helpers::{TEST_CALLER, eventually},
    push_support::{REALM, TENANT, World, world},
    qbo_harness::{REDIRECT, harness},
};

/// The company the tenant moves to.
const OTHER: &str = "9130350000000999";

impl World {
    /// What the store holds of the tenant's company, link by link and table by table.
    async fn company_snapshot(&self) -> Vec<String> {
        let mut snapshot = Vec::new();
        for table in [
            "connections",
            "links",
            "qbo_customers",
            "rejected_pairs",
            "review_items",
            "link_events",
            "archived_links",
        ] {
            let print: Option<String> = sqlx::query_scalar(&format!(
                "SELECT string_agg(t::text, '|' ORDER BY t::text) FROM {table} t
                 WHERE tenant_id = $1"
            ))
            .bind(TENANT)
            .fetch_one(&self.app.db.pool)
            .await
            .unwrap();
            snapshot.push(format!("{table}: {}", print.unwrap_or_default()));
        }
        // The connection's tokens change on every connect; the rest must not.
        snapshot[0] = format!("connections realm: {}", self.connected_realm().await);
        snapshot
    }

    async fn connected_realm(&self) -> String {
        sqlx::query_scalar("SELECT realm_id FROM connections WHERE tenant_id = $1")
            .bind(TENANT)
            .fetch_one(&self.app.db.pool)
            .await
            .unwrap()
    }

    /// c1 linked to QBO's "Acme Corp" by the push; c2 waiting in review, with one pair a
    /// person declared "not the same".
    async fn linked_tenant(&self) -> String {
        let acme = self.seed(&["Acme Corp", "Globex"])[0].clone();
        self.upsert_named("c1", "Acme Corp").await;
        self.run_jobs().await;
        assert_eq!(self.linked("c1").await.0, acme);
        sqlx::query(
            "INSERT INTO digit_customers (tenant_id, id, display_name) VALUES ($1, 'c2', 'Glob');
             ",
        )
        .bind(TENANT)
        .execute(&self.app.db.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO review_items (id, tenant_id, digit_customer_id, state, reason)
             VALUES (gen_random_uuid(), $1, 'c2', 'open', 'two candidates');",
        )
        .bind(TENANT)
        .execute(&self.app.db.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO rejected_pairs (tenant_id, digit_customer_id, qbo_customer_id, rejected_by)
             VALUES ($1, 'c2', '2', 'someone')",
        )
        .bind(TENANT)
        .execute(&self.app.db.pool)
        .await
        .unwrap();
        acme
    }

    async fn connect_other(
        &self,
        code: String,
        reset_links: bool,
    ) -> Result<pb::ConnectCompanyResponse, tonic::Status> {
        self.app
            .connections()
            .connect_company(pb::ConnectCompanyRequest {
                reset_links,
                on_behalf_of: "user-7".into(),
                ..by_code(TENANT, OTHER, code)
            })
            .await
            .map(tonic::Response::into_inner)
    }

    async fn events_of(&self, digit: &str) -> Vec<pb::LinkEvent> {
        self.app
            .customers()
            .list_link_events(pb::ListLinkEventsRequest {
                tenant_id: TENANT.into(),
                digit_customer_id: digit.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .events
    }
}

#[tokio::test]
async fn another_company_is_refused_while_links_exist_and_nothing_changes() {
    let w = world(SimulatorConfig::default(), &[]).await;
    w.linked_tenant().await;
    let before = w.company_snapshot().await;
    let code = w.sim.issue_authorization_code(OTHER, REDIRECT);

    let refused = w.connect_other(code.clone(), false).await.unwrap_err();

    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused), "REALM_CHANGE_WITH_LINKS");
    for needle in [REALM, OTHER, "reset_links", "1 link(s)"] {
        assert!(refused.message().contains(needle), "{}", refused.message());
    }
    assert_eq!(
        w.company_snapshot().await,
        before,
        "a refusal changes nothing"
    );
    // The refusal came before the code exchange: the caller's code still works.
    let answer = w.connect_other(code, true).await.unwrap();
    assert_eq!(answer.previous_realm_id, REALM);
}

#[tokio::test]
async fn reset_links_archives_the_old_company_and_the_new_one_starts_clean() {
    let w = world(SimulatorConfig::default(), &[]).await;
    let acme = w.linked_tenant().await;
    let code = w.sim.issue_authorization_code(OTHER, REDIRECT);

    let answer = w.connect_other(code, true).await.unwrap();

    assert_eq!(answer.previous_realm_id, REALM);
    assert_eq!(answer.archived_links, 1);
    assert_eq!(answer.connection.unwrap().realm_id, OTHER);
    assert_eq!(w.connected_realm().await, OTHER);
    let archived: (String, String, String, String) = sqlx::query_as(
        "SELECT realm_id, digit_customer_id, qbo_customer_id, archived_by FROM archived_links
         WHERE tenant_id = $1",
    )
    .bind(TENANT)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        archived,
        (REALM.into(), "c1".into(), acme.clone(), TEST_CALLER.into())
    );
    // The audit trail says who archived what, newest first.
    let events = w.events_of("c1").await;
    assert_eq!(events[0].action(), pb::LinkEventAction::Archive);
    assert_eq!(events[0].actor, TEST_CALLER);
    assert_eq!(events[0].on_behalf_of, "user-7");
    assert_eq!(events[0].before.as_ref().unwrap().qbo_customer_id, acme);
    assert!(events[0].after.is_none());
    assert!(events[0].reason.contains(OTHER), "{}", events[0].reason);
    assert_eq!(events[1].action(), pb::LinkEventAction::Link);
    // Nothing that names the old company's ids is left to act on.
    for (sql, want) in [
        ("SELECT count(*) FROM links WHERE tenant_id = $1", 0),
        ("SELECT count(*) FROM qbo_customers WHERE tenant_id = $1", 0),
        (
            "SELECT count(*) FROM rejected_pairs WHERE tenant_id = $1",
            0,
        ),
        (
            "SELECT count(*) FROM review_items WHERE tenant_id = $1 AND state = 'open'",
            0,
        ),
        (
            "SELECT count(*) FROM connections WHERE tenant_id = $1 AND next_auto_sync_at <= now()",
            1,
        ),
    ] {
        assert_eq!(w.count(sql).await, want, "{sql}");
    }
    assert_eq!(
        w.status("c1").await.state(),
        pb::LinkState::Unlinked,
        "the customer waits for the new company"
    );

    // The new company's own "Acme Corp" links, under the new company's realm.
    let records = serde_json::json!([{"DisplayName": "Acme Corp", "Active": true}]);
    w.sim.seed_customers(OTHER, records).unwrap();
    // The sync due at once finds it (tests run the jobs by hand).
    let run = w.full().await;
    w.finish(&run.run_id).await;
    let (qbo_id, _, _) = w.linked("c1").await;
    let realm: String = sqlx::query_scalar(
        "SELECT realm_id FROM links WHERE tenant_id = $1 AND digit_customer_id = 'c1'",
    )
    .bind(TENANT)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(realm, OTHER);
    let other_acme = w
        .sim
        .customers(OTHER)
        .iter()
        .find(|c| c["DisplayName"] == "Acme Corp")
        .map(|c| c["Id"].as_str().unwrap().to_owned());
    assert_eq!(Some(qbo_id), other_acme);
}

#[tokio::test]
async fn reconnecting_the_same_company_keeps_everything() {
    let w = world(SimulatorConfig::default(), &[]).await;
    let acme = w.linked_tenant().await;
    let before = w.company_snapshot().await;
    let code = w.sim.issue_authorization_code(REALM, REDIRECT);
    let answer = w
        .app
        .connections()
        .connect_company(by_code(TENANT, REALM, code))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.previous_realm_id, "");
    assert_eq!(answer.archived_links, 0);
    assert_eq!(w.company_snapshot().await, before);
    assert_eq!(w.linked("c1").await.0, acme);
    assert!(w.review("c2").await.is_some());
}

#[tokio::test]
async fn the_store_refuses_old_company_ids_after_the_move() {
    let w = world(SimulatorConfig::default(), &[]).await;
    let code = w.sim.issue_authorization_code(OTHER, REDIRECT);
    w.connect_other(code, false).await.unwrap();
    // A writer that read from the old company before the move (a sync page, a push answer)
    // cannot land its rows beside the new company.
    let stale_mirror = sqlx::query(
        "INSERT INTO qbo_customers (tenant_id, realm_id, qbo_id, sync_token, display_name,
             fully_qualified_name, active)
         VALUES ($1, $2, '1', '0', 'Acme Corp', 'Acme Corp', true)",
    )
    .bind(TENANT)
    .bind(REALM)
    .execute(&w.app.db.pool)
    .await
    .unwrap_err();
    assert_eq!(
        stale_mirror.as_database_error().unwrap().constraint(),
        Some("qbo_customers_connection_fkey")
    );
    sqlx::query("INSERT INTO digit_customers (tenant_id, id, display_name) VALUES ($1, 'c9', 'A')")
        .bind(TENANT)
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    let stale_link = sqlx::query(
        "INSERT INTO links (tenant_id, realm_id, digit_customer_id, qbo_customer_id, method,
                            linked_by)
         VALUES ($1, $2, 'c9', '1', 'manual', 'test')",
    )
    .bind(TENANT)
    .bind(REALM)
    .execute(&w.app.db.pool)
    .await
    .unwrap_err();
    assert_eq!(
        stale_link.as_database_error().unwrap().constraint(),
        Some("links_connection_fkey")
    );
}

#[tokio::test]
async fn every_replica_drops_its_cached_token_when_the_connection_changes() {
    let h = harness(SimulatorConfig::default(), |_| {}).await;
    let listening = Arc::new(h.replica().await);
    let deaf = h.replica().await;
    let stop = CancellationToken::new();
    let task = {
        let listening = Arc::clone(&listening);
        let stop = stop.clone();
        tokio::spawn(async move { listening.tokens().forget_on_change(stop).await })
    };
    // Both replicas cache the tenant's token.
    let first = listening.tokens().access_token(&h.tenant).await.unwrap();
    deaf.tokens().access_token(&h.tenant).await.unwrap();
    assert_eq!(first.realm, h.realm);

    h.client.tokens().disconnect(&h.tenant).await.unwrap();

    let tenant: &TenantId = &h.tenant;
    assert!(
        eventually(Duration::from_secs(5), || async {
            listening.tokens().access_token(tenant).await.is_err()
        })
        .await,
        "the listening replica must stop using the disconnected company's token"
    );
    // Without the announcement a replica would go on with its cached token for up to an hour.
    assert!(deaf.tokens().access_token(&h.tenant).await.is_ok());

    // Reconnected to another company on the first replica: the second uses the new one.
    let other = qbo_sync::domain::RealmId::parse(OTHER).unwrap();
    let code = h.sim.issue_authorization_code(OTHER, REDIRECT);
    h.client
        .tokens()
        .connect_with_code(
            &h.tenant,
            &other,
            "sandbox",
            &SecretString::from(code),
            REDIRECT,
            RealmChange::Refuse,
        )
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            matches!(listening.tokens().access_token(tenant).await, Ok(t) if t.realm == other)
        })
        .await,
        "the listening replica must use the new company's token"
    );
    stop.cancel();
    task.await.unwrap();
}
