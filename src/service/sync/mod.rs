//! Sync runs: "Sync now" done right. A run reads the company's QBO customers into the mirror,
//! asks the matcher about every Digit customer, and applies the plan: links the safe matches,
//! opens review items for the doubtful ones, and pushes the customers QBO does not have.
//!
//! A run is a row in `sync_runs` and a job on the queue (`sync_run`). It checkpoints after
//! every page it reads and every chunk it applies, each in the transaction of the writes it
//! covers, so a replica taking over the job of one that died goes on from the checkpoint with
//! nothing applied twice. The engine is in `run.rs`, the plan in `plan.rs`, the schedule of
//! automatic runs in `schedule.rs`.

mod merge;
mod plan;
mod run;
mod schedule;

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

pub use merge::MergeOutcome;
pub use plan::{Action, PlanContext, Planned, plan};
pub use run::{RunStep, SyncEngine, SyncRunError, SyncSettings};
pub use schedule::run_schedule;

use crate::{
    domain::TenantId,
    store::{
        self, StoreError,
        connections::ConnectionState,
        jobs::{PRIORITY_BACKGROUND, PRIORITY_INTERACTIVE},
        sync_runs::{Created, NewRun, SyncRunRow},
    },
};

/// The most planned actions a dry run keeps (its counters count them all).
pub const PLAN_CAP: usize = 10_000;

/// Full or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Read every QBO customer.
    Full,
    /// Read what changed since the last read (CDC); a full read when that cannot be done.
    Incremental,
}

impl SyncMode {
    fn as_db(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Incremental => "incremental",
        }
    }
}

/// Who asked for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A caller (TriggerSync): runs before background work.
    Api,
    /// The automatic schedule.
    Schedule,
    /// A QBO webhook.
    Webhook,
}

impl Trigger {
    fn as_db(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Schedule => "schedule",
            Self::Webhook => "webhook",
        }
    }
}

/// A request for a run.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// Full or incremental.
    pub mode: SyncMode,
    /// Only plan.
    pub dry_run: bool,
    /// Never create in QBO.
    pub link_only: bool,
    /// The same key returns the same run.
    pub idempotency_key: Option<String>,
    /// Who asks (a caller's name, `qbo-sync:schedule`, ...).
    pub requested_by: String,
    /// What started it.
    pub trigger: Trigger,
}

/// The run a trigger started or found.
#[derive(Debug, Clone)]
pub struct Triggered {
    /// The run.
    pub run: SyncRunRow,
    /// Another run of the tenant was active: that one is returned.
    pub already_running: bool,
}

/// What the sync use cases can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The tenant has no such run.
    #[error("sync run '{run_id}' not found")]
    NotFound {
        /// The run asked for.
        run_id: Uuid,
    },
    /// The tenant has no connected company.
    #[error("{message}")]
    NotConnected {
        /// Stable reason.
        reason: &'static str,
        /// What to do.
        message: String,
    },
    /// The idempotency key was used for a different request.
    #[error(
        "idempotency key '{key}' was used for another sync request (run {run_id}): use a new key"
    )]
    KeyReused {
        /// The key.
        key: String,
        /// The run made under it.
        run_id: Uuid,
    },
    /// The run has ended; it cannot be cancelled.
    #[error("sync run '{run_id}' has already ended ({state})")]
    Finished {
        /// The run.
        run_id: Uuid,
        /// How it ended.
        state: String,
    },
    /// The store failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The sync use cases the gRPC handlers, the webhook handler and the schedule call.
#[derive(Debug, Clone)]
pub struct Syncs {
    pool: PgPool,
}

impl Syncs {
    /// The use cases over the store. They only queue and read runs; the worker's
    /// [`SyncEngine`] runs them.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Queues a run, unless the idempotency key names one already (returned as it is now) or
    /// another run of the tenant is queued or running (returned with `already_running`).
    ///
    /// # Errors
    /// [`SyncError::NotConnected`] when the tenant's company is not connected (or must be
    /// re-authorised); [`SyncError::KeyReused`] when the key named another request;
    /// [`SyncError::Store`].
    pub async fn trigger(
        &self,
        tenant: &TenantId,
        request: &SyncRequest,
    ) -> Result<Triggered, SyncError> {
        // A replica that cannot call QBO still queues the run: one that can will run it.
        self.check_connected(tenant).await?;
        let priority = match request.trigger {
            Trigger::Api => PRIORITY_INTERACTIVE,
            Trigger::Schedule | Trigger::Webhook => PRIORITY_BACKGROUND,
        };
        let new = NewRun {
            mode: request.mode.as_db(),
            dry_run: request.dry_run,
            link_only: request.link_only,
            idempotency_key: request.idempotency_key.as_deref(),
            requested_by: &request.requested_by,
            trigger: request.trigger.as_db(),
            priority,
        };
        match store::sync_runs::create_run(&self.pool, tenant, &new).await? {
            Created::New(run) => {
                tracing::info!(tenant = %tenant, run_id = %run.id, mode = %run.mode,
                    dry_run = run.dry_run, trigger = %run.trigger, "sync run queued");
                Ok(Triggered {
                    run,
                    already_running: false,
                })
            }
            Created::SameKey(run) => {
                let same = run.mode == new.mode
                    && run.dry_run == new.dry_run
                    && run.link_only == new.link_only;
                if !same {
                    return Err(SyncError::KeyReused {
                        key: request.idempotency_key.clone().unwrap_or_default(),
                        run_id: run.id,
                    });
                }
                Ok(Triggered {
                    run,
                    already_running: false,
                })
            }
            Created::AlreadyRunning(run) => Ok(Triggered {
                run,
                already_running: true,
            }),
        }
    }

