//! OAuth against the simulator's token endpoint, with tokens in PostgreSQL.

use qbo_sim::SimulatorConfig;
use qbo_sync::quickbooks::{Lane, QboError};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::qbo_harness::{Harness, cipher, harness};

async fn stored_row(h: &Harness) -> (Vec<u8>, Vec<u8>, String, i64) {
    sqlx::query_as(
        "SELECT access_token_enc, refresh_token_enc, state, token_generation FROM connections WHERE tenant_id = $1",
    )
    .bind(h.tenant.as_str())
    .fetch_one(&h.db.pool)
    .await
    .unwrap()
}

fn issued(h: &Harness) -> u64 {
    h.sim
        .stats()
        .token_outcomes
        .get("issued")
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn tokens_are_stored_encrypted_and_work() {
    let h = harness(SimulatorConfig::default(), |_| {}).await;
    let (access_enc, refresh_enc, state, generation) = stored_row(&h).await;
    assert_eq!(state, "connected");
    assert_eq!(generation, 1);
    let c = cipher();
    let access = c
        .open(h.tenant.as_str(), h.realm.as_str(), &access_enc)
        .unwrap();
    let refresh = c
        .open(h.tenant.as_str(), h.realm.as_str(), &refresh_enc)
        .unwrap();
    for (raw, plain) in [(&access_enc, &access), (&refresh_enc, &refresh)] {
        let plain = plain.expose_secret().as_bytes();
        assert!(plain.len() >= 8);
        assert!(
            !raw.windows(plain.len()).any(|w| w == plain),
            "raw column holds the token"
        );
        assert!(!raw.windows(8).any(|w| w == &plain[..8]));
    }
    // Bound to the tenant and realm: the same bytes do not open for another tenant.
    assert!(
        c.open("other-tenant", h.realm.as_str(), &access_enc)
            .is_err()
    );
    h.seed(&[("Token Check", true)]);
    assert_eq!(
        h.client
            .count_customers(&h.tenant, false, Lane::Interactive)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn unauthorized_refreshes_once_stores_the_new_refresh_token_and_retries() {
    let h = harness(SimulatorConfig::default(), |_| {}).await;
    h.seed(&[("Refresh Co", true)]);
    h.client
        .count_customers(&h.tenant, false, Lane::Interactive)
        .await
        .unwrap();
    let (_, refresh_before, _, gen_before) = stored_row(&h).await;
    h.sim.expire_access_tokens(h.realm.as_str());
    assert_eq!(
        h.client
            .count_customers(&h.tenant, false, Lane::Interactive)
            .await
            .unwrap(),
        1
    );
    assert_eq!(h.sim.stats().unauthorized, 1);
    assert_eq!(issued(&h), 2, "the code exchange and exactly one refresh");
    let (_, refresh_after, state, gen_after) = stored_row(&h).await;
    assert_eq!(state, "connected");
    assert_eq!(gen_after, gen_before + 1);
    let c = cipher();
    let old = c
        .open(h.tenant.as_str(), h.realm.as_str(), &refresh_before)
        .unwrap();
    let new = c
        .open(h.tenant.as_str(), h.realm.as_str(), &refresh_after)
        .unwrap();
    assert_ne!(
        old.expose_secret(),
        new.expose_secret(),
        "the rotated refresh token was stored"
    );
    // And it works: another expiry refreshes with it without invalid_grant.
    h.sim.expire_access_tokens(h.realm.as_str());
    h.client
        .count_customers(&h.tenant, false, Lane::Interactive)
        .await
        .unwrap();
    assert_eq!(issued(&h), 3);
    assert_eq!(h.sim.stats().token_outcomes.get("invalid_grant"), None);
}

#[tokio::test]
async fn invalid_grant_marks_the_connection_needs_reauth_without_retrying() {
    let h = harness(SimulatorConfig::default(), |_| {}).await;
    // Someone else uses (and so supersedes) our refresh token.
    let (_, refresh_enc, _, _) = stored_row(&h).await;
    let refresh = cipher()
        .open(h.tenant.as_str(), h.realm.as_str(), &refresh_enc)
        .unwrap();
    let answer: Value = reqwest::Client::new()
        .post(h.sim.token_url())
        .basic_auth(
            &h.config.qbo_client_id,
            Some(h.config.qbo_client_secret.as_ref().unwrap().expose_secret()),
        )
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose_secret()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer.get("access_token").is_some());
    h.sim.expire_access_tokens(h.realm.as_str());
    let result = h
        .client
        .count_customers(&h.tenant, false, Lane::Interactive)
        .await;
    assert!(matches!(result, Err(QboError::NeedsReauth)), "{result:?}");
    let (_, _, state, _) = stored_row(&h).await;
    assert_eq!(state, "needs_reauth");
    let last_error: Option<String> = sqlx::query_scalar("SELECT last_error FROM connections")
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert!(last_error.unwrap().contains("invalid_grant"));
    // Later calls fail fast: no second refresh attempt, no API call.
    let requests = h.sim.stats().requests;
    let again = h
        .replica()
        .await
        .count_customers(&h.tenant, false, Lane::Interactive)
        .await;
    assert!(matches!(again, Err(QboError::NeedsReauth)), "{again:?}");
    assert_eq!(h.sim.stats().token_outcomes.get("invalid_grant"), Some(&1));
    assert_eq!(h.sim.stats().requests, requests);
}

#[tokio::test]
async fn two_replicas_refreshing_at_once_use_one_refresh() {
    let h = harness(SimulatorConfig::default(), |_| {}).await;
    h.seed(&[("Replica Co", true)]);
    let other = h.replica().await;
    // Both replicas hold the current access token in their caches.
    h.client
        .count_customers(&h.tenant, false, Lane::Interactive)
        .await
        .unwrap();
    other
        .count_customers(&h.tenant, false, Lane::Interactive)
        .await
        .unwrap();
    h.sim.expire_access_tokens(h.realm.as_str());
    let calls = (0..4)
        .flat_map(|_| [&h.client, &other])
        .map(|c| c.count_customers(&h.tenant, false, Lane::Interactive));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| matches!(r, Ok(1))), "{results:?}");
    assert!(
        h.sim.stats().unauthorized >= 2,
        "both replicas met the expired token"
    );
    assert_eq!(
        issued(&h),
        2,
        "the code exchange and ONE refresh for both replicas"
    );
    assert_eq!(h.sim.stats().token_outcomes.get("invalid_grant"), None);
    let (_, _, state, generation) = stored_row(&h).await;
    assert_eq!((state.as_str(), generation), ("connected", 2));
}

