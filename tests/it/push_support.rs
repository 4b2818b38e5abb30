//! A connected tenant on a server pointed at the simulator, with the worker run by hand.

use qbo_sim::{Simulator, SimulatorConfig};
use qbo_sync::{proto::v1 as pb, store::jobs::JobRow, worker::RunReport};
use serde_json::json;

use crate::{
    connections_support::{by_code, connect, token_key},
    helpers::TestApp,
    qbo_harness::REDIRECT,
};

pub const TENANT: &str = "tenant-push";
pub const REALM: &str = "9130350000000201";

pub struct World {
    pub sim: Simulator,
    pub app: TestApp,
}

/// A simulator, a server whose pool runs no jobs (tests run them), and a connected tenant.
/// `flags` are extra server flags.
pub async fn world(config: SimulatorConfig, flags: &[(&str, &str)]) -> World {
    let sim = Simulator::start(config).await.unwrap();
    let mut all = vec![
        ("--workers", "0"),
        ("--qbo-backoff-base", "20ms"),
        ("--qbo-backoff-max", "200ms"),
    ];
    all.extend_from_slice(flags);
    let app = TestApp::spawn_against(&sim, Some(&token_key()), &all).await;
    let world = World { sim, app };
    world.connect().await;
    world
}

pub fn customer(id: &str, name: &str) -> pb::DigitCustomer {
    pb::DigitCustomer {
        id: id.into(),
        display_name: name.into(),
        ..Default::default()
    }
}

impl World {
    pub async fn connect(&self) {
        let code = self.sim.issue_authorization_code(REALM, REDIRECT);
        connect(&self.app, by_code(TENANT, REALM, code)).await;
    }

    /// Seeds QBO customers by name (all active) and returns their ids, in order.
    pub fn seed(&self, names: &[&str]) -> Vec<String> {
        let records: Vec<_> = names
            .iter()
            .map(|n| json!({"DisplayName": n, "Active": true}))
            .collect();
        self.sim.seed_customers(REALM, json!(records)).unwrap();
        names.iter().map(|n| self.qbo_id(n)).collect()
    }

    /// The id of the QBO customer with exactly this DisplayName (there must be one).
    pub fn qbo_id(&self, name: &str) -> String {
        let matches: Vec<String> = self
            .sim
            .customers(REALM)
            .iter()
            .filter(|c| c["DisplayName"] == name)
            .map(|c| c["Id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(matches.len(), 1, "one QBO customer named {name:?}");
        matches[0].clone()
    }

    pub fn qbo_count(&self) -> usize {
        self.sim.customers(REALM).len()
    }

    /// `UpsertCustomer`, one customer, pushed.
    pub async fn upsert(&self, customer: pb::DigitCustomer) -> pb::UpsertCustomerResponse {
        self.app
            .customers()
            .upsert_customer(pb::UpsertCustomerRequest {
                tenant_id: TENANT.into(),
                customer: Some(customer),
                skip_push: false,
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// `BatchUpsertCustomers`, pushed (bulk).
    pub async fn batch_upsert(
        &self,
        customers: Vec<pb::DigitCustomer>,
    ) -> pb::BatchUpsertCustomersResponse {
        self.app
            .customers()
            .batch_upsert_customers(pb::BatchUpsertCustomersRequest {
                tenant_id: TENANT.into(),
                customers,
                skip_push: false,
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn upsert_named(&self, id: &str, name: &str) -> pb::UpsertCustomerResponse {
        self.upsert(customer(id, name)).await
    }

    /// Runs due jobs until none is left (bounded), returning what each run did.
    pub async fn run_jobs(&self) -> Vec<RunReport> {
        let worker = self.app.worker.clone().expect("QBO is configured");
        let mut reports = Vec::new();
        for _ in 0..500 {
            match worker.try_run_next().await.unwrap() {
                Some(report) => reports.push(report),
                None => return reports,
            }
        }
        panic!("jobs kept coming after 500 runs");
    }

    pub async fn status(&self, id: &str) -> pb::GetLinkStatusResponse {
        self.app
            .customers()
            .get_link_status(pb::GetLinkStatusRequest {
                tenant_id: TENANT.into(),
                digit_customer_id: id.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// The QBO id a customer is linked to, and how; panics when it is not linked.
    pub async fn linked(&self, id: &str) -> (String, pb::LinkMethod, Vec<String>) {
        let status = self.status(id).await;
        assert_eq!(
            status.state(),
            pb::LinkState::Linked,
            "{id} should be linked: {}",
            status.explanation
        );
        let link = status.link.unwrap();
        let method = link.method();
        (link.qbo_customer_id, method, link.reasons)
    }

    pub async fn jobs(&self) -> Vec<JobRow> {
        let tenant = qbo_sync::domain::TenantId::parse(TENANT).unwrap();
        qbo_sync::store::jobs::list_jobs(&self.app.db.pool, &tenant)
            .await
            .unwrap()
    }

    /// The open review item of a customer: (kind, reason).
    pub async fn review(&self, id: &str) -> Option<(String, String)> {
        sqlx::query_as(
            "SELECT kind, reason FROM review_items
             WHERE tenant_id = $1 AND digit_customer_id = $2 AND state = 'open'",
        )
        .bind(TENANT)
        .bind(id)
        .fetch_optional(&self.app.db.pool)
        .await
        .unwrap()
    }

    /// Makes every job due now (backoffs and reschedules skipped).
    pub async fn make_jobs_due(&self) {
        sqlx::query("UPDATE jobs SET run_at = now() WHERE state = 'queued'")
            .execute(&self.app.db.pool)
            .await
            .unwrap();
    }

    /// `TriggerSync` for the tenant.
    pub async fn trigger(&self, request: pb::TriggerSyncRequest) -> pb::TriggerSyncResponse {
        self.app
            .customers()
            .trigger_sync(pb::TriggerSyncRequest {
                tenant_id: TENANT.into(),
                ..request
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Starts a full sync; returns the run.
    pub async fn full(&self) -> pb::SyncRun {
        self.trigger(pb::TriggerSyncRequest {
            mode: pb::SyncMode::Full.into(),
            ..Default::default()
        })
        .await
        .run
        .unwrap()
    }

    /// The run as `GetSyncRun` answers.
    pub async fn run(&self, run_id: &str) -> pb::SyncRun {
        self.app
            .customers()
            .get_sync_run(pb::GetSyncRunRequest {
                tenant_id: TENANT.into(),
                run_id: run_id.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .run
            .unwrap()
    }

    /// Runs jobs (waits for pushes made due at once) until the run has ended.
    pub async fn finish(&self, run_id: &str) -> pb::SyncRun {
        for _ in 0..20 {
            self.run_jobs().await;
            let run = self.run(run_id).await;
            if !matches!(
                run.state(),
                pb::SyncRunState::Queued | pb::SyncRunState::Running
            ) {
                return run;
            }
            self.make_jobs_due().await;
        }
        panic!("the run did not end: {:?}", self.run(run_id).await);
    }

    /// A count the SQL computes, with the tenant as `$1`.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .bind(TENANT)
            .fetch_one(&self.app.db.pool)
            .await
            .unwrap()
    }
}
