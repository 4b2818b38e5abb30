//! The QBO simulator as a process of its own (`qbo-sync sim`), and a client of its admin API.

use std::{process::Stdio, time::Duration};

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
};

/// The URLs and credentials `qbo-sync sim` announces on its first line.
#[derive(Debug, Clone)]
pub struct SimUrls {
    pub base_url: String,
    pub token_url: String,
    pub revoke_url: String,
    pub admin_url: String,
    pub client_id: String,
    pub client_secret: String,
}

/// A running simulator process. Killed when dropped.
pub struct SimProcess {
    pub urls: SimUrls,
    child: Child,
    http: reqwest::Client,
}

/// The per-realm limits the simulator enforces (and the service is told of).
#[derive(Debug, Clone, Copy)]
pub struct SimLimits {
    pub rate_window: Duration,
    pub requests_per_window: u32,
    pub batches_per_window: u32,
}

impl SimProcess {
    /// Starts `qbo-sync sim` with `limits` and reads its announcement.
    pub async fn start(limits: SimLimits) -> anyhow::Result<Self> {
        let mut child = Command::new(super::binary())
            .arg("sim")
            .arg("--rate-window")
            .arg(format!("{}ms", limits.rate_window.as_millis()))
            .arg("--requests-per-window")
            .arg(limits.requests_per_window.to_string())
            .arg("--batches-per-window")
            .arg(limits.batches_per_window.to_string())
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("spawning qbo-sync sim")?;
        let stdout = child.stdout.take().context("the simulator's stdout")?;
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .context("the simulator did not announce itself")??;
        let v: Value = serde_json::from_str(&line).context("the simulator's announcement")?;
        let field = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        let urls = SimUrls {
            base_url: field("base_url"),
            token_url: field("token_url"),
            revoke_url: field("revoke_url"),
            admin_url: field("admin_url"),
            client_id: field("client_id"),
            client_secret: field("client_secret"),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self { urls, child, http })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.urls.admin_url);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin API reachable");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "admin {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The simulator's counters (`SimStats` as JSON).
    pub async fn stats(&self) -> Value {
        self.call(reqwest::Method::GET, "/admin/stats", None).await
    }

    /// Replaces the injected faults (see `qbo_sim::admin_http::faults_from_json`).
    pub async fn set_faults(&self, faults: Value) {
        self.call(reqwest::Method::PUT, "/admin/faults", Some(faults))
            .await;
    }

    /// Every customer of the realm: `(id, name, active)`.
    pub async fn customers(&self, realm: &str) -> Vec<(String, String, bool)> {
        let path = format!("/admin/realms/{realm}/customers");
        let list = self.call(reqwest::Method::GET, &path, None).await;
        list.as_array()
            .expect("a customer list")
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap_or_default().to_owned(),
                    c["name"].as_str().unwrap_or_default().to_owned(),
                    c["active"].as_bool().unwrap_or(true),
                )
            })
            .collect()
    }

    /// Seeds customers with these display names (in chunks, to keep bodies small).
    pub async fn seed_customers(&self, realm: &str, names: &[String]) {
        let path = format!("/admin/realms/{realm}/customers");
        for chunk in names.chunks(5_000) {
            let body: Vec<Value> = chunk.iter().map(|n| json!({"DisplayName": n})).collect();
            self.call(reqwest::Method::POST, &path, Some(Value::Array(body)))
                .await;
        }
    }

    /// A refresh token of a new connection to `realm`.
    pub async fn refresh_token(&self, realm: &str) -> String {
        let path = format!("/admin/realms/{realm}/refresh-token");
        let v = self.call(reqwest::Method::POST, &path, None).await;
        v["refresh_token"].as_str().unwrap().to_owned()
    }

    /// Ends every access token of the realm now.
    pub async fn expire_access_tokens(&self, realm: &str) {
        let path = format!("/admin/realms/{realm}/expire-access-tokens");
        self.call(reqwest::Method::POST, &path, None).await;
    }

    /// Supersedes the realm's refresh tokens, as another client refreshing them would.
    pub async fn supersede_refresh_token(&self, realm: &str) -> String {
        let path = format!("/admin/realms/{realm}/supersede-refresh-token");
        let v = self.call(reqwest::Method::POST, &path, None).await;
        v["refresh_token"].as_str().unwrap().to_owned()
    }

    /// Stops the process.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A counter of the stats by JSON path (`limit_violations.total`), 0 when absent.
pub fn counter(stats: &Value, path: &str) -> u64 {
    path.split('.')
        .fold(stats, |v, key| &v[key])
        .as_u64()
        .unwrap_or(0)
}
