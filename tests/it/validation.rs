//! Bad input gets INVALID_ARGUMENT naming the field, and nothing stored is touched.

use qbo_sync::proto::v1::{self as pb};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::TestApp;

fn customer(id: &str, name: &str) -> pb::DigitCustomer {
    pb::DigitCustomer {
        id: id.into(),
        display_name: name.into(),
        ..Default::default()
    }
}

fn upsert(tenant: &str, customer: pb::DigitCustomer) -> pb::UpsertCustomerRequest {
    pb::UpsertCustomerRequest {
        tenant_id: tenant.into(),
        customer: Some(customer),
        skip_push: true,
    }
}

/// The fields named by the status's BadRequest details.
fn violated_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    assert_eq!(
        details.error_info().expect("ErrorInfo").domain,
        "qbosync.v1"
    );
    details
        .bad_request()
        .expect("BadRequest")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}

#[tokio::test]
async fn bad_customers_are_rejected_with_the_field_named_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let mut client = app.customers();
    client
        .upsert_customer(upsert("t1", customer("c1", "Acme Corp")))
        .await
        .expect("a good customer is stored");

    let long_id = "x".repeat(65);
    let long_name = "n".repeat(501);
    let cases: Vec<(pb::UpsertCustomerRequest, &str)> = vec![
        (upsert("", customer("c1", "Other")), "tenant_id"),
        (upsert(&long_id, customer("c1", "Other")), "tenant_id"),
        (upsert("t1", customer("", "Other")), "customer.id"),
        (upsert("t1", customer(&long_id, "Other")), "customer.id"),
        (upsert("t1", customer("c1", "")), "customer.display_name"),
        (
            upsert("t1", customer("c1", &long_name)),
            "customer.display_name",
        ),
        (
            upsert("t1", customer("c1", "Tab\there")),
            "customer.display_name",
        ),
        (upsert("t1", customer("c1\u{0}", "Other")), "customer.id"),
        (
            upsert(
                "t1",
                pb::DigitCustomer {
                    email: "nope".into(),
                    ..customer("c1", "Other")
                },
            ),
            "customer.email",
        ),
        (
            upsert(
                "t1",
                pb::DigitCustomer {
                    phone: "1".repeat(31),
                    ..customer("c1", "Other")
                },
            ),
            "customer.phone",
        ),
        (
            pb::UpsertCustomerRequest {
                tenant_id: "t1".into(),
                customer: None,
                skip_push: false,
            },
            "customer",
        ),
    ];
    for (request, field) in cases {
        let status = client.upsert_customer(request.clone()).await.unwrap_err();
        assert!(
            violated_fields(&status).contains(&field.to_owned()),
            "{field} not named for {request:?}: {status:?}"
        );
    }

    let stored: String = sqlx::query_scalar(
        "SELECT display_name FROM digit_customers WHERE tenant_id = 't1' AND id = 'c1'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(stored, "Acme Corp", "the stored customer is untouched");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM digit_customers")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn every_bad_field_is_reported_at_once() {
    let app = TestApp::spawn().await;
    let status = app
        .customers()
        .upsert_customer(upsert(
            "",
            pb::DigitCustomer {
                email: "x".into(),
                ..customer("", "")
            },
        ))
        .await
        .unwrap_err();
    let fields = violated_fields(&status);
    for want in [
        "tenant_id",
        "customer.id",
        "customer.display_name",
        "customer.email",
    ] {
        assert!(
            fields.contains(&want.to_owned()),
            "{want} missing from {fields:?}"
        );
    }
}

#[tokio::test]
async fn unknown_and_unset_enum_values_are_rejected() {
    let app = TestApp::spawn().await;
    let mut client = app.customers();
    for mode in [0, 99] {
        let request = pb::TriggerSyncRequest {
            tenant_id: "t1".into(),
            mode,
            ..Default::default()
        };
        let status = client.trigger_sync(request).await.unwrap_err();
        assert_eq!(violated_fields(&status), ["mode"], "mode {mode}");
    }
    let request = pb::ResolveReviewItemRequest {
        tenant_id: "t1".into(),
        review_item_id: uuid::Uuid::new_v4().to_string(),
        decision: 42,
        ..Default::default()
    };
    assert_eq!(
        violated_fields(&client.resolve_review_item(request).await.unwrap_err()),
        ["decision"]
    );
    let request = pb::ConnectCompanyRequest {
        tenant_id: "t1".into(),
        realm_id: "123".into(),
        environment: 7,
        refresh_token: "r".into(),
        ..Default::default()
    };
    assert_eq!(
        violated_fields(
            &app.connections()
                .connect_company(request)
                .await
                .unwrap_err()
        ),
        ["environment"]
    );
}

#[tokio::test]
async fn ids_of_other_rpcs_are_checked() {
    let app = TestApp::spawn().await;
    let mut client = app.customers();
    let status = client
        .get_sync_run(pb::GetSyncRunRequest {
            tenant_id: "t1".into(),
            run_id: "not-a-uuid".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["run_id"]);
    let status = client
        .link_customers(pb::LinkCustomersRequest {
            tenant_id: "t1".into(),
            digit_customer_id: "c1".into(),
            qbo_customer_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["qbo_customer_id"]);
    let status = client
        .list_review_items(pb::ListReviewItemsRequest {
            tenant_id: "t1".into(),
            page_size: 501,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size"]);
    let status = app
        .connections()
        .connect_company(pb::ConnectCompanyRequest {
            tenant_id: "t1".into(),
            realm_id: "123".into(),
            environment: pb::QboEnvironment::Sandbox as i32,
            authorization_code: "code".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["redirect_uri"]);
}