    async fn check_connected(&self, tenant: &TenantId) -> Result<(), SyncError> {
        let connection = match store::connections::load_connection(&self.pool, tenant).await {
            Ok(c) => Some(c),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        match connection.map(|c| c.state) {
            Some(ConnectionState::Connected) => Ok(()),
            Some(ConnectionState::NeedsReauth) => Err(SyncError::NotConnected {
                reason: "CONNECTION_NEEDS_REAUTH",
                message: "QuickBooks refused the company's refresh token: a person must \
                          connect the company again (ConnectCompany) before it can sync"
                    .into(),
            }),
            Some(ConnectionState::Disconnected) | None => Err(SyncError::NotConnected {
                reason: "COMPANY_NOT_CONNECTED",
                message: format!(
                    "tenant '{tenant}' has no connected QuickBooks company: connect one \
                     (ConnectCompany) first"
                ),
            }),
        }
    }

    /// One run of the tenant.
    ///
    /// # Errors
    /// [`SyncError::NotFound`]; [`SyncError::Store`].
    pub async fn get(&self, tenant: &TenantId, run_id: Uuid) -> Result<SyncRunRow, SyncError> {
        store::sync_runs::get_run(&self.pool, tenant, run_id)
            .await?
            .ok_or(SyncError::NotFound { run_id })
    }

    /// Asks a run to stop: a queued run ends at once; a running one at its next page or chunk
    /// boundary (each chunk commits whole, so no customer is left half-applied). Returns the
    /// run as it is now.
    ///
    /// # Errors
    /// [`SyncError::NotFound`]; [`SyncError::Finished`] when it ended before; [`SyncError::Store`].
    pub async fn cancel(&self, tenant: &TenantId, run_id: Uuid) -> Result<SyncRunRow, SyncError> {
        let before = self.get(tenant, run_id).await?;
        if before.is_finished() {
            return Err(SyncError::Finished {
                run_id,
                state: before.state,
            });
        }
        let run = store::sync_runs::request_cancel(&self.pool, tenant, run_id)
            .await?
            .ok_or(SyncError::NotFound { run_id })?;
        tracing::info!(tenant = %tenant, run_id = %run_id, state = %run.state, "sync run cancel requested");
        Ok(run)
    }

    /// Follows a run: yields it now and after every change, and ends after its final state.
    /// Changes are seen by polling the row every `every` (one indexed read).
    pub fn watch(
        &self,
        tenant: TenantId,
        run_id: Uuid,
        every: Duration,
    ) -> impl futures::Stream<Item = Result<SyncRunRow, SyncError>> + Send + 'static {
        struct Watch {
            pool: PgPool,
            tenant: TenantId,
            last: Option<SyncRunRow>,
            done: bool,
        }
        let start = Watch {
            pool: self.pool.clone(),
            tenant,
            last: None,
            done: false,
        };
        futures::stream::unfold(start, move |mut w| async move {
            if w.done {
                return None;
            }
            loop {
                let run = match store::sync_runs::get_run(&w.pool, &w.tenant, run_id).await {
                    Ok(Some(run)) => run,
                    Ok(None) => {
                        w.done = true;
                        return Some((Err(SyncError::NotFound { run_id }), w));
                    }
                    Err(e) => {
                        w.done = true;
                        return Some((Err(e.into()), w));
                    }
                };
                w.done = run.is_finished();
                if w.last.as_ref() != Some(&run) {
                    w.last = Some(run.clone());
                    return Some((Ok(run), w));
                }
                tokio::time::sleep(every).await;
            }
        })
    }

    /// Queues an incremental run for every connected tenant whose automatic sync is due
    /// (claimed once across replicas); a tenant with an active run is skipped. Returns the
    /// runs queued.
    ///
    /// # Errors
    /// [`SyncError::Store`].
    pub async fn schedule_due(&self, interval: Duration) -> Result<Vec<Uuid>, SyncError> {
        let due = store::connections::claim_due_auto_syncs(&self.pool, interval, 500).await?;
        let mut queued = Vec::new();
        for tenant in due {
            let Ok(tenant) = TenantId::parse(tenant) else {
                continue;
            };
            let request = SyncRequest {
                mode: SyncMode::Incremental,
                dry_run: false,
                link_only: false,
                idempotency_key: None,
                requested_by: "qbo-sync:schedule".into(),
                trigger: Trigger::Schedule,
            };
            match self.trigger(&tenant, &request).await {
                Ok(t) if !t.already_running => queued.push(t.run.id),
                Ok(_) | Err(SyncError::NotConnected { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(queued)
    }

    /// Ends, as failed, the active runs whose job is gone (dead, cancelled or deleted), so no
    /// run blocks its tenant forever. Returns how many.
    ///
    /// # Errors
    /// [`SyncError::Store`].
    pub async fn end_orphaned_runs(&self) -> Result<u64, SyncError> {
        Ok(store::sync_runs::fail_orphaned_runs(&self.pool).await?)
    }

    /// Recomputes a few batches of matching keys an older normalizer stored (see
    /// [`super::keys`]); returns how many rows changed.
    ///
    /// # Errors
    /// [`SyncError::Store`].
    pub async fn refresh_stale_keys(&self) -> Result<u64, SyncError> {
        Ok(super::keys::recompute_stale_keys(&self.pool, 10).await?)
    }
}
