//! Shared state of the per-realm QBO limits: GCRA pacing rows and leased concurrency slots.
//! Every replica goes through these rows, so the limits hold for the service as a whole, and
//! all times come from the database clock so replicas with skewed clocks still agree.

use std::{ops::Range, time::Duration};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tracing::instrument;
use uuid::Uuid;

use super::StoreError;
use crate::domain::RealmId;

/// Which pacing row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateBucket {
    /// Every API call (QBO: 500 per minute, batch calls included).
    Request,
    /// Batch calls (QBO: 40 per minute).
    Batch,
}

impl RateBucket {
    fn as_db(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Batch => "batch",
        }
    }
}

/// The result of asking the pacing row for a start time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reservation {
    /// A start time was taken: the call may start after `wait`.
    Granted {
        /// How long to wait before sending.
        wait: Duration,
        /// The start time taken, on the database's clock. Every replica books on this one
        /// clock, so these times are the ground truth of the pacing.
        start_at: DateTime<Utc>,
    },
    /// The next free start time is further than the caller's horizon; nothing was taken.
    Deferred {
        /// How long until asking again makes sense.
        retry_in: Duration,
    },
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn from_secs(secs: f64) -> Duration {
    Duration::from_secs_f64(secs.max(0.0))
}

/// Who books a start time, and how far ahead it may book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Booking {
    /// Interactive work: books up to `horizon` ahead, and counts towards background work's
    /// turn.
    Interactive {
        /// How far ahead it may book.
        horizon: Duration,
    },
    /// Background work: books up to `horizon` ahead, or further once `turn` interactive
    /// starts were booked in a row since the last background one (`0`: never further).
    Background {
        /// How far ahead it may book.
        horizon: Duration,
        /// Interactive starts in a row after which it may book however far ahead.
        turn: u32,
    },
}

impl Booking {
    fn horizon(self) -> Duration {
        match self {
            Self::Interactive { horizon } | Self::Background { horizon, .. } => horizon,
        }
    }
}

/// Takes the next start time of `bucket` for the realm, spaced `interval` after the previous
/// one, unless it lies beyond what `booking` may book (then nothing is taken). The row is
/// locked for the one statement, so concurrent callers on any replica get distinct start
/// times.
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.qbo_limits.reserve", skip_all, err(level = "debug"))]
pub async fn reserve_start(
    pool: &PgPool,
    realm: &RealmId,
    bucket: RateBucket,
    interval: Duration,
    booking: Booking,
) -> Result<Reservation, StoreError> {
    let horizon = booking.horizon();
    let (interactive, turn) = match booking {
        Booking::Interactive { .. } => (true, 0),
        Booking::Background { turn, .. } => (false, i32::try_from(turn).unwrap_or(i32::MAX)),
    };
    loop {
        // A single UPDATE: under READ COMMITTED a waiting UPDATE re-evaluates its WHERE and SET
        // on the row version the previous holder committed, so no two callers get one start.
        let taken: Option<(f64, DateTime<Utc>)> = sqlx::query_as(
            "UPDATE qbo_rate_limits
             SET tat = GREATEST(tat, clock_timestamp()) + $3 * interval '1 microsecond',
                 interactive_run = CASE WHEN $5 THEN LEAST(interactive_run + 1, 1000000) ELSE 0 END
             WHERE realm_id = $1 AND bucket = $2
               AND (tat <= clock_timestamp() + $4 * interval '1 microsecond'
                    OR (NOT $5 AND $6 > 0 AND interactive_run >= $6))
             RETURNING EXTRACT(EPOCH FROM tat - $3 * interval '1 microsecond' - clock_timestamp())::float8,
                       tat - $3 * interval '1 microsecond'",
        )
        .bind(realm.as_str())
        .bind(bucket.as_db())
        .bind(micros(interval))
        .bind(micros(horizon))
        .bind(interactive)
        .bind(turn)
        .fetch_optional(pool)
        .await?;
        if let Some((wait, start_at)) = taken {
            return Ok(Reservation::Granted {
                wait: from_secs(wait),
                start_at,
            });
        }
        let ahead: Option<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM tat - clock_timestamp())::float8
             FROM qbo_rate_limits WHERE realm_id = $1 AND bucket = $2",
        )
        .bind(realm.as_str())
        .bind(bucket.as_db())
        .fetch_optional(pool)
        .await?;
        match ahead {
            // Booked beyond the horizon; it may have moved since, so ask again after the gap,
            // or sooner when the turn may come first (after `turn` interactive starts).
            Some(ahead) if from_secs(ahead) > horizon => {
                let gap = from_secs(ahead).saturating_sub(horizon);
                let turn_in = interval.saturating_mul(u32::try_from(turn).unwrap_or(0));
                return Ok(Reservation::Deferred {
                    retry_in: if turn > 0 { gap.min(turn_in) } else { gap },
                });
            }
            Some(_) => {}
            None => {
                sqlx::query(
                    "INSERT INTO qbo_rate_limits (realm_id, bucket, tat)
                     VALUES ($1, $2, clock_timestamp()) ON CONFLICT DO NOTHING",
                )
                .bind(realm.as_str())
                .bind(bucket.as_db())
                .execute(pool)
                .await?;
            }
        }
    }
}

