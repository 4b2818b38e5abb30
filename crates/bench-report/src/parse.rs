//! Reading one benchmark's captured output: its chart points, and the lines worth keeping.

use std::collections::BTreeMap;

/// One series of a chart: its points in the order the bench printed them.
pub type Series = Vec<(f64, f64)>;

/// A chart's series by name, in the order they first appeared.
#[derive(Debug, Default, PartialEq)]
pub struct Chart {
    pub series: Vec<(String, Series)>,
}

/// What a bench printed, sorted out.
#[derive(Debug, Default, PartialEq)]
pub struct Output {
    /// Charts by id (`chart: <id> | <series> | <x> | <y>` lines).
    pub charts: BTreeMap<String, Chart>,
    /// The report's text: Markdown tables as they are, every other kept line as text.
    pub blocks: Vec<Block>,
}

/// A run of lines of one kind.
#[derive(Debug, PartialEq)]
pub enum Block {
    Table(Vec<String>),
    Text(Vec<String>),
}

/// Sorts a bench's output: chart points out, cargo's and criterion's chatter dropped.
pub fn parse(text: &str) -> Output {
    let mut out = Output::default();
    for line in text.lines() {
        if let Some(point) = line.strip_prefix("chart: ") {
            add_point(&mut out.charts, point);
            continue;
        }
        if is_chatter(line) {
            continue;
        }
        let table = line.trim_start().starts_with('|');
        let line = line.trim_end().to_owned();
        match (out.blocks.last_mut(), table) {
            (Some(Block::Table(lines)), true) | (Some(Block::Text(lines)), false) => {
                lines.push(line);
            }
            (_, true) => out.blocks.push(Block::Table(vec![line])),
            (_, false) => out.blocks.push(Block::Text(vec![line])),
        }
    }
    // Blank lines only separate: drop them at the edges of text blocks, and empty blocks.
    for block in &mut out.blocks {
        if let Block::Text(lines) = block {
            while lines.last().is_some_and(|l| l.is_empty()) {
                lines.pop();
            }
            let leading = lines.iter().take_while(|l| l.is_empty()).count();
            lines.drain(..leading);
        }
    }
    out.blocks
        .retain(|b| !matches!(b, Block::Text(lines) if lines.is_empty()));
    out
}

fn add_point(charts: &mut BTreeMap<String, Chart>, point: &str) {
    let parts: Vec<&str> = point.split('|').map(str::trim).collect();
    let [id, series, x, y] = parts[..] else {
        return;
    };
    let (Ok(x), Ok(y)) = (x.parse::<f64>(), y.parse::<f64>()) else {
        return;
    };
    let chart = charts.entry(id.to_owned()).or_default();
    match chart.series.iter_mut().find(|(name, _)| name == series) {
        Some((_, points)) => points.push((x, y)),
        None => chart.series.push((series.to_owned(), vec![(x, y)])),
    }
}

/// Lines that say nothing about the results: cargo's progress, criterion's progress and
/// outlier counts.
fn is_chatter(line: &str) -> bool {
    let t = line.trim();
    const PREFIXES: [&str; 9] = [
        "Compiling ",
        "Finished ",
        "Running ",
        "Benchmarking ",
        "Gnuplot not found",
        "Found ",
        "Warning: Unable to complete",
        "Blocking waiting for",
        "Downloaded ",
    ];
    PREFIXES.iter().any(|p| t.starts_with(p))
        || (t.contains("%)") && (t.ends_with("mild") || t.ends_with("severe")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_tables_and_text_are_sorted_out_and_chatter_dropped() {
        let text = "   Compiling qbo-sync v0.1.0\n\
                    Benchmarking full/qbo/10000: Warming up\n\
                    seeded in 3.0 s\n\
                    chart: full-sync | qbo-sync | 1000 | 12.5\n\
                    chart: full-sync | floor | 1000 | 10\n\
                    chart: full-sync | qbo-sync | 10000 | 80\n\
                    chart: broken | only | two\n\
                    \n\
                    | mode | rate |\n\
                    | --- | --- |\n\
                    | closed | 12846 |\n\
                    - a note\n\
                    Found 2 outliers among 10 measurements (20.00%)\n\
                      2 (20.00%) high mild\n";
        let out = parse(text);
        let chart = &out.charts["full-sync"];
        assert_eq!(
            chart.series,
            vec![
                ("qbo-sync".to_owned(), vec![(1000.0, 12.5), (10000.0, 80.0)]),
                ("floor".to_owned(), vec![(1000.0, 10.0)]),
            ]
        );
        assert!(
            !out.charts.contains_key("broken"),
            "malformed points are skipped"
        );
        assert_eq!(
            out.blocks,
            vec![
                Block::Text(vec!["seeded in 3.0 s".into()]),
                Block::Table(vec![
                    "| mode | rate |".into(),
                    "| --- | --- |".into(),
                    "| closed | 12846 |".into()
                ]),
                Block::Text(vec!["- a note".into()]),
            ]
        );
    }
}
