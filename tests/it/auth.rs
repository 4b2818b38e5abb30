//! Who may call: bearer tokens against the callers file, scopes and tenants for every RPC of
//! both services, open probes, reloading the file, refusing to start without one, and tokens
//! kept out of the logs.

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use qbo_sync::proto::v1 as pb;
use tonic::{Code, Status};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest,
};
use tonic_types::StatusExt;

use crate::helpers::{
    Bearer, TestApp, TestCaller, build_app, callers_toml, eventually, sha256_hex, write_callers,
};

const ROOT: &str = "tok-root-5b2e";
const T1_ALL: &str = "tok-t1-all-81c0";
const VALIDATOR: &str = "tok-validate-9d4a";
const READER: &str = "tok-read-2f6b";
const ALL_SCOPES: &[&str] = &["validate", "read", "write", "admin"];

fn callers() -> Vec<TestCaller<'static>> {
    vec![
        TestCaller {
            name: "root",
            token: ROOT,
            scopes: ALL_SCOPES,
            tenants: &["*"],
        },
        TestCaller {
            name: "t1-service",
            token: T1_ALL,
            scopes: ALL_SCOPES,
            tenants: &["t1"],
        },
        TestCaller {
            name: "invoices",
            token: VALIDATOR,
            scopes: &["validate"],
            tenants: &["*"],
        },
        TestCaller {
            name: "dashboard",
            token: READER,
            scopes: &["read"],
            tenants: &["*"],
        },
    ]
}

async fn spawn(callers: &[TestCaller<'_>]) -> (TestApp, std::path::PathBuf) {
    let path = write_callers(callers);
    let app = TestApp::spawn_with(&[
        "--callers-file",
        path.to_str().unwrap(),
        "--callers-reload-interval",
        "100ms",
    ])
    .await;
    (app, path)
}

/// Every RPC of both services.
#[derive(Debug, Clone, Copy)]
enum Rpc {
    UpsertCustomer,
    BatchUpsertCustomers,
    TriggerSync,
    GetSyncRun,
    WatchSyncRun,
    CancelSyncRun,
    GetLinkStatus,
    LinkCustomers,
    UnlinkCustomer,
    ListLinkEvents,
    ListReviewItems,
    ResolveReviewItem,
    ValidateInvoiceCustomer,
    ConnectCompany,
    GetConnection,
    DisconnectCompany,
}

const EVERY_RPC: [Rpc; 16] = [
    Rpc::UpsertCustomer,
    Rpc::BatchUpsertCustomers,
    Rpc::TriggerSync,
    Rpc::GetSyncRun,
    Rpc::WatchSyncRun,
    Rpc::CancelSyncRun,
    Rpc::GetLinkStatus,
    Rpc::LinkCustomers,
    Rpc::UnlinkCustomer,
    Rpc::ListLinkEvents,
    Rpc::ListReviewItems,
    Rpc::ResolveReviewItem,
    Rpc::ValidateInvoiceCustomer,
    Rpc::ConnectCompany,
    Rpc::GetConnection,
    Rpc::DisconnectCompany,
];

impl Rpc {
    fn scope(self) -> &'static str {
        match self {
            Rpc::ValidateInvoiceCustomer => "validate",
            Rpc::GetSyncRun
            | Rpc::WatchSyncRun
            | Rpc::GetLinkStatus
            | Rpc::ListLinkEvents
            | Rpc::ListReviewItems => "read",
            Rpc::ConnectCompany | Rpc::GetConnection | Rpc::DisconnectCompany => "admin",
            _ => "write",
        }
    }
}

fn customer(id: &str, name: &str) -> pb::DigitCustomer {
    pb::DigitCustomer {
        id: id.into(),
        display_name: name.into(),
        ..Default::default()
    }
}

