//! Finds a PostgreSQL server for tests, benchmarks and dev mode, or starts a private one.
//!
//! A newcomer's machine may have PostgreSQL installed but not running. Rather than ask them to
//! guess, [`ensure_server`] first tries the configured URL and, when nothing answers there,
//! starts (once, under a file lock shared by every test process) a private cluster in a
//! temporary directory with `initdb` and `pg_ctl`. PostgreSQL refuses to run as root, so as
//! root the cluster runs as the `postgres` system user.

use std::{
    fs::{self, File},
    net::{TcpStream, ToSocketAddrs},
    path::{Path, PathBuf},
    process::Command,
    str::FromStr,
    time::Duration,
};

use anyhow::{Context, bail};
use sqlx::postgres::PgConnectOptions;

/// The URL tried first when `DATABASE_URL` is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The port of the private cluster (override with `QBO_SYNC_PRIVATE_PG_PORT`).
pub const PRIVATE_PORT: u16 = 55_432;

/// Returns the URL of a reachable PostgreSQL server with a superuser, starting a private
/// cluster when `preferred` (or `DATABASE_URL`, or [`DEFAULT_URL`]) does not answer.
///
/// # Errors
/// When no server answers and a private cluster cannot be started (no PostgreSQL binaries,
/// no `postgres` user when running as root, `initdb` or `pg_ctl` failing).
pub fn ensure_server(preferred: Option<&str>) -> anyhow::Result<String> {
    let port = std::env::var("QBO_SYNC_PRIVATE_PG_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(PRIVATE_PORT);
    ensure_server_with(preferred, port)
}

/// [`ensure_server`] with the private cluster on `port`.
///
/// # Errors
/// As [`ensure_server`].
pub fn ensure_server_with(preferred: Option<&str>, port: u16) -> anyhow::Result<String> {
    let url = preferred
        .map(str::to_owned)
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    if answers(&url) {
        return Ok(url);
    }
    let private = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let dir = std::env::temp_dir().join(format!("qbo-sync-pg-{port}"));
    start_private_cluster(&dir, port)
        .with_context(|| format!("no PostgreSQL answers at the configured URL, and a private cluster on port {port} could not be started"))?;
    Ok(private)
}

/// Whether something accepts TCP connections at the URL's host and port.
fn answers(url: &str) -> bool {
    let Ok(options) = PgConnectOptions::from_str(url) else {
        return false;
    };
    let target = format!("{}:{}", options.get_host(), options.get_port());
    let Ok(addrs) = target.to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok())
}

/// Starts (or finds running) a cluster whose files live in `dir` (created, and initialised
/// with `initdb` the first time) on `port`; returns its URL. A data directory kept between
/// runs keeps its data; a lock file left by a killed server is recovered by PostgreSQL itself.
///
/// # Errors
/// When the binaries are missing or `initdb` or `pg_ctl` fail.
pub fn start_cluster_in(dir: &Path, port: u16) -> anyhow::Result<String> {
    start_private_cluster(dir, port)?;
    Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
}

/// Stops the cluster whose files live in `dir`, if it runs (fast shutdown).
///
/// # Errors
/// When `pg_ctl stop` fails on a running cluster.
pub fn stop_cluster_in(dir: &Path) -> anyhow::Result<()> {
    let data = dir.join("data");
    if !data.join("postmaster.pid").exists() {
        return Ok(());
    }
    let bin = postgres_bindir()?;
    run_as_postgres(
        is_root(),
        &bin.join("pg_ctl"),
        &["-D", path_str(&data)?, "-m", "fast", "-w", "stop"],
    )
}

/// The port of the cluster whose files live in `dir` when its server is up and answers (it
/// outlives a killed parent: `pg_ctl` detaches it), from its `postmaster.pid`.
#[must_use]
pub fn running_port(dir: &Path) -> Option<u16> {
    let pid_file = fs::read_to_string(dir.join("data").join("postmaster.pid")).ok()?;
    // Line 4 of postmaster.pid is the port.
    let port: u16 = pid_file.lines().nth(3)?.trim().parse().ok()?;
    answers(&format!("postgres://postgres@127.0.0.1:{port}/postgres")).then_some(port)
}

/// Whether a PostgreSQL server accepts TCP connections at the URL's host and port.
#[must_use]
pub fn server_answers(url: &str) -> bool {
    answers(url)
}

