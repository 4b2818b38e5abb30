//! One-customer decisions from the mirror equal the batch matcher's: the whole labelled data
//! set decided both ways, every decision compared, and the cases where a part of the mirror
//! could mislead (abbreviations, transliterations, shared e-mail addresses, two Digit
//! customers claiming one QBO customer, crowded fuzzy keys).

use std::path::PathBuf;

use qbo_sync::{
    matching::{
        self, Decision, DigitCustomerRecord, MatchContext, QboCustomerRecord,
        cli::{read_digit_file, read_qbo_file},
    },
    service::decide::decide_from_mirror,
    store::match_keys,
};
use serde::Deserialize;

use crate::{
    decide_support::{Decisions, batch, differences, digit, load, one_by_one, qbo},
    helpers::fresh_database,
};

#[derive(Deserialize)]
struct Labels {
    links: Vec<(String, String)>,
    rejected: Vec<(String, String)>,
}

fn data(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/matching")
        .join(file)
}

/// The labelled data set: its QBO and Digit customers, and its links and rejected pairs.
fn labelled() -> (
    Vec<QboCustomerRecord>,
    Vec<DigitCustomerRecord>,
    MatchContext,
) {
    let qbo = read_qbo_file(&data("qbo.json")).unwrap();
    let digit = read_digit_file(&data("digit.json")).unwrap();
    let labels: Labels =
        serde_json::from_str(&std::fs::read_to_string(data("labels.json")).unwrap()).unwrap();
    let ctx = MatchContext {
        links: labels.links,
        rejected: labels.rejected,
        ..MatchContext::default()
    };
    (qbo, digit, ctx)
}

/// Both ways over one tenant holding `qbo` and `digit`; fails listing every difference.
async fn both_ways(
    qbo: &[QboCustomerRecord],
    digit: &[DigitCustomerRecord],
    ctx: &MatchContext,
) -> Decisions {
    let db = fresh_database().await.unwrap();
    let tenant = load(&db.pool, "t1", qbo, digit, ctx).await;
    let want = batch(&db.pool, &tenant).await;
    let got = one_by_one(&db.pool, &tenant).await;
    let diff = differences(&want, &got);
    assert!(
        diff.is_empty(),
        "{} of {} decisions differ:\n{}",
        diff.len(),
        want.len(),
        diff.join("\n")
    );
    got
}

#[tokio::test]
async fn every_labelled_customer_is_decided_alone_as_the_batch_decides_it() {
    let (qbo, digit, ctx) = labelled();
    let got = both_ways(&qbo, &digit, &ctx).await;
    assert_eq!(got.len(), digit.len());
    // The set exercises every kind of decision.
    let kinds = |f: fn(&Decision) -> bool| got.values().filter(|d| f(d)).count();
    assert!(kinds(|d| matches!(d, Decision::AutoLink { .. })) > 100);
    assert!(kinds(|d| matches!(d, Decision::Review { .. })) > 100);
    assert!(kinds(|d| matches!(d, Decision::Unmatched)) > 10);
    assert!(kinds(|d| matches!(d, Decision::AlreadyLinked { .. })) > 0);
}

fn linked_to(d: &Decision) -> Option<&str> {
    match d {
        Decision::AutoLink { qbo_id, .. } => Some(qbo_id),
        _ => None,
    }
}

fn review_of(d: &Decision) -> (&str, Vec<&str>) {
    match d {
        Decision::Review { reason, candidates } => (
            reason.as_str(),
            candidates.iter().map(|c| c.qbo_id.as_str()).collect(),
        ),
        other => panic!("not a review: {other:?}"),
    }
}

#[tokio::test]
async fn abbreviations_and_transliterations_are_found_alone() {
    let got = both_ways(
        &[
            qbo("1", "International Trading Company"),
            qbo("2", "Mueller GmbH"),
            qbo("3", "Acme Technology"),
            qbo("4", "Zebra Logistics"),
        ],
        &[
            digit("a", "Intl Trading Co"),
            digit("b", "Müller GmbH"),
            digit("c", "Acme Tech"),
        ],
        &MatchContext::default(),
    )
    .await;
    assert_eq!(linked_to(&got["a"]), Some("1"));
    assert_eq!(linked_to(&got["b"]), Some("2"));
    // An ambiguous abbreviation is found by fuzzy blocking and only proposed.
    assert_eq!(review_of(&got["c"]).1, ["3"]);
}