/// Pushes the realm's next start time to at least `pause` from now: after QBO throttled us,
/// every replica backs off, not only the one that saw the 429.
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.qbo_limits.pause", skip_all, err(level = "debug"))]
pub async fn pause_realm(
    pool: &PgPool,
    realm: &RealmId,
    pause: Duration,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE qbo_rate_limits
         SET tat = GREATEST(tat, clock_timestamp() + $2 * interval '1 microsecond')
         WHERE realm_id = $1",
    )
    .bind(realm.as_str())
    .bind(micros(pause))
    .execute(pool)
    .await?;
    Ok(())
}

/// Makes sure the realm has `count` slot rows (idempotent).
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.qbo_limits.ensure_slots", skip_all, err(level = "debug"))]
pub async fn ensure_slots(pool: &PgPool, realm: &RealmId, count: u16) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO qbo_concurrency_slots (realm_id, slot)
         SELECT $1, s FROM generate_series(0, $2 - 1) AS s ON CONFLICT DO NOTHING",
    )
    .bind(realm.as_str())
    .bind(i32::from(count))
    .execute(pool)
    .await?;
    Ok(())
}

/// Leases the lowest free slot of `slots` (a free slot is unheld or its lease ran out) until
/// `lease` from now. Returns the slot number, or `None` when all of them are busy. The caller's
/// lane decides the range: background calls never reach the last slots, which stay for
/// interactive calls.
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.qbo_limits.lease_slot", skip_all, err(level = "debug"))]
pub async fn lease_slot(
    pool: &PgPool,
    realm: &RealmId,
    holder: Uuid,
    slots: Range<u16>,
    lease: Duration,
) -> Result<Option<i16>, StoreError> {
    let slot_number = |n: u16| i16::try_from(n).unwrap_or(i16::MAX);
    let slot = sqlx::query_scalar(
        "UPDATE qbo_concurrency_slots s
         SET holder = $2, leased_until = clock_timestamp() + $5 * interval '1 microsecond'
         WHERE (s.realm_id, s.slot) = (
             SELECT realm_id, slot FROM qbo_concurrency_slots
             WHERE realm_id = $1 AND slot >= $3 AND slot < $4
               AND (holder IS NULL OR leased_until < clock_timestamp())
             ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING s.slot",
    )
    .bind(realm.as_str())
    .bind(holder)
    .bind(slot_number(slots.start))
    .bind(slot_number(slots.end))
    .bind(micros(lease))
    .fetch_optional(pool)
    .await?;
    Ok(slot)
}

/// Frees a slot, if `holder` still holds it (a lease that ran out may have been taken over).
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.qbo_limits.release_slot", skip_all, err(level = "debug"))]
pub async fn release_slot(
    pool: &PgPool,
    realm: &RealmId,
    slot: i16,
    holder: Uuid,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE qbo_concurrency_slots SET holder = NULL, leased_until = NULL
         WHERE realm_id = $1 AND slot = $2 AND holder = $3",
    )
    .bind(realm.as_str())
    .bind(slot)
    .bind(holder)
    .execute(pool)
    .await?;
    Ok(())
}

/// Counts the slots of the realm held now (for tests and metrics).
///
/// # Errors
/// [`StoreError::Database`] when the database fails.
#[instrument(name = "db.qbo_limits.held_slots", skip_all, err(level = "debug"))]
pub async fn held_slots(pool: &PgPool, realm: &RealmId) -> Result<i64, StoreError> {
    let held = sqlx::query_scalar(
        "SELECT count(*) FROM qbo_concurrency_slots
         WHERE realm_id = $1 AND holder IS NOT NULL AND leased_until >= clock_timestamp()",
    )
    .bind(realm.as_str())
    .fetch_one(pool)
    .await?;
    Ok(held)
}
