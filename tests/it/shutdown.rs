//! The whole server's shutdown with jobs running: what the worker pool promises (jobs still
//! running at the hard deadline are released at once for another replica) must hold for the
//! server too, which returns (and lets the process exit) only after the release is written.

use std::time::Duration;

use qbo_sim::{FaultConfig, SimulatorConfig};

use crate::{
    helpers::eventually,
    push_support::{TENANT, customer, world},
};

#[tokio::test]
async fn the_server_returns_only_after_releasing_its_running_jobs() {
    let w = world(
        SimulatorConfig::default(),
        &[("--workers", "2"), ("--shutdown-grace", "200ms")],
    )
    .await;
    // QBO never answers in time: the push is still running when the grace ends.
    w.sim.set_faults(FaultConfig {
        latency: Duration::from_secs(30),
        ..FaultConfig::default()
    });
    w.upsert(customer("slow-1", "Slow Answer Co")).await;
    let running = "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND state = 'running'";
    assert!(
        eventually(Duration::from_secs(10), || async {
            w.count(running).await == 1
        })
        .await
    );

    w.app.shutdown.trigger(Duration::from_millis(200));
    let stopped = tokio::time::timeout(Duration::from_secs(10), w.app.server)
        .await
        .expect("stops within the grace and the release");
    stopped.unwrap().expect("clean stop");

    // Read at once: a job left to its lease would still be running here, its attempt spent.
    let (state, attempts): (String, i32) =
        sqlx::query_as("SELECT state, attempts FROM jobs WHERE tenant_id = $1")
            .bind(TENANT)
            .fetch_one(&w.app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        (state.as_str(), attempts),
        ("queued", 0),
        "released at shutdown"
    );
}
