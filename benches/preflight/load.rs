//! The two ways of offering load, over any call that resolves to `Ok` or to what went wrong:
//!
//! * **closed loop**: N callers, each sending its next call as soon as the last one answered
//!   (the most the service does with N callers, as pgbench measures its select-only rate);
//! * **open loop**: calls sent on a fixed schedule whatever the answers, each call's latency
//!   measured from the moment the schedule meant to send it, so a stall counts against every
//!   call it delayed (no coordinated omission).
//!
//! Latencies go into HDR histograms in microseconds; only calls of the measured window count,
//! the warm-up's are dropped. A call that fails is told apart from one that answers wrongly:
//! an overloaded server may shed calls, but it must never answer one wrongly.

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use tokio_util::task::TaskTracker;

/// The longest latency a histogram holds exactly (longer ones are recorded as this).
const HIGHEST_MICROS: u64 = 60_000_000;

/// Why a call did not count as a success.
pub enum Failure {
    /// The RPC failed (a status: shed, deadline passed, unavailable).
    Status(String),
    /// The RPC answered, but not what the data says.
    Wrong(String),
}

/// What one measured window gave.
pub struct Outcome {
    /// Latencies of the calls that succeeded, in microseconds.
    pub latency: Histogram<u64>,
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed with a status.
    pub failed: u64,
    /// Calls that answered wrongly.
    pub wrong: u64,
    /// What the first failure was.
    pub first_failure: Option<String>,
    /// What the first wrong answer was.
    pub first_wrong: Option<String>,
    /// How long the window lasted (for the open loop: until its last call answered).
    pub window: Duration,
    /// Open loop only: how late the pacer sent calls, in microseconds.
    pub send_lag: Option<Histogram<u64>>,
}

impl Outcome {
    /// Successful calls per second over the window.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64().max(f64::EPSILON)
    }

    /// The latency at quantile `q`, in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_MICROS, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// One caller's (or the open loop's shared) account of its calls.
struct Tally {
    latency: Histogram<u64>,
    ok: u64,
    failed: u64,
    wrong: u64,
    first_failure: Option<String>,
    first_wrong: Option<String>,
    last_done: Option<Instant>,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency: histogram(),
            ok: 0,
            failed: 0,
            wrong: 0,
            first_failure: None,
            first_wrong: None,
            last_done: None,
        }
    }

    fn record(&mut self, latency: Duration, result: Result<(), Failure>) {
        self.last_done = Some(Instant::now());
        match result {
            Ok(()) => {
                self.ok += 1;
                self.latency.saturating_record(micros(latency));
            }
            Err(Failure::Status(why)) => {
                self.failed += 1;
                self.first_failure.get_or_insert(why);
            }
            Err(Failure::Wrong(why)) => {
                self.wrong += 1;
                self.first_wrong.get_or_insert(why);
            }
        }
    }

    fn merge(&mut self, other: Self) {
        self.latency
            .add(other.latency)
            .expect("histograms of the same bounds");
        self.ok += other.ok;
        self.failed += other.failed;
        self.wrong += other.wrong;
        self.first_failure = self.first_failure.take().or(other.first_failure);
        self.first_wrong = self.first_wrong.take().or(other.first_wrong);
        self.last_done = self.last_done.max(other.last_done);
    }

    fn into_outcome(self, window: Duration, send_lag: Option<Histogram<u64>>) -> Outcome {
        Outcome {
            latency: self.latency,
            ok: self.ok,
            failed: self.failed,
            wrong: self.wrong,
            first_failure: self.first_failure,
            first_wrong: self.first_wrong,
            window,
            send_lag,
        }
    }
}

/// `callers` concurrent callers, each calling again as soon as its call answered, for `warmup`
/// and then the measured `window`. `call` gets a sequence number shared by all callers. A call
/// counts when it started and answered within the window.
pub async fn closed_loop<F, Fut>(
    callers: usize,
    warmup: Duration,
    window: Duration,
    call: F,
) -> Outcome
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let from = Instant::now() + warmup;
    let until = from + window;
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (next, call) = (next.clone(), call.clone());
            tokio::spawn(async move {
                let mut tally = Tally::new();
                loop {
                    let sent = Instant::now();
                    let result = call(next.fetch_add(1, Ordering::Relaxed)).await;
                    let done = Instant::now();
                    if done > until {
                        break;
                    }
                    if sent >= from {
                        tally.record(done - sent, result);
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::new();
    for task in tasks {
        total.merge(task.await.expect("a caller panicked"));
    }
    total.into_outcome(window, None)
}

/// Calls sent at `rate` a second for `warmup` and then the measured `window`, whatever the
/// answers. The pacer is a thread of its own sleeping to each call's intended time (tokio's
/// timer ticks in whole milliseconds, too coarse at thousands of calls a second); each call's
/// latency runs from that intended time. The window ends when the last measured call answered.
pub async fn open_loop<F, Fut>(rate: f64, warmup: Duration, window: Duration, call: F) -> Outcome
where
    F: Fn(u64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    let runtime = tokio::runtime::Handle::current();
    let tracker = TaskTracker::new();
    let tally = Arc::new(Mutex::new(Tally::new()));
    let start = Instant::now() + Duration::from_millis(10);
    let from = start + warmup;
    let total = ((warmup + window).as_secs_f64() * rate).round() as u64;
    let pacer = {
        let (tracker, tally) = (tracker.clone(), tally.clone());
        std::thread::spawn(move || {
            let mut lag = histogram();
            for n in 0..total {
                let intended = start + Duration::from_secs_f64(n as f64 / rate);
                let now = Instant::now();
                if intended > now {
                    std::thread::sleep(intended - now);
                }
                lag.saturating_record(micros(intended.elapsed()));
                let measured = intended >= from;
                let (tally, answer) = (tally.clone(), call(n));
                tracker.spawn_on(
                    async move {
                        let result = answer.await;
                        if measured {
                            let latency = intended.elapsed();
                            tally.lock().expect("tally").record(latency, result);
                        }
                    },
                    &runtime,
                );
            }
            lag
        })
    };
    let lag = tokio::task::spawn_blocking(move || pacer.join().expect("the pacer panicked"))
        .await
        .expect("the pacer's waiter panicked");
    tracker.close();
    tracker.wait().await;
    let tally = Arc::into_inner(tally)
        .expect("every call finished")
        .into_inner()
        .expect("tally");
    let ended = tally.last_done.unwrap_or(from + window).max(from + window);
    tally.into_outcome(ended - from, Some(lag))
}
