//! A `qbo-sync serve` replica as a real process: started, killed with SIGKILL, stopped with
//! SIGTERM, started again on the same ports.

use std::{
    net::{SocketAddr, TcpListener as StdListener},
    path::PathBuf,
    process::Stdio,
    time::Duration,
};

use anyhow::Context as _;
use tokio::process::{Child, Command};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// What every replica of one chaos environment is started with (`QBO_SYNC_*` variables).
#[derive(Debug, Clone)]
pub struct ReplicaEnv {
    pub vars: Vec<(String, String)>,
    pub log_dir: PathBuf,
}

/// One replica process and the ports it keeps across restarts.
pub struct Replica {
    pub name: String,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub channel: Channel,
    env: ReplicaEnv,
    child: Option<Child>,
    starts: u32,
}

fn free_addr() -> SocketAddr {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

impl Replica {
    /// Starts a replica and waits until it is SERVING.
    pub async fn start(name: &str, env: &ReplicaEnv) -> anyhow::Result<Self> {
        let grpc_addr = free_addr();
        let channel = Endpoint::from_shared(format!("http://{grpc_addr}"))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .connect_lazy();
        let mut replica = Self {
            name: name.to_owned(),
            grpc_addr,
            http_addr: free_addr(),
            channel,
            env: env.clone(),
            child: None,
            starts: 0,
        };
        replica.restart().await?;
        Ok(replica)
    }

    /// Starts the process again (after a kill or a stop) on the same ports.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        assert!(self.child.is_none(), "{} is still running", self.name);
        self.starts += 1;
        let log = self.log_path(self.starts);
        let log = std::fs::File::create(&log).context("the replica's log file")?;
        let child = Command::new(super::binary())
            .arg("serve")
            .envs(self.env.vars.iter().map(|(k, v)| (k, v)))
            .env("QBO_SYNC_GRPC_ADDR", self.grpc_addr.to_string())
            .env("QBO_SYNC_HTTP_ADDR", self.http_addr.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("spawning qbo-sync serve")?;
        self.child = Some(child);
        self.wait_serving(Duration::from_secs(60)).await
    }

    /// Waits until the replica's health is SERVING.
    pub async fn wait_serving(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.health().await == Some(ServingStatus::Serving) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("{} not SERVING within {within:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The overall health, or `None` when the replica does not answer in a second.
    pub async fn health(&self) -> Option<ServingStatus> {
        let mut client = HealthClient::new(self.channel.clone());
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        request.set_timeout(Duration::from_secs(1));
        let answer = tokio::time::timeout(Duration::from_secs(2), client.check(request)).await;
        match answer {
            Ok(Ok(r)) => ServingStatus::try_from(r.into_inner().status).ok(),
            _ => None,
        }
    }

    /// `kill -9`: no drain, no release; its jobs wait for their lease to run out.
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// SIGTERM, then waits for the process to exit (at most `within`); returns its exit
    /// success, or `None` when it had to be killed.
    pub async fn sigterm(&mut self, within: Duration) -> Option<bool> {
        let mut child = self.child.take()?;
        let pid = child.id()?;
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(within, child.wait()).await {
            Ok(Ok(status)) => Some(status.success()),
            _ => {
                let _ = child.kill().await;
                None
            }
        }
    }

    /// The worker's replica id (the prefix of its claim tokens), from its start-up log line.
    pub fn worker_id(&self) -> Option<String> {
        let log = self.log_path(self.starts);
        let text = std::fs::read_to_string(log).ok()?;
        let line = text.lines().find(|l| l.contains("worker pool started"))?;
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let id = v.pointer("/fields/replica").or_else(|| v.get("replica"))?;
        id.as_str().map(str::to_owned)
    }

    fn log_path(&self, start: u32) -> PathBuf {
        self.env.log_dir.join(format!("{}-{start}.log", self.name))
    }
}
