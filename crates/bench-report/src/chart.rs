//! SVG line charts of the benchmarks' points (plotters, SVG backend).

use std::path::Path;

use anyhow::Context as _;
use plotters::{coord::ranged1d::ValueFormatter, prelude::*};

use crate::parse::Chart;

/// How a chart is titled and scaled.
pub struct Look {
    pub title: &'static str,
    pub x: &'static str,
    pub y: &'static str,
    /// Sizes that grow tenfold are read on a logarithmic axis.
    pub log_x: bool,
}

/// The look of the charts the benches draw; an unknown id gets a plain one.
pub fn look(id: &str) -> Look {
    let (title, x, y, log_x) = match id {
        "preflight-latency" => (
            "Preflight latency against offered load (open loop)",
            "offered load (calls per second)",
            "latency (ms)",
            false,
        ),
        "preflight-replicas" => (
            "Preflight throughput by replicas (closed loop)",
            "replicas",
            "calls or transactions per second",
            false,
        ),
        "sync-tenants" => (
            "Tenants' full syncs an hour by replicas (one shared database)",
            "replicas",
            "tenants synced an hour",
            false,
        ),
        "full-sync" => (
            "Full sync time against tenant size, beside QBO's floor",
            "QBO customers = Digit customers",
            "seconds",
            true,
        ),
        "match-time" => (
            "Matcher time against tenant size (one core)",
            "QBO customers",
            "seconds",
            true,
        ),
        "match-memory" => (
            "Matcher peak heap against tenant size",
            "QBO customers",
            "MiB",
            true,
        ),
        _ => ("", "x", "y", false),
    };
    Look {
        title: if title.is_empty() { "chart" } else { title },
        x,
        y,
        log_x,
    }
}

const PALETTE: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(127, 127, 127),
];

/// Draws `chart` into an SVG file at `path`.
///
/// # Errors
/// When the chart has no points or the file cannot be written.
pub fn draw(chart: &Chart, look: &Look, path: &Path) -> anyhow::Result<()> {
    let points = chart.series.iter().flat_map(|(_, s)| s.iter());
    let (mut x_max, mut y_max, mut x_min) = (f64::MIN, 0.0f64, f64::MAX);
    for &(x, y) in points {
        x_max = x_max.max(x);
        x_min = x_min.min(x);
        y_max = y_max.max(y);
    }
    anyhow::ensure!(x_max >= x_min, "no points to draw");
    let y_top = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let root = SVGBackend::new(path, (760, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(plot)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(look.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64);
    if look.log_x {
        let range = (x_min.max(1.0) * 0.8)..(x_max * 1.25);
        let mut ctx = builder
            .build_cartesian_2d(range.log_scale(), 0.0..y_top)
            .map_err(plot)?;
        mesh(&mut ctx, look)?;
        lines(&mut ctx, chart)?;
        legend(&mut ctx)
    } else {
        let pad = ((x_max - x_min) * 0.05).max(0.5);
        let mut ctx = builder
            .build_cartesian_2d((x_min - pad)..(x_max + pad), 0.0..y_top)
            .map_err(plot)?;
        mesh(&mut ctx, look)?;
        lines(&mut ctx, chart)?;
        legend(&mut ctx)
    }?;
    root.present()
        .map_err(plot)
        .with_context(|| format!("writing {}", path.display()))
}

type Ctx<'a, X> =
    ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>;

fn mesh<X: Ranged<ValueType = f64> + ValueFormatter<f64>>(
    ctx: &mut Ctx<'_, X>,
    look: &Look,
) -> anyhow::Result<()> {
    ctx.configure_mesh()
        .x_desc(look.x)
        .y_desc(look.y)
        .x_label_formatter(&|v| number(*v))
        .y_label_formatter(&|v| number(*v))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot)
}

fn lines<X: Ranged<ValueType = f64>>(ctx: &mut Ctx<'_, X>, chart: &Chart) -> anyhow::Result<()> {
    for (k, (name, points)) in chart.series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let mut sorted = points.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        ctx.draw_series(LineSeries::new(
            sorted.iter().copied(),
            color.stroke_width(2),
        ))
        .map_err(plot)?
        .label(name.as_str())
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        ctx.draw_series(
            sorted
                .iter()
                .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
        )
        .map_err(plot)?;
    }
    Ok(())
}

fn legend<X: Ranged<ValueType = f64>>(ctx: &mut Ctx<'_, X>) -> anyhow::Result<()> {
    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(plot)
}

/// An axis label: whole numbers with thousands separators (`100,000`), others with as few
/// decimals as their size needs.
fn number(v: f64) -> String {
    if v.fract().abs() < 1e-9 && v.abs() < 1e15 {
        let digits = format!("{:.0}", v.abs());
        let mut grouped = String::new();
        for (k, c) in digits.chars().enumerate() {
            if k > 0 && (digits.len() - k) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        return if v < 0.0 {
            format!("-{grouped}")
        } else {
            grouped
        };
    }
    let decimals = if v.abs() >= 10.0 { 1 } else { 2 };
    format!("{v:.decimals$}")
}

fn plot<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e:?}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn axis_numbers_read_as_people_write_them() {
        assert_eq!(super::number(100_000.0), "100,000");
        assert_eq!(super::number(1_000.0), "1,000");
        assert_eq!(super::number(999.0), "999");
        assert_eq!(super::number(-12_345.0), "-12,345");
        assert_eq!(super::number(12.5), "12.5");
        assert_eq!(super::number(0.25), "0.25");
    }
}
