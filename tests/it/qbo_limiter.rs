//! The PostgreSQL-backed limiter on its own: pacing, concurrency slots, leases, lanes.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use qbo_sync::{
    domain::RealmId,
    pgcluster::fresh_database,
    quickbooks::{
        CallKind, Lane,
        limiter::{Limiter, LimiterSettings},
        settings::default_qbo_config,
    },
    store::qbo_limits,
};

fn settings(
    per_window: u32,
    window: Duration,
    concurrent: u16,
    lease: Duration,
) -> LimiterSettings {
    let mut config = default_qbo_config();
    config.qbo_requests_per_window = per_window;
    config.qbo_batches_per_window = 5;
    config.qbo_rate_window = window;
    config.qbo_max_concurrent = concurrent;
    config.qbo_interactive_slots = 1;
    config.qbo_slot_lease = lease;
    // The limiter raises a lease shorter than the call timeout plus half of it; these tests
    // make no HTTP calls, so a short timeout lets them use short leases.
    config.qbo_timeout = Duration::from_millis(100);
    config.qbo_rate_headroom_percent = 0;
    LimiterSettings::from_config(&config)
}

#[tokio::test]
async fn two_replicas_share_the_pacing_and_never_exceed_a_window() {
    let db = fresh_database().await.unwrap();
    let s = settings(22, Duration::from_secs(1), 10, Duration::from_secs(30));
    assert_eq!(
        s.request_interval(),
        Duration::from_millis(50),
        "1 s / (22 - 2)"
    );
    let other_pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let limiters = [
        Arc::new(Limiter::new(db.pool.clone(), s.clone())),
        Arc::new(Limiter::new(other_pool, s)),
    ];
    let realm = RealmId::parse("realm-pace").unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let limiter = limiters[i % 2].clone();
            let realm = realm.clone();
            tokio::spawn(async move {
                let permit = limiter
                    .acquire(&realm, Lane::Background, CallKind::Single)
                    .await
                    .unwrap();
                let booked = permit.start_at().expect("a booked start");
                permit.release().await.unwrap();
                booked
            })
        })
        .collect();
    let mut starts: Vec<chrono::DateTime<chrono::Utc>> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    starts.sort();
    // The booked start times (on the database clock every replica shares) are what the
    // pacing guarantees; local wake-ups only ever come later. Asserting on them keeps the test
    // exact on a loaded machine, where thread scheduling would blur wall-clock timings.
    let interval = chrono::Duration::milliseconds(50);
    for pair in starts.windows(2) {
        assert!(
            pair[1] - pair[0] >= interval,
            "starts closer than 50 ms: {pair:?}"
        );
    }
    // Any one-second window holds at most 21 starts (the limit is 22), though 40 were waiting.
    for (i, first) in starts.iter().enumerate() {
        let in_window = starts[i..]
            .iter()
            .take_while(|t| **t < *first + chrono::Duration::seconds(1))
            .count();
        assert!(
            in_window <= 21,
            "{in_window} starts within 1 s of {first:?}"
        );
    }
    let spread = *starts.last().unwrap() - starts[0];
    assert!(
        spread >= interval * 39,
        "40 starts spread over only {spread:?}"
    );
}

#[tokio::test]
async fn concurrency_slots_cap_in_flight_work_across_limiters() {
    let db = fresh_database().await.unwrap();
    let s = settings(10_000, Duration::from_secs(1), 3, Duration::from_secs(30));
    let other_pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let limiters = [
        Arc::new(Limiter::new(db.pool.clone(), s.clone())),
        Arc::new(Limiter::new(other_pool, s)),
    ];
    let realm = RealmId::parse("realm-conc").unwrap();
    let (in_flight, peak) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let (limiter, realm) = (limiters[i % 2].clone(), realm.clone());
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            let lane = if i % 3 == 0 {
                Lane::Interactive
            } else {
                Lane::Background
            };
            tokio::spawn(async move {
                let permit = limiter
                    .acquire(&realm, lane, CallKind::Single)
                    .await
                    .unwrap();
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                permit.release().await.unwrap();
            })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        t.unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert_eq!(qbo_limits::held_slots(&db.pool, &realm).await.unwrap(), 0);
}

