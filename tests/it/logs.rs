//! What the server logs through a whole story, read as an operator's log pipeline would: the
//! service's own JSON subscriber (`telemetry::subscriber`) writing into a buffer for this
//! test's thread, on which the server, the worker and the simulator all run. Every line must
//! be JSON; the context fields must be on the lines that need them; no customer name, e-mail
//! or phone at info or above, and no secret at any level.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use qbo_sim::{FaultConfig, SimulatorConfig};
use qbo_sync::{
    config::{LogConfig, LogFormat},
    proto::v1 as pb,
    telemetry,
};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::{
    connections_support::stored_refresh_token_of,
    helpers::TEST_TOKEN,
    push_support::{REALM, TENANT, World, world},
    qbo_harness::cipher,
};

/// Everything written, shared by the writers the subscriber makes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect()
    }
}

/// A field of a line: its own, or one of the spans it happened in (innermost first).
fn field(line: &Value, name: &str) -> Option<String> {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    if let Some(value) = line.get(name) {
        return Some(text(value));
    }
    line["spans"]
        .as_array()?
        .iter()
        .rev()
        .find_map(|span| span.get(name).map(text))
}

fn message(line: &Value) -> &str {
    line["message"].as_str().unwrap_or_default()
}

fn at_info_or_above(line: &Value) -> bool {
    matches!(line["level"].as_str(), Some("INFO" | "WARN" | "ERROR"))
}

