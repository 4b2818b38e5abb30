//! Runs one sync run, phase by phase, from its checkpoint:
//! 1. **read**: QBO's customers into the mirror, page by page (a few pages in flight while
//!    the previous one is written), each page and the run's checkpoint in one transaction;
//!    then the mirrored customers QBO did not return are marked missing. An incremental run
//!    reads QBO's changes (CDC) instead, and falls back to the full read when it cannot.
//! 2. **apply**: the matcher decides for every Digit customer against the mirror; the plan is
//!    applied in chunks in Digit id order, each chunk (links with their audit events, review
//!    items, push jobs) and the checkpoint in one transaction.
//! 3. **push**: the run waits for the pushes it queued and counts what they did.
//!
//! A dry run does the same read and plan in memory and writes only its own row.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    PLAN_CAP,
    plan::{Action, PlanContext, Planned, plan},
};
use crate::{
    domain::{DigitCustomer, DigitCustomerId, LinkMethod, TenantId},
    matching::{self, DigitCustomerRecord, MatchContext, QboCustomerRecord},
    quickbooks::{Lane, QboClient, QboError},
    service::{
        connections::Unconfigured,
        push::{PUSH_CUSTOMER_JOB, Pushed, digit_record, link_method, mirrored, push_dedupe_key},
    },
    store::{
        self, StoreError,
        jobs::PRIORITY_BACKGROUND,
        links::{LinkInsert, NewLink},
        mirror::MirroredCustomer,
        reviews::{NewReview, ReviewKind, StoredCandidate},
        sync_runs::{Checkpoint, Counts, SyncRunRow},
    },
};

/// QBO keeps changes for CDC this long; an older watermark means a full read.
const CDC_HORIZON: chrono::TimeDelta = chrono::TimeDelta::days(30);

/// Settings of the engine.
#[derive(Debug, Clone, Copy)]
pub struct SyncSettings {
    /// Digit customers applied per transaction (and per checkpoint).
    pub apply_chunk: usize,
    /// QBO pages in flight while the previous one is written.
    pub read_ahead: usize,
    /// How often a run waiting for its pushes looks again.
    pub push_poll: Duration,
    /// How far before the watermark CDC starts (clock skew, changes committed late).
    pub cdc_overlap: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            apply_chunk: 1_000,
            read_ahead: 4,
            push_poll: Duration::from_secs(2),
            cdc_overlap: Duration::from_secs(60),
        }
    }
}

/// Where a run stands after a turn of its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStep {
    /// It has ended (or was not there to run).
    Finished,
    /// It waits for its pushes: run its job again after this long.
    WaitForPushes(Duration),
}

/// What a turn of a run can fail with; the run itself is left at its checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum SyncRunError {
    /// This replica cannot call QBO.
    #[error("QuickBooks is not configured on this replica: {}", .0.message())]
    Unconfigured(Unconfigured),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// QBO failed.
    #[error(transparent)]
    Qbo(#[from] QboError),
    /// The matcher's task failed.
    #[error("the matcher failed: {0}")]
    Matcher(String),
}

/// Whether to go on after a step.
enum Flow {
    Go,
    Stop,
}

/// Runs sync runs; the worker's `sync_run` handler calls it.
#[derive(Debug, Clone)]
pub struct SyncEngine {
    pool: PgPool,
    qbo: Result<Arc<QboClient>, Unconfigured>,
    settings: SyncSettings,
}

impl SyncEngine {
    /// The engine over the store and (when configured) the QBO client.
    #[must_use]
    pub fn new(
        pool: PgPool,
        qbo: Result<Arc<QboClient>, Unconfigured>,
        settings: SyncSettings,
    ) -> Self {
        Self {
            pool,
            qbo,
            settings,
        }
    }

    fn client(&self) -> Result<&Arc<QboClient>, SyncRunError> {
        self.qbo
            .as_ref()
            .map_err(|u| SyncRunError::Unconfigured(*u))
    }

