//! Per-realm QBO limits shared by every replica through PostgreSQL, behind an in-process gate.
//!
//! A call passes four steps in this order:
//!
//! 1. **Gate** (`gate.rs`): a per-realm semaphore in this process with one permit per
//!    concurrency slot. Calls queued inside one replica wait here and cost no queries.
//! 2. **Rate**: a GCRA row per realm hands out start times spaced `window / allowed` apart,
//!    where `allowed` is the limit minus a headroom (percent, plus one call for the window edge
//!    and one for network jitter). Spacing rather than bursting keeps *every* sliding window
//!    under the limit, which is what QBO enforces. Batch calls take a start time from a second
//!    row too. The call sleeps until its start time, holding no slot row.
//! 3. **Concurrency**: only then does it lease a slot row, for the HTTP call alone. The lease is
//!    longer than the call timeout (enforced here), and runs out on its own, so a replica that
//!    died holding a slot blocks the realm for at most the lease. Within one replica the gate
//!    guarantees a free row; rows held by other replicas are waited for with a growing,
//!    jittered backoff. A call that waited so long for a row that it is late for its start
//!    time gives the row back and books a new start rather than bunching with later calls.
//! 4. The call is sent; the row is freed, then the gate's permit.
//!
//! **Priority lanes**: background work may book at most a few start times ahead and may not
//! use the last `interactive_slots` slots (nor their gate permits); interactive work books
//! freely. So an interactive call waits behind at most a few background calls, however deep the
//! background backlog. The other way round, background work keeps a share of the rate
//! (`QBO_SYNC_QBO_BACKGROUND_SHARE`, 20 % by default): once interactive calls have booked
//! [`QboConfig::background_turn`] starts in a row, the next background call books too, however far ahead,
//! so interactive demand at or above QBO's rate slows a sync run down but never stops it.

use std::{
    ops::Range,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use rand::Rng;
use sqlx::PgPool;
use tracing::{debug, warn};
use uuid::Uuid;

use super::{
    QboError,
    gate::{GatePass, RealmGates},
};
use crate::{
    config::QboConfig,
    domain::RealmId,
    store::qbo_limits::{self, Booking, RateBucket, Reservation},
};

/// The least a slot lease must exceed the call timeout by, however short that timeout is.
const MIN_LEASE_MARGIN: Duration = Duration::from_millis(250);
/// First and longest pause between two attempts to lease a slot row held by other replicas.
const LEASE_BACKOFF_FIRST: Duration = Duration::from_millis(10);
const LEASE_BACKOFF_CAP: Duration = Duration::from_millis(320);

/// Who is asking: interactive work goes ahead of background work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A preflight repair, a single push: a person or an RPC is waiting.
    Interactive,
    /// Full-sync pages, bulk pushes.
    Background,
}

impl Lane {
    /// The metrics label.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Interactive => "interactive",
            Self::Background => "background",
        }
    }
}

/// What the permit is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Any call but batch.
    Single,
    /// A batch call (paced by the batch row as well).
    Batch,
}

/// Derived limiter settings.
#[derive(Debug, Clone)]
pub struct LimiterSettings {
    request_interval: Duration,
    batch_interval: Duration,
    max_concurrent: u16,
    interactive_slots: u16,
    lease: Duration,
    background_depth: u32,
    background_turn: u32,
}

impl LimiterSettings {
    /// Derives the pacing intervals from the configured limits and headroom, and a slot lease
    /// that outlives the call timeout (a shorter configured lease is raised, with a warning).
    #[must_use]
    pub fn from_config(config: &QboConfig) -> Self {
        let interval = |limit: u32| {
            let kept =
                u64::from(limit) * u64::from(100 - config.qbo_rate_headroom_percent.min(90)) / 100;
            // At least two calls of margin: one for the window edge, one for jitter between
            // booking and arrival. The percentage covers the same risks, so the larger of the
            // two margins is kept, not their sum (for 40 batches a minute the sum would give
            // up a tenth of the rate).
            let allowed = kept.min(u64::from(limit).saturating_sub(2)).max(1);
            config.qbo_rate_window / u32::try_from(allowed).unwrap_or(u32::MAX)
        };
        let max_concurrent = config.qbo_max_concurrent.max(1);
        Self {
            request_interval: interval(config.qbo_requests_per_window),
            batch_interval: interval(config.qbo_batches_per_window),
            max_concurrent,
            interactive_slots: config.qbo_interactive_slots.min(max_concurrent - 1),
            lease: lease_outliving(config.qbo_slot_lease, config.qbo_timeout),
            background_depth: config.qbo_background_depth.max(1),
            background_turn: config.background_turn(),
        }
    }

    /// The spacing of calls of one realm.
    #[must_use]
    pub fn request_interval(&self) -> Duration {
        self.request_interval
    }

