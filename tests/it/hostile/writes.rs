//! The bounded set of valid but weird writes, checked for exactly their effects.

use qbo_sync::proto::v1 as pb;
use sqlx::PgPool;

use super::world::snapshot;
use crate::push_support::{TENANT, World, customer};

/// Names and ids that are valid, however hostile they look: each is stored exactly, and the
/// ones pushed reach QBO exactly once, under exactly their name.
pub async fn weird_but_valid_writes(world: &World, pool: &PgPool) {
    let mut weird: Vec<(String, String)> = [
        ("w-drop", "Robert'); DROP TABLE digit_customers;--"),
        ("'; DROP TABLE links;--", "Injection In The Id"),
        ("w-or", "\\' OR 1=1"),
        ("w-quote", "' OR '1'='1"),
        ("w-percent", "100% _Wild_ Cards %"),
        ("w-backslash", "Quill\\\\Ink \\ Pens\\"),
        ("w-qbo", "x' ORDERBY Id STARTPOSITION 1 MAXRESULTS 1 --"),
        ("w-smart", "Zed\u{2019}s \u{2018}Quoted\u{2019} Diner"),
        ("w-rtl", "\u{202E}Evil\u{202C} שלום Ltd"),
        ("w-combining", "Cafe\u{301} Zoe\u{308}"),
        ("w-width", "Ｆｕｌｌｗｉｄｔｈ Trading"),
        ("w-emoji", "Pizza 🍕 & Co"),
        ("w-zero-width", "Zero\u{200B}Width\u{FEFF}"),
    ]
    .iter()
    .map(|(i, n)| ((*i).to_owned(), (*n).to_owned()))
    .collect();
    weird.push(("w-long".into(), "é".repeat(500)));
    let before = snapshot(pool).await;
    let mut client = world.app.customers();
    for (id, name) in &weird {
        let answer = client
            .upsert_customer(pb::UpsertCustomerRequest {
                tenant_id: TENANT.into(),
                customer: Some(customer(id, name)),
                skip_push: true,
            })
            .await
            .unwrap_or_else(|e| panic!("{name:?} was refused: {e:?}"))
            .into_inner();
        assert!(answer.created, "{name:?}");
        let stored: String = sqlx::query_scalar(
            "SELECT display_name FROM digit_customers WHERE tenant_id = $1 AND id = $2",
        )
        .bind(TENANT)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(&stored, name, "stored exactly");
    }
    let after = snapshot(pool).await;
    for (table, row) in &before {
        let now = &after[table];
        if table == "digit_customers" {
            assert_eq!(
                now.0,
                row.0 + weird.len() as i64,
                "one row per weird customer"
            );
        } else {
            assert_eq!(
                now, row,
                "{table} changed by customers recorded without a push"
            );
        }
    }

    // Pushed (new customers of the same names): QBO gets each name exactly once, and finds it
    // again by its quoted name on a repeat.
    let pushed: Vec<(String, String)> = weird[..8]
        .iter()
        .map(|(id, name)| (format!("p-{id}"), name.clone()))
        .collect();
    let qbo_before = world.qbo_count();
    for (id, name) in &pushed {
        assert!(world.upsert_named(id, name).await.push_queued, "{name:?}");
    }
    world.run_jobs().await;
    for (id, name) in &pushed {
        let status = world.status(id).await;
        assert_eq!(
            status.state(),
            pb::LinkState::Linked,
            "{name:?}: {status:?}"
        );
        assert_eq!(
            world.qbo_id(name),
            status.link.unwrap().qbo_customer_id,
            "{name:?}"
        );
    }
    assert_eq!(
        world.qbo_count(),
        qbo_before + pushed.len(),
        "one QBO customer per name"
    );
    for (id, name) in &pushed {
        assert!(!world.upsert_named(id, name).await.created);
    }
    world.run_jobs().await;
    assert_eq!(
        world.qbo_count(),
        qbo_before + pushed.len(),
        "no duplicate on a repeat"
    );
}