/// Calls `rpc` for `tenant` with an otherwise valid request; `run_id` names a sync run.
// `..Default::default()` everywhere: the RPC surface work adds request fields (e.g. `repair`).
#[allow(clippy::needless_update)]
async fn call(
    app: &TestApp,
    bearer: Bearer,
    rpc: Rpc,
    tenant: &str,
    run_id: &str,
) -> Result<(), Status> {
    let mut c = app.customers_with(bearer.clone());
    let mut k = app.connections_with(bearer);
    let tenant_id = tenant.to_owned();
    let run_id = run_id.to_owned();
    match rpc {
        Rpc::UpsertCustomer => c
            .upsert_customer(pb::UpsertCustomerRequest {
                tenant_id,
                customer: Some(customer("c1", "Forged Name")),
                skip_push: true,
            })
            .await
            .map(drop),
        Rpc::BatchUpsertCustomers => c
            .batch_upsert_customers(pb::BatchUpsertCustomersRequest {
                tenant_id,
                customers: vec![customer("c1", "Forged Name")],
                skip_push: true,
            })
            .await
            .map(drop),
        Rpc::TriggerSync => c
            .trigger_sync(pb::TriggerSyncRequest {
                tenant_id,
                mode: pb::SyncMode::Full.into(),
                ..Default::default()
            })
            .await
            .map(drop),
        Rpc::GetSyncRun => c
            .get_sync_run(pb::GetSyncRunRequest { tenant_id, run_id })
            .await
            .map(drop),
        Rpc::WatchSyncRun => c
            .watch_sync_run(pb::WatchSyncRunRequest { tenant_id, run_id })
            .await
            .map(drop),
        Rpc::CancelSyncRun => c
            .cancel_sync_run(pb::CancelSyncRunRequest { tenant_id, run_id })
            .await
            .map(drop),
        Rpc::GetLinkStatus => c
            .get_link_status(pb::GetLinkStatusRequest {
                tenant_id,
                digit_customer_id: "c1".into(),
            })
            .await
            .map(drop),
        Rpc::LinkCustomers => c
            .link_customers(pb::LinkCustomersRequest {
                tenant_id,
                digit_customer_id: "c1".into(),
                qbo_customer_id: "42".into(),
                reason: "same customer".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        Rpc::UnlinkCustomer => c
            .unlink_customer(pb::UnlinkCustomerRequest {
                tenant_id,
                digit_customer_id: "c1".into(),
                reason: "wrong link".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        Rpc::ListLinkEvents => c
            .list_link_events(pb::ListLinkEventsRequest {
                tenant_id,
                page_size: 10,
                // A page token as another tenant's listing would hand out.
                page_token: "ZTE6MTA6".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        Rpc::ListReviewItems => c
            .list_review_items(pb::ListReviewItemsRequest {
                tenant_id,
                page_size: 10,
                // A page token as another tenant's listing would hand out.
                page_token: "eyJ0ZW5hbnQiOiJ0MiIsImFmdGVyIjoxMH0".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        Rpc::ResolveReviewItem => c
            .resolve_review_item(pb::ResolveReviewItemRequest {
                tenant_id,
                review_item_id: uuid::Uuid::new_v4().to_string(),
                decision: pb::ReviewDecision::RejectAll.into(),
                ..Default::default()
            })
            .await
            .map(drop),
        Rpc::ValidateInvoiceCustomer => c
            .validate_invoice_customer(pb::ValidateInvoiceCustomerRequest {
                tenant_id,
                digit_customer_id: "c1".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        Rpc::ConnectCompany => k
            .connect_company(pb::ConnectCompanyRequest {
                tenant_id,
                realm_id: "realm-1".into(),
                environment: pb::QboEnvironment::Sandbox.into(),
                refresh_token: "refresh-token".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        Rpc::GetConnection => k
            .get_connection(pb::GetConnectionRequest { tenant_id })
            .await
            .map(drop),
        Rpc::DisconnectCompany => k
            .disconnect_company(pb::DisconnectCompanyRequest { tenant_id })
            .await
            .map(drop),
    }
}

fn bearer(token: &str) -> Bearer {
    Bearer::token(Some(token))
}

fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// Tenant t2 with a customer, a connection and a queued sync run, made by `root`.
async fn tenant_t2(app: &TestApp) -> String {
    sqlx::query(
        "INSERT INTO connections (tenant_id, realm_id, environment, state)
         VALUES ('t2', 't2-realm', 'sandbox', 'connected')",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let mut root = app.customers_with(bearer(ROOT));
    root.upsert_customer(pb::UpsertCustomerRequest {
        tenant_id: "t2".into(),
        customer: Some(customer("c1", "Secret Customer Of T2")),
        skip_push: true,
    })
    .await
    .unwrap();
    root.trigger_sync(pb::TriggerSyncRequest {
        tenant_id: "t2".into(),
        mode: pb::SyncMode::Full.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .run
    .unwrap()
    .run_id
}

#[tokio::test]
async fn missing_malformed_or_unknown_tokens_are_unauthenticated() {
    let (app, _) = spawn(&callers()).await;
    let headers = [
        None,
        Some("Basic dG9rLXJvb3QtNWIyZQ=="),
        Some("Bearer"),
        Some("Bearer "),
        Some("Bearer two words"),
        Some("tok-root-5b2e"),
        Some("Bearer tok-unknown-0000"),
    ];
    let sample = [
        Rpc::UpsertCustomer,
        Rpc::WatchSyncRun,
        Rpc::GetLinkStatus,
        Rpc::ValidateInvoiceCustomer,
        Rpc::GetConnection,
    ];
    let run_id = uuid::Uuid::new_v4().to_string();
    for header in headers {
        for rpc in sample {
            let bearer = header.map_or_else(|| Bearer::token(None), Bearer::header);
            let status = call(&app, bearer, rpc, "t1", &run_id).await.unwrap_err();
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{rpc:?} {header:?}: {status:?}"
            );
            assert_eq!(reason(&status), "UNAUTHENTICATED");
            for secret in ["tok-unknown-0000", "two words", ROOT, "dG9rLXJvb3Q"] {
                assert!(!status.message().contains(secret), "{}", status.message());
            }
        }
    }
    // The scheme is case-insensitive, as RFC 7235 says.
    let status = call(
        &app,
        Bearer::header(&format!("bearer {ROOT}")),
        Rpc::GetLinkStatus,
        "t1",
        &run_id,
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

#[tokio::test]
async fn a_scope_not_granted_is_permission_denied() {
    let (app, _) = spawn(&callers()).await;
    let run_id = uuid::Uuid::new_v4().to_string();
    for (token, granted) in [(VALIDATOR, "validate"), (READER, "read")] {
        for rpc in EVERY_RPC {
            let result = call(&app, bearer(token), rpc, "t1", &run_id).await;
            if rpc.scope() == granted {
                let code = result.err().map_or(Code::Ok, |s| s.code());
                assert!(
                    !matches!(code, Code::PermissionDenied | Code::Unauthenticated),
                    "{rpc:?} with {granted}: {code:?}"
                );
                continue;
            }
            let status = result.unwrap_err();
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{rpc:?} with {granted}: {status:?}"
            );
            assert_eq!(reason(&status), "PERMISSION_DENIED");
            let wanted = format!("lacks the '{}' scope", rpc.scope());
            assert!(
                status.message().contains(&wanted),
                "{rpc:?}: {}",
                status.message()
            );
        }
    }
}

#[tokio::test]
async fn no_rpc_lets_a_caller_reach_another_tenant() {
    let (app, _) = spawn(&callers()).await;
    let run_id = tenant_t2(&app).await;
    for rpc in EVERY_RPC {
        let status = call(&app, bearer(T1_ALL), rpc, "t2", &run_id)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{rpc:?}: {status:?}");
        assert!(
            status.message().contains("may not act for tenant 't2'"),
            "{rpc:?}: {}",
            status.message()
        );
        assert!(!status.message().contains("Secret"), "{}", status.message());
        // A malformed tenant id is still INVALID_ARGUMENT, before any permission check.
        let status = call(&app, bearer(T1_ALL), rpc, "", &run_id)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{rpc:?}: {status:?}");
        // The caller's own tenant passes authorization (whatever the RPC then answers).
        let own = call(&app, bearer(T1_ALL), rpc, "t1", &run_id).await;
        let code = own.err().map_or(Code::Ok, |s| s.code());
        assert!(
            !matches!(code, Code::PermissionDenied | Code::Unauthenticated),
            "{rpc:?} for t1: {code:?}"
        );
    }
    // Nothing of t2 changed: its customer keeps its name and its run is still queued.
    let name: String = sqlx::query_scalar(
        "SELECT display_name FROM digit_customers WHERE tenant_id = 't2' AND id = 'c1'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(name, "Secret Customer Of T2");
    let (state, requested_by): (String, String) =
        sqlx::query_as("SELECT state, requested_by FROM sync_runs WHERE tenant_id = 't2'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), requested_by.as_str()), ("queued", "root"));
}

#[tokio::test]
async fn health_and_reflection_need_no_token() {
    let (app, _) = spawn(&callers()).await;
    let health = app
        .health()
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await;
    assert!(health.is_ok(), "{health:?}");
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(app.channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    assert!(responses.message().await.unwrap().is_some());
}

async fn answers(app: &TestApp, token: &str) -> Code {
    call(app, bearer(token), Rpc::GetLinkStatus, "t1", "")
        .await
        .err()
        .map_or(Code::Ok, |s| s.code())
}

#[tokio::test]
async fn the_callers_file_is_reloaded_and_a_broken_edit_keeps_the_last_good_set() {
    let (app, path) = spawn(&callers()[..1]).await;
    assert_eq!(answers(&app, ROOT).await, Code::NotFound);
    assert_eq!(answers(&app, READER).await, Code::Unauthenticated);

    // root leaves, dashboard arrives.
    std::fs::write(&path, callers_toml(&callers()[3..])).unwrap();
    let reloaded = eventually(Duration::from_secs(5), || async {
        answers(&app, READER).await == Code::NotFound
    })
    .await;
    assert!(reloaded, "the new caller was never let in");
    assert_eq!(answers(&app, ROOT).await, Code::Unauthenticated);

    // A broken edit (an unknown scope) that would let root back in is ignored.
    let broken = callers_toml(&callers()[..1]).replace("\"admin\"", "\"superuser\"");
    std::fs::write(&path, broken).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(answers(&app, ROOT).await, Code::Unauthenticated);
    assert_eq!(answers(&app, READER).await, Code::NotFound);

    // So is a file that vanished; fixing it takes effect again.
    std::fs::remove_file(&path).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(answers(&app, READER).await, Code::NotFound);
    std::fs::write(&path, callers_toml(&callers()[..1])).unwrap();
    let fixed = eventually(Duration::from_secs(5), || async {
        answers(&app, ROOT).await == Code::NotFound
    })
    .await;
    assert!(fixed, "the fixed file was never loaded");
    assert_eq!(answers(&app, READER).await, Code::Unauthenticated);
}

#[tokio::test]
async fn the_server_refuses_to_start_without_callers_or_with_a_bad_file() {
    let error = build_app(&[])
        .await
        .err()
        .expect("no callers file must refuse");
    let message = format!("{error:#}");
    assert!(message.contains("no callers file"), "{message}");
    assert!(message.contains("--insecure-no-auth"), "{message}");

    let path = write_callers(&callers());
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replacen("\"read\"", "\"raed\"", 1);
    std::fs::write(&path, text).unwrap();
    let error = build_app(&["--callers-file", path.to_str().unwrap()])
        .await
        .err()
        .expect("a bad callers file must refuse");
    let message = format!("{error:#}");
    assert!(
        message.contains("caller 'root': `scopes` holds an unknown scope 'raed'"),
        "{message}"
    );

    let error = build_app(&["--callers-file", "/nonexistent/callers.toml"])
        .await
        .err()
        .expect("a missing callers file must refuse");
    assert!(
        format!("{error:#}").contains("cannot read the callers file"),
        "{error:#}"
    );

    // The binary says so and exits non-zero.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_qbo-sync"))
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .args(["--database-url", "postgres://nobody@127.0.0.1:1/none"])
        .env_remove("QBO_SYNC_CALLERS_FILE")
        .env_remove("QBO_SYNC_INSECURE_NO_AUTH")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no callers file"), "{stderr}");

    let good = write_callers(&callers());
    let error = build_app(&[
        "--callers-file",
        good.to_str().unwrap(),
        "--insecure-no-auth",
    ])
    .await
    .err()
    .expect("both must refuse");
    assert!(format!("{error:#}").contains("choose one"), "{error:#}");
}

#[tokio::test]
async fn insecure_no_auth_lets_every_call_in_as_one_named_caller() {
    let app = TestApp::spawn_with(&["--insecure-no-auth"]).await;
    assert!(app.token.is_none());
    sqlx::query(
        "INSERT INTO connections (tenant_id, realm_id, environment, state)
         VALUES ('t9', 't9-realm', 'sandbox', 'connected')",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let run = app
        .customers()
        .trigger_sync(pb::TriggerSyncRequest {
            tenant_id: "t9".into(),
            mode: pb::SyncMode::Full.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    assert_eq!(run.requested_by, qbo_sync::auth::INSECURE_CALLER);
}

/// A writer into a shared buffer, for the log capture.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread: the server's tasks run where the scoped subscriber is in force.
#[tokio::test(flavor = "current_thread")]
async fn tokens_and_digests_never_reach_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("trace,h2=debug,hyper=debug,tower=debug,sqlx=debug")
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (app, path) = spawn(&callers()).await;
    let unknown = "tok-never-log-me-7777";
    let run_id = uuid::Uuid::new_v4().to_string();
    for bearer in [
        bearer(ROOT),
        bearer(T1_ALL),
        bearer(unknown),
        Bearer::header(&format!("Basic {unknown}")),
    ] {
        for rpc in [Rpc::GetLinkStatus, Rpc::UpsertCustomer, Rpc::WatchSyncRun] {
            let _ = call(&app, bearer.clone(), rpc, "t2", &run_id).await;
        }
    }
    // A broken edit whose bad field holds a token, and a good reload.
    let broken = callers_toml(&callers()).replacen("\"read\"", &format!("\"{unknown}\""), 1);
    std::fs::write(&path, broken).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    std::fs::write(&path, callers_toml(&callers()[..2])).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("callers file not reloaded"),
        "the broken edit was logged"
    );
    assert!(
        logs.contains("callers file reloaded"),
        "the good edit was logged"
    );
    for secret in [ROOT, T1_ALL, VALIDATOR, READER, unknown] {
        assert!(!logs.contains(secret), "a token reached the logs: {secret}");
        assert!(
            !logs.contains(&sha256_hex(secret)),
            "a digest reached the logs: {secret}"
        );
    }
    let _ = std::fs::remove_file(&path);
}
