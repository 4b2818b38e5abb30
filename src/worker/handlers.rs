//! The job kinds this service runs, each a thin adapter from a job to a use case.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::{FutureExt, future::BoxFuture};
use uuid::Uuid;

use super::{Handlers, JobHandler, JobOutcome};
use crate::{
    domain::{DigitCustomerId, TenantId},
    quickbooks::{Lane, QboError},
    service::{
        push::{PUSH_CUSTOMER_JOB, PushError, Pusher, UPDATE_CUSTOMER_JOB},
        sync::{RunStep, SyncEngine, SyncRunError},
    },
    store::{
        jobs::{ClaimedJob, PRIORITY_INTERACTIVE},
        sync_runs::{Counts, SYNC_RUN_JOB},
    },
};

/// When a throttled job runs again if QBO named no time.
const THROTTLE_RETRY: Duration = Duration::from_secs(30);
/// When a bulk push looks again whether the mirror read it waits for is done.
const MIRROR_WAIT: Duration = Duration::from_secs(2);
/// When a job runs again on a replica that cannot call QBO (another one may).
const UNCONFIGURED_RETRY: Duration = Duration::from_secs(60);

/// The handlers of the QBO jobs: pushes (in groups of `batch_size`), updates and sync runs.
#[must_use]
pub fn qbo_handlers(pusher: Pusher, engine: SyncEngine, batch_size: usize) -> Handlers {
    Handlers::new()
        .with(
            PUSH_CUSTOMER_JOB,
            Arc::new(PushHandler {
                pusher: pusher.clone(),
                engine: engine.clone(),
                batch_size: batch_size.clamp(1, 30),
            }),
        )
        .with(UPDATE_CUSTOMER_JOB, Arc::new(UpdateHandler { pusher }))
        .with(SYNC_RUN_JOB, Arc::new(SyncRunHandler { engine }))
}

struct PushHandler {
    pusher: Pusher,
    engine: SyncEngine,
    batch_size: usize,
}

impl JobHandler for PushHandler {
    fn group_size(&self) -> usize {
        self.batch_size
    }

    fn run<'a>(
        &'a self,
        tenant: &'a TenantId,
        jobs: &'a [ClaimedJob],
    ) -> BoxFuture<'a, Vec<JobOutcome>> {
        async move {
            let parsed: Vec<Option<DigitCustomerId>> = jobs.iter().map(customer_of).collect();
            let ids: Vec<DigitCustomerId> = parsed.iter().flatten().cloned().collect();
            let mut results = self
                .pusher
                .push(tenant, &ids, lane_of(&jobs[0]))
                .await
                .into_iter();
            let mut runs: HashMap<Uuid, Counts> = HashMap::new();
            let outcomes: Vec<JobOutcome> = jobs
                .iter()
                .zip(&parsed)
                .map(|(job, id)| {
                    let (outcome, counts) = match id {
                        None => (bad_payload(), SyncEngine::push_counts(Err(()))),
                        Some(_) => match results.next() {
                            Some(Ok(pushed)) => {
                                (JobOutcome::Done, SyncEngine::push_counts(Ok(&pushed)))
                            }
                            Some(Err(e)) => (outcome_of(&e), SyncEngine::push_counts(Err(()))),
                            None => (
                                JobOutcome::Retry {
                                    error: "the push returned too few results".into(),
                                },
                                Counts::default(),
                            ),
                        },
                    };
                    // Only what is final counts: a job that runs again is counted then.
                    let last = matches!(outcome, JobOutcome::Done | JobOutcome::Dead { .. })
                        || (matches!(outcome, JobOutcome::Retry { .. }) && job.is_last_attempt());
                    if let Some(run) = run_of(job).filter(|_| last) {
                        *runs.entry(run).or_default() += counts;
                    }
                    outcome
                })
                .collect();
            for (run, counts) in runs {
                if let Err(e) = self.engine.count_pushes(run, counts).await {
                    tracing::warn!(run_id = %run, error = %crate::error::error_chain(&e),
                        "a sync run's push counters could not be updated");
                }
            }
            outcomes
        }
        .boxed()
    }
}

/// The sync run of a job: the run a `sync_run` job runs, or the run that queued a push.
pub(super) fn run_of(job: &ClaimedJob) -> Option<Uuid> {
    job.payload
        .get("run_id")
        .and_then(serde_json::Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// Runs a sync run from its checkpoint. Throttling reschedules it without spending an
/// attempt; a connection that needs a person fails it at once and parks the tenant's other
/// QBO jobs; other errors retry it from its checkpoint, and fail it on the last attempt.
struct SyncRunHandler {
    engine: SyncEngine,
}

impl JobHandler for SyncRunHandler {
    fn run<'a>(
        &'a self,
        _tenant: &'a TenantId,
        jobs: &'a [ClaimedJob],
    ) -> BoxFuture<'a, Vec<JobOutcome>> {
        async move {
            let mut outcomes = Vec::with_capacity(jobs.len());
            for job in jobs {
                outcomes.push(self.run_one(job).await);
            }
            outcomes
        }
        .boxed()
    }
}