#[tokio::test]
async fn an_address_two_qbo_customers_share_links_neither() {
    let mut one = qbo("1", "Harbor Supply");
    one.email = Some("ops@harbor.test".into());
    let mut two = qbo("2", "Harbor Supply East");
    two.email = one.email.clone();
    let mut me = digit("a", "H. Supply Office");
    me.email = Some("OPS@harbor.test".into());
    let got = both_ways(
        &[one, two, qbo("3", "Other Co")],
        &[me],
        &MatchContext::default(),
    )
    .await;
    let (reason, candidates) = review_of(&got["a"]);
    assert!(
        reason.contains("2 QBO customers share the e-mail"),
        "{reason}"
    );
    assert_eq!(candidates.len(), 2);
}

#[tokio::test]
async fn two_digit_customers_claiming_one_qbo_customer_both_go_to_review() {
    let mut target = qbo("1", "Zephyr Bakery");
    target.email = Some("hello@zephyr.test".into());
    let by_name = digit("a", "Zephyr Bakery");
    let mut by_mail = digit("b", "Zephyr Bakery LLC");
    by_mail.email = target.email.clone();
    // A third one that claims nothing: decided alone without rivals.
    let got = both_ways(
        &[target, qbo("2", "Quill Paper")],
        &[by_name, by_mail, digit("c", "Quill Paper")],
        &MatchContext::default(),
    )
    .await;
    for id in ["a", "b"] {
        let (reason, candidates) = review_of(&got[id]);
        assert!(reason.contains("2 Digit customers would link"), "{reason}");
        assert_eq!(candidates, ["1"]);
    }
    assert_eq!(linked_to(&got["c"]), Some("2"));
}

#[tokio::test]
async fn a_crowded_fuzzy_key_is_skipped_alone_as_in_the_batch() {
    // 70 twins of one name: the fuzzy keys of `Acme Plumbing` hold more than the cap. The
    // qualifiers hold no digits, so the numbers of the names agree.
    let place = |n: usize| {
        let letters: Vec<char> = ('a'..='z').collect();
        format!(
            "Ward {}{}",
            letters[n / 26].to_ascii_uppercase(),
            letters[n % 26]
        )
    };
    let crowded = (0..70).map(|n| qbo(&format!("{n}"), &format!("Acme Plumbing ({})", place(n))));
    let few = (100..110).map(|n| qbo(&format!("{n}"), &format!("Zenith Roofing ({})", place(n))));
    let qbos: Vec<QboCustomerRecord> = crowded.chain(few).collect();
    let got = both_ways(
        &qbos,
        &[digit("a", "Acme Plumbng"), digit("b", "Zenith Rofing")],
        &MatchContext::default(),
    )
    .await;
    // The typo meets its name only through the crowded keys: nothing is proposed.
    assert_eq!(got["a"], Decision::Unmatched);
    // Under the cap, the same typo finds its names.
    assert!(!review_of(&got["b"]).1.is_empty());
}

#[tokio::test]
async fn keys_the_background_job_fills_decide_as_the_write_paths_keys() {
    let mut mailed = qbo("2", "Harbor Supply");
    mailed.email = Some("ops@harbor.test".into());
    let qbos = [
        qbo("1", "International Trading Company"),
        mailed,
        qbo("3", "Mueller GmbH"),
    ];
    let mut by_mail = digit("b", "Harbor Supply Co");
    by_mail.email = Some("ops@harbor.test".into());
    let digits = [
        digit("a", "Intl Trading Co"),
        by_mail,
        digit("c", "Müller GmbH"),
    ];
    let db = fresh_database().await.unwrap();
    let tenant = load(&db.pool, "t1", &qbos, &digits, &MatchContext::default()).await;
    let before = one_by_one(&db.pool, &tenant).await;
    // Rows stored before the column existed have no keys: the key job computes them.
    for table in ["qbo_customers", "digit_customers"] {
        sqlx::query(&format!("UPDATE {table} SET match_keys = NULL"))
            .execute(&db.pool)
            .await
            .unwrap();
    }
    let updated = qbo_sync::service::keys::recompute_stale_keys(&db.pool, 10)
        .await
        .unwrap();
    assert_eq!(updated, 6);
    let after = one_by_one(&db.pool, &tenant).await;
    assert_eq!(after, before);
    assert!(differences(&batch(&db.pool, &tenant).await, &after).is_empty());
    assert_eq!(linked_to(&after["a"]), Some("1"));
    assert_eq!(linked_to(&after["c"]), Some("3"));
}

