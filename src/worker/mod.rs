//! The worker pool: runs the jobs of the PostgreSQL queue (`store::jobs`) on every replica.
//!
//! Each replica runs `QBO_SYNC_WORKERS` worker loops. A loop claims the next job in fair order,
//! claims more jobs of the same tenant and kind when the kind's handler serves them together
//! (pushes go to QBO in batches of up to 30), runs the handler, and records each job's
//! outcome. Idle loops wait for a LISTEN/NOTIFY wake-up or the poll interval, whichever comes
//! first. Heartbeats extend the leases of running jobs; a sweep puts back the jobs of replicas
//! that died. On shutdown the loops stop claiming, running jobs get the grace period, and what
//! is still running then is released at once for another replica.
//!
//! Handlers are use cases (`crate::service`); this module knows jobs, not customers.

mod handlers;
mod pool;

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::future::BoxFuture;

pub use handlers::{outcome_of, qbo_handlers};
pub use pool::{RunReport, Worker, WorkerSettings};

use crate::{domain::TenantId, store::jobs::ClaimedJob};

/// What became of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Finished.
    Done,
    /// Failed this attempt; run again after a backoff (dead once the attempts are spent).
    Retry {
        /// Why, for the job's `last_error` (never customer data).
        error: String,
    },
    /// Failed for good: dead now, keeping the error for an operator.
    Dead {
        /// Why.
        error: String,
    },
    /// QBO throttled it: run again after `retry_in` without spending an attempt.
    Throttled {
        /// When to try again.
        retry_in: Duration,
        /// Why.
        why: String,
    },
    /// Not finished, and nothing to do before `retry_in` (waiting on other jobs): run again
    /// then, without spending an attempt.
    Later {
        /// When to look again.
        retry_in: Duration,
        /// Why.
        why: String,
    },
    /// The tenant's company is not connected: park this and the tenant's other QBO jobs until
    /// it is connected again.
    Parked {
        /// Why.
        why: String,
    },
}

impl JobOutcome {
    /// The metrics label.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Retry { .. } => "retry",
            Self::Dead { .. } => "dead",
            Self::Throttled { .. } => "throttled",
            Self::Parked { .. } => "parked",
            Self::Later { .. } => "later",
        }
    }
}

/// Runs the jobs of one kind.
pub trait JobHandler: Send + Sync + 'static {
    /// How many jobs of one tenant the handler takes at once (1: one at a time).
    fn group_size(&self) -> usize {
        1
    }

    /// Runs `jobs` (all of `tenant`, all of this kind) and returns one outcome per job, in order.
    fn run<'a>(
        &'a self,
        tenant: &'a TenantId,
        jobs: &'a [ClaimedJob],
    ) -> BoxFuture<'a, Vec<JobOutcome>>;
}

/// The handlers of the job kinds this replica runs.
#[derive(Clone, Default)]
pub struct Handlers {
    by_kind: HashMap<String, Arc<dyn JobHandler>>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handlers")
            .field("kinds", &self.kinds())
            .finish()
    }
}

impl Handlers {
    /// No handlers.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the handler of `kind` (replacing any earlier one).
    #[must_use]
    pub fn with(mut self, kind: &str, handler: Arc<dyn JobHandler>) -> Self {
        self.by_kind.insert(kind.to_owned(), handler);
        self
    }

    /// The kinds handled, sorted.
    #[must_use]
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.by_kind.keys().cloned().collect();
        kinds.sort();
        kinds
    }

    fn get(&self, kind: &str) -> Option<&Arc<dyn JobHandler>> {
        self.by_kind.get(kind)
    }
}
