//! The hostile request test: a real server (auth on, a QBO simulator behind it) over a seeded
//! tenant takes a stream of random and hostile requests across every RPC of both services,
//! through real gRPC: oversized strings, control characters, metadata that is not UTF-8, junk
//! message bodies, unknown enum values, empty and huge page sizes, junk and forged page
//! tokens, SQL and QBO-query injection in names and ids, batches over every limit, bad and
//! missing credentials. Every random request is one that must be refused or only read, so:
//!
//! * the server never panics and still answers health afterwards;
//! * every status is in the set the README documents for that RPC (never INTERNAL, UNKNOWN,
//!   UNAVAILABLE...), and the ones the request's kind fixes are exact (bad credentials are
//!   UNAUTHENTICATED, a junk body INVALID_ARGUMENT, an oversized one OUT_OF_RANGE);
//! * every table of the database is unchanged (row counts and checksums).
//!
//! Then a bounded set of valid but weird writes (injection strings as names and ids, pushed to
//! QBO too) is checked for exactly its effects.
//!
//! `HOSTILE_REQUESTS` (default [`DEFAULT_REQUESTS`]) and `HOSTILE_SEED` (default
//! [`DEFAULT_SEED`]) set the run; the seed and each failing request's index are printed, so a
//! failure is made again with the same two numbers.

mod requests;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::{Buf, BufMut};
use qbo_sim::{Simulator, SimulatorConfig};
use qbo_sync::proto::v1 as pb;
use requests::{Facts, Gen, Hostile, Rpc, Who};
use sqlx::PgPool;
use tonic::{
    Code,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::{AsciiMetadataValue, BinaryMetadataValue, MetadataValue},
    transport::Channel,
};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::{
    connections_support::token_key,
    helpers::{TEST_TOKEN, TestApp, TestCaller, write_callers},
    push_support::{REALM, TENANT, World, customer},
};

/// Requests sent by `cargo test` (CI); the documented full run sets `HOSTILE_REQUESTS=100000`.
const DEFAULT_REQUESTS: u64 = 20_000;
/// The default seed (any `u64` in `HOSTILE_SEED` replaces it).
const DEFAULT_SEED: u64 = 0x12_5EED;
/// Requests in flight at once (the test server's pool has 5 connections).
const CONCURRENCY: usize = 8;
/// The server's UNAVAILABLE answers: its database is out of reach (here: every pooled
/// connection stayed busy past the 1 s acquire timeout, on a loaded machine), or it sheds load.
const SERVER_UNAVAILABLE: [&str; 2] = [
    "the database is unavailable; retry later",
    "the server is overloaded; retry with backoff",
];
/// A request that takes longer than this counts as hung.
const HUNG: Duration = Duration::from_secs(30);

const OTHER_TENANT: &str = "tenant-other";
const READER_TOKEN: &str = "reader-token-77a1";
const VALIDATOR_TOKEN: &str = "validator-token-19c4";
const OTHER_TOKEN: &str = "other-tenant-token-5be2";

/// Panics on the test's runtime threads (the server's included).
static PANICS: AtomicU64 = AtomicU64::new(0);
const THREAD_NAME: &str = "hostile-rt";

#[test]
fn hostile_requests_are_refused_and_change_nothing() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(THREAD_NAME) {
            PANICS.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(THREAD_NAME)
        .enable_all()
        .build()
        .unwrap()
        .block_on(hostile_run());
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn hostile_run() {
    let seed = env_u64("HOSTILE_SEED", DEFAULT_SEED);
    let count = env_u64("HOSTILE_REQUESTS", DEFAULT_REQUESTS);
    println!("hostile: seed {seed}, {count} requests (HOSTILE_SEED, HOSTILE_REQUESTS)");
    let (world, facts) = seeded_world().await;
    let pool = world.app.db.pool.clone();
    let before = snapshot(&pool).await;

    let started = Instant::now();
    let tally = send_all(&world.app, Arc::new(facts), seed, count).await;
    let elapsed = started.elapsed();
    println!("{}", tally.report(count, elapsed));

    assert!(
        tally.failures.is_empty(),
        "{} requests were answered outside the documented set (seed {seed}); the first:\n{}",
        tally.failures.len(),
        tally
            .failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "the server panicked");
    assert!(!world.app.server.is_finished(), "the server stopped");
    let health = world
        .app
        .health()
        .check(HealthCheckRequest::default())
        .await
        .expect("health answers after the storm")
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);
    probes(&world.app).await;
    let after = snapshot(&pool).await;
    assert_unchanged(&before, &after);

    weird_but_valid_writes(&world, &pool).await;
}