    /// Runs (or goes on with) the run from its checkpoint.
    ///
    /// # Errors
    /// What the store or QBO fail with; the run stays at its last checkpoint.
    pub async fn run(&self, run_id: Uuid) -> Result<RunStep, SyncRunError> {
        let Some(run) = store::sync_runs::start_run(&self.pool, run_id).await? else {
            return Ok(RunStep::Finished);
        };
        if run.is_finished() {
            return Ok(RunStep::Finished);
        }
        let tenant = TenantId::parse(run.tenant_id.as_str())
            .map_err(|e| StoreError::Corrupt(format!("sync run tenant: {e}")))?;
        if run.cancel_requested {
            self.end_cancelled(&tenant, &run).await?;
            return Ok(RunStep::Finished);
        }
        if run.dry_run {
            return self.dry_run(&tenant, &run).await;
        }
        let mut cursor = run.apply_cursor.clone();
        if run.phase == "read" {
            if let Flow::Stop = self.read(&tenant, &run).await? {
                return Ok(RunStep::Finished);
            }
            cursor.clear();
        }
        if run.phase != "push"
            && let Flow::Stop = self.apply(&tenant, &run, &cursor).await?
        {
            return Ok(RunStep::Finished);
        }
        self.await_pushes(&tenant, run.id).await
    }

    /// Ends an active run as `state` and counts it in the metrics; whether it was active.
    async fn end_run(
        &self,
        run_id: Uuid,
        state: &'static str,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let ended = store::sync_runs::finish_run(&self.pool, run_id, state, error).await?;
        if let Some(run) = &ended {
            record_finished(run, state);
        }
        Ok(ended.is_some())
    }