#[tokio::test]
async fn a_dead_replicas_slot_frees_itself_when_the_lease_runs_out() {
    let db = fresh_database().await.unwrap();
    let s = settings(
        10_000,
        Duration::from_secs(1),
        2,
        Duration::from_millis(400),
    );
    assert_eq!(s.slot_lease(), Duration::from_millis(400));
    let realm = RealmId::parse("realm-lease").unwrap();
    // A "replica" takes every slot and dies without releasing (no Drop runs).
    let dead = Limiter::new(db.pool.clone(), s.clone());
    for _ in 0..2 {
        std::mem::forget(
            dead.acquire(&realm, Lane::Interactive, CallKind::Single)
                .await
                .unwrap(),
        );
    }
    assert_eq!(qbo_limits::held_slots(&db.pool, &realm).await.unwrap(), 2);
    let other_pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let limiter = Limiter::new(other_pool, s);
    let started = Instant::now();
    let permit = limiter
        .acquire(&realm, Lane::Interactive, CallKind::Single)
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "waited only {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    // The backoff grows (10 ms, doubling, capped at 320 ms, with jitter): a handful of
    // attempts, where a fixed 5–25 ms poll would have made some twenty-five.
    let attempts = limiter.slot_lease_attempts();
    assert!(
        (2..=10).contains(&attempts),
        "{attempts} lease attempts in {waited:?}"
    );
    permit.release().await.unwrap();
}

#[tokio::test]
async fn calls_waiting_inside_one_replica_wait_at_the_gate_not_on_the_slot_table() {
    let db = fresh_database().await.unwrap();
    let s = settings(10_000, Duration::from_secs(1), 3, Duration::from_secs(30));
    let limiter = Arc::new(Limiter::new(db.pool.clone(), s));
    let realm = RealmId::parse("realm-gate").unwrap();
    let (in_flight, peak) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (limiter, realm) = (limiter.clone(), realm.clone());
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            let lane = if i % 4 == 0 {
                Lane::Interactive
            } else {
                Lane::Background
            };
            tokio::spawn(async move {
                let permit = limiter
                    .acquire(&realm, lane, CallKind::Single)
                    .await
                    .unwrap();
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                // Half the calls drop their permit instead: the row must be free before the
                // next waiter is let in either way.
                if i % 2 == 0 {
                    permit.release().await.unwrap();
                }
            })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        t.unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    // 60 calls through 3 slots queued for about 400 ms, yet each asked PostgreSQL for a slot
    // exactly once: the waiting happened at the in-process gate.
    assert_eq!(limiter.slot_lease_attempts(), 60);
    // The last dropped permits free their rows in spawned tasks.
    let mut held = qbo_limits::held_slots(&db.pool, &realm).await.unwrap();
    for _ in 0..50 {
        if held == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        held = qbo_limits::held_slots(&db.pool, &realm).await.unwrap();
    }
    assert_eq!(held, 0);
}