/// The hostile inputs that once got a wrong answer, each sent on its own, and the one limit
/// that is not gRPC's to answer.
async fn probes(app: &TestApp) {
    let probe = |rpc, body: Vec<u8>, metadata| Hostile {
        rpc,
        who: Who::Full,
        metadata,
        body,
        junk: false,
        oversized: false,
    };
    // A review page token forged with a date PostgreSQL cannot hold: was INTERNAL.
    let forged = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        format!("r1:6248000000000000000:{}:{TENANT}", uuid::Uuid::nil()),
    );
    let body = prost::Message::encode_to_vec(&pb::ListReviewItemsRequest {
        tenant_id: TENANT.into(),
        page_size: 0,
        page_token: forged,
    });
    let answer = send(
        app.channel.clone(),
        &probe(Rpc::ListReviewItems, body, vec![]),
    )
    .await;
    assert_eq!(answer.code, Code::InvalidArgument, "{}", answer.message);
    // A string field that is not UTF-8: was INTERNAL (tonic-prost's answer to any bad body).
    let body = vec![0x0a, 0x02, 0xff, 0xfe];
    let answer = send(
        app.channel.clone(),
        &probe(Rpc::UpsertCustomer, body, vec![]),
    )
    .await;
    assert_eq!(answer.code, Code::InvalidArgument, "{}", answer.message);
    assert!(answer.message.contains("UTF-8"), "{}", answer.message);
    // Metadata over HTTP/2's header list limit (16 KB) is refused by HTTP/2 itself with HTTP
    // 431, before gRPC sees the call (so clients read UNKNOWN); the server carries on.
    let huge = vec![("x-hostile", vec![b'h'; 32 * 1024])];
    let body = prost::Message::encode_to_vec(&pb::GetConnectionRequest {
        tenant_id: TENANT.into(),
    });
    let answer = send(
        app.channel.clone(),
        &probe(Rpc::GetConnection, body.clone(), huge),
    )
    .await;
    assert_eq!(answer.code, Code::Unknown, "{}", answer.message);
    assert!(answer.message.contains("431"), "{}", answer.message);
    let answer = send(
        app.channel.clone(),
        &probe(Rpc::GetConnection, body, vec![]),
    )
    .await;
    assert_eq!(answer.code, Code::Ok, "{}", answer.message);
}

// ---- the seeded world ----------------------------------------------------------------------