    /// Ends the run as failed with `error` (a message for a person, no customer data) and
    /// cancels the pushes it queued that have not started.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn fail(&self, run_id: Uuid, error: &str) -> Result<(), StoreError> {
        if self.end_run(run_id, "failed", Some(error)).await? {
            tracing::warn!(run_id = %run_id, %error, "sync run failed");
        }
        Ok(())
    }

    /// Parks the tenant's queued QBO jobs (its connection needs a person).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn park_tenant(&self, tenant: &str, why: &str) -> Result<u64, StoreError> {
        store::jobs::park_tenant_jobs(&self.pool, tenant, &[], "", why).await
    }

    /// Adds what finished pushes did to the counters of the run that queued them.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn count_pushes(&self, run_id: Uuid, counts: Counts) -> Result<(), StoreError> {
        store::sync_runs::add_push_counts(&self.pool, run_id, counts).await
    }

    /// The counters one push adds to its run.
    #[must_use]
    pub fn push_counts(result: Result<&Pushed, ()>) -> Counts {
        let mut counts = Counts::default();
        match result {
            Ok(Pushed::Linked {
                method: LinkMethod::CreatedInQbo,
                ..
            }) => counts.pushed_to_qbo = 1,
            Ok(Pushed::Linked { .. }) => counts.auto_linked = 1,
            Ok(Pushed::ToReview { .. }) => counts.queued_for_review = 1,
            Ok(Pushed::AlreadyLinked | Pushed::Skipped(_)) => {}
            Err(()) => counts.errors = 1,
        }
        counts
    }

    async fn end_cancelled(&self, tenant: &TenantId, run: &SyncRunRow) -> Result<(), StoreError> {
        let dropped =
            store::sync_runs::cancel_queued_pushes(&self.pool, tenant, run.id, PUSH_CUSTOMER_JOB)
                .await?;
        self.end_run(run.id, "cancelled", None).await?;
        tracing::info!(tenant = %tenant, run_id = %run.id, pushes_dropped = dropped, "sync run cancelled");
        Ok(())
    }

    /// After a checkpoint: `None` means the run is no longer active, `Some(true)` that it was
    /// asked to stop.
    async fn go_on(
        &self,
        tenant: &TenantId,
        run: &SyncRunRow,
        asked: Option<bool>,
    ) -> Result<Flow, StoreError> {
        match asked {
            None => Ok(Flow::Stop),
            Some(true) => {
                self.end_cancelled(tenant, run).await?;
                Ok(Flow::Stop)
            }
            Some(false) => Ok(Flow::Go),
        }
    }

    async fn read(&self, tenant: &TenantId, run: &SyncRunRow) -> Result<Flow, SyncRunError> {
        let qbo = self.client()?;
        if run.mode == "incremental" {
            match self.read_changes(qbo, tenant, run).await? {
                Some(flow) => return Ok(flow),
                None => tracing::info!(tenant = %tenant, run_id = %run.id,
                    "incremental sync falls back to a full read"),
            }
        }
        let started = run.read_started_at.unwrap_or_else(Utc::now);
        let position = u32::try_from(run.read_position).unwrap_or(1);
        let mut pager = qbo
            .customer_pager(tenant, true, Lane::Background)
            .read_ahead(self.settings.read_ahead)
            .start_at(position);
        while let Some(page) = pager.next_page().await? {
            let rows: Vec<MirroredCustomer> = page.customers.iter().map(mirrored).collect();
            let next = i32::try_from(pager.position()).unwrap_or(i32::MAX);
            let counts = Counts {
                qbo_customers_read: i64::try_from(rows.len()).unwrap_or(i64::MAX),
                ..Counts::default()
            };
            let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
            store::mirror::upsert_mirrored_customers(&mut tx, tenant, &rows).await?;
            let asked =
                store::sync_runs::record_progress(&mut tx, run.id, counts, Checkpoint::Read(next))
                    .await?;
            tx.commit().await.map_err(StoreError::from)?;
            if let Flow::Stop = self.go_on(tenant, run, asked).await? {
                return Ok(Flow::Stop);
            }
        }
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let gone = store::mirror::mark_missing_before(&mut tx, tenant, started).await?;
        store::mirror::set_refreshed(&mut tx, tenant, started).await?;
        store::mirror::set_cdc_watermark(&mut tx, tenant, started).await?;
        let asked = store::sync_runs::record_progress(
            &mut tx,
            run.id,
            Counts::default(),
            Checkpoint::Apply(""),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        if gone > 0 {
            tracing::info!(tenant = %tenant, run_id = %run.id, gone, "QBO customers no longer in QuickBooks marked missing");
        }
        Ok(self.go_on(tenant, run, asked).await?)
    }

    /// Reads QBO's changes since the watermark into the mirror. `None`: a full read is needed
    /// (no watermark, one older than QBO keeps changes, or more changes than one answer holds).
    async fn read_changes(
        &self,
        qbo: &QboClient,
        tenant: &TenantId,
        run: &SyncRunRow,
    ) -> Result<Option<Flow>, SyncRunError> {
        let Some(changes) = self.changes_since_watermark(qbo, tenant).await? else {
            return Ok(None);
        };
        let (gone, present): (Vec<_>, Vec<_>) = changes.customers.iter().partition(|c| c.deleted);
        let rows: Vec<MirroredCustomer> = present.iter().map(|c| mirrored(c)).collect();
        let gone: Vec<String> = gone.iter().map(|c| c.id.clone()).collect();
        let counts = Counts {
            qbo_customers_read: i64::try_from(changes.customers.len()).unwrap_or(i64::MAX),
            ..Counts::default()
        };
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        store::mirror::upsert_mirrored_customers(&mut tx, tenant, &rows).await?;
        store::mirror::mark_missing(&mut tx, tenant, &gone).await?;
        if let Some(time) = changes.server_time {
            store::mirror::set_cdc_watermark(&mut tx, tenant, time).await?;
        }
        let asked =
            store::sync_runs::record_progress(&mut tx, run.id, counts, Checkpoint::Apply(""))
                .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Some(self.go_on(tenant, run, asked).await?))
    }

    async fn changes_since_watermark(
        &self,
        qbo: &QboClient,
        tenant: &TenantId,
    ) -> Result<Option<crate::quickbooks::CustomerChanges>, SyncRunError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let watermark = store::mirror::cdc_watermark(&mut conn, tenant).await?;
        drop(conn);
        let overlap = chrono::TimeDelta::from_std(self.settings.cdc_overlap)
            .unwrap_or(chrono::TimeDelta::zero());
        let since = match watermark {
            Some(mark) if Utc::now() - (mark - overlap) < CDC_HORIZON => mark - overlap,
            _ => return Ok(None),
        };
        let changes = qbo
            .customer_changes(tenant, since, Lane::Background)
            .await?;
        Ok((!changes.truncated).then_some(changes))
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        run: &SyncRunRow,
        cursor: &str,
    ) -> Result<Flow, SyncRunError> {
        let planned = self.plan(tenant, run.link_only, None).await?;
        let todo: Vec<&Planned> = planned
            .iter()
            .filter(|p| p.action.digit() > cursor)
            .collect();
        for chunk in todo.chunks(self.settings.apply_chunk.max(1)) {
            if let Flow::Stop = self.apply_chunk(tenant, run, chunk).await? {
                return Ok(Flow::Stop);
            }
        }
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let asked = store::sync_runs::record_progress(
            &mut conn,
            run.id,
            Counts::default(),
            Checkpoint::Push,
        )
        .await?;
        drop(conn);
        Ok(self.go_on(tenant, run, asked).await?)
    }

    /// Applies one chunk of the plan and moves the checkpoint past it, in one transaction.
    async fn apply_chunk(
        &self,
        tenant: &TenantId,
        run: &SyncRunRow,
        chunk: &[&Planned],
    ) -> Result<Flow, SyncRunError> {
        let actor = format!("qbo-sync:sync-run:{}", run.id);
        let mut counts = Counts::default();
        let mut ids: Vec<DigitCustomerId> = Vec::new();
        let mut pushes = Vec::new();
        let mut reviews = Vec::new();
        for planned in chunk {
            counts += planned.counts;
            match &planned.action {
                Action::Review {
                    digit,
                    reason,
                    candidates,
                } => reviews.push(NewReview {
                    digit: digit.clone(),
                    kind: ReviewKind::Match,
                    reason: reason.clone(),
                    candidates: candidates.clone(),
                }),
                Action::Push { digit } => {
                    let id = parse_id(digit)?;
                    pushes.push((
                        serde_json::json!({ "digit_customer_id": digit, "run_id": run.id }),
                        Some(push_dedupe_key(&id)),
                    ));
                }
                Action::Link { digit, .. } => ids.push(parse_id(digit)?),
                Action::Keep { .. } => {}
            }
        }
        // A real run counts its pushes when QBO has answered them.
        counts.pushed_to_qbo = 0;
        let links: Vec<(&Planned, NewLink<'_>)> = chunk
            .iter()
            .filter_map(|p| match &p.action {
                Action::Link {
                    digit,
                    qbo,
                    method,
                    score,
                    reasons,
                } => Some((digit, qbo, *method, *score, reasons, *p)),
                _ => None,
            })
            .zip(&ids)
            .map(|((_, qbo, method, score, reasons, p), id)| {
                (
                    p,
                    NewLink {
                        digit: id,
                        qbo,
                        method: link_method(method),
                        score,
                        reasons,
                        normalizer_version: matching::NORMALIZER_VERSION,
                        linked_by: &actor,
                        reason: "matched by a sync run",
                        run_id: Some(run.id),
                        on_behalf_of: None,
                    },
                )
            })
            .collect();
        let new_links: Vec<NewLink<'_>> = links.iter().map(|(_, l)| l.clone()).collect();

        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let answers = store::links::insert_links(&mut tx, tenant, &new_links).await?;
        let mut linked = Vec::new();
        for ((_, link), answer) in links.iter().zip(answers) {
            match answer {
                LinkInsert::Inserted => linked.push(link.digit.to_string()),
                LinkInsert::AlreadyLinked | LinkInsert::DigitLinkedElsewhere(_) => {
                    counts.auto_linked -= 1;
                    counts.already_linked += 1;
                }
                LinkInsert::QboLinkedElsewhere(other) => {
                    counts.auto_linked -= 1;
                    reviews.push(NewReview {
                        digit: link.digit.to_string(),
                        kind: ReviewKind::Match,
                        reason: format!(
                            "the QuickBooks customer that matches is linked to Digit customer \
                             {other} already"
                        ),
                        candidates: vec![StoredCandidate {
                            qbo_customer_id: link.qbo.to_owned(),
                            display_name: String::new(),
                            active: true,
                            score: link.score,
                            reasons: link.reasons.to_vec(),
                        }],
                    });
                }
            }
        }
        store::reviews::supersede_open_reviews(
            &mut tx,
            tenant,
            &linked,
            "linked automatically by a sync run",
        )
        .await?;
        let opened =
            store::reviews::open_review_items(&mut tx, tenant, &reviews, Some(run.id)).await?;
        counts.queued_for_review = i64::try_from(opened.len()).unwrap_or(i64::MAX);
        store::jobs::enqueue_jobs(
            &mut tx,
            tenant,
            PUSH_CUSTOMER_JOB,
            PRIORITY_BACKGROUND,
            &pushes,
        )
        .await?;
        let last = chunk.last().map_or("", |p| p.action.digit());
        let asked =
            store::sync_runs::record_progress(&mut tx, run.id, counts, Checkpoint::Apply(last))
                .await?;
        if asked.is_none() {
            // The run ended meanwhile (cancelled while queued, or failed): write nothing.
            tx.rollback().await.map_err(StoreError::from)?;
            return Ok(Flow::Stop);
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(self.go_on(tenant, run, asked).await?)
    }

    async fn await_pushes(&self, tenant: &TenantId, run_id: Uuid) -> Result<RunStep, SyncRunError> {
        let Some(run) = store::sync_runs::get_run(&self.pool, tenant, run_id).await? else {
            return Ok(RunStep::Finished);
        };
        if run.is_finished() {
            return Ok(RunStep::Finished);
        }
        if run.cancel_requested {
            self.end_cancelled(tenant, &run).await?;
            return Ok(RunStep::Finished);
        }
        let live =
            store::sync_runs::live_pushes(&self.pool, tenant, run_id, PUSH_CUSTOMER_JOB).await?;
        if live > 0 {
            return Ok(RunStep::WaitForPushes(self.settings.push_poll));
        }
        self.end_run(run_id, "succeeded", None).await?;
        tracing::info!(tenant = %tenant, run_id = %run_id, "sync run succeeded");
        Ok(RunStep::Finished)
    }

    /// A dry run: the same read and plan, in memory; only the run's row is written.
    async fn dry_run(&self, tenant: &TenantId, run: &SyncRunRow) -> Result<RunStep, SyncRunError> {
        let qbo = self.client()?;
        store::sync_runs::reset_counters(&self.pool, run.id).await?;
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let mut mirror: Vec<MirroredCustomer> = Vec::new();
        let changes = if run.mode == "incremental" {
            self.changes_since_watermark(qbo, tenant).await?
        } else {
            None
        };
        if let Some(changes) = changes {
            // The mirror as the changes would leave it.
            let mut by_id: HashMap<String, MirroredCustomer> =
                store::mirror::all_mirrored(&mut conn, tenant)
                    .await?
                    .into_iter()
                    .map(|m| (m.qbo_id.clone(), m))
                    .collect();
            for c in &changes.customers {
                if c.deleted {
                    by_id.remove(&c.id);
                } else {
                    by_id.insert(c.id.clone(), mirrored(c));
                }
            }
            let counts = Counts {
                qbo_customers_read: i64::try_from(changes.customers.len()).unwrap_or(i64::MAX),
                ..Counts::default()
            };
            store::sync_runs::record_progress(&mut conn, run.id, counts, Checkpoint::Same).await?;
            mirror.extend(by_id.into_values());
        } else {
            let mut pager = qbo
                .customer_pager(tenant, true, Lane::Background)
                .read_ahead(self.settings.read_ahead);
            while let Some(page) = pager.next_page().await? {
                let counts = Counts {
                    qbo_customers_read: i64::try_from(page.customers.len()).unwrap_or(i64::MAX),
                    ..Counts::default()
                };
                mirror.extend(page.customers.iter().map(mirrored));
                let asked =
                    store::sync_runs::record_progress(&mut conn, run.id, counts, Checkpoint::Same)
                        .await?;
                if let Flow::Stop = self.go_on(tenant, run, asked).await? {
                    return Ok(RunStep::Finished);
                }
            }
        }
        drop(conn);
        let planned = self.plan(tenant, run.link_only, Some(mirror)).await?;
        let mut counts = Counts::default();
        for p in &planned {
            counts += p.counts;
        }
        let total = i64::try_from(planned.len()).unwrap_or(i64::MAX);
        let actions: Vec<&Action> = planned.iter().take(PLAN_CAP).map(|p| &p.action).collect();
        let actions = serde_json::to_value(actions)
            .map_err(|e| StoreError::Corrupt(format!("planned actions: {e}")))?;
        store::sync_runs::store_plan(&self.pool, run.id, counts, &actions, total).await?;
        self.end_run(run.id, "succeeded", None).await?;
        tracing::info!(tenant = %tenant, run_id = %run.id, actions = total, "dry sync run planned");
        Ok(RunStep::Finished)
    }

    /// The plan for every Digit customer of the tenant against `mirror` (the stored mirror
    /// when `None`), with the tenant's links, rejected pairs, open reviews and live pushes.
    async fn plan(
        &self,
        tenant: &TenantId,
        link_only: bool,
        mirror: Option<Vec<MirroredCustomer>>,
    ) -> Result<Vec<Planned>, SyncRunError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let mirror = match mirror {
            Some(m) => m,
            None => store::mirror::all_mirrored(&mut conn, tenant).await?,
        };
        let digit = store::customers::all_digit_customers(&mut conn, tenant).await?;
        let ctx = MatchContext {
            links: store::links::all_links(&mut conn, tenant).await?,
            rejected: store::links::all_rejected_pairs(&mut conn, tenant).await?,
            ..MatchContext::default()
        };
        let in_review = store::reviews::customers_in_review(&mut conn, tenant).await?;
        let pushing =
            store::jobs::customers_with_live_jobs(&mut conn, tenant, PUSH_CUSTOMER_JOB).await?;
        drop(conn);
        tokio::task::spawn_blocking(move || {
            decide(&mirror, &digit, &ctx, &in_review, &pushing, link_only)
        })
        .await
        .map_err(|e| SyncRunError::Matcher(e.to_string()))
    }
}

