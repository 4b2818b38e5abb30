//! A QBO client wired to the simulator over real HTTP and to a fresh PostgreSQL database.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use qbo_sim::{Simulator, SimulatorConfig};
use qbo_sync::{
    config::QboConfig,
    crypto::TokenCipher,
    domain::{RealmId, TenantId},
    pgcluster::{FreshDatabase, fresh_database},
    quickbooks::{CreateOutcome, Lane, QboClient, QboCustomer, settings::default_qbo_config},
};
use secrecy::SecretString;
use serde_json::json;

pub const REDIRECT: &str = "https://digit.example/qbo/callback";

pub struct Harness {
    pub sim: Simulator,
    pub db: FreshDatabase,
    pub config: QboConfig,
    pub client: QboClient,
    pub tenant: TenantId,
    pub realm: RealmId,
}

pub fn cipher() -> TokenCipher {
    TokenCipher::new(1, &SecretString::from(STANDARD.encode([42u8; 32]))).unwrap()
}

/// Client settings matching the simulator, with quick backoff for tests.
pub fn client_config(sim: &Simulator, sim_config: &SimulatorConfig) -> QboConfig {
    let mut config = default_qbo_config();
    config.qbo_base_url = sim.base_url();
    config.qbo_token_url = sim.token_url();
    config.qbo_client_id = sim_config.client_id.clone();
    config.qbo_client_secret = Some(SecretString::from(sim_config.client_secret.clone()));
    config.qbo_rate_window = sim_config.rate_window;
    config.qbo_requests_per_window = sim_config.max_requests_per_window;
    config.qbo_batches_per_window = sim_config.max_batches_per_window;
    config.qbo_max_concurrent = u16::try_from(sim_config.max_concurrent).unwrap();
    config.qbo_backoff_base = Duration::from_millis(20);
    config.qbo_backoff_max = Duration::from_millis(500);
    config.qbo_throttle_budget = Duration::from_secs(60);
    config.qbo_timeout = Duration::from_secs(10);
    config
}

/// A simulator, a database, a client, and one tenant connected through the OAuth code flow.
pub async fn harness(sim_config: SimulatorConfig, tweak: impl FnOnce(&mut QboConfig)) -> Harness {
    let sim = Simulator::start(sim_config.clone()).await.unwrap();
    let db = fresh_database().await.unwrap();
    let mut config = client_config(&sim, &sim_config);
    tweak(&mut config);
    let client = QboClient::new(&config, db.pool.clone(), cipher()).unwrap();
    let tenant = TenantId::parse("tenant-1").unwrap();
    let realm = RealmId::parse("9130350000000001").unwrap();
    let code = sim.issue_authorization_code(realm.as_str(), REDIRECT);
    client
        .tokens()
        .connect_with_code(
            &tenant,
            &realm,
            "sandbox",
            &SecretString::from(code),
            REDIRECT,
            qbo_sync::store::connections::RealmChange::Refuse,
        )
        .await
        .unwrap();
    Harness {
        sim,
        db,
        config,
        client,
        tenant,
        realm,
    }
}

impl Harness {
    /// A second "replica": its own pool and token cache, the same database.
    pub async fn replica(&self) -> QboClient {
        let pool = sqlx::PgPool::connect(&self.db.url).await.unwrap();
        QboClient::new(&self.config, pool, cipher()).unwrap()
    }

    /// Creates a customer with just a name, interactively, under the request id derived from
    /// `digit_id` (the same `digit_id` gives the same request id).
    pub async fn create_named(&self, name: &str, digit_id: &str) -> CreateOutcome {
        self.client
            .create_customer(
                &self.tenant,
                &crate::qbo_client::new_customer(name),
                &crate::qbo_client::rid(self, digit_id),
                Lane::Interactive,
            )
            .await
            .unwrap()
    }

    /// Every customer, read through the pager (tests keep them all; the service does not).
    pub async fn all_customers(&self, include_inactive: bool, lane: Lane) -> Vec<QboCustomer> {
        let mut pager = self
            .client
            .customer_pager(&self.tenant, include_inactive, lane);
        let mut all = Vec::new();
        while let Some(page) = pager.next_page().await.unwrap() {
            all.extend(page.customers);
        }
        all
    }

    pub fn seed(&self, names: &[(&str, bool)]) {
        let customers: Vec<_> = names
            .iter()
            .map(|(name, active)| json!({"DisplayName": name, "Active": active}))
            .collect();
        self.sim
            .seed_customers(self.realm.as_str(), json!(customers))
            .unwrap();
    }

    pub fn customers_named(&self, name: &str) -> usize {
        self.sim
            .customers(self.realm.as_str())
            .iter()
            .filter(|c| c["DisplayName"] == name)
            .count()
    }
}
