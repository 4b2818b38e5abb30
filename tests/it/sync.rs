//! Sync runs through the gRPC API: "Sync now" that finds the customers created in both
//! places, dry runs that write nothing, one active run per tenant, cancelling, runs taken
//! over from their checkpoint, incremental runs and the automatic schedule.

use std::time::Duration;

use qbo_sim::{FaultConfig, SimulatorConfig};
use qbo_sync::{proto::v1 as pb, service::sync::Syncs};
use tonic::Code;

use crate::{
    helpers::eventually,
    push_support::{REALM, TENANT, World, customer, world},
};

impl World {
    /// Reports customers to qbo-sync without pushing them (as Digit's backfill would before
    /// any sync).
    async fn report(&self, customers: &[(&str, &str)]) {
        let customers = customers
            .iter()
            .map(|(id, name)| customer(id, name))
            .collect();
        let answer = self
            .app
            .customers()
            .batch_upsert_customers(pb::BatchUpsertCustomersRequest {
                tenant_id: TENANT.into(),
                customers,
                skip_push: true,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(answer.results.iter().all(|r| r.code == 0), "{answer:?}");
    }

    /// A fingerprint of every table a sync may write, but `sync_runs` and the run's own job.
    async fn fingerprint(&self, run_id: Option<&str>) -> Vec<String> {
        let mut prints = Vec::new();
        for table in [
            "links",
            "link_events",
            "review_items",
            "rejected_pairs",
            "qbo_customers",
            "digit_customers",
            "mirror_state",
        ] {
            let print: Option<String> = sqlx::query_scalar(&format!(
                "SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
            ))
            .fetch_one(&self.app.db.pool)
            .await
            .unwrap();
            prints.push(format!("{table}:{}", print.unwrap_or_default()));
        }
        let jobs: Option<String> = sqlx::query_scalar(
            "SELECT md5(string_agg(j::text, '|' ORDER BY j::text)) FROM jobs j
             WHERE $1::text IS NULL OR j.payload->>'run_id' IS DISTINCT FROM $1",
        )
        .bind(run_id)
        .fetch_one(&self.app.db.pool)
        .await
        .unwrap();
        prints.push(format!("jobs:{}", jobs.unwrap_or_default()));
        prints
    }
}

/// Paged reads of the company's customers the simulator answered (lookups not counted).
fn paged_reads(w: &World) -> usize {
    w.sim
        .requests()
        .iter()
        .filter(|r| {
            r.query
                .as_deref()
                .is_some_and(|q| q.contains("STARTPOSITION") && !q.contains("LIKE"))
        })
        .count()
}

/// The story both ways, plus the cases around it.
async fn story() -> World {
    story_in(SimulatorConfig::default()).await
}

async fn story_in(config: SimulatorConfig) -> World {
    let w = world(config, &[]).await;
    w.seed(&[
        "Acme Corp",
        "Globex Corporation",
        "Smith & Sons Plumbing",
        "John Smith (Dallas)",
        "John Smith (Austin)",
        "Initech",
    ]);
    w.report(&[
        ("d-acme", "acme corp"),
        ("d-globex", "GLOBEX CORP."),
        ("d-smith", "Smith and Sons Plumbing"),
        ("d-john", "John Smith"),
        ("d-new", "Umbrella Pharmaceuticals"),
    ])
    .await;
    w
}

#[tokio::test]
async fn a_full_sync_links_the_customers_made_twice_reviews_doubts_and_pushes_the_rest() {
    let w = story().await;
    let triggered = w
        .trigger(pb::TriggerSyncRequest {
            mode: pb::SyncMode::Full.into(),
            ..Default::default()
        })
        .await;
    assert!(!triggered.already_running);
    let run = triggered.run.unwrap();
    assert_eq!(run.state(), pb::SyncRunState::Queued);
    assert_eq!(run.requested_by, crate::helpers::TEST_CALLER);

    let mut watch = w
        .app
        .customers()
        .watch_sync_run(pb::WatchSyncRunRequest {
            tenant_id: TENANT.into(),
            run_id: run.run_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let run = w.finish(&run.run_id).await;
    assert_eq!(run.state(), pb::SyncRunState::Succeeded, "{}", run.error);

    for (digit, qbo) in [
        ("d-acme", "Acme Corp"),
        ("d-globex", "Globex Corporation"),
        ("d-smith", "Smith & Sons Plumbing"),
    ] {
        let (linked_to, method, reasons) = w.linked(digit).await;
        assert_eq!(linked_to, w.qbo_id(qbo), "{digit}: {reasons:?}");
        assert!(matches!(
            method,
            pb::LinkMethod::AutoExact | pb::LinkMethod::AutoNormalized
        ));
    }
    let (kind, _) = w.review("d-john").await.expect("the twins go to a person");
    assert_eq!(kind, "match");
    let (new_id, method, _) = w.linked("d-new").await;
    assert_eq!(method, pb::LinkMethod::CreatedInQbo);
    assert_eq!(
        w.sim.customer(REALM, &new_id).unwrap()["DisplayName"],
        "Umbrella Pharmaceuticals"
    );
    assert_eq!(w.qbo_count(), 7, "one customer created, no duplicate");
    assert_eq!(w.sim.stats().creates, 1);

    assert_eq!(run.qbo_customers_read, 6);
    assert_eq!(run.digit_customers_considered, 5);
    assert_eq!(run.auto_linked, 3);
    assert_eq!(run.queued_for_review, 1);
    assert_eq!(run.pushed_to_qbo, 1);
    assert_eq!((run.already_linked, run.conflicts, run.errors), (0, 0, 0));
    assert!(run.started_at.is_some() && run.finished_at.is_some());

    // One audit event per link the run made, naming the run.
    let events = w
        .count(&format!(
            "SELECT count(*) FROM link_events WHERE tenant_id = $1 AND run_id = '{}'",
            run.run_id
        ))
        .await;
    assert_eq!(events, 3);
    let by_run = w
        .count(&format!(
            "SELECT count(*) FROM links WHERE tenant_id = $1 AND linked_by = 'qbo-sync:sync-run:{}'",
            run.run_id
        ))
        .await;
    assert_eq!(by_run, 3);

    // The watcher saw the run change and its stream ended with the final state.
    let mut states = Vec::new();
    while let Some(update) = watch.message().await.unwrap() {
        states.push(update.run.unwrap().state());
    }
    assert_eq!(states.last(), Some(&pb::SyncRunState::Succeeded));
    assert!(states.len() >= 2, "{states:?}");

    // A second full sync changes nothing and finds everything in place.
    let again = w.full().await;
    let again = w.finish(&again.run_id).await;
    assert_eq!(again.state(), pb::SyncRunState::Succeeded);
    assert_eq!(again.already_linked, 4);
    assert_eq!((again.auto_linked, again.queued_for_review), (0, 0));
    assert_eq!(w.qbo_count(), 7);
}

#[tokio::test]
async fn a_dry_run_returns_the_plan_and_writes_nothing_else() {
    let w = story().await;
    let before = w.fingerprint(None).await;
    let run = w
        .trigger(pb::TriggerSyncRequest {
            mode: pb::SyncMode::Full.into(),
            dry_run: true,
            ..Default::default()
        })
        .await
        .run
        .unwrap();
    assert!(run.dry_run);
    let run = w.finish(&run.run_id).await;
    assert_eq!(run.state(), pb::SyncRunState::Succeeded, "{}", run.error);
    assert_eq!(w.fingerprint(Some(&run.run_id)).await, before);
    assert_eq!(w.qbo_count(), 6);
    assert_eq!(w.sim.stats().creates, 0);

    let kinds: Vec<(String, pb::PlannedActionKind)> = run
        .planned_actions
        .iter()
        .map(|a| (a.digit_customer_id.clone(), a.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("d-acme".to_owned(), pb::PlannedActionKind::Link),
            ("d-globex".to_owned(), pb::PlannedActionKind::Link),
            ("d-john".to_owned(), pb::PlannedActionKind::Review),
            ("d-new".to_owned(), pb::PlannedActionKind::Push),
            ("d-smith".to_owned(), pb::PlannedActionKind::Link),
        ]
    );
    let acme = &run.planned_actions[0];
    assert_eq!(acme.qbo_customer_id, w.qbo_id("Acme Corp"));
    assert!(!acme.reasons.is_empty() && acme.score > 0.9);
    assert_eq!(run.planned_actions_total, 5);
    assert_eq!(
        (run.auto_linked, run.queued_for_review, run.pushed_to_qbo),
        (3, 1, 1),
        "a dry run's counters count what it would do"
    );

    // The plan is what a real run then does.
    let real = w.full().await;
    let real = w.finish(&real.run_id).await;
    assert_eq!(
        (real.auto_linked, real.queued_for_review, real.pushed_to_qbo),
        (3, 1, 1)
    );
}

#[tokio::test]
async fn one_run_per_tenant_at_a_time_and_a_key_returns_its_run() {
    let w = story().await;
    let keyed = |key: &str, dry_run: bool| pb::TriggerSyncRequest {
        mode: pb::SyncMode::Full.into(),
        dry_run,
        idempotency_key: key.into(),
        ..Default::default()
    };
    let first = w.trigger(keyed("sync-2026-12-01", false)).await;
    let same = w.trigger(keyed("sync-2026-12-01", false)).await;
    assert_eq!(first.run.as_ref().unwrap().run_id, same.run.unwrap().run_id);
    assert!(!same.already_running);
    let other = w.trigger(keyed("another-key", false)).await;
    assert!(
        other.already_running,
        "a second run waits for none: the active one is returned"
    );
    assert_eq!(
        other.run.unwrap().run_id,
        first.run.as_ref().unwrap().run_id
    );
    let status = w
        .app
        .customers()
        .trigger_sync(pb::TriggerSyncRequest {
            tenant_id: TENANT.into(),
            ..keyed("sync-2026-12-01", true)
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("idempotency key"), "{status:?}");

    let run_id = first.run.unwrap().run_id;
    w.finish(&run_id).await;
    // The key still names the finished run; without a key a new run starts.
    let later = w.trigger(keyed("sync-2026-12-01", false)).await;
    assert_eq!(later.run.unwrap().run_id, run_id);
    let fresh = w.full().await;
    assert_ne!(fresh.run_id, run_id);
    let active = w
        .count("SELECT count(*) FROM sync_runs WHERE tenant_id = $1 AND state IN ('queued', 'running')")
        .await;
    assert_eq!(active, 1);

    // Bad requests are refused precisely.
    let mut api = w.app.customers();
    let unknown = api
        .get_sync_run(pb::GetSyncRunRequest {
            tenant_id: TENANT.into(),
            run_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let other_tenant = api
        .get_sync_run(pb::GetSyncRunRequest {
            tenant_id: "someone-else".into(),
            run_id: fresh.run_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        other_tenant.code(),
        Code::NotFound,
        "another tenant's run is not seen"
    );
    let not_connected = api
        .trigger_sync(pb::TriggerSyncRequest {
            tenant_id: "someone-else".into(),
            mode: pb::SyncMode::Full.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(not_connected.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn cancel_stops_a_queued_run_at_once_and_a_running_one_at_a_boundary() {
    let w = world(
        SimulatorConfig::default(),
        &[("--qbo-page-size", "5"), ("--sync-apply-chunk", "7")],
    )
    .await;
    let names: Vec<String> = (0..60).map(|i| format!("Harbor Store {i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    w.seed(&refs);
    let digit: Vec<(String, String)> = (0..60)
        .map(|i| (format!("h{i:03}"), format!("harbor store {i:03}")))
        .collect();
    let digit_refs: Vec<(&str, &str)> = digit
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    w.report(&digit_refs).await;

    // Queued: cancelled at once, and its job with it.
    let queued = w.full().await;
    let cancelled = w
        .app
        .customers()
        .cancel_sync_run(pb::CancelSyncRunRequest {
            tenant_id: TENANT.into(),
            run_id: queued.run_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    assert_eq!(cancelled.state(), pb::SyncRunState::Cancelled);
    assert!(
        w.run_jobs().await.is_empty(),
        "the cancelled run's job does not run"
    );
    let again = w
        .app
        .customers()
        .cancel_sync_run(pb::CancelSyncRunRequest {
            tenant_id: TENANT.into(),
            run_id: queued.run_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);

    // Running: QBO answers slowly, so the cancel lands while pages are read.
    w.sim.set_faults(FaultConfig {
        latency: Duration::from_millis(250),
        ..FaultConfig::default()
    });
    let running = w.full().await;
    let worker = w.app.worker.clone().unwrap();
    let job = tokio::spawn(async move { worker.try_run_next().await });
    let id = running.run_id.clone();
    assert!(
        eventually(Duration::from_secs(10), || async {
            w.run(&id).await.qbo_customers_read > 0
        })
        .await
    );
    w.app
        .customers()
        .cancel_sync_run(pb::CancelSyncRunRequest {
            tenant_id: TENANT.into(),
            run_id: running.run_id.clone(),
        })
        .await
        .unwrap();
    job.await.unwrap().unwrap();
    let run = w.run(&running.run_id).await;
    assert_eq!(run.state(), pb::SyncRunState::Cancelled);
    assert!(run.qbo_customers_read < 60, "stopped before the read ended");
    // Nothing half-applied: every link the run made has its event, and the counters agree.
    let links = w
        .count("SELECT count(*) FROM links WHERE tenant_id = $1")
        .await;
    let events = w
        .count("SELECT count(*) FROM link_events WHERE tenant_id = $1")
        .await;
    assert_eq!((links, run.auto_linked), (events, links));
    assert_eq!(w.sim.stats().creates, 0);
}

#[tokio::test]
async fn a_run_whose_replica_died_is_finished_from_its_checkpoint_by_another() {
    let w = world(
        SimulatorConfig::default(),
        &[
            ("--qbo-page-size", "10"),
            ("--sync-apply-chunk", "9"),
            ("--job-lease", "1s"),
        ],
    )
    .await;
    let names: Vec<String> = (0..120).map(|i| format!("Cedar Clinic {i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    w.seed(&refs);
    let digit: Vec<(String, String)> = (0..130)
        .map(|i| (format!("c{i:03}"), format!("CEDAR CLINIC {i:03}")))
        .collect();
    let digit_refs: Vec<(&str, &str)> = digit
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    w.report(&digit_refs).await;
    w.sim.set_faults(FaultConfig {
        latency: Duration::from_millis(200),
        ..FaultConfig::default()
    });
    let run = w.full().await;

    // The first replica dies mid-read: its task stops at an await point, like a killed
    // process, holding the job's lease.
    let worker = w.app.worker.clone().unwrap();
    let dying = tokio::spawn(async move { worker.try_run_next().await });
    let id = run.run_id.clone();
    assert!(
        eventually(Duration::from_secs(10), || async {
            w.run(&id).await.qbo_customers_read >= 40
        })
        .await
    );
    dying.abort();
    let _ = dying.await;
    let at_death = w.run(&run.run_id).await;
    assert_eq!(at_death.state(), pb::SyncRunState::Running);
    let position: i32 =
        sqlx::query_scalar("SELECT read_position FROM sync_runs WHERE id = $1::uuid")
            .bind(&run.run_id)
            .fetch_one(&w.app.db.pool)
            .await
            .unwrap();
    assert!(position > 1, "the read checkpointed");
    let pages_before = paged_reads(&w);

    // Another replica takes the job over once the lease has run out.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let rescued = qbo_sync::store::jobs::rescue_expired_jobs(&w.app.db.pool)
        .await
        .unwrap();
    assert_eq!(rescued, 1);
    w.sim.set_faults(FaultConfig::default());
    let done = w.finish(&run.run_id).await;
    assert_eq!(done.state(), pb::SyncRunState::Succeeded, "{}", done.error);

    // It went on from the checkpoint: the pages before it were not read again.
    let pages_after = paged_reads(&w) - pages_before;
    // The pages from the checkpoint on, the empty one that ends the read, and up to three
    // read ahead past it.
    let pages_left = (120 - (usize::try_from(position).unwrap() - 1)).div_ceil(10) + 1 + 3;
    assert!(
        pages_after <= pages_left,
        "{pages_after} pages read after the takeover, {pages_left} at most were left"
    );
    // Zero duplicate links, zero lost links, zero duplicate QBO customers.
    for (id, name) in digit.iter().take(120) {
        let (qbo, _, _) = w.linked(id).await;
        assert_eq!(
            w.sim.customer(REALM, &qbo).unwrap()["DisplayName"]
                .as_str()
                .unwrap(),
            name.replace("CEDAR CLINIC", "Cedar Clinic")
        );
    }
    let links = w
        .count("SELECT count(*) FROM links WHERE tenant_id = $1")
        .await;
    let events = w
        .count("SELECT count(*) FROM link_events WHERE tenant_id = $1")
        .await;
    assert_eq!((links, events), (130, 130));
    assert_eq!(
        w.qbo_count(),
        130,
        "the ten Digit-only customers created once each"
    );
    assert_eq!(done.auto_linked, 120);
    assert_eq!(done.pushed_to_qbo, 10);
}

#[tokio::test]
async fn an_incremental_run_reads_changes_and_falls_back_to_a_full_read() {
    let w = world(SimulatorConfig::default(), &[]).await;
    w.seed(&["Birch Dental", "Maple Bakery"]);
    w.report(&[("b1", "Birch Dental")]).await;
    let incremental = || pb::TriggerSyncRequest {
        mode: pb::SyncMode::Incremental.into(),
        link_only: true,
        ..Default::default()
    };
    // No watermark yet: a full read.
    let first = w.trigger(incremental()).await.run.unwrap();
    let first = w.finish(&first.run_id).await;
    assert_eq!(
        first.state(),
        pb::SyncRunState::Succeeded,
        "{}",
        first.error
    );
    assert_eq!(first.qbo_customers_read, 2);
    let cdc_before = w.sim.stats().per_endpoint.get("cdc").copied().unwrap_or(0);
    assert_eq!(cdc_before, 0);

    // A customer made in QBO, then in Digit: the next incremental run reads only the change.
    w.seed(&["Aspen Roofing"]);
    w.report(&[("a1", "ASPEN ROOFING")]).await;
    let queries = w.sim.stats().per_endpoint.get("query").copied();
    let second = w.trigger(incremental()).await.run.unwrap();
    let second = w.finish(&second.run_id).await;
    assert_eq!(
        second.state(),
        pb::SyncRunState::Succeeded,
        "{}",
        second.error
    );
    assert_eq!(w.sim.stats().per_endpoint.get("cdc").copied(), Some(1));
    assert_eq!(
        w.sim.stats().per_endpoint.get("query").copied(),
        queries,
        "no page was read: only the changes"
    );
    let (qbo, _, _) = w.linked("a1").await;
    assert_eq!(qbo, w.qbo_id("Aspen Roofing"));

    // A watermark older than QBO keeps changes: a full read again.
    sqlx::query("UPDATE mirror_state SET cdc_watermark = now() - interval '31 days'")
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    let third = w.trigger(incremental()).await.run.unwrap();
    let third = w.finish(&third.run_id).await;
    assert_eq!(third.qbo_customers_read, 3);
    assert_eq!(w.sim.stats().per_endpoint.get("cdc").copied(), Some(1));
}

#[tokio::test]
async fn needs_reauth_fails_the_run_at_once_and_parks_the_tenants_jobs() {
    let w = story().await;
    let run = w.full().await;
    let ours = crate::connections_support::stored_refresh_token_of(&w.app, TENANT, REALM).await;
    let _ = crate::connections_support::refresh_elsewhere(&w.sim, &ours).await;
    w.sim.expire_access_tokens(REALM);
    w.upsert_named("p1", "Parkside Dental").await;
    let reports = w.run_jobs().await;
    assert_eq!(
        reports.len(),
        1,
        "the run is tried once, not retried: {reports:?}"
    );
    let run = w.run(&run.run_id).await;
    assert_eq!(run.state(), pb::SyncRunState::Failed);
    assert!(
        run.error.contains("connect the company again"),
        "{}",
        run.error
    );
    let jobs = w.jobs().await;
    assert!(
        jobs.iter()
            .filter(|j| j.kind == "push_customer")
            .all(|j| j.state == "parked"),
        "{jobs:?}"
    );
    let refused = w
        .app
        .customers()
        .trigger_sync(pb::TriggerSyncRequest {
            tenant_id: TENANT.into(),
            mode: pb::SyncMode::Full.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("connect the company again"));
}

#[tokio::test]
async fn the_automatic_schedule_queues_one_run_per_tenant_across_replicas() {
    let w = world(SimulatorConfig::default(), &[]).await;
    let pool = &w.app.db.pool;
    for tenant in ["auto-a", "auto-b"] {
        sqlx::query(
            "INSERT INTO connections (tenant_id, realm_id, environment, state)
             VALUES ($1, $1 || '-realm', 'sandbox', 'connected')",
        )
        .bind(tenant)
        .execute(pool)
        .await
        .unwrap();
    }
    // Two replicas' schedules at once, several times over.
    let replicas = [Syncs::new(pool.clone()), Syncs::new(pool.clone())];
    let every = Duration::from_secs(900);
    let mut queued = Vec::new();
    for _ in 0..5 {
        let (a, b) = tokio::join!(
            replicas[0].schedule_due(every),
            replicas[1].schedule_due(every)
        );
        queued.extend(a.unwrap());
        queued.extend(b.unwrap());
    }
    assert_eq!(
        queued.len(),
        3,
        "one run for each of the three connected tenants"
    );
    let runs: Vec<(String, String, String)> =
        sqlx::query_as("SELECT tenant_id, mode, trigger FROM sync_runs ORDER BY tenant_id")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(runs.len(), 3);
    assert!(
        runs.iter()
            .all(|(_, mode, trigger)| mode == "incremental" && trigger == "schedule")
    );

    // Due again while the runs are still active: none piles up.
    sqlx::query("UPDATE connections SET next_auto_sync_at = now() - interval '1 second'")
        .execute(pool)
        .await
        .unwrap();
    assert!(replicas[0].schedule_due(every).await.unwrap().is_empty());
    let active: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sync_runs WHERE state IN ('queued', 'running')")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(active, 3);
}

#[tokio::test]
async fn runs_complete_through_throttling_and_server_error_storms() {
    let w = story().await;
    w.sim.set_faults(FaultConfig {
        throttle_rate: 0.3,
        server_error_rate: 0.1,
        seed: 7,
        ..FaultConfig::default()
    });
    let run = w.full().await;
    let run = w.finish(&run.run_id).await;
    assert_eq!(run.state(), pb::SyncRunState::Succeeded, "{}", run.error);
    let stats = w.sim.stats();
    assert!(
        stats.injected_throttles + stats.injected_server_errors > 0,
        "the storm hit the run"
    );
    assert_eq!((run.auto_linked, run.queued_for_review), (3, 1));
    w.linked("d-new").await;
    assert_eq!(w.qbo_count(), 7, "one customer created, no duplicate");
    assert_eq!(stats.limit_violations.total(), 0);
    let dead = w
        .count("SELECT count(*) FROM jobs WHERE tenant_id = $1 AND state = 'dead'")
        .await;
    assert_eq!(dead, 0);
}

#[tokio::test]
async fn a_qbo_customer_made_inactive_keeps_its_link_and_one_merged_away_is_missing() {
    // Merged-away customers vanish from queries (one of the variants QBO's notes allow).
    let w = story_in(SimulatorConfig {
        merge_variant: qbo_sim::MergeVariant::Missing,
        ..SimulatorConfig::default()
    })
    .await;
    let run = w.full().await;
    w.finish(&run.run_id).await;
    let acme = w.qbo_id("Acme Corp");
    let globex = w.qbo_id("Globex Corporation");
    let initech = w.qbo_id("Initech");
    w.sim
        .edit_customer(REALM, &acme, serde_json::json!({"Active": false}))
        .unwrap();
    w.sim.merge_customers(REALM, &initech, &globex);
    let again = w.full().await;
    let again = w.finish(&again.run_id).await;
    assert_eq!(
        again.state(),
        pb::SyncRunState::Succeeded,
        "{}",
        again.error
    );
    let (still, _, _) = w.linked("d-acme").await;
    assert_eq!(still, acme, "an inactive QBO customer keeps its link");
    let (active, missing): (bool, bool) = sqlx::query_as(
        "SELECT active, missing FROM qbo_customers WHERE tenant_id = $1 AND qbo_id = $2",
    )
    .bind(TENANT)
    .bind(&acme)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!((active, missing), (false, false));
    assert_eq!(
        again.conflicts, 1,
        "the link to an inactive customer is a conflict"
    );
    let gone: bool = sqlx::query_scalar(
        "SELECT missing FROM qbo_customers WHERE tenant_id = $1 AND qbo_id = $2",
    )
    .bind(TENANT)
    .bind(&initech)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert!(gone, "a customer QBO no longer returns is marked missing");
    assert_eq!(
        again.qbo_customers_read, 6,
        "the merged-away customer was not read"
    );
}

#[tokio::test]
async fn keys_an_older_normalizer_stored_are_recomputed() {
    let w = story().await;
    let run = w.full().await;
    w.finish(&run.run_id).await;
    let pool = &w.app.db.pool;
    sqlx::query("UPDATE digit_customers SET name_key = 'stale', normalizer_version = 1")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE qbo_customers SET name_key = 'stale', email_key = 'stale', name_words = '{}',
                normalizer_version = 1",
    )
    .execute(pool)
    .await
    .unwrap();
    let updated = qbo_sync::service::keys::recompute_stale_keys(pool, 10)
        .await
        .unwrap();
    assert_eq!(
        updated,
        5 + 7,
        "every Digit customer and every mirrored one"
    );
    let version = i32::try_from(qbo_sync::matching::NORMALIZER_VERSION).unwrap();
    let digit: Vec<(String, String, i32)> =
        sqlx::query_as("SELECT display_name, name_key, normalizer_version FROM digit_customers")
            .fetch_all(pool)
            .await
            .unwrap();
    for (name, key, v) in digit {
        assert_eq!(key, qbo_sync::matching::customer_keys(&name, None).name_key);
        assert_eq!(v, version);
    }
    let mirror: Vec<(String, String, Vec<String>, i32)> = sqlx::query_as(
        "SELECT display_name, name_key, name_words, normalizer_version FROM qbo_customers",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (name, key, words, v) in mirror {
        assert_eq!(key, qbo_sync::matching::customer_keys(&name, None).name_key);
        assert_eq!(words, qbo_sync::service::push::name_words(&name));
        assert_eq!(v, version);
    }
    assert_eq!(
        qbo_sync::service::keys::recompute_stale_keys(pool, 10)
            .await
            .unwrap(),
        0,
        "nothing left"
    );
}
