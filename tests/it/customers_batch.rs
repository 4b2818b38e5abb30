//! `BatchUpsertCustomers` as a whole: the complete observable outcome of a mixed batch (the
//! answers, the rows of `digit_customers`, the jobs queued), duplicates of one id, and the
//! number of statements a batch costs.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use qbo_sync::{
    domain::{DigitCustomer, DigitCustomerId, LinkMethod, LinkState, TenantId},
    matching::{NORMALIZER_VERSION, customer_keys},
    proto::v1::{self as pb, LinkState as PbState},
    service::customers::{Customers, UpsertOutcome},
};
use sqlx::PgPool;
use tonic::Code;
use tracing::instrument::WithSubscriber;
use tracing_subscriber::{Layer, layer::SubscriberExt};

use crate::helpers::{TestApp, fresh_database};

fn customer(id: &str, name: &str) -> pb::DigitCustomer {
    pb::DigitCustomer {
        id: id.into(),
        display_name: name.into(),
        ..Default::default()
    }
}

fn with_email(c: pb::DigitCustomer, email: &str) -> pb::DigitCustomer {
    pb::DigitCustomer {
        email: email.into(),
        ..c
    }
}

fn with_phone(c: pb::DigitCustomer, phone: &str) -> pb::DigitCustomer {
    pb::DigitCustomer {
        phone: phone.into(),
        ..c
    }
}

fn inactive(c: pb::DigitCustomer) -> pb::DigitCustomer {
    pb::DigitCustomer {
        active: Some(false),
        ..c
    }
}

/// A richly filled new customer: every column must arrive.
fn new_active() -> pb::DigitCustomer {
    pb::DigitCustomer {
        company_name: "New Active Ltd".into(),
        given_name: "Ada".into(),
        family_name: "Lovelace".into(),
        email: "ada@new.test".into(),
        phone: "555-0001".into(),
        ..customer("new_active", "New Active Ltd")
    }
}

async fn batch(
    app: &TestApp,
    tenant: &str,
    customers: Vec<pb::DigitCustomer>,
    skip_push: bool,
) -> Vec<pb::BatchUpsertResult> {
    app.customers()
        .batch_upsert_customers(pb::BatchUpsertCustomersRequest {
            tenant_id: tenant.into(),
            customers,
            skip_push,
        })
        .await
        .expect("batch accepted")
        .into_inner()
        .results
}

fn ok(id: &str, state: PbState, created: bool, push_queued: bool) -> pb::BatchUpsertResult {
    pb::BatchUpsertResult {
        customer_id: id.into(),
        code: Code::Ok as i32,
        message: String::new(),
        state: state as i32,
        created,
        push_queued,
    }
}

fn invalid(id: &str, message: &str) -> pb::BatchUpsertResult {
    pb::BatchUpsertResult {
        customer_id: id.into(),
        code: Code::InvalidArgument as i32,
        message: message.into(),
        ..Default::default()
    }
}

async fn sql(pool: &PgPool, statement: &str) {
    sqlx::query(statement).execute(pool).await.unwrap();
}

/// Gives `tenant` the QBO company `realm` its links name. Disconnected, so nothing on the
/// server schedules work for it: the jobs seen are the batch's.
async fn company(pool: &PgPool, tenant: &str, realm: &str) {
    sqlx::query(
        "INSERT INTO connections (tenant_id, realm_id, environment, state)
         VALUES ($1, $2, 'sandbox', 'disconnected')",
    )
    .bind(tenant)
    .bind(realm)
    .execute(pool)
    .await
    .unwrap();
}

/// A row of `digit_customers` without its volatile columns; `touched` says whether a later
/// transaction than the one that created it wrote it.
#[derive(Debug, PartialEq, sqlx::FromRow)]
struct CustomerRow {
    tenant_id: String,
    id: String,
    display_name: String,
    company_name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    active: bool,
    push_generation: i32,
    name_key: Option<String>,
    normalizer_version: i32,
    touched: bool,
}

/// The expected row of a customer with only a name, an e-mail and a phone (no name parts),
/// keyed by the current normalizer.
fn row(
    tenant: &str,
    id: &str,
    name: &str,
    (email, phone): (Option<&str>, Option<&str>),
    active: bool,
    touched: bool,
) -> CustomerRow {
    CustomerRow {
        tenant_id: tenant.into(),
        id: id.into(),
        display_name: name.into(),
        company_name: None,
        given_name: None,
        family_name: None,
        email: email.map(Into::into),
        phone: phone.map(Into::into),
        active,
        push_generation: 0,
        name_key: Some(customer_keys(name, email).name_key),
        normalizer_version: i32::try_from(NORMALIZER_VERSION).unwrap(),
        touched,
    }
}

