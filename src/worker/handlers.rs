//! The job kinds this service runs, each a thin adapter from a job to a use case.

use std::{sync::Arc, time::Duration};

use futures::{FutureExt, future::BoxFuture};

use super::{Handlers, JobHandler, JobOutcome};
use crate::{
    domain::{DigitCustomerId, TenantId},
    quickbooks::{Lane, QboError},
    service::push::{PUSH_CUSTOMER_JOB, PushError, Pusher, UPDATE_CUSTOMER_JOB},
    store::jobs::{ClaimedJob, PRIORITY_INTERACTIVE},
};

/// When a throttled job runs again if QBO named no time.
const THROTTLE_RETRY: Duration = Duration::from_secs(30);
/// When a bulk push looks again whether the mirror read it waits for is done.
const MIRROR_WAIT: Duration = Duration::from_secs(2);
/// When a job runs again on a replica that cannot call QBO (another one may).
const UNCONFIGURED_RETRY: Duration = Duration::from_secs(60);

/// The handlers of the QBO jobs: pushes (in groups of `batch_size`) and updates.
#[must_use]
pub fn qbo_handlers(pusher: Pusher, batch_size: usize) -> Handlers {
    Handlers::new()
        .with(
            PUSH_CUSTOMER_JOB,
            Arc::new(PushHandler {
                pusher: pusher.clone(),
                batch_size: batch_size.clamp(1, 30),
            }),
        )
        .with(UPDATE_CUSTOMER_JOB, Arc::new(UpdateHandler { pusher }))
}

struct PushHandler {
    pusher: Pusher,
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
            parsed
                .iter()
                .map(|id| match id {
                    None => bad_payload(),
                    Some(_) => match results.next() {
                        Some(Ok(_)) => JobOutcome::Done,
                        Some(Err(e)) => outcome_of(&e),
                        None => JobOutcome::Retry {
                            error: "the push returned too few results".into(),
                        },
                    },
                })
                .collect()
        }
        .boxed()
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
        PushError::Qbo(qbo) => match qbo {
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
        },
    }
}