    /// The spacing of batch calls of one realm.
    #[must_use]
    pub fn batch_interval(&self) -> Duration {
        self.batch_interval
    }

    /// The lease of a concurrency slot row, after [`Self::from_config`] raised it if needed.
    #[must_use]
    pub fn slot_lease(&self) -> Duration {
        self.lease
    }
}

/// The slot lease to use: at least the call timeout plus half of it (and plus
/// [`MIN_LEASE_MARGIN`] at least), so a row cannot run out under a call still in flight and
/// let another call take QBO past its concurrency limit. A shorter lease is raised rather than
/// refused, because the service still works, only blocking a dead replica's slot longer.
fn lease_outliving(lease: Duration, call_timeout: Duration) -> Duration {
    let floor = call_timeout + (call_timeout / 2).max(MIN_LEASE_MARGIN);
    if lease >= floor {
        return lease;
    }
    warn!(
        configured_ms = lease.as_millis() as u64,
        used_ms = floor.as_millis() as u64,
        "QBO_SYNC_QBO_SLOT_LEASE must exceed QBO_SYNC_QBO_TIMEOUT by half of it; using the longer lease"
    );
    floor
}

/// Equal jitter over a doubling step, capped: replicas waiting for the same realm's rows
/// spread out instead of polling in lockstep, and a long wait costs a query every few hundred
/// milliseconds at most.
fn lease_backoff(attempt: u32) -> Duration {
    let step = LEASE_BACKOFF_FIRST
        .saturating_mul(1 << attempt.min(8))
        .min(LEASE_BACKOFF_CAP);
    let half = step / 2;
    half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
}

/// The shared limiter; cheap to clone through `Arc`.
#[derive(Debug)]
pub struct Limiter {
    pool: PgPool,
    settings: LimiterSettings,
    gates: RealmGates,
    slot_lease_attempts: AtomicU64,
}

/// A held concurrency slot (a gate permit and a slot row). Release it with
/// [`Permit::release`]; a permit dropped without that is released by a spawned task (and in
/// the worst case by its lease running out).
#[derive(Debug)]
pub struct Permit {
    pool: PgPool,
    realm: RealmId,
    slot: Option<i16>,
    holder: Uuid,
    start_at: Option<DateTime<Utc>>,
    pass: Option<GatePass>,
}

impl Permit {
    /// The start time this call booked, on the database's clock (the call was held until
    /// then). Shared by every replica, so it is what the pacing guarantees.
    #[must_use]
    pub fn start_at(&self) -> Option<DateTime<Utc>> {
        self.start_at
    }

    /// Frees the slot row, then the gate permit.
    ///
    /// # Errors
    /// [`QboError::Store`] when the database fails (the lease then frees the slot).
    pub async fn release(mut self) -> Result<(), QboError> {
        if let Some(slot) = self.slot.take() {
            qbo_limits::release_slot(&self.pool, &self.realm, slot, self.holder).await?;
        }
        Ok(())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let (pool, realm, holder) = (self.pool.clone(), self.realm.clone(), self.holder);
            // The gate permit goes only once the row is free, so the next call of this
            // replica finds a free row instead of having to back off.
            let pass = self.pass.take();
            handle.spawn(async move {
                let _ = qbo_limits::release_slot(&pool, &realm, slot, holder).await;
                drop(pass);
            });
        }
    }
}

