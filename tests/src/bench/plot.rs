//! SVG line charts of the benchmark (plotters' SVG backend; text is left to the viewer's
//! fonts, so nothing here needs a system font library).

use super::results::Record;
use super::table::{find, strategies};
use plotters::coord::ranged1d::KeyPointHint;
use plotters::prelude::*;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Address spaces of the vCPU-sweep charts (the smallest measured when absent).
const SWEEP_MMS: u32 = 10;

/// One chart: categories along x, one line per strategy.
pub struct Chart {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub x: Vec<String>,
    /// Strategy name and its value at each category (`None`: no point there).
    pub lines: Vec<(String, Vec<Option<f64>>)>,
}

/// An x axis of `n` evenly spaced categories at 0, 1, .., n-1 with a margin either side
/// (address spaces 1/10/100/1000 and vCPUs 1/2/4/8 are both read as categories).
struct Categories(usize);

impl Categories {
    const MARGIN: f64 = 0.3;
}

impl Ranged for Categories {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, (lo, hi): (i32, i32)) -> i32 {
        let Range { start, end } = self.range();
        lo + ((value - start) / (end - start) * f64::from(hi - lo)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _: Hint) -> Vec<f64> {
        (0..self.0).map(|i| i as f64).collect()
    }

    fn range(&self) -> Range<f64> {
        -Self::MARGIN..(self.0 as f64 - 1.0 + Self::MARGIN)
    }
}

/// A fixed colour per strategy, so every chart reads the same.
fn color(strategy: &str, index: usize) -> RGBColor {
    const OTHERS: [RGBColor; 4] = [
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(140, 86, 75),
        RGBColor(23, 190, 207),
    ];
    match strategy {
        "none" => RGBColor(110, 110, 110),
        "refcount" => RGBColor(214, 39, 40),
        "active" => RGBColor(31, 119, 180),
        "bitmap" => RGBColor(44, 160, 44),
        _ => OTHERS[index % OTHERS.len()],
    }
}

/// Draws `chart` into the SVG file `path`.
pub fn draw(chart: &Chart, path: &Path) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let n = chart.x.len().max(1);
    let top =
        chart.lines.iter().flat_map(|(_, ys)| ys.iter().flatten()).fold(0.0, |a: f64, &b| a.max(b));
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let x_range = Categories(n);
    let mut ctx = ChartBuilder::on(&root)
        .caption(&chart.title, ("sans-serif", 22))
        .margin(18)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range, 0.0..top)
        .map_err(|e| fail(&e))?;
    let label = |v: &f64| {
        let i = v.round();
        match chart.x.get(i as usize) {
            Some(text) if (v - i).abs() < 1e-6 && i >= 0.0 => text.clone(),
            _ => String::new(),
        }
    };
    ctx.configure_mesh()
        .x_desc(chart.x_desc.as_str())
        .y_desc(chart.y_desc.as_str())
        .x_label_formatter(&label)
        .y_label_formatter(&|v| super::table::number(*v))
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 14))
        .max_light_lines(2)
        .draw()
        .map_err(|e| fail(&e))?;
    for (i, (name, ys)) in chart.lines.iter().enumerate() {
        // Earlier lines are wider, so equal values show as stacked bands, not one colour.
        let wider = (chart.lines.len() - 1 - i) as u32;
        let style = color(name, i).stroke_width(2 + wider);
        // A missing point breaks the line rather than being bridged; only the first piece
        // goes into the legend.
        let pieces = ys.split(Option::is_none).scan(0, |start, run| {
            let first = *start;
            *start += run.len() + 1;
            Some((first..).zip(run.iter().flatten()).map(|(x, &y)| (x as f64, y)).collect())
        });
        let pieces: Vec<Vec<(f64, f64)>> = pieces.filter(|p: &Vec<_>| !p.is_empty()).collect();
        for (n, piece) in pieces.into_iter().enumerate() {
            let drawn = ctx
                .draw_series(LineSeries::new(piece, style).point_size(3 + wider))
                .map_err(|e| fail(&e))?;
            if n == 0 {
                drawn
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
            }
        }
    }
    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}

/// What a chart plots: file stem, figure key, y description, title.
struct Plot {
    stem: &'static str,
    key: &'static str,
    y_desc: &'static str,
    title: &'static str,
}

const VS_MMS: [Plot; 2] = [
    Plot {
        stem: "retract_cost_vs_mms",
        key: "retract_cost_vs_none",
        y_desc: "retract time per table / none's (same boot)",
        title: "retract cost vs address spaces",
    },
    Plot {
        stem: "pending_pages_vs_mms",
        key: "peak_waiting_pages",
        y_desc: "peak 64K pages waiting for a grace period",
        title: "pages pending a grace period vs address spaces",
    },
];

const VS_CPUS: [Plot; 2] = [
    Plot {
        stem: "gp_latency_vs_cpus",
        key: "defer_to_free_mean_us",
        y_desc: "mean time from pte_free_defer to free (guest us)",
        title: "deferral-to-free latency vs vCPUs",
    },
    Plot {
        stem: "walker_throughput_vs_cpus",
        key: "walker_reads_per_s",
        y_desc: "lockless walker reads per second (guest)",
        title: "walker throughput vs vCPUs",
    },
];

