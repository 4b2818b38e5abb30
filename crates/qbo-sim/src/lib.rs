//! An in-memory QuickBooks Online (Accounting API v3) for tests, benchmarks and the `dev` command.
//!
//! It serves the parts of QBO that qbo-sync uses over real HTTP on `127.0.0.1`: customer
//! read / create / (sparse) update, queries over Customer, Vendor and Employee, CDC, batch, the
//! OAuth token endpoint, and QBO's per-realm limits. Faults can be injected and changed while a
//! test runs. `docs/simulator.md` lists every behaviour and where it follows an UNCONFIRMED
//! variant of the API notes.

mod admin;
pub mod admin_http;
mod auth;
mod batch;
mod cdc;
mod config;
mod conn;
mod customers;
mod faults;
mod handlers;
mod hierarchy;
mod http;
mod limits;
mod names;
#[cfg(test)]
mod paging_tests;
mod query;
mod realm;
mod results;
mod select;
mod stats;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, atomic::AtomicU64},
};

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

pub use config::{
    DropStyle, DuplicateDetail, DuplicateDetailPolicy, FaultConfig, MergeVariant, SimulatorConfig,
    StringMatch, ThrottleStyle,
};
pub use faults::{Fault, FaultError};
pub use query::{Condition as QueryCondition, Literal as QueryLiteral, Op as QueryOp};
pub use stats::{LimitViolations, RecordedRequest, SimStats};

use realm::{Kind, Realm};

/// State shared by the HTTP handlers and the test-facing [`Simulator`] handle.
pub(crate) struct Shared {
    config: SimulatorConfig,
    realms: Mutex<HashMap<String, Realm>>,
    auth: Mutex<auth::TokenStore>,
    limits: Mutex<limits::Limits>,
    faults: Mutex<FaultState>,
    stats: Mutex<SimStats>,
    log: Mutex<Vec<RecordedRequest>>,
    clock_offset: Mutex<TimeDelta>,
    tid_counter: AtomicU64,
    shutdown: CancellationToken,
}

/// The fault settings plus the seeded generator that draws from them.
pub(crate) struct FaultState {
    config: FaultConfig,
    rng: rand::rngs::StdRng,
}

impl FaultState {
    fn new(config: FaultConfig) -> Self {
        use rand::SeedableRng as _;
        let rng = rand::rngs::StdRng::seed_from_u64(config.seed);
        Self { config, rng }
    }
}

/// Locks a mutex, carrying on if a panicking test thread poisoned it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// The simulated clock: wall time plus whatever a test advanced it by.
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *lock(&self.clock_offset)
    }

    /// The envelope `time` of an answer given now.
    fn envelope_time(&self) -> String {
        realm::format_envelope_time(self.now(), self.config.utc_offset)
    }

    fn with_realm<R>(&self, realm_id: &str, f: impl FnOnce(&mut Realm) -> R) -> R {
        let mut realms = lock(&self.realms);
        f(realms.entry(realm_id.to_owned()).or_default())
    }
}

/// A running simulator. Dropping it without [`Simulator::shutdown`] leaves the server task
/// running until the runtime ends.
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

/// Reads a raw query string (`minorversion=75&query=SELECT...`) as the query endpoint does:
/// decodes its `query` parameter and parses the statement. qbo-sync's property tests check
/// their quoting and percent-encoding against it.
///
/// # Errors
/// Why the statement is refused, as the 4000 fault's text would say.
pub fn read_query_conditions(raw_query: &str) -> Result<Vec<QueryCondition>, String> {
    let text = http::query_param(Some(raw_query), "query").ok_or("no query parameter")?;
    query::parse(&text).map(|q| q.conditions)
}

