use qbo_sync::proto::v1::customer_sync_service_client::CustomerSyncServiceClient;
use qbo_sync::proto::v1::{self as pb, LinkState};
use tonic::Code;

use crate::helpers::{AuthChannel, TestApp};

fn customer(id: &str, name: &str) -> pb::DigitCustomer {
    pb::DigitCustomer {
        id: id.into(),
        display_name: name.into(),
        ..Default::default()
    }
}

/// Records a customer without pushing it.
async fn record(
    client: &mut CustomerSyncServiceClient<AuthChannel>,
    tenant: &str,
    customer: pb::DigitCustomer,
) {
    client
        .upsert_customer(pb::UpsertCustomerRequest {
            tenant_id: tenant.into(),
            customer: Some(customer),
            skip_push: true,
        })
        .await
        .expect("recorded");
}

/// Asks where a customer stands.
async fn link_status(
    client: &mut CustomerSyncServiceClient<AuthChannel>,
    tenant: &str,
    id: &str,
) -> Result<pb::GetLinkStatusResponse, tonic::Status> {
    client
        .get_link_status(pb::GetLinkStatusRequest {
            tenant_id: tenant.into(),
            digit_customer_id: id.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn live_push_jobs(app: &TestApp, tenant: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE tenant_id = $1 AND kind = 'push_customer' AND state = 'queued'")
        .bind(tenant)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_new_customer_is_queued_for_push_once() {
    let app = TestApp::spawn().await;
    let mut client = app.customers();
    let request = pb::UpsertCustomerRequest {
        tenant_id: "t1".into(),
        customer: Some(customer("c1", "Acme Corp")),
        skip_push: false,
    };
    let first = client
        .upsert_customer(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(first.created && first.push_queued);
    assert_eq!(first.state(), LinkState::PendingPush);

    // The same customer again: updated, not pushed a second time.
    let renamed = pb::UpsertCustomerRequest {
        customer: Some(customer("c1", "Acme Corporation")),
        ..request
    };
    let second = client.upsert_customer(renamed).await.unwrap().into_inner();
    assert!(!second.created && !second.push_queued);
    assert_eq!(second.state(), LinkState::PendingPush);
    assert_eq!(live_push_jobs(&app, "t1").await, 1);
    let name: String = sqlx::query_scalar(
        "SELECT display_name FROM digit_customers WHERE tenant_id = 't1' AND id = 'c1'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(name, "Acme Corporation");
}

#[tokio::test]
async fn skip_push_and_inactive_customers_are_only_recorded() {
    let app = TestApp::spawn().await;
    let mut client = app.customers();
    let skipped = pb::UpsertCustomerRequest {
        tenant_id: "t1".into(),
        customer: Some(customer("c1", "Acme")),
        skip_push: true,
    };
    let outcome = client.upsert_customer(skipped).await.unwrap().into_inner();
    assert!(outcome.created && !outcome.push_queued);
    assert_eq!(outcome.state(), LinkState::Unlinked);
    let inactive = pb::DigitCustomer {
        active: Some(false),
        ..customer("c2", "Gone Ltd")
    };
    let outcome = client
        .upsert_customer(pb::UpsertCustomerRequest {
            tenant_id: "t1".into(),
            customer: Some(inactive),
            skip_push: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!outcome.push_queued);
    assert_eq!(live_push_jobs(&app, "t1").await, 0);
}

#[tokio::test]
async fn batch_answers_per_customer_in_order() {
    let app = TestApp::spawn().await;
    let request = pb::BatchUpsertCustomersRequest {
        tenant_id: "t1".into(),
        customers: vec![
            customer("a", "Alpha"),
            customer("", "No Id"),
            customer("b", "Beta"),
            customer("a", "Alpha again"),
        ],
        skip_push: false,
    };
    let results = app
        .customers()
        .batch_upsert_customers(request)
        .await
        .unwrap()
        .into_inner()
        .results;
    let summary: Vec<(&str, i32)> = results
        .iter()
        .map(|r| (r.customer_id.as_str(), r.code))
        .collect();
    assert_eq!(
        summary,
        [
            ("a", 0),
            ("", Code::InvalidArgument as i32),
            ("b", 0),
            ("a", Code::InvalidArgument as i32)
        ]
    );
    assert!(
        results[1].message.contains("customers[1].id"),
        "{}",
        results[1].message
    );
    assert!(
        results[3].message.contains("more than once"),
        "{}",
        results[3].message
    );
    assert!(results[0].push_queued && results[2].push_queued);
    let names: Vec<String> =
        sqlx::query_scalar("SELECT display_name FROM digit_customers ORDER BY id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        names,
        ["Alpha", "Beta"],
        "the duplicate did not overwrite the first"
    );
}

#[tokio::test]
async fn batch_size_is_bounded() {
    let app = TestApp::spawn().await;
    let too_many = (0..1001)
        .map(|i| customer(&format!("c{i}"), &format!("Customer {i}")))
        .collect();
    let status = app
        .customers()
        .batch_upsert_customers(pb::BatchUpsertCustomersRequest {
            tenant_id: "t1".into(),
            customers: too_many,
            skip_push: true,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("1 to 1000"),
        "{}",
        status.message()
    );
    let full = (0..1000)
        .map(|i| customer(&format!("c{i}"), &format!("Customer {i}")))
        .collect();
    let results = app
        .customers()
        .batch_upsert_customers(pb::BatchUpsertCustomersRequest {
            tenant_id: "t1".into(),
            customers: full,
            skip_push: true,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(
        results.iter().filter(|r| r.code == 0 && r.created).count(),
        1000
    );
}

#[tokio::test]
async fn link_status_is_per_tenant() {
    let app = TestApp::spawn().await;
    let mut client = app.customers();
    record(&mut client, "t1", customer("c1", "Acme")).await;
    let mine = link_status(&mut client, "t1", "c1").await.unwrap();
    assert_eq!(mine.state(), LinkState::Unlinked);
    assert!(!mine.explanation.is_empty());
    // Another tenant cannot see t1's customer.
    let status = link_status(&mut client, "t2", "c1").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn a_stored_link_is_reported_with_its_method() {
    let app = TestApp::spawn().await;
    let mut client = app.customers();
    record(&mut client, "t1", customer("c1", "Acme")).await;
    // A link names the company of its QBO customer, which must be the tenant's.
    sqlx::query(
        "INSERT INTO connections (tenant_id, realm_id, environment, state)
         VALUES ('t1', '9130350000000058', 'sandbox', 'connected')",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO links (tenant_id, realm_id, digit_customer_id, qbo_customer_id, method, score, reasons, normalizer_version, linked_by)
         VALUES ('t1', '9130350000000058', 'c1', '58', 'auto_normalized', 0.97, '[\"same name ignoring case\"]', 1, 'qbo-sync')",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let status = link_status(&mut client, "t1", "c1").await.unwrap();
    assert_eq!(status.state(), LinkState::Linked);
    let link = status.link.unwrap();
    assert_eq!(link.qbo_customer_id, "58");
    assert_eq!(link.method(), pb::LinkMethod::AutoNormalized);
    assert_eq!(link.reasons, ["same name ignoring case"]);
    assert_eq!(link.normalizer_version, 1);
}