#[tokio::test]
async fn a_reused_authorization_code_is_refused() {
    let h = harness(SimulatorConfig::default(), |_| {}).await;
    let code = h
        .sim
        .issue_authorization_code(h.realm.as_str(), crate::qbo_harness::REDIRECT);
    let code = secrecy::SecretString::from(code);
    h.client
        .tokens()
        .connect_with_code(
            &h.tenant,
            &h.realm,
            "sandbox",
            &code,
            crate::qbo_harness::REDIRECT,
            qbo_sync::store::connections::RealmChange::Refuse,
        )
        .await
        .unwrap();
    let again = h
        .client
        .tokens()
        .connect_with_code(
            &h.tenant,
            &h.realm,
            "sandbox",
            &code,
            crate::qbo_harness::REDIRECT,
            qbo_sync::store::connections::RealmChange::Refuse,
        )
        .await;
    assert!(matches!(again, Err(QboError::NeedsReauth)), "{again:?}");
}

#[tokio::test]
async fn a_rotated_key_reads_old_tokens_and_reseals_at_the_next_refresh() {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let h = harness(SimulatorConfig::default(), |_| {}).await;
    h.seed(&[("Rotation Co", true)]);
    let previous = secrecy::SecretString::from(format!("1:{}", STANDARD.encode([42u8; 32])));
    let new_key = secrecy::SecretString::from(STANDARD.encode([43u8; 32]));
    let rotated =
        qbo_sync::crypto::TokenCipher::from_config(Some(&new_key), 2, Some(&previous)).unwrap();
    let client =
        qbo_sync::quickbooks::QboClient::new(&h.config, h.db.pool.clone(), rotated).unwrap();
    assert_eq!(
        client
            .count_customers(&h.tenant, false, Lane::Interactive)
            .await
            .unwrap(),
        1
    );
    let (access, refresh, _, _) = stored_row(&h).await;
    assert_eq!((access[0], refresh[0]), (1, 1), "still sealed with key 1");
    h.sim.expire_access_tokens(h.realm.as_str());
    assert_eq!(
        client
            .count_customers(&h.tenant, false, Lane::Interactive)
            .await
            .unwrap(),
        1
    );
    let (access, refresh, _, _) = stored_row(&h).await;
    assert_eq!(
        (access[0], refresh[0]),
        (2, 2),
        "re-sealed with key 2 at the refresh"
    );
}