impl Simulator {
    /// Starts a simulator on `127.0.0.1`, on a port the OS picks.
    ///
    /// # Errors
    /// When the listener cannot be bound.
    pub async fn start(config: SimulatorConfig) -> anyhow::Result<Simulator> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the QBO simulator on 127.0.0.1:0")?;
        Self::start_on(config, listener).await
    }

    /// Starts a simulator on a listener the caller bound (e.g. a fixed port for `dev`).
    ///
    /// # Errors
    /// When the listener's address cannot be read.
    pub async fn start_on(config: SimulatorConfig, listener: TcpListener) -> anyhow::Result<Self> {
        let addr = listener
            .local_addr()
            .context("reading the simulator's address")?;
        let shared = Arc::new(Shared {
            config,
            realms: Mutex::default(),
            auth: Mutex::default(),
            limits: Mutex::default(),
            faults: Mutex::new(FaultState::new(FaultConfig::default())),
            stats: Mutex::default(),
            log: Mutex::default(),
            clock_offset: Mutex::new(TimeDelta::zero()),
            tid_counter: AtomicU64::new(1),
            shutdown: CancellationToken::new(),
        });
        let server = tokio::spawn(http::serve(Arc::clone(&shared), listener));
        Ok(Self {
            shared,
            addr,
            server,
        })
    }

    /// The configuration the simulator runs with (client id and secret, limits, ...).
    pub fn config(&self) -> &SimulatorConfig {
        &self.shared.config
    }

    /// `http://127.0.0.1:PORT`; the client appends `/v3/company/{realm}/...`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The OAuth token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/v1/tokens/bearer", self.base_url())
    }

    /// The OAuth revoke endpoint (JSON body `{"token": ...}`, HTTP Basic client auth).
    pub fn revoke_url(&self) -> String {
        format!("{}/v2/oauth2/tokens/revoke", self.base_url())
    }

    /// Creates an empty company; API calls to a realm need a token issued for it.
    pub fn create_realm(&self, realm_id: &str) {
        self.shared.with_realm(realm_id, |_| ());
    }

    /// A one-time authorization code for `realm_id`, as the OAuth redirect would deliver it.
    pub fn issue_authorization_code(&self, realm_id: &str, redirect_uri: &str) -> String {
        self.create_realm(realm_id);
        lock(&self.shared.auth).issue_code(realm_id, redirect_uri)
    }

    /// A valid refresh token for `realm_id`, as if a user had connected the company earlier.
    pub fn issue_refresh_token(&self, realm_id: &str) -> String {
        self.create_realm(realm_id);
        lock(&self.shared.auth).issue_refresh(realm_id)
    }

    /// A valid access token for `realm_id`, for tests that skip the OAuth dance.
    pub fn issue_access_token(&self, realm_id: &str) -> String {
        self.create_realm(realm_id);
        let expires = self.shared.now() + self.shared.config.access_token_ttl;
        lock(&self.shared.auth).issue_access(realm_id, expires)
    }

    /// Loads customers in the `QueryResponse.Customer` array shape. Missing Ids, SyncTokens,
    /// MetaData, FullyQualifiedName and Level are filled in; parents must come before children.
    ///
    /// # Errors
    /// When the value is not an array of objects, or a record breaks a rule that a create
    /// would enforce (duplicate name, colon, length, unknown parent).
    pub fn seed_customers(&self, realm_id: &str, customers: Value) -> anyhow::Result<()> {
        let now = self.shared.now();
        let offset = self.shared.config.utc_offset;
        let policy = self.shared.config.duplicate_detail;
        self.shared.with_realm(realm_id, |realm| {
            admin::seed(realm, customers, now, offset, policy)
        })
    }

    /// Adds an active or inactive vendor and returns its Id.
    ///
    /// # Panics
    /// When the name is already taken (tests should not do that by accident).
    pub fn add_vendor(&self, realm_id: &str, display_name: &str, active: bool) -> String {
        self.add_other(realm_id, Kind::Vendor, display_name, active)
    }

    /// Adds an active or inactive employee and returns its Id.
    ///
    /// # Panics
    /// When the name is already taken.
    pub fn add_employee(&self, realm_id: &str, display_name: &str, active: bool) -> String {
        self.add_other(realm_id, Kind::Employee, display_name, active)
    }

    fn add_other(&self, realm_id: &str, kind: Kind, name: &str, active: bool) -> String {
        let now = self.shared.now();
        let offset = self.shared.config.utc_offset;
        self.shared.with_realm(realm_id, |realm| {
            admin::add_name_record(realm, kind, name, active, now, offset)
                .unwrap_or_else(|fault| panic!("cannot add {}: {fault:?}", kind.name()))
        })
    }

    /// Every customer of the realm as QBO JSON, ordered by Id, inactive and merged-away ones
    /// included.
    pub fn customers(&self, realm_id: &str) -> Vec<Value> {
        self.entities(realm_id, Kind::Customer)
    }

    /// Every vendor of the realm as QBO JSON, ordered by Id.
    pub fn vendors(&self, realm_id: &str) -> Vec<Value> {
        self.entities(realm_id, Kind::Vendor)
    }

    /// Every employee of the realm as QBO JSON, ordered by Id.
    pub fn employees(&self, realm_id: &str) -> Vec<Value> {
        self.entities(realm_id, Kind::Employee)
    }

    fn entities(&self, realm_id: &str, kind: Kind) -> Vec<Value> {
        self.shared.with_realm(realm_id, |realm| {
            realm
                .all(kind)
                .values()
                .map(|r| Value::Object((*r.json).clone()))
                .collect()
        })
    }

    /// One customer as QBO JSON, whatever its state.
    pub fn customer(&self, realm_id: &str, id: &str) -> Option<Value> {
        let id: u64 = id.parse().ok()?;
        self.shared.with_realm(realm_id, |realm| {
            realm
                .get(Kind::Customer, id)
                .map(|r| Value::Object((*r.json).clone()))
        })
    }

    /// Changes a customer as a user in the QBO UI would (bumping its SyncToken), so tests can
    /// provoke 5010 and CDC updates. `fields` is merged over the record like a sparse update.
    ///
    /// # Errors
    /// The fault QBO would answer (unknown Id, duplicate name, ...).
    pub fn edit_customer(&self, realm_id: &str, id: &str, fields: Value) -> Result<(), Fault> {
        let now = self.shared.now();
        let config = self.shared.config.clone();
        self.shared.with_realm(realm_id, |realm| {
            customers::edit_as_user(realm, id, fields, now, &config).map(|_| ())
        })
    }

    /// Merges `absorbed_id` into `survivor_id` as the QBO UI does; what the absorbed record
    /// looks like afterwards follows [`SimulatorConfig::merge_variant`].
    ///
    /// # Panics
    /// When either customer does not exist.
    pub fn merge_customers(&self, realm_id: &str, absorbed_id: &str, survivor_id: &str) {
        let now = self.shared.now();
        let config = self.shared.config.clone();
        self.shared.with_realm(realm_id, |realm| {
            admin::merge(realm, absorbed_id, survivor_id, now, &config)
                .unwrap_or_else(|fault| panic!("cannot merge: {fault:?}"));
        });
    }

    /// Replaces the fault settings; takes effect on the next request.
    pub fn set_faults(&self, faults: FaultConfig) {
        *lock(&self.shared.faults) = FaultState::new(faults);
    }

    /// Expires every access token of the realm at once (refresh tokens stay valid).
    pub fn expire_access_tokens(&self, realm_id: &str) {
        lock(&self.shared.auth).expire_access(realm_id);
    }

    /// Supersedes every current refresh token of the realm, as another client refreshing the
    /// same connection would: the service's token then answers `invalid_grant`. Returns the
    /// token that superseded them (access tokens stay valid until they expire).
    pub fn supersede_refresh_tokens(&self, realm_id: &str) -> String {
        lock(&self.shared.auth).supersede_refresh(realm_id)
    }

    /// Moves the simulated clock forward (MetaData times, token expiry, the CDC window).
    pub fn advance_clock(&self, by: std::time::Duration) {
        let by = TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX);
        *lock(&self.shared.clock_offset) += by;
    }

    /// The simulated clock's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.now()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        lock(&self.shared.stats).clone()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log).clone()
    }

    /// Stops the server and waits for it; requests still hanging are cut.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        let _ = self.server.await;
    }
}
