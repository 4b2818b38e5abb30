//! The automatic sync: every connected tenant gets an incremental run every
//! `QBO_SYNC_AUTO_SYNC_INTERVAL`, so customers created twice meet even when nobody presses
//! "Sync now". Every replica runs the loop; the claim in `claim_due_auto_syncs` books each
//! tenant's next run in the statement that finds it due, so each tenant is scheduled once
//! across replicas, and a tenant whose last run is still active gets none (no pile-up).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Syncs;
use crate::error::error_chain;

/// How often a replica looks for due tenants, at most.
const MAX_TICK: Duration = Duration::from_secs(30);

/// Runs until `stop`: every `interval / 10` (at most every 30 s, at least every second)
/// queues the due automatic runs (none when `interval` is zero), recomputes matching keys an
/// older normalizer stored, and ends the runs whose job is gone.
pub async fn run_schedule(syncs: Syncs, interval: Duration, stop: CancellationToken) {
    let tick = if interval.is_zero() {
        MAX_TICK
    } else {
        (interval / 10).clamp(Duration::from_secs(1), MAX_TICK)
    };
    loop {
        if !interval.is_zero() {
            match syncs.schedule_due(interval).await {
                Ok(queued) if !queued.is_empty() => {
                    tracing::info!(runs = queued.len(), "automatic sync runs queued");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %error_chain(&e), "automatic sync schedule failed");
                }
            }
        }
        match syncs.refresh_stale_keys().await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "matching keys of an older normalizer recomputed"),
            Err(e) => tracing::warn!(error = %error_chain(&e), "recomputing matching keys failed"),
        }
        match syncs.end_orphaned_runs().await {
            Ok(0) => {}
            Ok(ended) => tracing::warn!(ended, "sync runs whose job is gone ended as failed"),
            Err(e) => tracing::warn!(error = %error_chain(&e), "orphaned sync run sweep failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(tick) => {}
        }
    }
}