async fn customer_rows(pool: &PgPool) -> Vec<CustomerRow> {
    sqlx::query_as(
        "SELECT tenant_id, id, display_name, company_name, given_name, family_name, email, phone,
                active, push_generation, name_key, normalizer_version,
                updated_at > created_at AS touched
         FROM digit_customers ORDER BY tenant_id, id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A job without its volatile columns, in the order workers claim them.
#[derive(Debug, PartialEq, sqlx::FromRow)]
struct JobRow {
    tenant_id: String,
    kind: String,
    customer: Option<String>,
    state: String,
    priority: i16,
    dedupe_key: Option<String>,
    needs_connection: bool,
    attempts: i32,
}

fn job(tenant: &str, kind: &str, id: &str, priority: i16) -> JobRow {
    let prefix = if kind == "push_customer" {
        "push"
    } else {
        "update"
    };
    JobRow {
        tenant_id: tenant.into(),
        kind: kind.into(),
        customer: Some(id.into()),
        state: "queued".into(),
        priority,
        dedupe_key: Some(format!("{prefix}:{id}")),
        needs_connection: true,
        attempts: 0,
    }
}

async fn job_rows(pool: &PgPool) -> Vec<JobRow> {
    sqlx::query_as(
        "SELECT tenant_id, kind, payload->>'digit_customer_id' AS customer, state, priority,
                dedupe_key, needs_connection, attempts
         FROM jobs ORDER BY tenant_id, priority, fair_at, id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Customers of every kind a batch meets, recorded, linked, in review or queued beforehand.
async fn seed_mixed(app: &TestApp) {
    let seeded = vec![
        customer("changed", "Changed Co"),
        with_email(customer("unchanged", "Same Co"), "same@same.test"),
        with_email(customer("linked_changed", "Linked Co"), "old@linked.test"),
        customer("linked_unchanged", "Steady Co"),
        customer("linked_inactive", "Fading Co"),
        with_phone(customer("linked_queued", "Queued Co"), "555-0100"),
        customer("review", "Review Co"),
    ];
    batch(app, "t1", seeded, true).await;
    batch(
        app,
        "t2",
        vec![customer("linked_changed", "Other Tenant Co")],
        true,
    )
    .await;
    // A customer whose push is waiting (queued interactively, by UpsertCustomer).
    app.customers()
        .upsert_customer(pb::UpsertCustomerRequest {
            tenant_id: "t1".into(),
            customer: Some(customer("pending", "Pending Co")),
            skip_push: false,
        })
        .await
        .unwrap();
    let pool = &app.db.pool;
    company(pool, "t1", "r1").await;
    company(pool, "t2", "r2").await;
    sql(
        pool,
        "INSERT INTO links (tenant_id, realm_id, digit_customer_id, qbo_customer_id, method, linked_by)
         VALUES ('t1', 'r1', 'linked_changed', '101', 'manual', 'test'),
                ('t1', 'r1', 'linked_unchanged', '102', 'manual', 'test'),
                ('t1', 'r1', 'linked_inactive', '103', 'manual', 'test'),
                ('t1', 'r1', 'linked_queued', '104', 'manual', 'test'),
                ('t2', 'r2', 'linked_changed', '201', 'manual', 'test')",
    )
    .await;
    sql(
        pool,
        "INSERT INTO review_items (id, tenant_id, digit_customer_id, state, reason)
         VALUES (gen_random_uuid(), 't1', 'review', 'open', 'two QuickBooks customers look alike')",
    )
    .await;
    // A linked customer whose update to QBO is waiting already.
    let queued = vec![with_phone(
        customer("linked_queued", "Queued Co"),
        "555-0101",
    )];
    let results = batch(app, "t1", queued, false).await;
    assert_eq!(
        results,
        [ok("linked_queued", PbState::Linked, false, false)]
    );
}

#[tokio::test]
async fn a_mixed_batch_answers_records_and_queues_like_one_upsert_at_a_time() {
    let app = TestApp::spawn().await;
    seed_mixed(&app).await;

    let mixed = vec![
        new_active(),
        customer("changed", "Changed Company"),
        with_email(customer("unchanged", "Same Co"), "same@same.test"),
        inactive(customer("new_inactive", "Dormant Co")),
        with_email(customer("linked_changed", "Linked Co"), "new@linked.test"),
        customer("linked_unchanged", "Steady Co"),
        // Only `active` changes: QBO's fields (name, e-mail, phone) do not, so no update.
        inactive(customer("linked_inactive", "Fading Co")),
        // Its update is queued already: not a second one.
        with_phone(customer("linked_queued", "Queued Co"), "555-0102"),
        customer("review", "Review Company"),
        customer("pending", "Pending Company"),
        customer("", "No Id"),
        customer("new_active", "Second Spelling"),
        customer("new_active2", "Second New"),
    ];
    let answers = batch(&app, "t1", mixed, false).await;
    let skipped = vec![
        customer("new_skipped", "Skipped Co"),
        customer("linked_unchanged", "Steady Company"),
    ];
    let skipped_answers = batch(&app, "t1", skipped, true).await;

    assert_eq!(
        answers,
        [
            ok("new_active", PbState::PendingPush, true, true),
            ok("changed", PbState::Unlinked, false, false),
            ok("unchanged", PbState::Unlinked, false, false),
            ok("new_inactive", PbState::Unlinked, true, false),
            ok("linked_changed", PbState::Linked, false, false),
            ok("linked_unchanged", PbState::Linked, false, false),
            ok("linked_inactive", PbState::Linked, false, false),
            ok("linked_queued", PbState::Linked, false, false),
            ok("review", PbState::PendingReview, false, false),
            ok("pending", PbState::PendingPush, false, false),
            invalid("", "invalid request: customers[10].id: must not be empty"),
            invalid(
                "new_active",
                "invalid request: customers[11].id: appears more than once in the request"
            ),
            ok("new_active2", PbState::PendingPush, true, true),
        ]
    );
    assert_eq!(
        skipped_answers,
        [
            ok("new_skipped", PbState::Unlinked, true, false),
            ok("linked_unchanged", PbState::Linked, false, false),
        ]
    );

    let rich = new_active();
    let new_active_row = CustomerRow {
        company_name: Some(rich.company_name.clone()),
        given_name: Some(rich.given_name.clone()),
        family_name: Some(rich.family_name.clone()),
        ..row(
            "t1",
            "new_active",
            &rich.display_name,
            (Some(&rich.email), Some(&rich.phone)),
            true,
            false,
        )
    };
    let none = (None, None);
    assert_eq!(
        customer_rows(&app.db.pool).await,
        [
            row("t1", "changed", "Changed Company", none, true, true),
            row(
                "t1",
                "linked_changed",
                "Linked Co",
                (Some("new@linked.test"), None),
                true,
                true
            ),
            row("t1", "linked_inactive", "Fading Co", none, false, true),
            row(
                "t1",
                "linked_queued",
                "Queued Co",
                (None, Some("555-0102")),
                true,
                true
            ),
            row("t1", "linked_unchanged", "Steady Company", none, true, true),
            new_active_row,
            row("t1", "new_active2", "Second New", none, true, false),
            row("t1", "new_inactive", "Dormant Co", none, false, false),
            row("t1", "new_skipped", "Skipped Co", none, true, false),
            row("t1", "pending", "Pending Company", none, true, true),
            row("t1", "review", "Review Company", none, true, true),
            row(
                "t1",
                "unchanged",
                "Same Co",
                (Some("same@same.test"), None),
                true,
                true
            ),
            // The other tenant's customer of the same id is untouched.
            row("t2", "linked_changed", "Other Tenant Co", none, true, false),
        ]
    );

    // Interactive work first, then the batch's jobs in request order, after the tenant's
    // waiting ones.
    assert_eq!(
        job_rows(&app.db.pool).await,
        [
            job("t1", "push_customer", "pending", 0),
            job("t1", "update_qbo_customer", "linked_queued", 10),
            job("t1", "push_customer", "new_active", 10),
            job("t1", "update_qbo_customer", "linked_changed", 10),
            job("t1", "push_customer", "new_active2", 10),
        ]
    );
}

fn domain(id: &str, name: &str, email: Option<&str>) -> DigitCustomer {
    DigitCustomer {
        id: DigitCustomerId::parse(id.to_owned()).unwrap(),
        display_name: name.into(),
        company_name: None,
        given_name: None,
        family_name: None,
        email: email.map(Into::into),
        phone: None,
        active: true,
    }
}

/// What a test compares of an outcome: state, created, push queued, and the link's QBO id and
/// method.
fn summary(o: &UpsertOutcome) -> (LinkState, bool, bool, Option<(String, LinkMethod)>) {
    (
        o.state,
        o.created,
        o.push_queued,
        o.link
            .as_ref()
            .map(|l| (l.qbo_customer_id.to_string(), l.method)),
    )
}

#[tokio::test]
async fn an_id_given_twice_to_the_use_case_is_recorded_in_order_and_the_last_one_stays() {
    // The gRPC layer refuses a repeated id (INVALID_ARGUMENT, above); the use case itself
    // takes the customers in order, as if upserted one after the other.
    let db = fresh_database().await.unwrap();
    let customers = Customers::new(db.pool.clone());
    let tenant = TenantId::parse("t1".to_owned()).unwrap();
    customers
        .upsert_customers(&tenant, &[domain("l", "Linked Co", None)], true)
        .await
        .unwrap();
    company(&db.pool, "t1", "r1").await;
    sql(
        &db.pool,
        "INSERT INTO links (tenant_id, realm_id, digit_customer_id, qbo_customer_id, method, linked_by)
         VALUES ('t1', 'r1', 'l', '101', 'manual', 'test')",
    )
    .await;

    let outcomes = customers
        .upsert_customers(
            &tenant,
            &[
                domain("a", "A One", None),
                domain("l", "Linked Co", None),
                domain("a", "A Two", None),
                domain("l", "Linked Co", Some("l@linked.test")),
                domain("a", "A Two", None),
            ],
            false,
        )
        .await
        .unwrap();

    let linked = Some(("101".to_owned(), LinkMethod::Manual));
    assert_eq!(
        outcomes.iter().map(summary).collect::<Vec<_>>(),
        [
            (LinkState::PendingPush, true, true, None),
            (LinkState::Linked, false, false, linked.clone()),
            (LinkState::PendingPush, false, false, None),
            (LinkState::Linked, false, false, linked.clone()),
            (LinkState::PendingPush, false, false, None),
        ]
    );
    let rows = customer_rows(&db.pool).await;
    assert_eq!(
        rows,
        [
            row("t1", "a", "A Two", (None, None), true, false),
            row(
                "t1",
                "l",
                "Linked Co",
                (Some("l@linked.test"), None),
                true,
                true
            ),
        ]
    );
    assert_eq!(
        job_rows(&db.pool).await,
        [
            job("t1", "push_customer", "a", 10),
            job("t1", "update_qbo_customer", "l", 10),
        ]
    );
}

/// Counts the statements sqlx runs (its `sqlx::query` events) while a future is polled.
#[derive(Clone, Default)]
struct StatementCounter(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> Layer<S> for StatementCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The statements one batch of `size` costs on a fresh tenant: half of it customers linked
/// beforehand whose e-mail changes (updates queued), half new ones (pushes queued).
async fn statements_for_batch(pool: &PgPool, size: usize) -> usize {
    let customers = Customers::new(pool.clone());
    let tenant = TenantId::parse(format!("count-{size}")).unwrap();
    let half = size / 2;
    let known: Vec<DigitCustomer> = (0..half)
        .map(|i| domain(&format!("known-{i}"), &format!("Known {i}"), None))
        .collect();
    customers
        .upsert_customers(&tenant, &known, true)
        .await
        .unwrap();
    let realm = format!("realm-{size}");
    company(pool, tenant.as_str(), &realm).await;
    sqlx::query(
        "INSERT INTO links (tenant_id, realm_id, digit_customer_id, qbo_customer_id, method, linked_by)
         SELECT tenant_id, $2, id, 'q-' || id, 'manual', 'test' FROM digit_customers
         WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .bind(&realm)
    .execute(pool)
    .await
    .unwrap();
    let mut mixed: Vec<DigitCustomer> = (0..half)
        .map(|i| {
            domain(
                &format!("known-{i}"),
                &format!("Known {i}"),
                Some("new@mail.test"),
            )
        })
        .collect();
    mixed.extend((0..size - half).map(|i| domain(&format!("new-{i}"), &format!("New {i}"), None)));

    let counter = StatementCounter::default();
    let subscriber = tracing_subscriber::registry().with(counter.clone());
    let outcomes = customers
        .upsert_customers(&tenant, &mixed, false)
        .with_subscriber(subscriber)
        .await
        .unwrap();
    // The batch did its work: every known customer's update and every new one's push queued.
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(usize::try_from(queued).unwrap(), size);
    assert_eq!(
        outcomes.iter().filter(|o| o.push_queued).count(),
        size - half
    );
    counter.0.load(Ordering::Relaxed)
}

#[tokio::test]
async fn a_batch_costs_the_same_few_statements_whatever_its_size() {
    let db = fresh_database().await.unwrap();
    let small = statements_for_batch(&db.pool, 4).await;
    let large = statements_for_batch(&db.pool, 400).await;
    assert!(small > 0, "the counter saw the statements");
    assert_eq!(small, large, "4 customers: {small}; 400 customers: {large}");
    // The upsert, the links read, the jobs insert, the read of what waits for the unlinked,
    // and the transaction's own (the per-customer path took 4 a customer).
    assert!(large <= 5, "{large} statements");
}
