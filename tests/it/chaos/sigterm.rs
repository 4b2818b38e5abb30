//! Scenario 4: SIGTERM to the replica running a full sync, under caller load. In-flight RPCs
//! finish, the run's job is released and resumed by the other replica (sooner than a lease
//! would allow), callers see nothing worse than UNAVAILABLE on new calls, the process exits
//! cleanly within its grace.

use std::{collections::HashSet, time::Duration};

use serde_json::json;
use tokio::time::Instant;

use super::{
    checks::{Figures, end_state},
    env::{ChaosEnv, Profile},
    pusher::{PushLog, Pusher},
};
use crate::helpers::fresh_database;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_and_hands_over() {
    let profile = Profile::from_env(2, 1_000);
    let n = profile.customers;
    let db = fresh_database().await.expect("database");
    // A short grace: the run outlives it, so its job must be released, not left to its lease.
    let extra = [("QBO_SYNC_SHUTDOWN_GRACE", "1s")];
    let mut env = ChaosEnv::start(&db.url, db.pool.clone(), &extra).await;
    let started = Instant::now();
    env.seed(n).await;
    // QBO answers slowly, so the runs last long enough to be interrupted.
    env.sim.set_faults(json!({"latency_ms": 40})).await;
    let channels: Vec<_> = env.replicas.iter().map(|r| r.channel.clone()).collect();
    let pushers: Vec<Pusher> = (0..2)
        .map(|k| {
            Pusher::start(
                channels.clone(),
                600_000 + k * 50_000,
                Duration::from_millis(100),
            )
        })
        .collect();
    let mut fig = Figures {
        scenario: "SIGTERM",
        rounds: profile.rounds,
        customers: n,
        ..Figures::default()
    };
    for round in 0..profile.rounds {
        // A run's job leaves the running state between its steps (while its pushes run) and
        // a short run may end before the signal lands: then the round starts another run.
        let mut tries = 0;
        let (run, holder, attempts_before) = loop {
            tries += 1;
            assert!(
                tries <= 5,
                "round {round}: no run stayed running long enough"
            );
            let run = env
                .trigger_full_sync(&format!("chaos-term-{round}-{tries}"))
                .await;
            if let Some((holder, attempts)) = signal_point(&env, &run).await {
                break (run, holder, attempts);
            }
        };
        let stopped_worker = env.replicas[holder].worker_id().expect("the worker's id");
        let stopping = Instant::now();
        let clean = env.replicas[holder].sigterm(Duration::from_secs(15)).await;
        let exit = stopping.elapsed();
        assert_eq!(
            clean,
            Some(true),
            "round {round}: the replica did not exit cleanly"
        );
        fig.faults += 1;
        let (resumed, attempts_after) = wait_resumed_elsewhere(&env, &run, &stopped_worker).await;
        let (state, error) = env.wait_run(&run, Duration::from_secs(600)).await;
        assert_eq!(state, "succeeded", "round {round}: {error:?}");
        println!(
            "round {round}: SIGTERM to {}: exited in {:.1} s, run resumed {:.1} s after the exit",
            env.replicas[holder].name,
            exit.as_secs_f64(),
            resumed.as_secs_f64()
        );
        // Released at shutdown, the attempt was given back: the other replica's claim spends
        // it again. A job left to its lease would have spent one more.
        if let Some(after) = attempts_after {
            assert_eq!(
                after, attempts_before,
                "round {round}: the job was not released at shutdown (rescued after its lease)"
            );
        }
        env.replicas[holder].restart().await.expect("restart");
    }
    let mut log = PushLog::default();
    for pusher in pushers {
        let one = pusher.stop().await;
        log.pushed.extend(one.pushed);
        log.hangs += one.hangs;
        for (code, count) in one.codes {
            *log.codes.entry(code).or_default() += count;
        }
    }
    env.sim.set_faults(json!({})).await;
    assert!(
        env.wait_queue_drained(Duration::from_secs(300)).await,
        "jobs still queued or running"
    );
    let must_link: HashSet<String> = log.pushed.iter().cloned().collect();
    end_state(&env, &mut fig, &must_link).await;
    fig.secs = started.elapsed().as_secs_f64();
    println!("callers' answers: {:?}, hangs {}", log.codes, log.hangs);
    let worse: u64 = log
        .codes
        .iter()
        .filter(|(code, _)| !matches!(code.as_str(), "Ok" | "Unavailable"))
        .map(|(_, n)| n)
        .sum();
    env.stop(worse > 0 || fig.lost_links > 0).await;
    fig.assert_clean();
    assert_eq!(
        (worse, log.hangs),
        (0, 0),
        "callers saw worse than UNAVAILABLE: {:?}",
        log.codes
    );
}

/// The replica whose worker runs the run's job, once one does.
/// The replica holding the run's job, and the job's attempts, once it has been at the run's
/// work for a moment; `None` when the run ended first.
async fn signal_point(env: &ChaosEnv, run: &str) -> Option<(usize, i32)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Some(holder) = env.holder_of_run(run).await {
            // Let it get into the run's work before the signal.
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Some(attempts) = job_attempts(env, run, "-").await
                && env.holder_of_run(run).await == Some(holder)
            {
                return Some((holder, attempts));
            }
        }
        if !matches!(env.run_state(run).await.as_str(), "queued" | "running") {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("run {run} never stayed with one replica for half a second in two minutes");
}

/// The attempts of the run's job held by a worker whose id does not start with `not_by`
/// (`None`: no such worker holds it).
async fn job_attempts(env: &ChaosEnv, run: &str, not_by: &str) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT attempts FROM jobs WHERE kind = 'sync_run' AND state = 'running'
           AND payload::text LIKE '%' || $1 || '%' AND locked_by NOT LIKE $2 || ':%'",
    )
    .bind(run)
    .bind(not_by)
    .fetch_optional(&env.pool)
    .await
    .unwrap()
}

/// How long after the stopped replica exited the run's job was running on the replica left
/// (with its attempts then), or the run ended (no attempts).
async fn wait_resumed_elsewhere(
    env: &ChaosEnv,
    run: &str,
    stopped_worker: &str,
) -> (Duration, Option<i32>) {
    let since = Instant::now();
    loop {
        if let Some(attempts) = job_attempts(env, run, stopped_worker).await {
            return (since.elapsed(), Some(attempts));
        }
        let ended = !matches!(env.run_state(run).await.as_str(), "queued" | "running");
        if ended || since.elapsed() > Duration::from_secs(60) {
            return (since.elapsed(), None);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
