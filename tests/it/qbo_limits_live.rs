//! Throttle storms against the simulator enforcing QBO's limits (on a shortened window): every
//! call completes and the simulator counts zero limit violations.

use std::time::Duration;

use qbo_sim::{FaultConfig, SimulatorConfig, ThrottleStyle};
use qbo_sync::{
    domain::{DigitCustomerId, TenantId},
    quickbooks::{BatchCreate, CreateOutcome, Lane, NewCustomer, QboClient, RequestId},
};

use crate::qbo_harness::harness;

fn storm_config() -> SimulatorConfig {
    SimulatorConfig {
        rate_window: Duration::from_secs(2),
        max_requests_per_window: 60,
        max_batches_per_window: 6,
        ..SimulatorConfig::default()
    }
}

async fn reads(client: &QboClient, tenant: &TenantId, n: usize, lane: Lane) -> usize {
    let calls =
        (0..n).map(|i| client.read_customer(tenant, if i % 2 == 0 { "1" } else { "2" }, lane));
    futures::future::join_all(calls)
        .await
        .into_iter()
        .filter(Result::is_ok)
        .count()
}

#[tokio::test]
async fn throttle_storms_in_every_style_complete_without_limit_violations() {
    let h = harness(storm_config(), |_| {}).await;
    h.seed(&[("Storm One", true), ("Storm Two", true)]);
    let other = h.replica().await;
    let styles = [
        ThrottleStyle::Json429,
        ThrottleStyle::Xml429,
        ThrottleStyle::Forbidden403,
        ThrottleStyle::Fault200,
        ThrottleStyle::LowerCase429,
    ];
    for (i, style) in styles.into_iter().enumerate() {
        h.sim.set_faults(FaultConfig {
            throttle_rate: 0.25,
            throttle_style: style,
            latency: Duration::from_millis(20),
            latency_jitter: Duration::from_millis(40),
            retry_after_secs: (i == 0).then_some(1),
            seed: i as u64,
            ..FaultConfig::default()
        });
        let (a, b) = tokio::join!(
            reads(&h.client, &h.tenant, 20, Lane::Background),
            reads(&other, &h.tenant, 20, Lane::Interactive),
        );
        assert_eq!((a, b), (20, 20), "{style:?}: every read completes");
    }
    let stats = h.sim.stats();
    assert!(
        stats.injected_throttles >= 20,
        "the storm happened: {stats:?}"
    );
    assert_eq!(
        stats.limit_violations.total(),
        0,
        "{:?}",
        stats.limit_violations
    );
    assert!(stats.max_concurrency_seen <= 10);
}

#[tokio::test]
async fn two_replicas_at_full_speed_stay_inside_rate_batch_and_concurrency_limits() {
    let h = harness(storm_config(), |_| {}).await;
    h.seed(&[("Load One", true), ("Load Two", true)]);
    let other = h.replica().await;
    h.sim.set_faults(FaultConfig {
        latency: Duration::from_millis(30),
        latency_jitter: Duration::from_millis(120),
        ..FaultConfig::default()
    });
    let tenant = h.tenant.clone();
    let batch = |prefix: &str| -> Vec<BatchCreate> {
        (0..90)
            .map(|i| BatchCreate {
                request_id: RequestId::for_create(
                    &tenant,
                    &DigitCustomerId::parse(format!("{prefix}{i}")).unwrap(),
                    0,
                ),
                customer: NewCustomer {
                    display_name: format!("{prefix} load {i}"),
                    ..NewCustomer::default()
                },
            })
            .collect()
    };
    let (batch_a, batch_b) = (batch("A"), batch("B"));
    let (r1, r2, c1, c2) = tokio::join!(
        reads(&h.client, &h.tenant, 60, Lane::Background),
        reads(&other, &h.tenant, 60, Lane::Background),
        h.client
            .batch_create_customers(&h.tenant, &batch_a, Lane::Background),
        other.batch_create_customers(&h.tenant, &batch_b, Lane::Background),
    );
    assert_eq!((r1, r2), (60, 60));
    for result in c1.unwrap().into_iter().chain(c2.unwrap()) {
        assert!(
            matches!(result, Ok(CreateOutcome::Created(_))),
            "{result:?}"
        );
    }
    let stats = h.sim.stats();
    assert_eq!(
        stats.limit_violations.total(),
        0,
        "{:?}",
        stats.limit_violations
    );
    assert!(
        stats.max_concurrency_seen >= 3,
        "the load was concurrent: {}",
        stats.max_concurrency_seen
    );
    assert_eq!(h.sim.customers(h.realm.as_str()).len(), 182);
}

