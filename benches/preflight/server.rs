//! The server under load: the real `qbo-sync serve` binary in a process of its own, so it
//! neither shares a runtime with the load generator nor gets an in-process shortcut, with
//! caller authentication on. It reaches nothing outside this machine: no workers, no automatic
//! sync, and the QBO URLs point at a closed local port (the preflight without repair never
//! calls QBO).

use std::{
    fs::File,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use qbo_sync::proto::v1::customer_sync_service_client::CustomerSyncServiceClient;
use sha2::{Digest, Sha256};
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The caller the load runs as: the invoice service's scope, and `read` for GetLinkStatus.
const CALLER: &str = "load-generator";

/// A CustomerSyncService client whose calls carry the caller's bearer token.
pub type Client = CustomerSyncServiceClient<InterceptedService<Channel, Bearer>>;

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// The running server; dropping it stops the process.
pub struct Server {
    child: Child,
    addr: String,
    bearer: Bearer,
    files: Vec<PathBuf>,
}

impl Server {
    /// Starts `qbo-sync serve` on `database_url` with `pool` pooled connections, a callers
    /// file granting [`CALLER`] the tenant, and waits until its health says SERVING.
    pub async fn start(database_url: &str, tenant: &str, pool: u32) -> anyhow::Result<Self> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let digest: String = Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let run = uuid::Uuid::new_v4().simple();
        let callers = std::env::temp_dir().join(format!("qbo-sync-load-callers-{run}.toml"));
        std::fs::write(
            &callers,
            format!(
                "[[caller]]\nname = \"{CALLER}\"\ntoken_sha256 = \"{digest}\"\n\
                 scopes = [\"validate\", \"read\"]\ntenants = [\"{tenant}\"]\n"
            ),
        )?;
        let log = std::env::temp_dir().join(format!("qbo-sync-load-server-{run}.log"));
        let [grpc, http, closed] = free_ports()?;
        let closed = format!("http://127.0.0.1:{closed}");
        let child = Command::new(env!("CARGO_BIN_EXE_qbo-sync"))
            .arg("serve")
            .args(["--grpc-addr", &format!("127.0.0.1:{grpc}")])
            .args(["--http-addr", &format!("127.0.0.1:{http}")])
            .args(["--db-max-connections", &pool.to_string()])
            .args(["--workers", "0", "--auto-sync-interval", "0"])
            .args(["--qbo-base-url", &closed])
            .args(["--qbo-token-url", &format!("{closed}/token")])
            .args(["--qbo-revoke-url", &format!("{closed}/revoke")])
            .args(["--log-format", "json", "--log-filter", "warn"])
            .arg("--callers-file")
            .arg(&callers)
            .env("DATABASE_URL", database_url)
            .env_remove("QBO_SYNC_INSECURE_NO_AUTH")
            .stdin(Stdio::null())
            .stdout(File::create(&log)?)
            .stderr(File::create(&log)?)
            .spawn()
            .context("starting qbo-sync serve")?;
        let mut server = Self {
            child,
            addr: format!("http://127.0.0.1:{grpc}"),
            bearer: Bearer(format!("Bearer {token}").parse()?),
            files: vec![callers, log],
        };
        server.wait_serving().await?;
        Ok(server)
    }

    /// `connections` HTTP/2 connections to the server.
    pub async fn channels(&self, connections: usize) -> anyhow::Result<Vec<Channel>> {
        let mut channels = Vec::with_capacity(connections);
        for _ in 0..connections {
            channels.push(Channel::from_shared(self.addr.clone())?.connect().await?);
        }
        Ok(channels)
    }

    /// A client over `channel` that authenticates as the load's caller.
    pub fn client(&self, channel: Channel) -> Client {
        CustomerSyncServiceClient::with_interceptor(channel, self.bearer.clone())
    }

    /// CPU time the server process has used so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&self.child.id().to_string())
    }

    async fn wait_serving(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("qbo-sync serve exited with {status}:\n{}", self.log_tail());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "qbo-sync serve not SERVING after 60 s:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(channel) = Channel::from_shared(self.addr.clone())?.connect().await {
                let answer = HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await;
                if answer.is_ok_and(|a| a.into_inner().status() == ServingStatus::Serving) {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.files[1]).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Three distinct ports nothing listens on now (held together while chosen).
fn free_ports() -> anyhow::Result<[u16; 3]> {
    let held = [
        TcpListener::bind("127.0.0.1:0")?,
        TcpListener::bind("127.0.0.1:0")?,
        TcpListener::bind("127.0.0.1:0")?,
    ];
    let port = |l: &TcpListener| l.local_addr().map(|a| a.port());
    Ok([port(&held[0])?, port(&held[1])?, port(&held[2])?])
}

/// CPU time (user and system) process `pid` (or `self`) has used so far, in seconds.
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) in parentheses; utime and
    // stime are the 14th and 15th fields, in clock ticks (100 a second).
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}