/// Customers with names and contact details no log line may show at info.
fn customer(id: &str, name: &str) -> pb::DigitCustomer {
    let slug: String = name
        .chars()
        .filter(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_lowercase();
    pb::DigitCustomer {
        id: id.into(),
        display_name: name.into(),
        email: format!("{slug}@example.org"),
        phone: "+1 555 0142 7731".into(),
        ..Default::default()
    }
}

async fn report(w: &World, c: pb::DigitCustomer, push: bool) {
    w.app
        .customers()
        .upsert_customer(pb::UpsertCustomerRequest {
            tenant_id: TENANT.into(),
            customer: Some(c),
            skip_push: !push,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn json_logs_carry_tenant_realm_run_and_intuit_tid_and_no_customer_data() {
    let capture = Capture::default();
    let config = LogConfig {
        log_format: LogFormat::Json,
        // Our own debug lines too: secrets must not show even there.
        log_filter: "info,qbo_sync=debug".into(),
    };
    let writer = capture.clone();
    let subscriber = telemetry::subscriber(&config, move || writer.clone(), None).unwrap();
    let _logs = tracing::subscriber::set_default(subscriber);

    // Connect (ConnectCompany with an authorization code).
    let w = world(SimulatorConfig::default(), &[]).await;
    let customers = [
        customer("d-seeded", "Zephyrine Quillfeather Atelier"),
        customer("d-pushed", "Thistlewhite Harbour Bakery"),
        customer("d-vendor", "Obsidian Marmoset Supply"),
        customer("d-repair", "Corvid Lantern Foundry"),
        customer("d-flaky", "Saffron Kestrel Works"),
    ];
    w.seed(&["zephyrine quillfeather atelier"]);
    w.sim.add_vendor(REALM, "Obsidian Marmoset Supply", true);

    // Upsert with a push, run by the worker.
    report(&w, customers[1].clone(), true).await;
    w.run_jobs().await;
    // A push QBO fails twice with HTTP 500: logged with its intuit_tid, retried later.
    w.sim.set_faults(FaultConfig {
        server_error_rate: 1.0,
        server_error_status: 500,
        ..FaultConfig::default()
    });
    report(&w, customers[4].clone(), true).await;
    w.run_jobs().await;
    w.sim.set_faults(FaultConfig::default());
    w.make_jobs_due().await;
    w.run_jobs().await;

    // A full sync decides the others (a link, a name held by a vendor).
    for c in [&customers[0], &customers[2]] {
        report(&w, c.clone(), false).await;
    }
    let run = w.full().await;
    let run = w.finish(&run.run_id).await;
    assert_eq!(run.state(), pb::SyncRunState::Succeeded, "{run:?}");

    // A repairing preflight of a customer reported since, not pushed: created now.
    report(&w, customers[3].clone(), false).await;
    let preflight = w
        .app
        .customers()
        .validate_invoice_customer(pb::ValidateInvoiceCustomerRequest {
            tenant_id: TENANT.into(),
            digit_customer_id: "d-repair".into(),
            repair: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(preflight.ok && preflight.repaired, "{preflight:?}");

    let lines = capture.lines();
    let server: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            !l["target"]
                .as_str()
                .unwrap_or_default()
                .starts_with("qbo_sim")
        })
        .collect();
    assert!(server.len() > 20, "too few lines: {}", server.len());

    // Nothing a customer told us, at info or above; no secret anywhere.
    let refresh_token = stored_refresh_token_of(&w.app, TENANT, REALM).await;
    let secrets = [
        TEST_TOKEN.to_owned(),
        w.sim.config().client_secret.clone(),
        refresh_token,
        stored_access_token(&w).await,
    ];
    for line in &server {
        let text = line.to_string();
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret in {text}");
        }
        if at_info_or_above(line) {
            for c in &customers {
                for private in [&c.display_name, &c.email, &c.phone] {
                    assert!(
                        !text.to_lowercase().contains(&private.to_lowercase()),
                        "{private:?} in {text}"
                    );
                }
            }
        }
    }

    let info: Vec<&&Value> = server.iter().filter(|l| at_info_or_above(l)).collect();
    let find = |what: &str, wanted: &dyn Fn(&Value) -> bool| {
        info.iter()
            .copied()
            .copied()
            .find(|l| wanted(l))
            .unwrap_or_else(|| panic!("no {what} line among:\n{}", dump(&info)))
    };
    // The tenant and realm of the connection.
    let connected = find("company connected", &|l| message(l) == "company connected");
    assert_eq!(field(connected, "tenant").as_deref(), Some(TENANT));
    assert_eq!(field(connected, "realm").as_deref(), Some(REALM));
    // Every RPC names its tenant once the handler knows it.
    let rpc = find("rpc finished", &|l| {
        message(l) == "rpc finished"
            && field(l, "rpc").is_some_and(|r| r.ends_with("/UpsertCustomer"))
    });
    assert_eq!(field(rpc, "tenant").as_deref(), Some(TENANT));
    // What a sync run's job logs carries the run id, from the job's span.
    let succeeded = find("sync run succeeded", &|l| {
        message(l) == "sync run succeeded"
    });
    assert_eq!(succeeded["spans"][0]["name"], "job", "{succeeded}");
    assert_eq!(
        succeeded["spans"][0]["run_id"].as_str(),
        Some(run.run_id.as_str())
    );
    assert_eq!(field(succeeded, "tenant").as_deref(), Some(TENANT));
    // A failed QBO call: its intuit_tid (the one the simulator sent), realm and tenant.
    let failed = find("qbo.call.failed", &|l| message(l) == "qbo.call.failed");
    let tid = field(failed, "intuit_tid").unwrap();
    assert!(
        w.sim.requests().iter().any(|r| r.intuit_tid == tid),
        "{tid} was not sent by the simulator"
    );
    assert_eq!(field(failed, "realm").as_deref(), Some(REALM));
    assert_eq!(field(failed, "tenant").as_deref(), Some(TENANT));
    // The push's first call (the lookup before the create) met the 500s.
    assert_eq!(field(failed, "endpoint").as_deref(), Some("qbo.query"));
    assert_eq!(failed["spans"][0]["name"], "job", "{failed}");
    // The retry is logged in the job's span: tenant and job.
    let retry = find("job failed; will retry", &|l| {
        message(l) == "job failed; will retry"
    });
    assert_eq!(field(retry, "tenant").as_deref(), Some(TENANT));
}

/// The access token the server holds now, decrypted from its row.
async fn stored_access_token(w: &World) -> String {
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT access_token_enc FROM connections WHERE tenant_id = $1")
            .bind(TENANT)
            .fetch_one(&w.app.db.pool)
            .await
            .unwrap();
    cipher()
        .open(TENANT, REALM, &sealed)
        .unwrap()
        .expose_secret()
        .to_owned()
}

fn dump(lines: &[&&Value]) -> String {
    lines
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A caller's mistake is the caller's to see in its status, not an operator's error: nothing
/// a client can cause by asking wrongly may log at ERROR (alerts watch that level).
#[tokio::test]
async fn callers_mistakes_are_never_logged_as_errors() {
    let capture = Capture::default();
    let config = LogConfig {
        log_format: LogFormat::Json,
        log_filter: "info".into(),
    };
    let writer = capture.clone();
    let subscriber = telemetry::subscriber(&config, move || writer.clone(), None).unwrap();
    let _logs = tracing::subscriber::set_default(subscriber);
    let w = world(SimulatorConfig::default(), &[]).await;
    w.seed(&["Acme Corp", "Globex Inc"]);
    report(&w, customer("d-1", "Acme Corp"), false).await;
    report(&w, customer("d-2", "Initech"), false).await;
    let run = w.full().await;
    w.finish(&run.run_id).await;
    let qbo_of = |name: &str| {
        w.sim
            .customers(REALM)
            .iter()
            .find(|c| c["DisplayName"] == name)
            .and_then(|c| c["Id"].as_str().map(str::to_owned))
            .unwrap()
    };
    let (acme, globex) = (qbo_of("Acme Corp"), qbo_of("Globex Inc"));
    let link = |digit: &str, qbo: &str| pb::LinkCustomersRequest {
        tenant_id: TENANT.into(),
        digit_customer_id: digit.into(),
        qbo_customer_id: qbo.into(),
        reason: "by hand".into(),
        ..Default::default()
    };
    let mut c = w.app.customers();
    let mut codes = vec![
        // Unknown customers, both sides.
        c.link_customers(link("d-none", &globex)).await.map(drop),
        c.link_customers(link("d-2", "999999")).await.map(drop),
        // A QBO customer linked to another Digit customer already.
        c.link_customers(link("d-2", &acme)).await.map(drop),
        c.unlink_customer(pb::UnlinkCustomerRequest {
            tenant_id: TENANT.into(),
            digit_customer_id: "d-none".into(),
            reason: "by hand".into(),
            ..Default::default()
        })
        .await
        .map(drop),
        c.get_link_status(pb::GetLinkStatusRequest {
            tenant_id: TENANT.into(),
            digit_customer_id: "d-none".into(),
        })
        .await
        .map(drop),
        c.resolve_review_item(pb::ResolveReviewItemRequest {
            tenant_id: TENANT.into(),
            review_item_id: uuid::Uuid::new_v4().to_string(),
            decision: pb::ReviewDecision::RejectAll.into(),
            ..Default::default()
        })
        .await
        .map(drop),
    ];
    let mut admin = w.app.connections();
    codes.push(
        admin
            .disconnect_company(pb::DisconnectCompanyRequest {
                tenant_id: "tenant-never-connected".into(),
            })
            .await
            .map(drop),
    );
    // An authorization code Intuit never issued (the token endpoint answers invalid_grant).
    codes.push(
        admin
            .connect_company(crate::connections_support::by_code(
                "tenant-new",
                "9130350000000999",
                "not-a-code".into(),
            ))
            .await
            .map(drop),
    );
    for (k, answer) in codes.iter().enumerate() {
        let status = answer.as_ref().expect_err("a mistake is refused");
        assert!(
            !matches!(
                status.code(),
                tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::Unavailable
            ),
            "mistake {k}: {status:?}"
        );
    }
    let errors: Vec<String> = capture
        .lines()
        .iter()
        .filter(|l| l["level"] == "ERROR")
        .map(Value::to_string)
        .collect();
    assert!(errors.is_empty(), "logged as errors: {errors:#?}");
}
