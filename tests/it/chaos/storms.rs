//! Scenario 3: simulator storms during a full sync with pushes: 30 % of API calls throttled
//! (429) or failed (503), added latency, answers dropped after a committed create, access
//! tokens expiring mid-run; then a refresh token superseded elsewhere, which must end in
//! NEEDS_REAUTH, a failed run with a clear error, and no further calls to the token endpoint.

use std::{collections::HashSet, time::Duration};

use serde_json::{Value, json};
use tokio::time::Instant;

use super::{
    checks::{Figures, end_state},
    env::{ChaosEnv, Profile, REALM, TENANT},
    pusher::Pusher,
    sim::counter,
};
use crate::helpers::fresh_database;

/// The storm: 15 % throttled, 15 % 503, 20–50 ms of latency, the next `drops` creates'
/// answers dropped after their commit.
fn storm(seed: u64, drops: u64) -> Value {
    json!({
        "throttle_rate": 0.15,
        "server_error_rate": 0.15,
        "server_error_status": 503,
        "latency_ms": 20,
        "latency_jitter_ms": 30,
        "drop_response_after_create": drops,
        "seed": seed,
    })
}

/// Faults the simulator injected so far (throttles, server errors, dropped answers).
fn injected(stats: &Value) -> u64 {
    counter(stats, "injected_throttles")
        + counter(stats, "injected_server_errors")
        + counter(stats, "dropped_responses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storms_cause_no_duplicates_and_no_limit_violations() {
    let profile = Profile::from_env(1, 1_000);
    let n = profile.customers;
    let db = fresh_database().await.expect("database");
    let mut env = ChaosEnv::start(&db.url, db.pool.clone(), &[]).await;
    let started = Instant::now();
    env.seed(n).await;
    let channels: Vec<_> = env.replicas.iter().map(|r| r.channel.clone()).collect();
    let pusher = Pusher::start(channels, 600_000, Duration::from_millis(250));
    let mut fig = Figures {
        scenario: "storms",
        rounds: profile.rounds,
        customers: n,
        ..Figures::default()
    };
    let mut expirations = 0u64;
    // Token expiries per run: four in the CI profile; `CHAOS_EXPIRIES=1000` keeps expiring
    // every 1.5 s for as long as the run lasts.
    let expiries: u64 = std::env::var("CHAOS_EXPIRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    for round in 0..profile.rounds {
        let expired_before = expirations;
        let seed = profile.seed.wrapping_add(u64::from(round));
        env.sim.set_faults(storm(seed, 3)).await;
        let run = env.trigger_full_sync(&format!("chaos-storm-{round}")).await;
        // Mid-run: every access token expires every 1.5 s (four times), and more answers are
        // dropped.
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut tick = 0u64;
        while matches!(env.run_state(&run).await.as_str(), "queued" | "running") {
            assert!(
                Instant::now() < deadline,
                "round {round}: run {run} did not end"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
            tick += 1;
            if tick % 3 == 1 && expirations - expired_before < expiries {
                env.sim.expire_access_tokens(REALM).await;
                expirations += 1;
                // Replacing the faults resets their counter of answers to drop.
                env.sim.set_faults(storm(seed.wrapping_add(tick), 2)).await;
            }
        }
        let (state, error) = env.wait_run(&run, Duration::from_secs(1)).await;
        assert_eq!(state, "succeeded", "round {round}: {error:?}");
    }
    let log = pusher.stop().await;
    let stats = env.sim.stats().await;
    fig.faults = injected(&stats) + expirations;
    env.sim.set_faults(json!({})).await;
    assert!(
        env.wait_queue_drained(Duration::from_secs(300)).await,
        "jobs still queued or running"
    );
    let must_link: HashSet<String> = log.pushed.iter().cloned().collect();
    end_state(&env, &mut fig, &must_link).await;
    fig.secs = started.elapsed().as_secs_f64();
    println!(
        "storm faults: {} throttled, {} 503, {} answers dropped after commit, {expirations} token expiries; \
         {} creates, {} replays, {} refreshes; callers: {:?}",
        counter(&stats, "injected_throttles"),
        counter(&stats, "injected_server_errors"),
        counter(&stats, "dropped_responses"),
        counter(&stats, "creates"),
        counter(&stats, "replays"),
        counter(&stats, "token_outcomes.issued"),
        log.codes
    );
    let dirty = fig.duplicates + fig.orphans + fig.lost_links + fig.limit_violations > 0;
    if dirty {
        env.stop(true).await;
        fig.assert_clean();
        return;
    }
    fig.assert_clean();
    superseded_refresh_token_needs_a_person(&env).await;
    env.stop(false).await;
}

/// Another client refreshed the connection's token: the next refresh answers invalid_grant.
/// The run fails with a clear error, the connection needs re-authorisation, and nothing
/// calls the token endpoint again.
async fn superseded_refresh_token_needs_a_person(env: &ChaosEnv) {
    env.sim.supersede_refresh_token(REALM).await;
    env.sim.expire_access_tokens(REALM).await;
    let run = env.trigger_full_sync("chaos-storm-reauth").await;
    let (state, error) = env.wait_run(&run, Duration::from_secs(120)).await;
    let error = error.unwrap_or_default();
    assert_eq!(state, "failed", "the run must fail: {error}");
    assert!(
        error.contains("connect the company again"),
        "a clear error: {error}"
    );
    let connection: String =
        sqlx::query_scalar("SELECT state FROM connections WHERE tenant_id = $1")
            .bind(TENANT)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(connection, "needs_reauth");
    let token_calls = |stats: &Value| stats["per_endpoint"]["oauth.token"].as_u64().unwrap_or(0);
    let before = token_calls(&env.sim.stats().await);
    let refused = counter(&env.sim.stats().await, "token_outcomes.invalid_grant");
    // More work arrives: pushes and a sync request; none of it may try the token again.
    let channels: Vec<_> = env.replicas.iter().map(|r| r.channel.clone()).collect();
    let pusher = Pusher::start(channels, 700_000, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = pusher.stop().await;
    let again = env
        .client(1)
        .trigger_sync(qbo_sync::proto::v1::TriggerSyncRequest {
            tenant_id: TENANT.into(),
            mode: qbo_sync::proto::v1::SyncMode::Full.into(),
            ..Default::default()
        })
        .await;
    let after = token_calls(&env.sim.stats().await);
    println!(
        "superseded refresh token: run failed ({error}); invalid_grant answers {refused}; \
         token calls after: {}; {} pushes recorded meanwhile; a new sync: {:?}",
        after - before,
        log.pushed.len(),
        again
            .as_ref()
            .map(|_| "accepted")
            .map_err(tonic::Status::code)
    );
    assert_eq!(
        after, before,
        "calls to the token endpoint after NEEDS_REAUTH"
    );
    assert!(refused >= 1, "the refresh met invalid_grant");
}
