//! SVG line charts of the benchmark (plotters' SVG backend; text is left to the viewer's
//! fonts, so nothing here needs a system font library): medians, with the interquartile
//! range of the measured rounds as an error bar at every point.

use super::results::{Meta, Record};
use super::stats::Stat;
use super::table::{find, strategies};
use plotters::coord::ranged1d::KeyPointHint;
use plotters::prelude::*;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Address spaces of the vCPU-sweep charts (the smallest measured when absent).
const SWEEP_MMS: u32 = 1;

/// A point: the median and the interquartile range drawn as its error bar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub y: f64,
    pub lo: f64,
    pub hi: f64,
}

impl From<Stat> for Point {
    fn from(s: Stat) -> Self {
        Point { y: s.median, lo: s.q1, hi: s.q3 }
    }
}

/// One chart: categories along x, one line per strategy.
pub struct Chart {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub x: Vec<String>,
    /// Strategy name and its point at each category (`None`: no point there).
    pub lines: Vec<(String, Vec<Option<Point>>)>,
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
    let top = chart
        .lines
        .iter()
        .flat_map(|(_, ys)| ys.iter().flatten())
        .fold(0.0, |a: f64, p| a.max(p.hi).max(p.y));
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
    let n_lines = chart.lines.len();
    for (i, (name, ys)) in chart.lines.iter().enumerate() {
        // Earlier lines are wider, so equal values show as stacked bands, not one colour.
        let wider = (n_lines - 1 - i) as u32;
        let style = color(name, i).stroke_width(2 + wider);
        // Each strategy's error bars a little apart from the others'.
        let dx = (i as f64 - (n_lines as f64 - 1.0) / 2.0) * 0.05;
        let bar = color(name, i).stroke_width(1);
        for (x, p) in ys.iter().enumerate().filter_map(|(x, p)| Some((x as f64 + dx, (*p)?))) {
            if p.hi > p.lo {
                let cap = 0.02;
                for seg in [
                    vec![(x, p.lo), (x, p.hi)],
                    vec![(x - cap, p.lo), (x + cap, p.lo)],
                    vec![(x - cap, p.hi), (x + cap, p.hi)],
                ] {
                    ctx.draw_series(std::iter::once(PathElement::new(seg, bar)))
                        .map_err(|e| fail(&e))?;
                }
            }
        }
        // A missing point breaks the line rather than being bridged; only the first piece
        // goes into the legend.
        let pieces = ys.split(Option::is_none).scan(0, |start, run| {
            let first = *start;
            *start += run.len() + 1;
            Some((first..).zip(run.iter().flatten()).map(|(x, p)| (x as f64 + dx, p.y)).collect())
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

/// What a chart plots: file stem, figure key, y description, title, and the phases it is
/// drawn for.
struct Plot {
    stem: &'static str,
    key: &'static str,
    y_desc: &'static str,
    title: &'static str,
    phases: &'static [&'static str],
}

const BOTH: &[&str] = &["realistic", "held"];

const VS_MMS: [Plot; 1] = [Plot {
    stem: "pending_pages_vs_mms",
    key: "peak_waiting_pages",
    y_desc: "peak 64K pages waiting for a grace period",
    title: "pages pending a grace period vs address spaces",
    phases: BOTH,
}];

const VS_CPUS: [Plot; 6] = [
    Plot {
        stem: "cost_vs_cpus",
        key: "cost_ns_per_table",
        y_desc: "retract + reclaim per table (ns)",
        title: "retract cost, free included, vs vCPUs",
        phases: BOTH,
    },
    Plot {
        stem: "cost_ratio_vs_cpus",
        key: "cost_vs_none",
        y_desc: "cost per table / none's (same boot and round)",
        title: "retract cost over none's vs vCPUs",
        phases: BOTH,
    },
    Plot {
        stem: "free_cost_vs_cpus",
        key: "free_ns_per_page",
        y_desc: "reclaim per freed page (ns)",
        title: "free cost per page vs vCPUs",
        phases: BOTH,
    },
    Plot {
        stem: "gp_per_page_vs_cpus",
        key: "gp_per_page",
        y_desc: "grace periods from a page's last deferral to its free",
        title: "grace periods per page vs vCPUs (limit 1)",
        phases: BOTH,
    },
    Plot {
        stem: "page_wait_vs_cpus",
        key: "page_wait_us",
        y_desc: "us from a page's last deferral to its free (guest)",
        title: "deferral-to-free latency vs vCPUs",
        phases: BOTH,
    },
    Plot {
        stem: "walker_throughput_vs_cpus",
        key: "lockless_walks_per_s",
        y_desc: "lockless walks per second by the walker CPUs (guest)",
        title: "walker throughput vs vCPUs",
        phases: &["realistic"],
    },
];

/// Every chart of every mode with results, into `dir`; returns the files written.
pub fn draw_all(records: &[Record], meta: Meta, dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut modes: Vec<&str> = Vec::new();
    for r in records {
        if !modes.contains(&r.mode.as_str()) {
            modes.push(&r.mode);
        }
    }
    let clock = if meta.icount { ", -icount: ns = instructions" } else { "" };
    let mut written = Vec::new();
    for mode in modes {
        let of_mode: Vec<&Record> = records.iter().filter(|r| r.mode == mode).collect();
        let measured = || of_mode.iter().filter(|r| r.values.is_some());
        // The vCPU count with the most address-space counts measured (the largest of those).
        let Some(cpus) = measured()
            .map(|r| r.cpus)
            .max_by_key(|&c| (measured().filter(|r| r.cpus == c).count(), c))
        else {
            continue;
        };
        let sweep_mms = if measured().any(|r| r.mms == SWEEP_MMS) {
            SWEEP_MMS
        } else {
            measured().map(|r| r.mms).min().unwrap_or(SWEEP_MMS)
        };
        let axis = |f: fn(&Record) -> u32, keep: &dyn Fn(&Record) -> bool| {
            let mut v: Vec<u32> = of_mode.iter().filter(|r| keep(r)).map(|r| f(r)).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let mms_axis = axis(|r| r.mms, &|r| r.cpus == cpus);
        let cpus_axis = axis(|r| r.cpus, &|r| r.mms == sweep_mms);
        let names = strategies(records);
        // `cells` are the (vCPUs, address spaces) along x, `x` their labels.
        let chart =
            |p: &Plot, phase: &str, x_desc: &str, note: String, cells: &[(u32, u32)], x| Chart {
                title: format!("{mode} {phase}: {} ({note}{clock})", p.title),
                x_desc: x_desc.into(),
                y_desc: p.y_desc.into(),
                x,
                lines: names
                    .iter()
                    .map(|s| {
                        let ys = cells.iter().map(|&(c, m)| {
                            Some(find(records, (mode, c, m), phase, s)?.stat(p.key)?.into())
                        });
                        (s.to_string(), ys.collect::<Vec<_>>())
                    })
                    .filter(|(_, ys)| ys.iter().any(Option::is_some))
                    .collect(),
            };
        let mut emit = |c: Chart, name: String| -> Result<(), String> {
            let path = dir.join(name);
            draw(&c, &path)?;
            written.push(path);
            Ok(())
        };
        for p in &VS_MMS {
            for phase in p.phases {
                let cells: Vec<_> = mms_axis.iter().map(|&m| (cpus, m)).collect();
                let x = mms_axis.iter().map(u32::to_string).collect();
                let c = chart(p, phase, "address spaces", format!("{cpus} vCPUs"), &cells, x);
                emit(c, format!("{}_{mode}_{phase}.svg", p.stem))?;
            }
        }
        for p in &VS_CPUS {
            for phase in p.phases {
                let cells: Vec<_> = cpus_axis.iter().map(|&c| (c, sweep_mms)).collect();
                let x = cpus_axis.iter().map(u32::to_string).collect();
                let note =
                    format!("{sweep_mms} address space{}", if sweep_mms == 1 { "" } else { "s" });
                let c = chart(p, phase, "vCPUs", note, &cells, x);
                emit(c, format!("{}_{mode}_{phase}.svg", p.stem))?;
            }
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

    fn pt(y: f64) -> Option<Point> {
        Some(Point { y, lo: y - 0.1, hi: y + 0.1 })
    }

    #[test]
    fn draws_titled_svg_with_legend_and_error_bars() {
        let dir = temp_dir("plot");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.svg");
        let chart = Chart {
            title: "radix realistic: retract cost vs vCPUs".into(),
            x_desc: "vCPUs".into(),
            y_desc: "ratio".into(),
            x: vec!["1".into(), "2".into(), "4".into(), "8".into()],
            lines: vec![
                ("none".into(), vec![pt(1.0), pt(1.0), pt(1.0), pt(1.0)]),
                (
                    "bitmap".into(),
                    vec![pt(1.1), None, pt(1.3), Some(Point { y: 1.2, lo: 1.2, hi: 1.2 })],
                ),
            ],
        };
        draw(&chart, &path).unwrap();
        let svg = fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        for text in ["radix realistic: retract cost vs vCPUs", "vCPUs", "\n8\n", "bitmap"] {
            assert!(svg.contains(text), "{text} not in the SVG");
        }
        // Two pieces for bitmap (a gap at 2), one for none; one legend entry each.
        let lines = |style: &str| svg.matches(&format!("stroke=\"{style}\" points")).count();
        assert_eq!(
            lines("#2CA02C\" stroke-width=\"2"),
            3,
            "bitmap: two pieces around the gap at 2, and its legend"
        );
        assert_eq!(lines("#6E6E6E\" stroke-width=\"3"), 2, "none: one line and its legend");
        // Error bars, 1 px: a bar and two caps per point with a range (bitmap's last has none).
        assert_eq!(lines("#6E6E6E\" stroke-width=\"1"), 4 * 3, "none's error bars");
        assert_eq!(lines("#2CA02C\" stroke-width=\"1"), 2 * 3, "bitmap's error bars");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn draws_every_chart_of_a_mode_with_results() {
        let dir = temp_dir("plots");
        let meta = Meta { rounds: 3, icount: false };
        let written = draw_all(&sample(), meta, &dir).unwrap();
        let names: Vec<String> =
            written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        // The hash cell of the sample failed: no hash charts.
        assert_eq!(names.len(), 2 + 5 * 2 + 1, "{names:?}");
        assert_eq!(names[0], "pending_pages_vs_mms_radix_realistic.svg");
        assert!(names.contains(&"cost_ratio_vs_cpus_radix_held.svg".to_string()));
        assert!(names.contains(&"walker_throughput_vs_cpus_radix_realistic.svg".to_string()));
        assert!(names.iter().all(|n| n.contains("_radix_")));
        for path in &written {
            let svg = fs::read_to_string(path).unwrap();
            assert!(svg.len() > 1000 && svg.contains("refcount"), "{}", path.display());
        }
        let svg = fs::read_to_string(dir.join("page_wait_vs_cpus_radix_held.svg")).unwrap();
        assert!(svg.contains("radix held: deferral-to-free latency vs vCPUs (2 address spaces)"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
