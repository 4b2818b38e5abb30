//! Scenario 1: `kill -9` of the replica running a FULL sync, at a random point of the run,
//! while new customers are pushed; every run must complete on the other replica, with no
//! duplicate in QBO, no lost link, no stuck job and an audit trail that matches the links.

use std::{collections::HashSet, time::Duration};

use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use tokio::time::Instant;

use super::{
    checks::{Figures, end_state, links, lost_since},
    env::{ChaosEnv, Profile},
    names,
    pusher::Pusher,
};
use crate::helpers::fresh_database;

/// Progress of a run: QBO customers read plus Digit customers considered.
async fn progress(env: &ChaosEnv, run: &str) -> (String, i64) {
    sqlx::query_as(
        "SELECT state, qbo_customers_read + digit_customers_considered
         FROM sync_runs WHERE id = $1::uuid",
    )
    .bind(run)
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

/// Waits until the run has made `target` progress or ended; true while it is still active.
async fn wait_for_progress(env: &ChaosEnv, run: &str, target: i64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (state, done) = progress(env, run).await;
        let active = matches!(state.as_str(), "queued" | "running");
        if !active || (done >= target && state == "running") || Instant::now() > deadline {
            return active;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_full_syncs_loses_and_doubles_nothing() {
    let profile = Profile::from_env(3, 2_000);
    let n = profile.customers;
    let db = fresh_database().await.expect("database");
    let mut env = ChaosEnv::start(&db.url, db.pool.clone(), &[]).await;
    let started = Instant::now();
    env.seed(n).await;
    let mut rng = StdRng::seed_from_u64(profile.seed);
    let channels = env.replicas.iter().map(|r| r.channel.clone()).collect();
    let pusher = Pusher::start(channels, 600_000, Duration::from_millis(200));
    let mut fig = Figures {
        scenario: "kill -9",
        rounds: profile.rounds,
        customers: n,
        ..Figures::default()
    };
    let mut must_link = HashSet::new();
    let mut before = links(&env).await;
    for round in 0..profile.rounds {
        // Each round brings Digit-only customers for its sync to create in QBO.
        let fresh: Vec<(String, String)> = (0..(n / 100).max(10))
            .map(|j| {
                let index = 400_000 + u64::from(round) * 10_000 + j;
                (format!("r{round}-{j}"), names::name(index))
            })
            .collect();
        env.record_digit(&fresh).await;
        must_link.extend(fresh.into_iter().map(|(id, _)| id));
        let run = env.trigger_full_sync(&format!("chaos-kill9-{round}")).await;
        // A random point: a share of the run's reading and matching work.
        let share = rng.random_range(0.0..1.0);
        let target = (2.0 * n as f64 * share) as i64;
        let active = wait_for_progress(&env, &run, target).await;
        let victim = match env.holder_of_run(&run).await {
            Some(holder) => holder,
            None => rng.random_range(0..env.replicas.len()),
        };
        env.replicas[victim].kill9().await;
        fig.faults += u64::from(active);
        let (state, error) = env.wait_run(&run, Duration::from_secs(600)).await;
        assert_eq!(
            state, "succeeded",
            "round {round}: the run ended {state}: {error:?}"
        );
        env.replicas[victim]
            .restart()
            .await
            .expect("restart the killed replica");
        let now = links(&env).await;
        fig.lost_links += lost_since(&before, &now);
        println!(
            "round {round}: killed {} at {:.0} % ({}), links {}",
            env.replicas[victim].name,
            share * 100.0,
            if active { "mid-run" } else { "after the run" },
            now.len()
        );
        before = now;
    }
    let log = pusher.stop().await;
    assert!(
        env.wait_queue_drained(Duration::from_secs(300)).await,
        "jobs still queued or running"
    );
    must_link.extend(log.pushed.iter().cloned());
    let lost_before_end = fig.lost_links;
    end_state(&env, &mut fig, &must_link).await;
    fig.lost_links += lost_before_end;
    fig.secs = started.elapsed().as_secs_f64();
    println!(
        "pushes during the rounds: {} recorded, answers {:?}",
        log.pushed.len(),
        log.codes
    );
    let dirty = fig.duplicates + fig.lost_links + fig.stuck_jobs + fig.audit_mismatches > 0;
    env.stop(dirty).await;
    fig.assert_clean();
}
