//! `bench-report IN DOCS`: turns the captured output of every benchmark (written to `IN` by
//! `scripts/bench-report`, one `<bench>.out` and `<bench>.cmd` each, and `machine.txt`) into
//! `DOCS/benchmarks.md` and its SVG charts in `DOCS/benchmarks/`.

mod chart;
mod parse;

use std::{fmt::Write as _, path::Path};

use anyhow::Context as _;

use parse::{Block, Output};

/// The benches in the report's order, with what each measures against.
const BENCHES: [(&str, &str); 7] = [
    (
        "matching",
        "The matcher alone: 100,000 Digit customers against 10k, 100k and 1M QBO customers on one core, with its peak heap. Goal: 100k × 100k in at most 10 s and 1 GiB.",
    ),
    (
        "decide",
        "One Digit customer decided from the mirror (what the push, GetLinkStatus and the preflight run) on a tenant of 100,000 QBO customers in PostgreSQL, beside one indexed SELECT by name key on the same table. Goal: p99 ≤ 2 ms.",
    ),
    (
        "sync",
        "Full and incremental sync runs of the real service against the simulator with QBO's limits on, each beside the floor those limits allow (the requests the run needs ÷ the rate QBO permits), measured in the same run.",
    ),
    (
        "push",
        "Pushing customers to QBO: creates per minute against the rate QBO's limits allow, one by one and in batches, and fairness between tenants.",
    ),
    (
        "qbo_throughput",
        "The QBO client alone against the simulator: requests per minute against QBO's per-realm limit, with the limiter shared through PostgreSQL.",
    ),
    (
        "batch_upsert",
        "BatchUpsertCustomers of 100,000 customers in batches of 1,000, against a COPY of the same rows into the same table in the same run. Goal: ≥ 0.25× COPY.",
    ),
    (
        "preflight",
        "ValidateInvoiceCustomer and GetLinkStatus on a tenant of 100,000 links against the real `qbo-sync serve` process, beside `pgbench -S` on the same PostgreSQL in the same run. Goals: ≥ 0.5× pgbench's TPS (closed loop), p99 ≤ 5 ms at 2,000 calls a second (open loop).",
    ),
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, docs] = &args[..] else {
        anyhow::bail!("usage: bench-report CAPTURED_DIR DOCS_DIR");
    };
    let (input, docs) = (Path::new(input), Path::new(docs));
    let charts_dir = docs.join("benchmarks");
    std::fs::create_dir_all(&charts_dir)
        .with_context(|| format!("creating {}", charts_dir.display()))?;
    let machine = std::fs::read_to_string(input.join("machine.txt"))
        .context("reading machine.txt (run scripts/bench-report, not this binary alone)")?;
    let mut md = String::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(
        md,
        "Written by `scripts/bench-report` (every benchmark in release, then this report); \
         rerun it to refresh this page and its charts. Each figure stands beside the baseline \
         or floor it is held to, measured in the same run on the same machine. Do not edit by \
         hand.\n"
    )?;
    writeln!(md, "## Machine\n\n```text\n{}\n```\n", machine.trim_end())?;
    for (bench, what) in BENCHES {
        let Ok(text) = std::fs::read_to_string(input.join(format!("{bench}.out"))) else {
            writeln!(md, "## {bench}\n\nNot run in this report.\n")?;
            continue;
        };
        let command = std::fs::read_to_string(input.join(format!("{bench}.cmd")))
            .unwrap_or_else(|_| format!("cargo bench --bench {bench}"));
        let output = parse::parse(&text);
        section(&mut md, bench, what, command.trim(), &output, &charts_dir)?;
    }
    let path = docs.join("benchmarks.md");
    std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn section(
    md: &mut String,
    bench: &str,
    what: &str,
    command: &str,
    output: &Output,
    charts_dir: &Path,
) -> anyhow::Result<()> {
    writeln!(md, "## {bench}\n\n{what}\n\nCommand: `{command}`\n")?;
    for (id, points) in &output.charts {
        let look = chart::look(id);
        let file = format!("{id}.svg");
        chart::draw(points, &look, &charts_dir.join(&file))
            .with_context(|| format!("the chart {id} of {bench}"))?;
        writeln!(md, "![{}](benchmarks/{file})\n", look.title)?;
    }
    for block in &output.blocks {
        match block {
            Block::Table(lines) => writeln!(md, "{}\n", lines.join("\n"))?,
            Block::Text(lines) => writeln!(md, "```text\n{}\n```\n", lines.join("\n"))?,
        }
    }
    Ok(())
}