#[tokio::test]
async fn interactive_work_overtakes_a_background_backlog() {
    let db = fresh_database().await.unwrap();
    // 20 ms spacing; 30 background calls queue for ~600 ms.
    let s = settings(52, Duration::from_secs(1), 10, Duration::from_secs(30));
    let limiter = Arc::new(Limiter::new(db.pool.clone(), s));
    let realm = RealmId::parse("realm-lanes").unwrap();
    let started = Instant::now();
    let background: Vec<_> = (0..30)
        .map(|_| {
            let (limiter, realm) = (limiter.clone(), realm.clone());
            tokio::spawn(async move {
                let p = limiter
                    .acquire(&realm, Lane::Background, CallKind::Single)
                    .await
                    .unwrap();
                let at = started.elapsed();
                tokio::time::sleep(Duration::from_millis(5)).await;
                p.release().await.unwrap();
                at
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = started.elapsed();
    let p = limiter
        .acquire(&realm, Lane::Interactive, CallKind::Single)
        .await
        .unwrap();
    let interactive_at = started.elapsed();
    p.release().await.unwrap();
    let background: Vec<Duration> = futures::future::join_all(background)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let after = background.iter().filter(|t| **t > interactive_at).count();
    assert!(
        interactive_at - asked < Duration::from_millis(150),
        "interactive waited {:?}",
        interactive_at - asked
    );
    assert!(
        after >= 15,
        "only {after} background calls went after the interactive one"
    );
}

#[tokio::test]
async fn batch_calls_are_also_paced_by_the_batch_row() {
    let db = fresh_database().await.unwrap();
    // 5 batches per 200 ms window → 200 / (5 - 2) ≈ 66 ms apart.
    let mut config = default_qbo_config();
    config.qbo_requests_per_window = 10_000;
    config.qbo_batches_per_window = 5;
    config.qbo_rate_window = Duration::from_millis(200);
    config.qbo_rate_headroom_percent = 0;
    let limiter = Limiter::new(db.pool.clone(), LimiterSettings::from_config(&config));
    let realm = RealmId::parse("realm-batch").unwrap();
    let started = Instant::now();
    for _ in 0..7 {
        limiter
            .acquire(&realm, Lane::Background, CallKind::Batch)
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(6 * 66 - 20),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn concurrent_reservations_from_two_pools_never_share_a_start() {
    let db = fresh_database().await.unwrap();
    let other = sqlx::PgPool::connect(&db.url).await.unwrap();
    let realm = RealmId::parse("realm-race").unwrap();
    let interval = Duration::from_millis(10);
    let before: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let calls = (0..100).map(|i| {
        let pool = if i % 2 == 0 {
            db.pool.clone()
        } else {
            other.clone()
        };
        let realm = realm.clone();
        async move {
            qbo_limits::reserve_start(
                &pool,
                &realm,
                qbo_limits::RateBucket::Request,
                interval,
                qbo_limits::Booking::Interactive {
                    horizon: Duration::from_secs(3600),
                },
            )
            .await
            .unwrap()
        }
    });
    let results = futures::future::join_all(calls).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, qbo_limits::Reservation::Granted { .. }))
    );
    let tat: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT tat FROM qbo_rate_limits WHERE realm_id = 'realm-race'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    // 100 distinct starts, 10 ms apart, all after `before`: the row moved a full second on.
    assert!(
        tat - before >= chrono::Duration::milliseconds(1000),
        "{:?}",
        tat - before
    );
}

#[tokio::test]
async fn background_work_books_its_turn_however_far_ahead_interactive_work_booked() {
    let db = fresh_database().await.unwrap();
    let realm = RealmId::parse("realm-turns").unwrap();
    let interval = Duration::from_millis(100);
    let bucket = qbo_limits::RateBucket::Request;
    let interactive = qbo_limits::Booking::Interactive {
        horizon: Duration::from_secs(3600),
    };
    let background = |turn| qbo_limits::Booking::Background {
        horizon: Duration::from_millis(200),
        turn,
    };
    let book = |booking| {
        let (pool, realm) = (db.pool.clone(), realm.clone());
        async move {
            qbo_limits::reserve_start(&pool, &realm, bucket, interval, booking)
                .await
                .unwrap()
        }
    };
    let granted =
        |r: &qbo_limits::Reservation| matches!(r, qbo_limits::Reservation::Granted { .. });
    // Interactive work books 1.2 s ahead, far past background work's 200 ms horizon.
    for _ in 0..12 {
        assert!(granted(&book(interactive).await));
    }
    // Strict priority: background work waits until the bookings are that close again.
    match book(background(0)).await {
        qbo_limits::Reservation::Deferred { retry_in } => {
            assert!(retry_in > Duration::from_millis(900), "{retry_in:?}");
        }
        r => panic!("booked past its horizon without a turn: {r:?}"),
    }
    // With a turn of 4: twelve interactive starts in a row, so background work books now,
    // behind them; then only after four more.
    let qbo_limits::Reservation::Granted { wait, .. } = book(background(4)).await else {
        panic!("background work's turn was not given");
    };
    assert!(wait > Duration::from_millis(1000), "{wait:?}");
    for n in 1..=4 {
        match book(background(4)).await {
            qbo_limits::Reservation::Deferred { retry_in } => {
                // It asks again about when its turn may have come, not after the whole gap.
                assert!(retry_in <= interval * 4, "{retry_in:?}");
            }
            r => panic!("booked again after {} interactive starts: {r:?}", n - 1),
        }
        assert!(granted(&book(interactive).await));
    }
    assert!(granted(&book(background(4)).await), "the next turn");
}

#[tokio::test]
async fn a_stream_of_interactive_calls_slows_background_work_but_never_stops_it() {
    let db = fresh_database().await.unwrap();
    // 20 ms spacing; eight interactive callers (worker loops) with 25 calls each keep the
    // realm's bookings about 160 ms ahead for four seconds, past background work's 40 ms.
    let s = settings(52, Duration::from_secs(1), 10, Duration::from_secs(30));
    let limiter = Arc::new(Limiter::new(db.pool.clone(), s));
    let realm = RealmId::parse("realm-share").unwrap();
    let started = Instant::now();
    let interactive: Vec<_> = (0..8)
        .map(|_| {
            let (limiter, realm) = (limiter.clone(), realm.clone());
            tokio::spawn(async move {
                for _ in 0..25 {
                    let p = limiter
                        .acquire(&realm, Lane::Interactive, CallKind::Single)
                        .await
                        .unwrap();
                    p.release().await.unwrap();
                }
                started.elapsed()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut background = Vec::new();
    for _ in 0..5 {
        let p = limiter
            .acquire(&realm, Lane::Background, CallKind::Single)
            .await
            .unwrap();
        p.release().await.unwrap();
        background.push(started.elapsed());
    }
    let last_interactive = futures::future::join_all(interactive)
        .await
        .into_iter()
        .map(Result::unwrap)
        .max()
        .unwrap();
    // One background start in five: the five are done about 25 starts (0.5 s) after asking,
    // long before the interactive stream ends at about 4 s (strict priority: after it).
    let done = *background.last().unwrap();
    assert!(
        done + Duration::from_millis(1500) < last_interactive,
        "background done at {done:?}, interactive at {last_interactive:?}"
    );
}