#[tokio::test]
async fn an_interactive_call_overtakes_a_background_backlog_end_to_end() {
    let h = harness(storm_config(), |_| {}).await;
    h.seed(&[("Lane One", true), ("Lane Two", true)]);
    // 60 per 2 s → ~36 ms spacing: 45 background reads queue for ~1.6 s.
    let started = std::time::Instant::now();
    let background = reads(&h.client, &h.tenant, 45, Lane::Background);
    let interactive = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let asked = started.elapsed();
        h.client
            .read_customer(&h.tenant, "1", Lane::Interactive)
            .await
            .unwrap();
        started.elapsed() - asked
    };
    let (done, waited) = tokio::join!(background, interactive);
    let total = started.elapsed();
    assert_eq!(done, 45);
    assert!(
        total >= Duration::from_millis(1400),
        "the backlog was real: {total:?}"
    );
    assert!(
        waited < Duration::from_millis(400),
        "interactive waited {waited:?} behind the backlog"
    );
    assert_eq!(h.sim.stats().limit_violations.total(), 0);
}

/// Slot leases far shorter than the waits: start times booked seconds ahead behind realm
/// pauses of 3 s (every throttle answer carries `Retry-After: 3`), a lease of 2 s, and enough
/// latency that two replicas want more than ten calls in flight. A slot leased before the wait
/// would run out during it and let an eleventh call in; leased after it, the limit holds.
#[tokio::test]
async fn short_slot_leases_hold_the_concurrency_limit_through_long_waits_and_pauses() {
    let sim_config = SimulatorConfig {
        rate_window: Duration::from_secs(2),
        max_requests_per_window: 40,
        ..SimulatorConfig::default()
    };
    let h = harness(sim_config, |c| {
        c.qbo_timeout = Duration::from_millis(1300);
        c.qbo_slot_lease = Duration::from_secs(2);
    })
    .await;
    assert_eq!(
        h.client.limiter().settings().slot_lease(),
        Duration::from_secs(2),
        "2 s outlives a 1.3 s call by more than half of it: not raised"
    );
    h.seed(&[("Lease One", true), ("Lease Two", true)]);
    let other = h.replica().await;
    h.sim.set_faults(FaultConfig {
        throttle_rate: 0.06,
        retry_after_secs: Some(3),
        latency: Duration::from_millis(250),
        latency_jitter: Duration::from_millis(500),
        seed: 11,
        ..FaultConfig::default()
    });
    let started = std::time::Instant::now();
    let (a, b, c, d) = tokio::join!(
        reads(&h.client, &h.tenant, 20, Lane::Interactive),
        reads(&h.client, &h.tenant, 15, Lane::Background),
        reads(&other, &h.tenant, 20, Lane::Interactive),
        reads(&other, &h.tenant, 15, Lane::Background),
    );
    let elapsed = started.elapsed();
    assert_eq!((a, b, c, d), (20, 15, 20, 15), "every read completes");
    let stats = h.sim.stats();
    assert!(
        stats.injected_throttles >= 1,
        "the realm was paused: {stats:?}"
    );
    assert!(
        elapsed >= Duration::from_secs(6),
        "the waits were long: {elapsed:?}"
    );
    assert_eq!(
        stats.limit_violations.concurrency, 0,
        "{:?}",
        stats.limit_violations
    );
    assert_eq!(
        stats.limit_violations.total(),
        0,
        "{:?}",
        stats.limit_violations
    );
    assert!(
        stats.max_concurrency_seen >= 6,
        "the replicas pressed on the limit: {}",
        stats.max_concurrency_seen
    );
}
