//! The query grammar subset: escaping, filters, inactive hiding, ordering and pagination.

use std::time::Instant;

use qbo_sim::{SimulatorConfig, StringMatch};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::env::{Env, REALM, escape, first_error};

fn names(response: &Value, entity: &str) -> Vec<String> {
    response[entity]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r["DisplayName"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn hostile_names_round_trip_through_get_and_post() {
    let env = Env::start().await;
    let hostile = r"O'Brien \ Sons' OR 1=1";
    env.create(hostile).await;
    env.create("O").await;
    env.create("O'Brien").await;
    let statement = format!(
        "select * from Customer where DisplayName = '{}'",
        escape(hostile)
    );
    assert_eq!(
        names(&env.query(&statement).await, "Customer"),
        vec![hostile]
    );

    let response = env
        .http
        .post(env.url("query"))
        .query(&[("minorversion", "75")])
        .bearer_auth(&env.token)
        .header("Content-Type", "application/text")
        .body(statement)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(names(&body["QueryResponse"], "Customer"), vec![hostile]);

    let like = format!(
        "select * from Customer where DisplayName LIKE '%{}%'",
        escape(r"Brien \")
    );
    assert_eq!(names(&env.query(&like).await, "Customer"), vec![hostile]);
    let curly = "Dan\u{2019}s \u{201c}Best\u{201d} Café";
    env.create(curly).await;
    let statement = format!(
        "select * from Customer where DisplayName = '{}'",
        escape(curly)
    );
    assert_eq!(names(&env.query(&statement).await, "Customer"), vec![curly]);
    // An unescaped quote is a parse error, not an injection.
    let (status, body) = env
        .get(
            "query",
            &[(
                "query",
                "select * from Customer where DisplayName = 'O'Brien'",
            )],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(first_error(&body)["code"], "4000");
}

#[tokio::test]
async fn inactive_records_are_hidden_unless_active_is_filtered() {
    let env = Env::start().await;
    for name in ["Alpha", "Beta", "Gamma"] {
        env.create(name).await;
    }
    env.sim
        .edit_customer(REALM, "2", json!({"Active": false}))
        .unwrap();
    assert_eq!(
        names(&env.query("select * from Customer").await, "Customer"),
        ["Alpha", "Gamma"]
    );
    assert_eq!(
        names(
            &env.query("select * from Customer where Active = false")
                .await,
            "Customer"
        ),
        ["Beta"]
    );
    let both = env
        .query("select * from Customer where Active IN (true, false)")
        .await;
    assert_eq!(names(&both, "Customer"), ["Alpha", "Beta", "Gamma"]);
    let count = env.query("SELECT COUNT(*) FROM Customer").await;
    assert_eq!(count["totalCount"], 2);
    let beta = env
        .query("select * from Customer where DisplayName = 'beta'")
        .await;
    assert_eq!(
        beta,
        json!({}),
        "a plain name lookup misses inactive records: empty QueryResponse"
    );
    let beta = env
        .query("select * from Customer where DisplayName = 'beta' and Active in (true,false)")
        .await;
    assert_eq!(names(&beta, "Customer"), ["Beta"]);
}

#[tokio::test]
async fn filters_ordering_and_other_entities() {
    let env = Env::start().await;
    for name in ["Delta", "alpha", "Charlie", "bravo"] {
        env.create(name).await;
    }
    env.sim.add_vendor(REALM, "Vendor Inactive", false);
    env.sim.add_employee(REALM, "Emp Active", true);
    let ordered = env
        .query("select * from Customer ORDERBY DisplayName DESC")
        .await;
    assert_eq!(
        names(&ordered, "Customer"),
        ["Delta", "Charlie", "bravo", "alpha"]
    );
    let listed = env
        .query("select * from Customer where DisplayName IN ('ALPHA', 'Delta', 'nobody')")
        .await;
    assert_eq!(names(&listed, "Customer"), ["Delta", "alpha"]);
    let ids = env
        .query("select * from Customer where Id IN ('2', '3') and DisplayName LIKE '%a%'")
        .await;
    assert_eq!(names(&ids, "Customer"), ["alpha", "Charlie"]);
    let since = env
        .query(
            "select * from Customer where MetaData.LastUpdatedTime >= '2020-01-01T00:00:00-07:00'",
        )
        .await;
    assert_eq!(since["maxResults"], 4);
    env.create("007").await;
    let bond = env
        .query("select * from Customer where DisplayName = '7'")
        .await;
    assert_eq!(bond, json!({}), "names compare as text, not numbers");
    let after = env
        .query("select * from Customer where Id > '2' ORDERBY Id")
        .await;
    assert_eq!(names(&after, "Customer"), ["Charlie", "bravo", "007"]);
    // MetaData times have whole seconds: move the clock so the edit is strictly the latest.
    env.sim.advance_clock(std::time::Duration::from_secs(5));
    env.sim
        .edit_customer(REALM, "2", json!({"Notes": "touched last"}))
        .unwrap();
    let recent = env
        .query("select * from Customer ORDERBY MetaData.LastUpdatedTime DESC MAXRESULTS 1")
        .await;
    assert_eq!(names(&recent, "Customer"), ["alpha"]);
    let vendors = env
        .query(
            "select * from vendor where DisplayName = 'vendor inactive' and Active in (true,false)",
        )
        .await;
    assert_eq!(names(&vendors, "Vendor"), ["Vendor Inactive"]);
    assert_eq!(
        names(&env.query("select * from Employee").await, "Employee"),
        ["Emp Active"]
    );
}

#[tokio::test]
async fn case_sensitive_mode_does_not_fold_case() {
    let env = Env::with_config(SimulatorConfig {
        string_match: StringMatch::CaseSensitive,
        ..SimulatorConfig::default()
    })
    .await;
    env.create("MiXeD").await;
    assert_eq!(
        env.query("select * from Customer where DisplayName = 'mixed'")
            .await,
        json!({})
    );
    assert_eq!(
        names(
            &env.query("select * from Customer where DisplayName = 'MiXeD'")
                .await,
            "Customer"
        ),
        ["MiXeD"]
    );
}

fn seed(count: usize) -> Value {
    Value::Array(
        (1..=count)
            .map(|i| json!({"DisplayName": format!("Customer {i:06}"), "Active": i % 10 != 0}))
            .collect(),
    )
}

#[tokio::test]
async fn pagination_with_startposition_and_maxresults() {
    let env = Env::start().await;
    env.sim.seed_customers(REALM, seed(2500)).unwrap();
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let statement = format!(
            "select * from Customer where Active in (true,false) STARTPOSITION {start} MAXRESULTS 1000"
        );
        let page = env.query(&statement).await;
        let rows = names(&page, "Customer");
        if rows.is_empty() {
            break;
        }
        assert_eq!(page["startPosition"], start);
        seen.extend(rows);
        start += 1000;
    }
    assert_eq!(seen.len(), 2500);
    assert_eq!(seen.first().map(String::as_str), Some("Customer 000001"));
    let capped = env.query("select * from Customer MAXRESULTS 5000").await;
    assert_eq!(capped["maxResults"], 1000, "MAXRESULTS is capped at 1000");
    let default = env.query("select * from Customer").await;
    assert_eq!(default["maxResults"], 100);
    assert_eq!(
        env.query("select count(*) from Customer").await["totalCount"],
        2250
    );
}

#[tokio::test]
async fn reading_100k_customers_in_pages_is_fast() {
    let env = Env::start().await;
    env.sim.seed_customers(REALM, seed(100_000)).unwrap();
    let started = Instant::now();
    let mut total = 0;
    for page in 0..100 {
        let statement = format!(
            "select * from Customer where Active in (true,false) startposition {} maxresults 1000",
            page * 1000 + 1
        );
        total += env.query(&statement).await["maxResults"].as_u64().unwrap();
    }
    let elapsed = started.elapsed();
    assert_eq!(total, 100_000);
    eprintln!("100 pages of 1000 customers in {elapsed:?}");
    assert!(
        elapsed.as_secs() < 60,
        "paging must not be quadratic: {elapsed:?}"
    );
    // Name lookups go through the index, not a scan.
    let started = Instant::now();
    for i in (1..=100_000).step_by(1000) {
        let statement = format!(
            "select * from Customer where DisplayName = 'customer {i:06}' and Active in (true,false)"
        );
        assert_eq!(env.query(&statement).await["maxResults"], 1);
    }
    eprintln!("100 name lookups in {:?}", started.elapsed());
}

#[tokio::test]
async fn paging_is_by_offset_even_when_records_change_between_pages() {
    let env = Env::start().await;
    env.sim.seed_customers(REALM, seed(30)).unwrap();
    let page = |start: usize| format!("select * from Customer STARTPOSITION {start} MAXRESULTS 5");
    let first = names(&env.query(&page(1)).await, "Customer");
    assert_eq!(first[0], "Customer 000001");
    let second = names(&env.query(&page(6)).await, "Customer");
    assert_eq!(second[0], "Customer 000006");
    // One record of the pages already read goes inactive: the offset now lands one later.
    env.sim
        .edit_customer(REALM, "3", json!({"Active": false}))
        .unwrap();
    let third = names(&env.query(&page(11)).await, "Customer");
    assert_eq!(
        third[0], "Customer 000013",
        "customer 10 is inactive (seed) and 3 left"
    );
}