/// A connected tenant with links, review items, audit events and finished runs, another tenant
/// with customers and no company, and four callers.
async fn seeded_world() -> (World, Facts) {
    let callers = write_callers(&[
        TestCaller {
            name: "test-caller",
            token: TEST_TOKEN,
            scopes: &["validate", "read", "write", "admin"],
            tenants: &["*"],
        },
        TestCaller {
            name: "reader",
            token: READER_TOKEN,
            scopes: &["read"],
            tenants: &["*"],
        },
        TestCaller {
            name: "validator",
            token: VALIDATOR_TOKEN,
            scopes: &["validate"],
            tenants: &[TENANT],
        },
        TestCaller {
            name: "other-tenant",
            token: OTHER_TOKEN,
            scopes: &["validate", "read", "write", "admin"],
            tenants: &[OTHER_TENANT],
        },
    ]);
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let flags = [
        ("--workers", "0"),
        ("--callers-file", callers.to_str().unwrap()),
        ("--qbo-backoff-base", "20ms"),
        ("--qbo-backoff-max", "200ms"),
    ];
    let mut app = TestApp::spawn_against(&sim, Some(&token_key()), &flags).await;
    app.token = Some(TEST_TOKEN.to_owned());
    let world = World { sim, app };
    world.connect().await;

    let qbo_names = [
        "Acme Technology",
        "John Smith (Dallas)",
        "John Smith (Austin)",
        "Granite Peak Dental",
        "Bluewater Marine",
        "O'Brien Plumbing",
        "'; DROP TABLE links;--",
        "100% Organic_Farms",
        "Back\\slash Books",
        "Harbor Freight Lines",
    ];
    let mut names: Vec<String> = qbo_names.iter().map(|n| (*n).to_owned()).collect();
    names.extend((1..=20).map(|i| format!("Customer {i}")));
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let qbo_ids = world.seed(&name_refs);

    let mut digit: Vec<(String, String)> = [
        ("d-acme", "Acme Tech"),
        ("d-smith", "John Smith"),
        ("d-granite", "Granite Peak Dental"),
        ("d-blue", "bluewater marine"),
        ("d-obrien", "OBrien Plumbing"),
        ("d-drop", "'; DROP TABLE links;--"),
        ("d-organic", "100% Organic_Farms"),
        ("d-harbour", "Harbour Freight Lines Inc"),
        ("d-none-1", "Nobody Matches This One"),
        ("d-none-2", "Zyxw Quvt Holdings"),
    ]
    .iter()
    .map(|(i, n)| ((*i).to_owned(), (*n).to_owned()))
    .collect();
    digit.extend((1..=10).map(|i| (format!("d-{i}"), format!("Customer {i}"))));
    report(&world, TENANT, &digit).await;
    let other: Vec<(String, String)> = (1..=5)
        .map(|i| (format!("o-{i}"), format!("Other Customer {i}")))
        .collect();
    report(&world, OTHER_TENANT, &other).await;

    run_sync(&world, false).await;
    // An audit trail with a manual link and an unlink in it, and a dry run with a plan.
    let free = qbo_ids.last().unwrap().clone();
    let mut client = world.app.customers();
    client
        .link_customers(pb::LinkCustomersRequest {
            tenant_id: TENANT.into(),
            digit_customer_id: "d-none-1".into(),
            qbo_customer_id: free,
            reason: "checked by hand".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .unlink_customer(pb::UnlinkCustomerRequest {
            tenant_id: TENANT.into(),
            digit_customer_id: "d-none-1".into(),
            reason: "wrong one".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    run_sync(&world, true).await;

    let facts = facts_of(&world, &digit, &other, qbo_ids).await;
    assert!(
        !facts.linked.is_empty()
            && !facts.unlinked.is_empty()
            && !facts.in_review.is_empty()
            && !facts.review_items.is_empty()
            && facts.runs.len() >= 2
            && facts.issued_tokens.len() == 2,
        "the seeded world lacks something the requests aim at: {facts:?}"
    );
    (world, facts)
}

async fn report(world: &World, tenant: &str, customers: &[(String, String)]) {
    world
        .app
        .customers()
        .batch_upsert_customers(pb::BatchUpsertCustomersRequest {
            tenant_id: tenant.into(),
            customers: customers.iter().map(|(i, n)| customer(i, n)).collect(),
            skip_push: true,
        })
        .await
        .unwrap();
}

/// A link-only full sync (or a dry run), run to its end by hand.
async fn run_sync(world: &World, dry_run: bool) {
    world
        .app
        .customers()
        .trigger_sync(pb::TriggerSyncRequest {
            tenant_id: TENANT.into(),
            mode: pb::SyncMode::Full.into(),
            link_only: true,
            dry_run,
            ..Default::default()
        })
        .await
        .unwrap();
    for _ in 0..10 {
        world.run_jobs().await;
        world.make_jobs_due().await;
    }
    let active: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sync_runs WHERE state NOT IN ('succeeded', 'failed', 'cancelled')",
    )
    .fetch_one(&world.app.db.pool)
    .await
    .unwrap();
    assert_eq!(active, 0, "a seeded sync run did not finish");
}

/// What the seeding made, read back through the API.
async fn facts_of(
    world: &World,
    digit: &[(String, String)],
    other: &[(String, String)],
    qbo_ids: Vec<String>,
) -> Facts {
    let mut client = world.app.customers();
    let mut facts = Facts {
        tenant: TENANT.into(),
        other_tenant: OTHER_TENANT.into(),
        realm: REALM.into(),
        other_customers: other.iter().map(|(i, _)| i.clone()).collect(),
        qbo_ids,
        max_message_bytes: 8 * 1024 * 1024,
        ..Default::default()
    };
    for (id, _) in digit {
        let status = world.status(id).await;
        match status.state() {
            pb::LinkState::Linked => facts.linked.push(id.clone()),
            pb::LinkState::PendingReview => facts.in_review.push(id.clone()),
            _ => facts.unlinked.push(id.clone()),
        }
    }
    let reviews = client
        .list_review_items(pb::ListReviewItemsRequest {
            tenant_id: TENANT.into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    facts.issued_tokens.push(reviews.next_page_token);
    let all = client
        .list_review_items(pb::ListReviewItemsRequest {
            tenant_id: TENANT.into(),
            page_size: 500,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    facts.review_items = all
        .review_items
        .into_iter()
        .map(|r| r.review_item_id)
        .collect();
    let events = client
        .list_link_events(pb::ListLinkEventsRequest {
            tenant_id: TENANT.into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    facts.issued_tokens.push(events.next_page_token);
    facts.issued_tokens.retain(|t| !t.is_empty());
    facts.runs = sqlx::query_scalar("SELECT id::text FROM sync_runs WHERE tenant_id = $1")
        .bind(TENANT)
        .fetch_all(&world.app.db.pool)
        .await
        .unwrap();
    facts
}

// ---- the database before and after ---------------------------------------------------------

/// Every table's row count and a checksum of its rows.
async fn snapshot(pool: &PgPool) -> BTreeMap<String, (i64, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for table in tables {
        let row: (i64, String) = sqlx::query_as(&format!(
            "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '')
             FROM \"{table}\" t"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out.insert(table, row);
    }
    out
}

fn assert_unchanged(
    before: &BTreeMap<String, (i64, String)>,
    after: &BTreeMap<String, (i64, String)>,
) {
    let changed: Vec<String> = before
        .iter()
        .filter(|(table, row)| after.get(*table) != Some(row))
        .map(|(table, (count, _))| {
            let now = after.get(table).map_or(-1, |(c, _)| *c);
            format!("{table}: {count} rows before, {now} after")
        })
        .collect();
    assert!(
        changed.is_empty(),
        "refused requests changed the database: {changed:?}"
    );
    assert_eq!(before.len(), after.len(), "tables appeared or vanished");
}

// ---- sending ---------------------------------------------------------------------------------

/// Sends bytes as they are and reads answers as bytes: one client for every RPC, and junk
/// bodies are possible.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// The answer to one request: its code, its message, and the last message of an OK answer.
struct Answer {
    code: Code,
    message: String,
    body: Option<Vec<u8>>,
}

fn bearer(token: &str) -> AsciiMetadataValue {
    format!("Bearer {token}").parse().unwrap()
}

fn with_credentials(request: &mut tonic::Request<Vec<u8>>, who: Who) {
    let metadata = request.metadata_mut();
    let value = match who {
        Who::Full => bearer(TEST_TOKEN),
        Who::Reader => bearer(READER_TOKEN),
        Who::Validator => bearer(VALIDATOR_TOKEN),
        Who::OtherTenant => bearer(OTHER_TOKEN),
        Who::NoToken => return,
        Who::UnknownToken => bearer("not-a-token-of-anyone"),
        Who::Malformed => "Basic dGVzdDp0ZXN0".parse().unwrap(),
        Who::NotUtf8 => MetadataValue::try_from(&b"Bearer \xff\xfe\xc3\x28token"[..]).unwrap(),
        Who::TwoHeaders => {
            metadata.append("authorization", bearer(TEST_TOKEN));
            bearer(TEST_TOKEN)
        }
    };
    metadata.append("authorization", value);
}

async fn send(channel: Channel, hostile: &Hostile) -> Answer {
    let mut request = tonic::Request::new(hostile.body.clone());
    with_credentials(&mut request, hostile.who);
    for (key, value) in &hostile.metadata {
        if key.ends_with("-bin") {
            request
                .metadata_mut()
                .append_bin(*key, BinaryMetadataValue::from_bytes(value));
        } else if let Ok(value) = AsciiMetadataValue::try_from(value.as_slice()) {
            request.metadata_mut().append(*key, value);
        }
    }
    let path = http::uri::PathAndQuery::try_from(hostile.rpc.path()).unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    let call = async {
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unknown(format!("channel not ready: {e}")))?;
        if hostile.rpc == Rpc::WatchSyncRun {
            let mut stream = grpc
                .server_streaming(request, path, RawCodec)
                .await?
                .into_inner();
            let mut last = None;
            while let Some(message) = stream.message().await? {
                last = Some(message);
            }
            Ok(last.unwrap_or_default())
        } else {
            grpc.unary(request, path, RawCodec)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    match tokio::time::timeout(HUNG, call).await {
        Ok(Ok(body)) => Answer {
            code: Code::Ok,
            message: String::new(),
            body: Some(body),
        },
        Ok(Err(status)) => Answer {
            code: status.code(),
            message: status.message().chars().take(300).collect(),
            body: None,
        },
        Err(_) => Answer {
            code: Code::DeadlineExceeded,
            message: format!("no answer within {HUNG:?}"),
            body: None,
        },
    }
}

/// Why `answer` is wrong for `hostile`, if it is.
fn judge(hostile: &Hostile, answer: &Answer) -> Option<String> {
    let code = answer.code;
    if !hostile.rpc.documented().contains(&code) {
        return Some(format!("{code:?} is not documented for this RPC"));
    }
    let exact = if hostile.who.unauthenticated() {
        Some(Code::Unauthenticated)
    } else if hostile.junk {
        Some(Code::InvalidArgument)
    } else if hostile.oversized {
        Some(Code::OutOfRange)
    } else {
        None
    };
    if let Some(want) = exact.filter(|want| *want != code) {
        return Some(format!("{code:?} where {want:?} is the only right answer"));
    }
    // Only the server's own refusals: a broken connection also reads as UNAVAILABLE.
    if code == Code::Unavailable && !SERVER_UNAVAILABLE.contains(&answer.message.as_str()) {
        return Some("UNAVAILABLE, but not from the server".into());
    }
    if hostile.rpc == Rpc::BatchUpsertCustomers && code == Code::Ok {
        let body = answer.body.as_deref().unwrap_or_default();
        let response = <pb::BatchUpsertCustomersResponse as prost::Message>::decode(body)
            .map_err(|e| e.to_string());
        match response {
            Ok(r)
                if r.results
                    .iter()
                    .all(|x| x.code == Code::InvalidArgument as i32) => {}
            other => return Some(format!("a batch of bad customers was accepted: {other:?}")),
        }
    }
    None
}

/// Codes seen, by RPC, and the requests answered wrongly.
#[derive(Default)]
struct Tally {
    seen: HashMap<(Rpc, Code), u64>,
    failures: Vec<String>,
}

impl Tally {
    fn report(&self, count: u64, elapsed: Duration) -> String {
        let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_rpc: BTreeMap<Rpc, BTreeMap<String, u64>> = BTreeMap::new();
        for ((rpc, code), n) in &self.seen {
            *by_code.entry(format!("{code:?}")).or_default() += n;
            *by_rpc
                .entry(*rpc)
                .or_default()
                .entry(format!("{code:?}"))
                .or_default() += n;
        }
        let mut out = format!(
            "hostile: {count} requests in {:.1} s ({:.0}/s), {} answered outside the documented set\n  by code: {by_code:?}\n",
            elapsed.as_secs_f64(),
            count as f64 / elapsed.as_secs_f64(),
            self.failures.len()
        );
        for (rpc, codes) in by_rpc {
            out.push_str(&format!("  {rpc:?}: {codes:?}\n"));
        }
        out
    }
}

async fn send_all(app: &TestApp, facts: Arc<Facts>, seed: u64, count: u64) -> Tally {
    let next = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (next, tally, facts) = (Arc::clone(&next), Arc::clone(&tally), Arc::clone(&facts));
            let channel = app.channel.clone();
            tokio::spawn(async move {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= count {
                        return;
                    }
                    let hostile = Gen::new(seed, index, &facts).request();
                    let answer = send(channel.clone(), &hostile).await;
                    let verdict = judge(&hostile, &answer);
                    let mut tally = tally.lock().unwrap();
                    *tally.seen.entry((hostile.rpc, answer.code)).or_default() += 1;
                    if let Some(why) = verdict {
                        tally.failures.push(format!(
                            "request {index} ({:?} as {:?}, junk {}, oversized {}): {why}: {}",
                            hostile.rpc,
                            hostile.who,
                            hostile.junk,
                            hostile.oversized,
                            answer.message
                        ));
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a sending task panicked");
    }
    Arc::try_unwrap(tally)
        .ok()
        .expect("every sender is done")
        .into_inner()
        .unwrap()
}

// ---- valid but weird writes -------------------------------------------------------------------

/// Names and ids that are valid, however hostile they look: each is stored exactly, and the
/// ones pushed reach QBO exactly once, under exactly their name.
async fn weird_but_valid_writes(world: &World, pool: &PgPool) {
    let mut weird: Vec<(String, String)> = [
        ("w-drop", "Robert'); DROP TABLE digit_customers;--"),
        ("'; DROP TABLE links;--", "Injection In The Id"),
        ("w-or", "\\' OR 1=1"),
        ("w-quote", "' OR '1'='1"),
        ("w-percent", "100% _Wild_ Cards %"),
        ("w-backslash", "Quill\\\\Ink \\ Pens\\"),
        ("w-qbo", "x' ORDERBY Id STARTPOSITION 1 MAXRESULTS 1 --"),
        ("w-smart", "Zed\u{2019}s \u{2018}Quoted\u{2019} Diner"),
        ("w-rtl", "\u{202E}Evil\u{202C} שלום Ltd"),
        ("w-combining", "Cafe\u{301} Zoe\u{308}"),
        ("w-width", "Ｆｕｌｌｗｉｄｔｈ Trading"),
        ("w-emoji", "Pizza 🍕 & Co"),
        ("w-zero-width", "Zero\u{200B}Width\u{FEFF}"),
    ]
    .iter()
    .map(|(i, n)| ((*i).to_owned(), (*n).to_owned()))
    .collect();
    weird.push(("w-long".into(), "é".repeat(500)));
    let before = snapshot(pool).await;
    let mut client = world.app.customers();
    for (id, name) in &weird {
        let answer = client
            .upsert_customer(pb::UpsertCustomerRequest {
                tenant_id: TENANT.into(),
                customer: Some(customer(id, name)),
                skip_push: true,
            })
            .await
            .unwrap_or_else(|e| panic!("{name:?} was refused: {e:?}"))
            .into_inner();
        assert!(answer.created, "{name:?}");
        let stored: String = sqlx::query_scalar(
            "SELECT display_name FROM digit_customers WHERE tenant_id = $1 AND id = $2",
        )
        .bind(TENANT)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(&stored, name, "stored exactly");
    }
    let after = snapshot(pool).await;
    for (table, row) in &before {
        let now = &after[table];
        if table == "digit_customers" {
            assert_eq!(
                now.0,
                row.0 + weird.len() as i64,
                "one row per weird customer"
            );
        } else {
            assert_eq!(
                now, row,
                "{table} changed by customers recorded without a push"
            );
        }
    }

    // Pushed (new customers of the same names): QBO gets each name exactly once, and finds it
    // again by its quoted name on a repeat.
    let pushed: Vec<(String, String)> = weird[..8]
        .iter()
        .map(|(id, name)| (format!("p-{id}"), name.clone()))
        .collect();
    let qbo_before = world.qbo_count();
    for (id, name) in &pushed {
        assert!(world.upsert_named(id, name).await.push_queued, "{name:?}");
    }
    world.run_jobs().await;
    for (id, name) in &pushed {
        let status = world.status(id).await;
        assert_eq!(
            status.state(),
            pb::LinkState::Linked,
            "{name:?}: {status:?}"
        );
        assert_eq!(
            world.qbo_id(name),
            status.link.unwrap().qbo_customer_id,
            "{name:?}"
        );
    }
    assert_eq!(
        world.qbo_count(),
        qbo_before + pushed.len(),
        "one QBO customer per name"
    );
    for (id, name) in &pushed {
        assert!(!world.upsert_named(id, name).await.created);
    }
    world.run_jobs().await;
    assert_eq!(
        world.qbo_count(),
        qbo_before + pushed.len(),
        "no duplicate on a repeat"
    );
}