fn start_private_cluster(dir: &Path, port: u16) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Every test process comes here at once; the lock makes exactly one of them start it.
    let lock = File::create(dir.join("start.lock")).context("creating the start lock")?;
    lock.lock().context("taking the start lock")?;
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    if answers(&url) {
        return Ok(());
    }
    let bin = postgres_bindir()?;
    let data = dir.join("data");
    let as_root = is_root();
    if as_root {
        chown_postgres(dir)?;
    }
    if !data.join("PG_VERSION").exists() {
        run_as_postgres(
            as_root,
            &bin.join("initdb"),
            &[
                "-D",
                path_str(&data)?,
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
        )?;
    }
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c max_connections=300",
        path_str(dir)?
    );
    let log = dir.join("server.log");
    run_as_postgres(
        as_root,
        &bin.join("pg_ctl"),
        &[
            "-D",
            path_str(&data)?,
            "-o",
            &options,
            "-l",
            path_str(&log)?,
            "-w",
            "-t",
            "60",
            "start",
        ],
    )?;
    if !answers(&url) {
        bail!(
            "the private cluster started but does not answer; see {}",
            log.display()
        );
    }
    Ok(())
}

/// Stops the private cluster on `port`, if one runs (fast shutdown: sessions are cut).
///
/// # Errors
/// When `pg_ctl stop` fails on a running cluster.
pub fn stop_private_cluster(port: u16) -> anyhow::Result<()> {
    stop_cluster_in(&std::env::temp_dir().join(format!("qbo-sync-pg-{port}")))
}

fn postgres_bindir() -> anyhow::Result<PathBuf> {
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    // Debian keeps the server binaries out of PATH, one directory per major version.
    let mut versions: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .find(|dir| dir.join("initdb").exists())
        .context("PostgreSQL server binaries (initdb, pg_ctl) were not found; install PostgreSQL")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_postgres(dir: &Path) -> anyhow::Result<()> {
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres", path_str(dir)?])
        .status()
        .context("running chown")?;
    if !status.success() {
        bail!(
            "could not give {} to the postgres user (does the user exist?)",
            dir.display()
        );
    }
    Ok(())
}

fn run_as_postgres(as_root: bool, program: &Path, args: &[&str]) -> anyhow::Result<()> {
    let program = path_str(program)?;
    let output = if as_root {
        Command::new("runuser")
            .args(["-u", "postgres", "--", program])
            .args(args)
            .output()
    } else {
        Command::new(program).args(args).output()
    }
    .with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// A fresh, migrated database for one test or benchmark run.
#[derive(Debug, Clone)]
pub struct FreshDatabase {
    /// A pool connected to it.
    pub pool: sqlx::PgPool,
    /// Its URL.
    pub url: String,
    /// Its name.
    pub name: String,
}

/// Creates a new database with every migration applied, on the server [`ensure_server`] finds.
/// Databases left by earlier runs (older than an hour) are dropped on the way.
///
/// # Errors
/// When no server can be reached or started, or creating or migrating the database fails.
pub async fn fresh_database() -> anyhow::Result<FreshDatabase> {
    let admin_url = tokio::task::spawn_blocking(|| ensure_server(None)).await??;
    let admin_options = PgConnectOptions::from_str(&admin_url)?;
    let admin = sqlx::PgPool::connect_with(admin_options.clone()).await?;
    drop_stale_databases(&admin).await;
    let now = chrono::Utc::now().timestamp();
    let name = format!("qbosync_test_{now}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await?;
    admin.close().await;
    let options = admin_options.database(&name);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect_with(options)
        .await?;
    crate::store::MIGRATOR.run(&pool).await?;
    let url = admin_url.rsplit_once('/').map_or_else(
        || admin_url.clone(),
        |(server, _)| format!("{server}/{name}"),
    );
    Ok(FreshDatabase { pool, url, name })
}

async fn drop_stale_databases(admin: &sqlx::PgPool) {
    let cutoff = chrono::Utc::now().timestamp() - 3600;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'qbosync\\_test\\_%'",
    )
    .fetch_all(admin)
    .await
    .unwrap_or_default();
    for name in names {
        let created = name.split('_').nth(2).and_then(|t| t.parse::<i64>().ok());
        if created.is_some_and(|t| t < cutoff) {
            // Best effort: another run may be dropping it too.
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(admin)
                .await;
        }
    }
}
