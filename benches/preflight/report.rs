//! The run's table (Markdown, so it can be pasted into the README as it is), the machine's
//! load around the runs, and the clean-up.

use crate::{Cpu, load::Outcome, pgbench::Baseline};

/// The goal a row is held to.
#[derive(Clone, Copy)]
pub enum Goal {
    /// Achieved rate at least this share of pgbench's TPS.
    Ratio(f64),
    /// p99 at most `ms` while keeping up with the offered `rate`, every call answered.
    P99 { ms: f64, rate: f64 },
}

/// One line of the table.
pub struct Row {
    cells: Vec<String>,
    /// Calls that answered wrongly.
    pub wrong: u64,
    notes: Vec<String>,
}

fn ms(v: f64) -> String {
    format!("{v:.2}")
}

impl Row {
    /// pgbench's line.
    pub fn baseline(load: &str, base: &Baseline) -> Self {
        Self {
            cells: vec![
                "closed".into(),
                "`pgbench -S`".into(),
                load.into(),
                format!("{:.0}", base.tps),
                format!("{} (mean)", ms(base.latency_ms)),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
                "0".into(),
                "baseline".into(),
            ],
            wrong: 0,
            notes: Vec::new(),
        }
    }

    /// A measured RPC's line, with the CPU time the processes used during it.
    pub fn measured(
        mode: &str,
        rpc: &str,
        load: &str,
        o: Outcome,
        cpu: Cpu,
        base: Option<&Baseline>,
        goal: Option<Goal>,
    ) -> Self {
        let ratio = base.map(|b| o.rate() / b.tps);
        let unsound = o.failed + o.wrong;
        let met = match goal {
            Some(Goal::Ratio(least)) => {
                let ok = ratio.is_some_and(|r| r >= least) && unsound == 0;
                format!("≥ {least}× pgbench: **{}**", yes(ok))
            }
            Some(Goal::P99 { ms, rate }) => {
                let ok = o.ms(0.99) <= ms && o.rate() >= rate * 0.99 && unsound == 0;
                format!("p99 ≤ {ms} ms: **{}**", yes(ok))
            }
            None => "–".into(),
        };
        let calls = (o.ok + unsound).max(1) as f64;
        let failures = o.first_failure.as_ref().map(|f| {
            format!(
                "{mode} {rpc} at {load}: {} calls failed, the first: {f}",
                o.failed
            )
        });
        let wrong = o.first_wrong.as_ref().map(|f| {
            format!(
                "{mode} {rpc} at {load}: {} wrong answers, the first: {f}",
                o.wrong
            )
        });
        let lag = o.send_lag.as_ref().map(|h| {
            format!(
                "{mode} {rpc} at {load}: the pacer sent calls late by p99 {:.2} ms, max {:.2} ms \
                 (counted in the latencies)",
                h.value_at_quantile(0.99) as f64 / 1000.0,
                h.max() as f64 / 1000.0
            )
        });
        Self {
            cells: vec![
                mode.into(),
                rpc.into(),
                load.into(),
                format!("{:.0}", o.rate()),
                ms(o.ms(0.5)),
                ms(o.ms(0.99)),
                ms(o.ms(0.999)),
                format!(
                    "{:.0} / {:.0}",
                    cpu.server * 1e6 / calls,
                    cpu.generator * 1e6 / calls
                ),
                ratio.map_or("–".into(), |r| format!("**{r:.2}**")),
                unsound.to_string(),
                met,
            ],
            wrong: o.wrong,
            notes: failures.into_iter().chain(wrong).chain(lag).collect(),
        }
    }
}

fn yes(ok: bool) -> &'static str {
    if ok { "yes" } else { "no" }
}

/// Prints the table and its notes.
pub fn print(rows: &[Row]) {
    println!(
        "\n| mode | RPC | load | achieved /s | p50 ms | p99 ms | p99.9 ms | CPU µs/call: server \
         / generator | ÷ pgbench TPS | failed | goal |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in rows {
        println!("| {} |", row.cells.join(" | "));
    }
    for note in rows.iter().flat_map(|r| &r.notes) {
        println!("- {note}");
    }
}

/// Prints the machine's load average: the server, the generator and PostgreSQL share its
/// cores with whatever else runs.
pub fn machine(when: &str) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("load average {when}: {} ({cores} cores)", load.join(" "));
}

/// Drops the service's database.
pub async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let admin = sqlx::PgPool::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(())
}
