//! The baseline: PostgreSQL's own `pgbench -S` (select-only: one primary-key read of
//! `pgbench_accounts` per transaction) against a database of its own on the same server, with
//! the same number of clients as the gRPC load, run by the same benchmark. It is the rate of
//! the indexed read the preflight is built on, with nothing of ours in between.

use std::process::Command;

use anyhow::{Context, bail};

/// A pgbench database on the server the service uses.
pub struct Pgbench {
    /// The server's admin URL (to drop the database afterwards).
    admin_url: String,
    name: String,
    url: String,
}

/// What one pgbench run reported.
pub struct Baseline {
    /// Transactions per second, without the initial connection time.
    pub tps: f64,
    /// Its mean latency in milliseconds.
    pub latency_ms: f64,
}

impl Pgbench {
    /// Creates a database on the server of `admin_url` and fills it with `pgbench -i` at
    /// `scale` (100,000 accounts a unit). It is named like the tests' databases, so one that a
    /// killed run leaves behind is dropped by a later run.
    pub async fn prepare(admin_url: &str, scale: u32) -> anyhow::Result<Self> {
        let name = format!(
            "qbosync_test_{}_pgbench_{}",
            chrono::Utc::now().timestamp(),
            uuid::Uuid::new_v4().simple()
        );
        let admin = sqlx::PgPool::connect(admin_url).await?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&admin)
            .await?;
        admin.close().await;
        let (server, _) = admin_url
            .rsplit_once('/')
            .context("the database URL names no database")?;
        let url = format!("{server}/{name}");
        let pgbench = Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
        };
        let scale = scale.to_string();
        pgbench
            .run(&["-i", "-q", "-s", &scale])
            .await
            .context("pgbench -i")?;
        Ok(pgbench)
    }

    /// `pgbench -S -c clients -j clients -T secs -n`: its TPS and mean latency.
    pub async fn select_only(&self, clients: usize, secs: u64) -> anyhow::Result<Baseline> {
        let (clients, secs) = (clients.to_string(), secs.to_string());
        let out = self
            .run(&["-S", "-n", "-c", &clients, "-j", &clients, "-T", &secs])
            .await?;
        let field = |prefix: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(prefix))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
                .with_context(|| format!("no '{prefix}' in pgbench's output:\n{out}"))
        };
        Ok(Baseline {
            tps: field("tps = ")?,
            latency_ms: field("latency average = ")?,
        })
    }

    /// Drops the database.
    pub async fn drop_database(self) -> anyhow::Result<()> {
        let admin = sqlx::PgPool::connect(&self.admin_url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&admin)
        .await?;
        admin.close().await;
        Ok(())
    }

    async fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut command = Command::new("pgbench");
        // libpq takes a URL in place of the database name.
        command.args(args).arg(&self.url);
        let output = tokio::task::spawn_blocking(move || command.output())
            .await?
            .context("running pgbench (is PostgreSQL's client installed?)")?;
        if !output.status.success() {
            bail!(
                "pgbench {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}
