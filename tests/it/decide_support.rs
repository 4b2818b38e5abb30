//! Loading customers into a tenant through the store's real write paths, and deciding them
//! both ways: the batch matcher over everything the tenant stores, and one customer at a time
//! from the mirror.

use std::collections::BTreeMap;

use qbo_sync::{
    domain::{DigitCustomer, DigitCustomerId, LinkMethod, RealmId, TenantId},
    matching::{self, Decision, DigitCustomerRecord, MatchContext, QboCustomerRecord},
    quickbooks::QboCustomer,
    service::{decide::decide_from_mirror, push::mirrored},
    store::{self, links::NewLink, match_keys},
};
use sqlx::PgPool;

/// Decisions by Digit id.
pub type Decisions = BTreeMap<String, Decision>;

fn customer(r: &QboCustomerRecord, realm: &RealmId) -> QboCustomer {
    QboCustomer {
        id: r.id.clone(),
        sync_token: r.sync_token.clone().unwrap_or_else(|| "0".into()),
        display_name: r.display_name.clone(),
        fully_qualified_name: r.fully_qualified_name.clone(),
        parent_id: r.parent_id.clone(),
        is_job: r.is_job,
        level: i32::from(r.is_job),
        active: r.active,
        company_name: r.company_name.clone(),
        given_name: r.given_name.clone(),
        family_name: r.family_name.clone(),
        email: r.email.clone(),
        phone: r.phone.clone(),
        last_updated: None,
        deleted: false,
        realm: realm.clone(),
    }
}

fn domain(r: &DigitCustomerRecord) -> DigitCustomer {
    DigitCustomer {
        id: DigitCustomerId::parse(r.id.clone()).unwrap(),
        display_name: r.display_name.clone(),
        company_name: r.company_name.clone(),
        given_name: r.given_name.clone(),
        family_name: r.family_name.clone(),
        email: r.email.clone(),
        phone: r.phone.clone(),
        active: true,
    }
}

/// Stores the customers, links and rejected pairs as the service writes them.
pub async fn load(
    pool: &PgPool,
    tenant: &str,
    qbo: &[QboCustomerRecord],
    digit: &[DigitCustomerRecord],
    ctx: &MatchContext,
) -> TenantId {
    sqlx::query(
        "INSERT INTO connections (tenant_id, realm_id, environment, state)
         VALUES ($1, $2, 'sandbox', 'disconnected')",
    )
    .bind(tenant)
    .bind(format!("realm-{tenant}"))
    .execute(pool)
    .await
    .unwrap();
    let id = TenantId::parse(tenant.to_owned()).unwrap();
    let realm = RealmId::parse(format!("realm-{tenant}")).unwrap();
    let mut conn = pool.acquire().await.unwrap();
    for chunk in qbo.chunks(500) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|r| mirrored(&customer(r, &realm)))
            .collect();
        store::mirror::upsert_mirrored_customers(&mut conn, &id, &rows)
            .await
            .unwrap();
    }
    for chunk in digit.chunks(500) {
        let rows: Vec<DigitCustomer> = chunk.iter().map(domain).collect();
        let refs: Vec<&DigitCustomer> = rows.iter().collect();
        store::customers::upsert_digit_customers(&mut conn, &id, &refs)
            .await
            .unwrap();
    }
    let ids: Vec<DigitCustomerId> = ctx
        .links
        .iter()
        .map(|(d, _)| DigitCustomerId::parse(d.clone()).unwrap())
        .collect();
    let links: Vec<NewLink<'_>> = ctx
        .links
        .iter()
        .zip(&ids)
        .map(|((_, q), d)| NewLink {
            digit: d,
            qbo: q,
            method: LinkMethod::Manual,
            score: 1.0,
            reasons: &[],
            normalizer_version: matching::NORMALIZER_VERSION,
            linked_by: "test",
            reason: "labelled",
            run_id: None,
            on_behalf_of: None,
        })
        .collect();
    store::links::insert_links(&mut conn, &id, &links)
        .await
        .unwrap();
    for (d, q) in &ctx.rejected {
        let d = DigitCustomerId::parse(d.clone()).unwrap();
        store::reviews::reject_pairs(
            &mut conn,
            &id,
            &d,
            std::slice::from_ref(q),
            "test",
            "labelled",
        )
        .await
        .unwrap();
    }
    id
}

/// The batch matcher's decisions over everything the tenant stores, read as a sync reads it.
pub async fn batch(pool: &PgPool, tenant: &TenantId) -> Decisions {
    let mut conn = pool.acquire().await.unwrap();
    let mirror = store::mirror::all_mirrored(&mut conn, tenant)
        .await
        .unwrap();
    let digit = store::customers::all_digit_customers(&mut conn, tenant)
        .await
        .unwrap();
    let ctx = MatchContext {
        links: store::links::all_links(&mut conn, tenant).await.unwrap(),
        rejected: store::links::all_rejected_pairs(&mut conn, tenant)
            .await
            .unwrap(),
        ..MatchContext::default()
    };
    let qbo: Vec<QboCustomerRecord> = mirror.iter().map(match_keys::qbo_record).collect();
    let digit: Vec<DigitCustomerRecord> = digit.iter().map(match_keys::digit_record).collect();
    matching::match_customers(&qbo, &digit, &ctx)
        .into_iter()
        .map(|o| (o.digit_id, o.decision))
        .collect()
}

/// Every stored Digit customer decided alone from the mirror.
pub async fn one_by_one(pool: &PgPool, tenant: &TenantId) -> Decisions {
    let mut conn = pool.acquire().await.unwrap();
    let digit = store::customers::all_digit_customers(&mut conn, tenant)
        .await
        .unwrap();
    let mut out = Decisions::new();
    for c in &digit {
        let me = match_keys::digit_record(c);
        let decided = decide_from_mirror(&mut conn, tenant, &me).await.unwrap();
        out.insert(me.id, decided.decision);
    }
    out
}

/// Every difference between the two, one line each.
pub fn differences(batch: &Decisions, alone: &Decisions) -> Vec<String> {
    let mut out = Vec::new();
    for (id, want) in batch {
        match alone.get(id) {
            Some(got) if got == want => {}
            got => out.push(format!("{id}: batch {want:?}\n    alone {got:?}")),
        }
    }
    out.extend(
        alone
            .keys()
            .filter(|id| !batch.contains_key(*id))
            .map(|id| format!("{id}: decided alone only")),
    );
    out
}

/// A QBO record.
pub fn qbo(id: &str, name: &str) -> QboCustomerRecord {
    QboCustomerRecord {
        id: id.into(),
        display_name: name.into(),
        active: true,
        ..QboCustomerRecord::default()
    }
}

/// A Digit record.
pub fn digit(id: &str, name: &str) -> DigitCustomerRecord {
    DigitCustomerRecord {
        id: id.into(),
        display_name: name.into(),
        ..DigitCustomerRecord::default()
    }
}