/// The matcher and the plan, off the async runtime (seconds for 100,000 customers).
fn decide(
    mirror: &[MirroredCustomer],
    digit: &[DigitCustomer],
    ctx: &MatchContext,
    in_review: &[String],
    pushing: &[String],
    link_only: bool,
) -> Vec<Planned> {
    let qbo_records: Vec<QboCustomerRecord> = mirror.iter().map(record_of).collect();
    let digit_records: Vec<DigitCustomerRecord> = digit.iter().map(digit_record).collect();
    let outcomes = matching::match_customers(&qbo_records, &digit_records, ctx);
    let plan_ctx = PlanContext {
        digit: digit.iter().map(|c| (c.id.as_str(), c)).collect(),
        qbo_active: mirror
            .iter()
            .map(|m| (m.qbo_id.as_str(), m.active))
            .collect(),
        in_review: in_review.iter().map(String::as_str).collect::<HashSet<_>>(),
        pushing: pushing.iter().map(String::as_str).collect::<HashSet<_>>(),
        link_only,
    };
    plan(outcomes, &plan_ctx)
}

fn parse_id(id: &str) -> Result<DigitCustomerId, StoreError> {
    DigitCustomerId::parse(id).map_err(|e| StoreError::Corrupt(format!("digit customer id: {e}")))
}

fn record_of(m: &MirroredCustomer) -> QboCustomerRecord {
    QboCustomerRecord {
        id: m.qbo_id.clone(),
        sync_token: Some(m.sync_token.clone()),
        display_name: m.display_name.clone(),
        fully_qualified_name: m.fully_qualified_name.clone(),
        parent_id: m.parent_qbo_id.clone(),
        is_job: m.is_job,
        active: m.active,
        company_name: m.company_name.clone(),
        given_name: m.given_name.clone(),
        family_name: m.family_name.clone(),
        email: m.email.clone(),
        phone: m.phone.clone(),
        digit_marker: None,
    }
}

/// Counts an ended run by mode and outcome, and how long it took.
fn record_finished(run: &store::sync_runs::FinishedRun, outcome: &'static str) {
    let mode = if run.dry_run {
        format!("{}_dry_run", run.mode)
    } else {
        run.mode.clone()
    };
    metrics::counter!("qbo_sync_sync_runs_total", "mode" => mode.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("qbo_sync_sync_run_duration_seconds", "mode" => mode, "outcome" => outcome)
        .record(run.duration.as_secs_f64());
}