impl SyncRunHandler {
    async fn run_one(&self, job: &ClaimedJob) -> JobOutcome {
        let Some(run_id) = run_of(job) else {
            return JobOutcome::Dead {
                error: "the job's payload has no valid run_id".into(),
            };
        };
        let error = match self.engine.run(run_id).await {
            Ok(RunStep::Finished) => return JobOutcome::Done,
            Ok(RunStep::WaitForPushes(after)) => {
                return JobOutcome::Later {
                    retry_in: after,
                    why: "waiting for the run's pushes".into(),
                };
            }
            Err(e) => e,
        };
        let text = crate::error::error_chain(&error);
        let outcome = match &error {
            SyncRunError::Qbo(QboError::NeedsReauth | QboError::NotConnected) => {
                let message = format!(
                    "the QuickBooks connection needs a person: connect the company again \
                     (ConnectCompany), then sync again ({text})"
                );
                let failed = self.engine.fail(run_id, &message).await;
                let parked = self.engine.park_tenant(&job.tenant_id, &text).await;
                if let Err(e) = failed.and(parked.map(|_| ())) {
                    return JobOutcome::Retry {
                        error: crate::error::error_chain(&e),
                    };
                }
                return JobOutcome::Done;
            }
            SyncRunError::Qbo(qbo) => outcome_of_qbo(qbo, text.clone()),
            SyncRunError::Unconfigured(_) => JobOutcome::Throttled {
                retry_in: UNCONFIGURED_RETRY,
                why: text.clone(),
            },
            SyncRunError::Store(_) | SyncRunError::Matcher(_) => JobOutcome::Retry {
                error: text.clone(),
            },
        };
        // A run whose job ends now ends with it, failed, rather than at the orphan sweep.
        let ends = match &outcome {
            JobOutcome::Dead { .. } => true,
            JobOutcome::Retry { .. } => job.is_last_attempt(),
            _ => false,
        };
        if ends {
            let message = format!("the run failed (attempt {}): {text}", job.attempts);
            if let Err(e) = self.engine.fail(run_id, &message).await {
                return JobOutcome::Retry {
                    error: crate::error::error_chain(&e),
                };
            }
            return JobOutcome::Dead { error: text };
        }
        outcome
    }
}

struct UpdateHandler {
    pusher: Pusher,
}

impl JobHandler for UpdateHandler {
    fn run<'a>(
        &'a self,
        tenant: &'a TenantId,
        jobs: &'a [ClaimedJob],
    ) -> BoxFuture<'a, Vec<JobOutcome>> {
        async move {
            let mut outcomes = Vec::with_capacity(jobs.len());
            for job in jobs {
                outcomes.push(match customer_of(job) {
                    None => bad_payload(),
                    Some(id) => match self.pusher.update(tenant, &id, lane_of(job)).await {
                        Ok(_) => JobOutcome::Done,
                        Err(e) => outcome_of(&e),
                    },
                });
            }
            outcomes
        }
        .boxed()
    }
}

fn customer_of(job: &ClaimedJob) -> Option<DigitCustomerId> {
    job.payload
        .get("digit_customer_id")
        .and_then(serde_json::Value::as_str)
        .and_then(|id| DigitCustomerId::parse(id).ok())
}

fn lane_of(job: &ClaimedJob) -> Lane {
    if job.priority <= PRIORITY_INTERACTIVE {
        Lane::Interactive
    } else {
        Lane::Background
    }
}

fn bad_payload() -> JobOutcome {
    JobOutcome::Dead {
        error: "the job's payload has no valid digit_customer_id".into(),
    }
}

/// What a failed push means for its job: throttling and outages never spend the job's life
/// away, a dead connection parks the tenant, a request QBO refuses for good is dead.
#[must_use]
pub fn outcome_of(error: &PushError) -> JobOutcome {
    let text = crate::error::error_chain(error);
    match error {
        PushError::Unconfigured(_) => JobOutcome::Throttled {
            retry_in: UNCONFIGURED_RETRY,
            why: text,
        },
        PushError::Store(_) => JobOutcome::Retry { error: text },
        PushError::MirrorBusy => JobOutcome::Throttled {
            retry_in: MIRROR_WAIT,
            why: text,
        },
        PushError::Qbo(qbo) => outcome_of_qbo(qbo, text),
    }
}

/// What a failed QBO call means for its job: throttling and outages reschedule it without
/// spending an attempt, a connection that needs a person parks the tenant, a request QBO
/// refuses for good is dead, anything else is retried with backoff.
fn outcome_of_qbo(qbo: &QboError, text: String) -> JobOutcome {
    match qbo {
        QboError::Throttled { retry_after } => JobOutcome::Throttled {
            retry_in: retry_after.unwrap_or(THROTTLE_RETRY),
            why: text,
        },
        e if e.is_throttle_like() => JobOutcome::Throttled {
            retry_in: THROTTLE_RETRY,
            why: text,
        },
        QboError::NeedsReauth | QboError::NotConnected => JobOutcome::Parked { why: text },
        QboError::ValidationFault { .. }
        | QboError::Forbidden
        | QboError::Decode(_)
        | QboError::DuplicateName { .. } => JobOutcome::Dead { error: text },
        _ => JobOutcome::Retry { error: text },
    }
}
