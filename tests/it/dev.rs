//! `qbo-sync dev` as a newcomer runs it: no DATABASE_URL, so a private PostgreSQL cluster in
//! its data directory; the demo story answers (sync → linked → preflight ok); Ctrl-C stops
//! PostgreSQL; a second start finds the data of the first; a killed run's server is reused,
//! and a killed server's stale lock is recovered.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use qbo_sync::proto::v1::{self as pb, customer_sync_service_client::CustomerSyncServiceClient};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use tonic::transport::Channel;

use crate::helpers::{AuthChannel, Bearer, eventually};

/// A running `qbo-sync dev`, and what its banner said.
struct Dev {
    child: Child,
    grpc: String,
    token: String,
    banner: String,
}

async fn start_dev(data_dir: &Path) -> Dev {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qbo-sync"))
        .args(["dev", "--data-dir"])
        .arg(data_dir)
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            banner.push_str(&line);
            banner.push('\n');
            if line.starts_with("Ctrl-C stops it") {
                return;
            }
        }
        panic!("dev mode ended before its banner:\n{banner}");
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("the banner within two minutes");
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let field = |label: &str| {
        banner
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no '{label}' in the banner:\n{banner}"))
    };
    Dev {
        grpc: field("gRPC (reflection on)"),
        token: field("caller token"),
        child,
        banner: banner.clone(),
    }
}

impl Dev {
    async fn customers(&self) -> CustomerSyncServiceClient<AuthChannel> {
        let channel = Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap();
        CustomerSyncServiceClient::with_interceptor(channel, Bearer::token(Some(&self.token)))
    }

    async fn link_state(&self, digit: &str) -> pb::LinkState {
        self.customers()
            .await
            .get_link_status(pb::GetLinkStatusRequest {
                tenant_id: "demo".into(),
                digit_customer_id: digit.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .state()
    }

    async fn preflight(&self, digit: &str) -> pb::ValidateInvoiceCustomerResponse {
        self.customers()
            .await
            .validate_invoice_customer(pb::ValidateInvoiceCustomerRequest {
                tenant_id: "demo".into(),
                digit_customer_id: digit.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Ctrl-C (SIGINT), as a person would; waits for a clean exit.
    async fn stop(mut self) {
        signal(self.child.id().unwrap(), "-INT");
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("dev mode stops within a minute")
            .unwrap();
        assert!(status.success(), "{status:?}");
    }
}

fn data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qbo-sync-dev-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn dev_mode_tells_the_story_and_keeps_its_data_between_runs() {
    let dir = data_dir();
    let dev = start_dev(&dir).await;
    assert!(
        dev.banner.contains("a private cluster in"),
        "{}",
        dev.banner
    );
    assert!(dev.banner.contains("seeded with the demo company"));
    dev.customers()
        .await
        .trigger_sync(pb::TriggerSyncRequest {
            tenant_id: "demo".into(),
            mode: pb::SyncMode::Full.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // The worker pool runs the sync: QBO's 'Acme Corp' and Digit's 'ACME corp' meet.
    assert!(
        eventually(Duration::from_secs(60), || async {
            dev.link_state("acme").await == pb::LinkState::Linked
        })
        .await,
        "ACME corp is linked by the sync"
    );
    let preflight = dev.preflight("acme").await;
    assert!(preflight.ok, "{preflight:?}");
    assert_eq!(preflight.qbo_display_name, "Acme Corp");
    dev.stop().await;
    assert!(
        !dir.join("postgres/data/postmaster.pid").exists(),
        "PostgreSQL is stopped with dev mode"
    );

    // The second start reuses the cluster, its data and the company's ids.
    let again = start_dev(&dir).await;
    assert!(
        again.banner.contains("restored from the last run"),
        "{}",
        again.banner
    );
    assert_eq!(again.link_state("acme").await, pb::LinkState::Linked);
    let preflight = again.preflight("acme").await;
    assert!(preflight.ok, "{preflight:?}");
    again.stop().await;

    // A run killed outright leaves its PostgreSQL running: the next start uses it.
    let mut killed = start_dev(&dir).await;
    killed.child.kill().await.unwrap();
    let postmaster = postmaster_pid(&dir).expect("PostgreSQL outlives a killed dev mode");
    let reused = start_dev(&dir).await;
    assert_eq!(reused.link_state("acme").await, pb::LinkState::Linked);
    assert_eq!(postmaster_pid(&dir), Some(postmaster), "the same server");

    // Both killed outright: the lock file names a server that is gone, and is recovered.
    let mut killed = reused;
    killed.child.kill().await.unwrap();
    signal(postmaster, "-KILL");
    assert!(
        eventually(Duration::from_secs(30), || async {
            !Path::new(&format!("/proc/{postmaster}")).exists()
        })
        .await,
        "the server is gone"
    );
    assert!(
        dir.join("postgres/data/postmaster.pid").exists(),
        "a stale lock is left"
    );
    let recovered = start_dev(&dir).await;
    assert_eq!(recovered.link_state("acme").await, pb::LinkState::Linked);
    assert_ne!(postmaster_pid(&dir), Some(postmaster), "a new server");
    recovered.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// The process id in the private cluster's lock file (its first line), if there is one.
fn postmaster_pid(dir: &Path) -> Option<u32> {
    let lock = std::fs::read_to_string(dir.join("postgres/data/postmaster.pid")).ok()?;
    lock.lines().next()?.trim().parse().ok()
}

fn signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} {pid}");
}
