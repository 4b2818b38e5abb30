//! Per-realm QBO limits shared by every replica through PostgreSQL.
//!
//! * **Rate**: a GCRA row per realm hands out start times spaced `window / allowed` apart, where
//!   `allowed` is the limit minus a headroom (percent, plus one call for the window edge and
//!   one for network jitter). Spacing rather than bursting keeps *every* sliding window under
//!   the limit, which is what QBO enforces. Batch calls take a start time from a second row too.
//! * **Concurrency**: leased slot rows; a lease runs out on its own, so a replica that died while
//!   holding a slot cannot block the realm for longer than the lease.
//! * **Priority lanes**: background work may book at most a few start times ahead and may not
//!   use the last `interactive_slots` slots; interactive work books freely. So an interactive
//!   call waits behind at most a few background calls, however deep the background backlog.

use std::{collections::HashSet, sync::Mutex, time::Duration};

use chrono::{DateTime, Utc};
use rand::Rng;
use sqlx::PgPool;
use tracing::debug;
use uuid::Uuid;

use super::QboError;
use crate::{
    config::QboConfig,
    domain::RealmId,
    store::qbo_limits::{self, RateBucket, Reservation},
};

/// Who is asking: interactive work goes ahead of background work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A preflight repair, a single push: a person or an RPC is waiting.
    Interactive,
    /// Full-sync pages, bulk pushes.
    Background,
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
}

impl LimiterSettings {
    /// Derives the pacing intervals from the configured limits and headroom.
    #[must_use]
    pub fn from_config(config: &QboConfig) -> Self {
        let interval = |limit: u32| {
            let kept =
                u64::from(limit) * u64::from(100 - config.qbo_rate_headroom_percent.min(90)) / 100;
            // One call for the window edge, one for jitter between booking and arrival.
            let allowed = kept.saturating_sub(2).max(1);
            config.qbo_rate_window / u32::try_from(allowed).unwrap_or(u32::MAX)
        };
        Self {
            request_interval: interval(config.qbo_requests_per_window),
            batch_interval: interval(config.qbo_batches_per_window),
            max_concurrent: config.qbo_max_concurrent.max(1),
            interactive_slots: config
                .qbo_interactive_slots
                .min(config.qbo_max_concurrent.saturating_sub(1)),
            lease: config.qbo_slot_lease,
            background_depth: config.qbo_background_depth.max(1),
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
}

/// The shared limiter; cheap to clone through `Arc`.
#[derive(Debug)]
pub struct Limiter {
    pool: PgPool,
    settings: LimiterSettings,
    realms_with_slots: Mutex<HashSet<RealmId>>,
}

/// A held concurrency slot. Release it with [`Permit::release`]; a permit dropped without
/// that is released by a spawned task (and in the worst case by its lease running out).
#[derive(Debug)]
pub struct Permit {
    pool: PgPool,
    realm: RealmId,
    slot: Option<i16>,
    holder: Uuid,
    start_at: Option<DateTime<Utc>>,
}

impl Permit {
    /// The start time this call booked, on the database's clock (the call was held until
    /// then). Shared by every replica, so it is what the pacing guarantees.
    #[must_use]
    pub fn start_at(&self) -> Option<DateTime<Utc>> {
        self.start_at
    }

    /// Frees the slot.
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
            handle.spawn(async move {
                let _ = qbo_limits::release_slot(&pool, &realm, slot, holder).await;
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
            settings,
            realms_with_slots: Mutex::new(HashSet::new()),
        }
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> &LimiterSettings {
        &self.settings
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
        self.ensure_slots(realm).await?;
        let mut permit = self.lease(realm, lane).await?;
        if kind == CallKind::Batch {
            self.wait_for_start(realm, lane, RateBucket::Batch).await?;
        }
        permit.start_at = Some(
            self.wait_for_start(realm, lane, RateBucket::Request)
                .await?,
        );
        Ok(permit)
    }

    /// Makes every replica hold off the realm for `pause` (after QBO throttled a call).
    ///
    /// # Errors
    /// [`QboError::Store`] when the database fails.
    pub async fn pause(&self, realm: &RealmId, pause: Duration) -> Result<(), QboError> {
        qbo_limits::pause_realm(&self.pool, realm, pause).await?;
        Ok(())
    }

    async fn ensure_slots(&self, realm: &RealmId) -> Result<(), QboError> {
        let known = self
            .realms_with_slots
            .lock()
            .map(|set| set.contains(realm))
            .unwrap_or(false);
        if !known {
            qbo_limits::ensure_slots(&self.pool, realm, self.settings.max_concurrent).await?;
            if let Ok(mut set) = self.realms_with_slots.lock() {
                set.insert(realm.clone());
            }
        }
        Ok(())
    }

    async fn lease(&self, realm: &RealmId, lane: Lane) -> Result<Permit, QboError> {
        let s = &self.settings;
        let (usable, from_top) = match lane {
            Lane::Interactive => (s.max_concurrent, true),
            Lane::Background => (s.max_concurrent - s.interactive_slots, false),
        };
        let holder = Uuid::new_v4();
        loop {
            if let Some(slot) =
                qbo_limits::lease_slot(&self.pool, realm, holder, usable, from_top, s.lease).await?
            {
                return Ok(Permit {
                    pool: self.pool.clone(),
                    realm: realm.clone(),
                    slot: Some(slot),
                    holder,
                    start_at: None,
                });
            }
            // Jittered so replicas waiting for the same realm do not poll in lockstep.
            let nap = rand::rng().random_range(5..25);
            tokio::time::sleep(Duration::from_millis(nap)).await;
        }
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
        let horizon = match lane {
            Lane::Interactive => Duration::from_secs(3600),
            Lane::Background => interval * self.settings.background_depth,
        };
        loop {
            match qbo_limits::reserve_start(&self.pool, realm, bucket, interval, horizon).await? {
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