/// Every chart of every mode with results, into `dir`; returns the files written.
pub fn draw_all(records: &[Record], dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut modes: Vec<&str> = Vec::new();
    for r in records {
        if !modes.contains(&r.mode.as_str()) {
            modes.push(&r.mode);
        }
    }
    let mut written = Vec::new();
    for mode in modes {
        let of_mode: Vec<&Record> = records.iter().filter(|r| r.mode == mode).collect();
        let measured = || of_mode.iter().filter(|r| r.values.is_some());
        let Some(cpus) = measured().map(|r| r.cpus).max() else {
            continue;
        };
        let sweep_mms = if measured().any(|r| r.mms == SWEEP_MMS) {
            SWEEP_MMS
        } else {
            measured().map(|r| r.mms).min().unwrap_or(SWEEP_MMS)
        };
        let axis = |f: fn(&Record) -> u32| {
            let mut v: Vec<u32> = of_mode.iter().map(|r| f(r)).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (mms_axis, cpus_axis) = (axis(|r| r.mms), axis(|r| r.cpus));
        let names = strategies(records);
        // `cells` are the (vCPUs, address spaces) along x, `x` their labels.
        let chart = |p: &Plot, x_desc: &str, note: String, cells: Vec<(u32, u32)>, x| Chart {
            title: format!("{mode}: {} ({note})", p.title),
            x_desc: x_desc.into(),
            y_desc: p.y_desc.into(),
            x,
            lines: names
                .iter()
                .map(|s| {
                    let ys = cells.iter().map(|&(c, m)| find(records, (mode, c, m), s)?.get(p.key));
                    (s.to_string(), ys.collect::<Vec<_>>())
                })
                .filter(|(_, ys)| ys.iter().any(Option::is_some))
                .collect(),
        };
        for p in &VS_MMS {
            let cells = mms_axis.iter().map(|&m| (cpus, m)).collect();
            let x = mms_axis.iter().map(u32::to_string).collect();
            let c = chart(p, "address spaces", format!("{cpus} vCPUs"), cells, x);
            let path = dir.join(format!("{}_{mode}.svg", p.stem));
            draw(&c, &path)?;
            written.push(path);
        }
        for p in &VS_CPUS {
            let cells = cpus_axis.iter().map(|&c| (c, sweep_mms)).collect();
            let x = cpus_axis.iter().map(u32::to_string).collect();
            let c = chart(p, "vCPUs", format!("{sweep_mms} address spaces"), cells, x);
            let path = dir.join(format!("{}_{mode}.svg", p.stem));
            draw(&c, &path)?;
            written.push(path);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::super::results::tests::sample;
    use super::*;
    use std::fs;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ptfrag-bench-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn draws_titled_svg_with_legend() {
        let dir = temp_dir("plot");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.svg");
        let chart = Chart {
            title: "radix: retract cost vs address spaces".into(),
            x_desc: "address spaces".into(),
            y_desc: "ratio".into(),
            x: vec!["1".into(), "10".into(), "100".into(), "1000".into()],
            lines: vec![
                ("none".into(), vec![Some(1.0), Some(1.0), Some(1.0), Some(1.0)]),
                ("bitmap".into(), vec![Some(1.1), None, Some(1.3), Some(1.2)]),
            ],
        };
        draw(&chart, &path).unwrap();
        let svg = fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        for text in
            ["radix: retract cost vs address spaces", "address spaces", "\n1000\n", "bitmap"]
        {
            assert!(svg.contains(text), "{text} not in the SVG");
        }
        // Two pieces for bitmap (a gap at 10), one for none; one legend entry each.
        let lines = |style: &str| svg.matches(&format!("stroke=\"{style}\" points")).count();
        assert_eq!(
            lines("#2CA02C\" stroke-width=\"2"),
            3,
            "bitmap: two pieces around the gap at 10, and its legend"
        );
        assert_eq!(lines("#6E6E6E\" stroke-width=\"3"), 2, "none: one line and its legend");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn draws_every_chart_of_a_mode_with_results() {
        let dir = temp_dir("plots");
        let written = draw_all(&sample(), &dir).unwrap();
        let names: Vec<String> =
            written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        // The hash cell of the sample failed: no hash charts.
        assert_eq!(
            names,
            [
                "retract_cost_vs_mms_radix.svg",
                "pending_pages_vs_mms_radix.svg",
                "gp_latency_vs_cpus_radix.svg",
                "walker_throughput_vs_cpus_radix.svg"
            ]
        );
        for path in &written {
            let svg = fs::read_to_string(path).unwrap();
            assert!(svg.len() > 1000 && svg.contains("refcount"), "{}", path.display());
        }
        let svg = fs::read_to_string(&written[2]).unwrap();
        assert!(svg.contains("radix: deferral-to-free latency vs vCPUs (10 address spaces)"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
