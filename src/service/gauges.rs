//! Publishes the store's figures as Prometheus gauges, read every `interval`: queue depth and
//! oldest age by job kind and state, links by method, the review backlog, connections by
//! state. Every replica publishes the same figures; alert on `max()`.

use std::{collections::HashSet, time::Duration};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::store::stats::{self, StoreFigures};

/// The job states published (the others are finished and pruned).
const JOB_STATES: [&str; 4] = ["queued", "running", "parked", "dead"];
/// The connection states.
const CONNECTION_STATES: [&str; 3] = ["connected", "needs_reauth", "disconnected"];

/// Reads and publishes until `stop`. A failed read leaves the last figures in place (the
/// health service reports the database) and is retried at the next tick.
pub async fn publish_store_gauges(pool: PgPool, interval: Duration, stop: CancellationToken) {
    let mut seen = Seen::default();
    let mut tick = tokio::time::interval(interval.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        match stats::read_figures(&pool).await {
            Ok(figures) => seen.publish(&figures),
            Err(e) => tracing::debug!(error = %e, "store figures unavailable for the metrics"),
        }
    }
}

/// Label values published before, so a kind or method that disappears reads 0, not its last
/// value.
#[derive(Default)]
struct Seen {
    kinds: HashSet<String>,
    methods: HashSet<String>,
}

impl Seen {
    fn publish(&mut self, figures: &StoreFigures) {
        self.kinds
            .extend(figures.queue.iter().map(|q| q.kind.clone()));
        for kind in &self.kinds {
            for state in JOB_STATES {
                let figure = figures
                    .queue
                    .iter()
                    .find(|q| q.kind == *kind && q.state == state);
                let (jobs, oldest) = figure.map_or((0, 0.0), |q| (q.jobs, q.oldest_seconds));
                metrics::gauge!("qbo_sync_jobs", "kind" => kind.clone(), "state" => state)
                    .set(jobs as f64);
                metrics::gauge!("qbo_sync_jobs_oldest_age_seconds", "kind" => kind.clone(), "state" => state)
                    .set(oldest);
            }
        }
        self.methods
            .extend(figures.links.iter().map(|(m, _)| m.clone()));
        for method in &self.methods {
            let count = figures
                .links
                .iter()
                .find(|(m, _)| m == method)
                .map_or(0, |(_, c)| *c);
            metrics::gauge!("qbo_sync_links", "method" => method.clone()).set(count as f64);
        }
        metrics::gauge!("qbo_sync_review_items_open").set(figures.review_open as f64);
        metrics::gauge!("qbo_sync_review_items_oldest_age_seconds")
            .set(figures.review_oldest_seconds);
        for state in CONNECTION_STATES {
            let count = figures
                .connections
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, c)| *c);
            metrics::gauge!("qbo_sync_connections", "state" => state).set(count as f64);
        }
    }
}