#[tokio::test]
async fn a_name_thousands_share_is_read_as_far_as_the_batch_reads_it() {
    // 2,100 twins: more holders of one key than one wide read takes (the keys are then probed
    // one by one) and more than the batch's group cap of 100.
    let letters: Vec<char> = ('a'..='z').collect();
    let place = |n: usize| {
        let l = |i: usize| letters[i % 26];
        format!(
            "Ward {}{}{}",
            l(n / 676).to_ascii_uppercase(),
            l(n / 26),
            l(n)
        )
    };
    let mut qbos: Vec<QboCustomerRecord> = (0..2_100)
        .map(|n| qbo(&format!("{n:05}"), &format!("Acme Plumbing ({})", place(n))))
        .collect();
    qbos.push(qbo("99999", "Acme Plumbing"));
    let got = both_ways(
        &qbos,
        &[
            digit("a", "Acme Plumbing"),
            digit("b", "Acme Plumbng"),
            digit("c", "Acme Plumbing (Ward Bcd)"),
        ],
        &MatchContext::default(),
    )
    .await;
    assert!(matches!(got["a"], Decision::Review { .. }));
}

#[tokio::test]
async fn a_decision_leaves_its_connection_as_it_found_it() {
    // A decision reads in a read-only snapshot with generic plans; none of it may outlive the
    // decision on a pooled connection the next user writes with.
    let db = fresh_database().await.unwrap();
    let mut target = qbo("1", "Zephyr Bakery");
    target.email = Some("hello@zephyr.test".into());
    let mut by_mail = digit("b", "Zephyr Bakery LLC");
    by_mail.email = target.email.clone();
    let people = [digit("a", "Zephyr Bakery"), by_mail];
    let tenant = load(
        &db.pool,
        "t1",
        &[target, qbo("2", "Quill Paper")],
        &people,
        &MatchContext::default(),
    )
    .await;
    let mut conn = db.pool.acquire().await.unwrap();
    // More rounds than PostgreSQL's custom plans before it may choose a generic one.
    for _ in 0..8 {
        for me in &people {
            let decided = decide_from_mirror(&mut conn, &tenant, me).await.unwrap();
            assert_eq!(review_of(&decided.decision).1, ["1"]);
        }
    }
    let (mode, isolation, read_only): (String, String, String) = sqlx::query_as(
        "SELECT current_setting('plan_cache_mode'), current_setting('transaction_isolation'),
                current_setting('transaction_read_only')",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(
        (mode.as_str(), isolation.as_str(), read_only.as_str()),
        ("auto", "read committed", "off")
    );
    // Not inside a transaction block: a savepoint has nothing to belong to (25P01).
    let err = sqlx::raw_sql("SAVEPOINT after_decision")
        .execute(&mut *conn)
        .await
        .expect_err("the connection was left inside a transaction");
    let code = err.as_database_error().and_then(|e| e.code());
    assert_eq!(code.as_deref(), Some("25P01"), "{err}");
}

#[tokio::test]
async fn rivals_found_in_the_scan_are_those_their_own_read_finds() {
    // A decision that links takes its rivals from the Digit read's scan when that scan held
    // every holder of the target's keys, and reads them on their own otherwise: both ways must
    // find the same customers, for every labelled QBO customer's automatic-link keys.
    let db = fresh_database().await.unwrap();
    let (qbo, digit, ctx) = labelled();
    let tenant = load(&db.pool, "t1", &qbo, &digit, &ctx).await;
    let mut conn = db.pool.acquire().await.unwrap();
    let ids = |found: &[match_keys::DigitNeighbour]| -> Vec<(String, Option<String>)> {
        found
            .iter()
            .map(|n| (n.customer.id.to_string(), n.linked_to.clone()))
            .collect()
    };
    let nothing_scanned = match_keys::digit_sharing_keys(&mut conn, &tenant, &[], &[], &[])
        .await
        .unwrap();
    let (mut compared, mut with_rivals) = (0, 0);
    for q in &qbo {
        let auto = matching::qbo_auto_link_keys(q);
        let except = digit[compared % digit.len()].id.clone();
        let read = match_keys::digit_sharing_keys(&mut conn, &tenant, &[], &auto, &[])
            .await
            .unwrap();
        let scanned = read
            .rivals(&tenant, &auto, &except)
            .expect("a scan of few holders holds them all");
        let alone = match_keys::digit_rivals(&mut conn, &tenant, &auto, &except)
            .await
            .unwrap();
        assert_eq!(ids(&scanned), ids(&alone), "rivals for {}", q.id);
        // Keys the scan did not read: it cannot tell.
        assert!(nothing_scanned.rivals(&tenant, &auto, &except).is_none());
        compared += 1;
        with_rivals += usize::from(!alone.is_empty());
    }
    assert_eq!(compared, qbo.len());
    assert!(with_rivals > 100, "only {with_rivals} customers had rivals");
}
