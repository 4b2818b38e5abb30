//! `qbo-sync ctl` end to end: the real binary against a running server pointed at the QBO
//! simulator. Its stdout and stderr are pipes, so it prints progress as lines and no colour.

use std::process::{Command, Stdio};
use std::time::Duration;

use qbo_sim::SimulatorConfig;
use qbo_sync::proto::v1 as pb;
use serde_json::Value;

use crate::{
    helpers::{TEST_TOKEN, TestApp},
    push_support::{TENANT, World, world},
    qbo_harness::REDIRECT,
};

/// What one `ctl` run printed, and its exit code.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    fn assert_ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// The value on the summary line that starts with `label` (`  linked automatically  3`).
    fn counter(&self, label: &str) -> i64 {
        self.stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {label:?} in {}", self.stdout))
    }
}

/// The command for `ctl` against `app`, for `tenant`, with `token`, followed by `args`.
fn command(app: &TestApp, tenant: &str, token: &str, args: &[&str]) -> Command {
    command_at(&format!("http://{}", app.grpc_addr), tenant, token, args)
}

/// The command for `ctl` against the server at `addr`.
fn command_at(addr: &str, tenant: &str, token: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_qbo-sync"));
    command
        .arg("ctl")
        .args(["--addr", addr])
        .args(["--token", token, "--tenant", tenant, "--timeout", "20s"])
        .args(args)
        .env_remove("QBO_SYNC_ADDR")
        .env_remove("QBO_SYNC_TOKEN")
        .env_remove("QBO_SYNC_TENANT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs the command to its end off the runtime (the server shares the test's thread).
async fn finish(mut command: Command) -> Ran {
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("run qbo-sync ctl");
    Ran {
        code: output.status.code().expect("exited"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

async fn ctl(w: &World, args: &[&str]) -> Ran {
    finish(command(&w.app, TENANT, TEST_TOKEN, args)).await
}

/// Runs a `ctl sync …` that follows its run while the test runs the jobs (the server's pool
/// runs none), so every change the client prints came to it through WatchSyncRun.
async fn sync_driven(w: &World, args: &[&str]) -> Ran {
    let mut child = command(&w.app, TENANT, TEST_TOKEN, args).spawn().unwrap();
    for _ in 0..100 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        w.run_jobs().await;
        w.make_jobs_due().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    Ran {
        code: output.status.code().expect("exited"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// QBO has the customers; Digit reports its own, some written differently.
async fn story(w: &World) {
    w.seed(&[
        "Acme Corp",
        "Globex Corporation",
        "Smith & Sons Plumbing",
        "John Smith (Dallas)",
        "John Smith (Austin)",
        "Initech",
    ]);
    let customers = [
        ("d-acme", "acme corp"),
        ("d-globex", "GLOBEX CORP."),
        ("d-smith", "Smith and Sons Plumbing"),
        ("d-john", "John Smith"),
        ("d-new", "Umbrella Pharmaceuticals"),
    ];
    let answer = w
        .app
        .customers()
        .batch_upsert_customers(pb::BatchUpsertCustomersRequest {
            tenant_id: TENANT.into(),
            customers: customers
                .iter()
                .map(|(id, name)| crate::push_support::customer(id, name))
                .collect(),
            skip_push: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.results.iter().all(|r| r.code == 0), "{answer:?}");
}

#[tokio::test]
async fn sync_shows_progress_and_a_summary_then_status_and_history_explain_the_links() {
    let w = world(SimulatorConfig::default(), &[]).await;
    story(&w).await;

    // A dry run prints its plan and changes nothing.
    let dry = sync_driven(&w, &["sync", "--dry-run"]).await;
    dry.assert_ok();
    assert!(dry.stdout.contains("nothing was changed"), "{}", dry.stdout);
    let plan: Vec<Vec<&str>> = dry
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("plan:"))
        .skip(2)
        .map(|l| l.split_whitespace().take(2).collect())
        .collect();
    assert_eq!(
        plan,
        [
            ["d-acme", "link"],
            ["d-globex", "link"],
            ["d-john", "review"],
            ["d-new", "push"],
            ["d-smith", "link"],
        ],
        "{}",
        dry.stdout
    );
    assert_eq!(dry.counter("linked automatically"), 3);
    assert_eq!(w.qbo_count(), 6, "a dry run creates nothing");

    // The real run: one progress line per change on stderr, the summary on stdout.
    let real = sync_driven(&w, &["sync"]).await;
    real.assert_ok();
    let lines: Vec<&str> = real.stderr.lines().collect();
    assert!(lines.len() >= 2, "{}", real.stderr);
    assert!(lines[0].starts_with("queued "), "{}", real.stderr);
    let last = lines.last().unwrap();
    assert!(last.starts_with("succeeded "), "{}", real.stderr);
    assert!(
        last.contains("read 6 QBO · considered 5 · already 0 · linked 3 · review 1 · pushed 1"),
        "{last}"
    );
    let run_id = real
        .stdout
        .strip_prefix("sync run ")
        .and_then(|s| s.split(':').next())
        .expect("the summary names the run")
        .to_owned();
    assert!(
        real.stdout.contains(": succeeded (full)"),
        "{}",
        real.stdout
    );
    assert_eq!(real.counter("QBO customers read"), 6);
    assert_eq!(real.counter("linked automatically"), 3);
    assert_eq!(real.counter("queued for review"), 1);
    assert_eq!(real.counter("created in QBO"), 1);

    // A second run, as a script would read it: everything is in place.
    let again = sync_driven(&w, &["--json", "sync"]).await;
    again.assert_ok();
    assert!(again.stderr.is_empty(), "--json keeps stderr quiet");
    let again = again.json();
    assert_eq!(again["already_running"], false);
    let run = &again["run"];
    assert_eq!(run["state"], "SYNC_RUN_STATE_SUCCEEDED");
    assert_eq!(run["mode"], "SYNC_MODE_FULL");
    assert_eq!(run["already_linked"], 4);
    assert_eq!(run["auto_linked"], 0);
    assert_eq!(run["requested_by"], crate::helpers::TEST_CALLER);
    assert!(run["finished_at"].as_str().unwrap().ends_with('Z'));

    // status, for people and for scripts.
    let acme = w.qbo_id("Acme Corp");
    let status = ctl(&w, &["status", "d-acme"]).await;
    status.assert_ok();
    assert!(
        status.stdout.starts_with("d-acme: linked\n"),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains(&format!("{acme} \"Acme Corp\"")));
    let status = ctl(&w, &["status", "d-acme", "--json"]).await;
    let status = status.assert_ok().json();
    assert_eq!(status["state"], "LINK_STATE_LINKED");
    assert_eq!(status["link"]["qbo_customer_id"], acme.as_str());
    assert_eq!(status["link"]["qbo_display_name"], "Acme Corp");
    assert!(
        status["link"]["method"]
            .as_str()
            .unwrap()
            .starts_with("LINK_METHOD_AUTO_")
    );
    assert_eq!(status["candidates"], Value::Array(vec![]));

    // history names the run that made the link.
    let history = ctl(&w, &["--json", "history", "d-acme"]).await;
    let history = history.assert_ok().json();
    let events = history["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{history}");
    assert_eq!(events[0]["action"], "LINK_EVENT_ACTION_LINK");
    assert_eq!(events[0]["run_id"], run_id.as_str());
    assert_eq!(events[0]["after"]["qbo_customer_id"], acme.as_str());
    assert_eq!(events[0]["before"], Value::Null);
    assert_eq!(history["next_page_token"], "");
    let history = ctl(&w, &["history", "d-acme"]).await;
    history.assert_ok();
    let rows: Vec<&str> = history.stdout.lines().collect();
    assert!(rows[0].starts_with("WHEN "), "{}", history.stdout);
    assert!(
        rows[1].contains(&format!("d-acme    link    {acme}")),
        "{}",
        history.stdout
    );
}

#[tokio::test]
async fn review_validate_link_and_unlink_through_the_cli() {
    // The replica's own pool runs the jobs here: ctl only follows.
    let w = world(SimulatorConfig::default(), &[("--workers", "1")]).await;
    story(&w).await;
    ctl(&w, &["sync"]).await.assert_ok();
    let (dallas, austin) = (
        w.qbo_id("John Smith (Dallas)"),
        w.qbo_id("John Smith (Austin)"),
    );

    let list = ctl(&w, &["--json", "review", "list"]).await;
    let list = list.assert_ok().json();
    let items = list["review_items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let item = items[0]["review_item_id"].as_str().unwrap().to_owned();
    assert_eq!(items[0]["digit_customer_id"], "d-john");
    let candidates: Vec<&str> = items[0]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["qbo_customer_id"].as_str().unwrap())
        .collect();
    assert!(candidates.contains(&dallas.as_str()) && candidates.contains(&austin.as_str()));
    let human = ctl(&w, &["review", "list"]).await;
    assert!(
        human.assert_ok().stdout.starts_with(&item),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("John Smith (Dallas)"));

    // A "no" is an answer, not an error: exit 6 with the problem and what fixes it.
    let no = ctl(&w, &["validate", "d-john"]).await;
    assert_eq!(no.code, 6, "{}{}", no.stdout, no.stderr);
    assert!(
        no.stdout.starts_with("no: pending review\nto fix: "),
        "{}",
        no.stdout
    );
    let no = ctl(&w, &["validate", "d-john", "--json"]).await.json();
    assert_eq!(no["ok"], false);
    assert_eq!(no["problem"], "INVOICE_CUSTOMER_PROBLEM_PENDING_REVIEW");
    assert_eq!(no["review_item_id"], item.as_str());

    let accepted = ctl(
        &w,
        &[
            "review",
            "accept",
            &item,
            &dallas,
            "--reason",
            "same address",
        ],
    )
    .await;
    assert!(
        accepted.assert_ok().stdout.contains("resolved: linked"),
        "{}",
        accepted.stdout
    );
    let ok = ctl(&w, &["validate", "d-john"]).await;
    assert!(ok.assert_ok().stdout.starts_with("ok: "), "{}", ok.stdout);
    assert!(ok.stdout.contains(&dallas));
    assert!(
        ctl(&w, &["review", "list"])
            .await
            .stdout
            .starts_with("no open review items")
    );

    // Unlinked by hand, the preflight says so; linked by hand to the other one, it follows.
    let unlinked = ctl(&w, &["unlink", "d-john", "--reason", "wrong John"]).await;
    assert!(unlinked.assert_ok().stdout.contains(&dallas));
    let no = ctl(&w, &["--json", "validate", "d-john"]).await;
    assert_eq!(no.code, 6);
    assert_eq!(no.json()["problem"], "INVOICE_CUSTOMER_PROBLEM_NOT_LINKED");
    let linked = ctl(
        &w,
        &[
            "--json",
            "link",
            "d-john",
            &austin,
            "--reason",
            "Austin office",
        ],
    )
    .await;
    let linked = linked.assert_ok().json();
    assert_eq!(linked["link"]["qbo_customer_id"], austin.as_str());
    assert_eq!(linked["link"]["method"], "LINK_METHOD_MANUAL");
    assert_eq!(linked["replaced"], Value::Array(vec![]));

    let history = ctl(&w, &["--json", "history", "d-john"]).await.json();
    let trail: Vec<(&str, &str)> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        trail,
        [
            ("LINK_EVENT_ACTION_LINK", "Austin office"),
            ("LINK_EVENT_ACTION_UNLINK", "wrong John"),
            ("LINK_EVENT_ACTION_LINK", "same address"),
        ]
    );
}

#[tokio::test]
async fn connect_upsert_cancel_and_watch_with_their_json_shapes() {
    let w = world(SimulatorConfig::default(), &[]).await;

    // connect, for another tenant, with an authorization code.
    let realm = "9130350000000299";
    let code = w.sim.issue_authorization_code(realm, REDIRECT);
    let connect = command(
        &w.app,
        "tenant-ctl-2",
        TEST_TOKEN,
        &[
            "--json",
            "connect",
            "--realm",
            realm,
            "--environment",
            "sandbox",
            "--code",
            &code,
            "--redirect-uri",
            REDIRECT,
        ],
    );
    let connected = finish(connect).await;
    let connected = connected.assert_ok().json();
    assert_eq!(connected["connection"]["tenant_id"], "tenant-ctl-2");
    assert_eq!(connected["connection"]["realm_id"], realm);
    assert_eq!(
        connected["connection"]["state"],
        "CONNECTION_STATE_CONNECTED"
    );
    assert_eq!(
        connected["connection"]["environment"],
        "QBO_ENVIRONMENT_SANDBOX"
    );
    assert_eq!(connected["previous_realm_id"], "");

    // customers upsert records a customer (not pushed with --skip-push).
    let upserted = ctl(
        &w,
        &[
            "--json",
            "customers",
            "upsert",
            "d-1",
            "--name",
            "Acme Corp",
            "--email",
            "ap@acme.example",
            "--skip-push",
        ],
    )
    .await;
    let upserted = upserted.assert_ok().json();
    assert_eq!(upserted["created"], true);
    assert_eq!(upserted["state"], "LINK_STATE_UNLINKED");
    assert_eq!(upserted["push_queued"], false);
    assert_eq!(upserted["link"], Value::Null);
    let again = ctl(
        &w,
        &[
            "customers",
            "upsert",
            "d-1",
            "--name",
            "Acme Corp",
            "--skip-push",
        ],
    )
    .await;
    assert_eq!(again.assert_ok().stdout, "d-1 updated: unlinked\n");

    // sync --no-wait returns the queued run (no worker runs it); cancel stops it; --watch
    // follows it to its end, which is a "no".
    let started = ctl(&w, &["--json", "sync", "--no-wait", "--link-only"]).await;
    let started = started.assert_ok().json();
    let run_id = started["run"]["run_id"].as_str().unwrap().to_owned();
    assert_eq!(started["run"]["state"], "SYNC_RUN_STATE_QUEUED");
    assert_eq!(started["run"]["link_only"], true);
    let cancelled = ctl(&w, &["--json", "cancel", &run_id]).await;
    assert_eq!(
        cancelled.assert_ok().json()["run"]["state"],
        "SYNC_RUN_STATE_CANCELLED"
    );
    let watched = ctl(&w, &["sync", "--watch", &run_id]).await;
    assert_eq!(watched.code, 6, "{}{}", watched.stdout, watched.stderr);
    assert!(
        watched
            .stdout
            .starts_with(&format!("sync run {run_id}: cancelled (full)"))
    );
    assert!(
        watched.stderr.starts_with("cancelled "),
        "{}",
        watched.stderr
    );
}

#[tokio::test]
async fn failures_print_the_code_and_exit_with_their_own_code() {
    let w = world(SimulatorConfig::default(), &[]).await;

    let missing = ctl(&w, &["status", "d-nobody"]).await;
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    assert!(
        missing.stderr.starts_with("qbo-sync ctl: NOT_FOUND: "),
        "{}",
        missing.stderr
    );
    assert!(missing.stdout.is_empty());

    let bad_token = finish(command(&w.app, TENANT, "not-a-token", &["status", "d-1"])).await;
    assert_eq!(bad_token.code, 5, "{}", bad_token.stderr);
    assert!(
        bad_token.stderr.contains("UNAUTHENTICATED"),
        "{}",
        bad_token.stderr
    );

    let bad_input = ctl(&w, &["status", &"x".repeat(65)]).await;
    assert_eq!(bad_input.code, 2, "{}", bad_input.stderr);
    assert!(
        bad_input.stderr.contains("INVALID_ARGUMENT"),
        "{}",
        bad_input.stderr
    );
    assert!(
        bad_input.stderr.contains("  reason: INVALID_ARGUMENT\n"),
        "{}",
        bad_input.stderr
    );

    let run = ctl(&w, &["--json", "sync", "--no-wait"]).await.json();
    let run_id = run["run"]["run_id"].as_str().unwrap().to_owned();
    ctl(&w, &["cancel", &run_id]).await.assert_ok();
    let ended = ctl(&w, &["cancel", &run_id]).await;
    assert_eq!(ended.code, 5, "{}", ended.stderr);
    assert!(ended.stderr.contains("FAILED_PRECONDITION"));
    assert!(
        ended.stderr.contains("reason: SYNC_RUN_FINISHED"),
        "{}",
        ended.stderr
    );

    let usage = ctl(&w, &["review", "accept", "only-an-item"]).await;
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    let no_tenant = finish(command(&w.app, "", TEST_TOKEN, &["status", "d-1"])).await;
    assert_eq!(no_tenant.code, 2, "{}", no_tenant.stderr);
    assert!(no_tenant.stderr.contains("--tenant"));

    // Nothing listens there: the server is down.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let addr = format!("http://127.0.0.1:{port}");
    let down = finish(command_at(&addr, TENANT, TEST_TOKEN, &["status", "d-1"])).await;
    assert_eq!(down.code, 4, "{}", down.stderr);
    assert!(
        down.stderr.starts_with("qbo-sync ctl: UNAVAILABLE: "),
        "{}",
        down.stderr
    );
}