impl Limiter {
    /// A limiter over the shared rows in `pool`.
    #[must_use]
    pub fn new(pool: PgPool, settings: LimiterSettings) -> Self {
        Self {
            pool,
            gates: RealmGates::new(settings.max_concurrent, settings.interactive_slots),
            settings,
            slot_lease_attempts: AtomicU64::new(0),
        }
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> &LimiterSettings {
        &self.settings
    }

    /// How many times this limiter asked PostgreSQL for a slot row (for tests and metrics):
    /// one per call when no other replica holds the realm's rows.
    #[must_use]
    pub fn slot_lease_attempts(&self) -> u64 {
        self.slot_lease_attempts.load(Ordering::Relaxed)
    }

    /// Waits until a call of `kind` may start for the realm, and holds a concurrency slot.
    ///
    /// # Errors
    /// [`QboError::Store`] when the database fails.
    pub async fn acquire(
        &self,
        realm: &RealmId,
        lane: Lane,
        kind: CallKind,
    ) -> Result<Permit, QboError> {
        let gate = self.gates.of(realm);
        let count = self.settings.max_concurrent;
        gate.slots_ready
            .get_or_try_init(|| qbo_limits::ensure_slots(&self.pool, realm, count))
            .await?;
        let pass = gate.enter(lane).await;
        let holder = Uuid::new_v4();
        loop {
            let start_at = self.book_start(realm, lane, kind).await?;
            let due = Instant::now();
            let (slot, contended) = self.lease(realm, holder, pass.slots()).await?;
            let late = due.elapsed();
            if !contended || late <= self.settings.request_interval / 2 {
                return Ok(Permit {
                    pool: self.pool.clone(),
                    realm: realm.clone(),
                    slot: Some(slot),
                    holder,
                    start_at: Some(start_at),
                    pass: Some(pass),
                });
            }
            // Other replicas held every row past this call's start time. Sent now, it would
            // land among the calls booked after it and could crowd a window over the limit.
            debug!(late_ms = late.as_millis() as u64, "qbo.limiter.rebook");
            qbo_limits::release_slot(&self.pool, realm, slot, holder).await?;
        }
    }

    /// Makes every replica hold off the realm for `pause` (after QBO throttled a call).
    ///
    /// # Errors
    /// [`QboError::Store`] when the database fails.
    pub async fn pause(&self, realm: &RealmId, pause: Duration) -> Result<(), QboError> {
        qbo_limits::pause_realm(&self.pool, realm, pause).await?;
        Ok(())
    }

    /// Leases a free row of `slots`, backing off while other replicas hold them all. Returns
    /// the slot and whether it had to wait.
    async fn lease(
        &self,
        realm: &RealmId,
        holder: Uuid,
        slots: Range<u16>,
    ) -> Result<(i16, bool), QboError> {
        let mut attempt = 0;
        loop {
            self.slot_lease_attempts.fetch_add(1, Ordering::Relaxed);
            let lease = self.settings.lease;
            if let Some(slot) =
                qbo_limits::lease_slot(&self.pool, realm, holder, slots.clone(), lease).await?
            {
                return Ok((slot, attempt > 0));
            }
            tokio::time::sleep(lease_backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Books the call's start time (and a batch start first for a batch) and sleeps until it.
    async fn book_start(
        &self,
        realm: &RealmId,
        lane: Lane,
        kind: CallKind,
    ) -> Result<DateTime<Utc>, QboError> {
        if kind == CallKind::Batch {
            self.wait_for_start(realm, lane, RateBucket::Batch).await?;
        }
        self.wait_for_start(realm, lane, RateBucket::Request).await
    }

    async fn wait_for_start(
        &self,
        realm: &RealmId,
        lane: Lane,
        bucket: RateBucket,
    ) -> Result<DateTime<Utc>, QboError> {
        let interval = match bucket {
            RateBucket::Request => self.settings.request_interval,
            RateBucket::Batch => self.settings.batch_interval,
        };
        let booking = match lane {
            Lane::Interactive => Booking::Interactive {
                horizon: Duration::from_secs(3600),
            },
            Lane::Background => Booking::Background {
                horizon: interval * self.settings.background_depth,
                turn: self.settings.background_turn,
            },
        };
        loop {
            match qbo_limits::reserve_start(&self.pool, realm, bucket, interval, booking).await? {
                Reservation::Granted { wait, start_at } => {
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    return Ok(start_at);
                }
                Reservation::Deferred { retry_in } => {
                    debug!(?bucket, ?retry_in, "qbo.limiter.deferred");
                    tokio::time::sleep(retry_in.max(Duration::from_millis(2))).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_shorter_than_the_call_timeout_and_a_margin_is_raised() {
        let secs = Duration::from_secs;
        assert_eq!(
            lease_outliving(secs(45), secs(30)),
            secs(45),
            "the defaults"
        );
        assert_eq!(lease_outliving(secs(60), secs(30)), secs(60));
        assert_eq!(lease_outliving(secs(40), secs(30)), secs(45));
        assert_eq!(
            lease_outliving(secs(2), Duration::from_millis(1300)),
            secs(2)
        );
        // A short timeout still gets the least margin.
        assert_eq!(
            lease_outliving(Duration::from_millis(100), Duration::from_millis(100)),
            Duration::from_millis(350)
        );
    }

    #[test]
    fn lease_backoff_grows_with_jitter_up_to_its_cap() {
        for attempt in 0..20 {
            let step = (LEASE_BACKOFF_FIRST * 2u32.pow(attempt.min(8))).min(LEASE_BACKOFF_CAP);
            let pause = lease_backoff(attempt);
            assert!(pause >= step / 2 && pause <= step, "{attempt}: {pause:?}");
        }
        assert!(lease_backoff(30) <= LEASE_BACKOFF_CAP);
    }

    #[test]
    fn settings_keep_a_shared_slot_and_raise_a_short_lease() {
        let mut config = crate::quickbooks::settings::default_qbo_config();
        config.qbo_max_concurrent = 2;
        config.qbo_interactive_slots = 5;
        config.qbo_timeout = Duration::from_secs(10);
        config.qbo_slot_lease = Duration::from_secs(3);
        let settings = LimiterSettings::from_config(&config);
        assert_eq!(settings.interactive_slots, 1);
        assert_eq!(settings.slot_lease(), Duration::from_secs(15));
    }
}
