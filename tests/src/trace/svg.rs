//! The dump as an SVG timeline, one panel per page-table page that had a table deferred, each
//! on its own time axis (microseconds from the page's first deferral). A panel's lanes, top
//! to bottom: the grace periods (shared by every page: the ones that overlap the panel, with a
//! tick for each quiescent-state report), each CPU's traced read sections (the one that held
//! a table of this page drawn darker), the page's `rcu_head` (queued from `call_rcu` to its
//! callback, then the callback), a lane per deferred fragment with its deferral, and the
//! real free. Written as SVG text; every shape has a `<title>` a browser shows on hover.

use super::{page_of, site_name, Dump, PageLife, Timeline};
use ptfrag_core::trace::{Kind, ReadSite};
use std::fmt::Write;

const W: f64 = 960.0;
/// Lane labels left of the plot.
const LABEL: f64 = 190.0;
const RIGHT: f64 = 24.0;
const LANE: f64 = 18.0;
const GAP: f64 = 5.0;
/// Header above a panel's lanes, axis below them.
const HEAD: f64 = 28.0;
const AXIS: f64 = 34.0;
/// Most fragments given a lane each; more share one.
const FRAG_LANES: usize = 8;

const GP_FILL: [&str; 2] = ["#c6dbef", "#9ecae1"];
const HELD: &str = "#fd8d3c";
const READ: &str = "#d9d9d9";
const QUEUED: &str = "#9e9ac8";
const CALLBACK: &str = "#54278f";
const DEFER: &str = "#e6550d";
const FREE: &str = "#cb181d";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A panel's time axis: timebase to x.
struct Axis {
    lo: u64,
    hi: u64,
    /// Time 0 of the labels (the page's first deferral).
    zero: u64,
    tb_hz: f64,
}

impl Axis {
    fn x(&self, tb: u64) -> f64 {
        let tb = tb.clamp(self.lo, self.hi);
        LABEL + (tb - self.lo) as f64 / (self.hi - self.lo).max(1) as f64 * (W - LABEL - RIGHT)
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        start <= self.hi && end >= self.lo
    }

    /// Microseconds from time 0.
    fn us(&self, tb: u64) -> f64 {
        (tb as f64 - self.zero as f64) * 1e6 / self.tb_hz
    }
}

/// A round step (1, 2 or 5 times a power of ten) giving about `n` ticks over `range`.
fn step(range: f64, n: f64) -> f64 {
    let raw = (range / n).max(1e-9);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * p).find(|s| *s >= raw).unwrap_or(10.0 * p)
}

fn fmt_us(us: f64, step: f64) -> String {
    // A tick at 0 computed as -1e-13 would print as "-0".
    let us = if us.abs() < step / 2.0 { 0.0 } else { us };
    if step >= 1000.0 {
        format!("{:.0} ms", us / 1000.0)
    } else if step >= 100.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// `us` microseconds, in ms from 1 ms on.
fn duration(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

struct Svg {
    out: String,
}

impl Svg {
    fn rect(&mut self, x0: f64, x1: f64, y: f64, h: f64, fill: &str, title: &str) {
        let w = (x1 - x0).max(1.5);
        let _ = writeln!(
            self.out,
            r#"<rect x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{fill}"><title>{}</title></rect>"#,
            esc(title)
        );
    }

    fn text(&mut self, x: f64, y: f64, s: &str, attrs: &str) {
        let _ = writeln!(self.out, r#"<text x="{x:.1}" y="{y:.1}" {attrs}>{}</text>"#, esc(s));
    }

    /// The first of `labels` that fits inside a span (about 6 px a character at 10 px).
    fn label_in(&mut self, x0: f64, x1: f64, y: f64, labels: &[&str], color: &str) {
        if let Some(s) = labels.iter().find(|s| x1 - x0 > 6.0 * s.chars().count() as f64 + 4.0) {
            self.text(x0 + 3.0, y + LANE - 5.0, s, &format!(r#"font-size="10" fill="{color}""#));
        }
    }

    fn diamond(&mut self, x: f64, y: f64, fill: &str, title: &str) {
        let (c, r) = (y + LANE / 2.0, LANE / 2.0 - 1.0);
        let _ = writeln!(
            self.out,
            r#"<path d="M{x:.1} {:.1} L{:.1} {c:.1} L{x:.1} {:.1} L{:.1} {c:.1} Z" fill="{fill}"><title>{}</title></path>"#,
            c - r,
            x + r,
            c + r,
            x - r,
            esc(title)
        );
    }

    fn lane_label(&mut self, y: f64, s: &str) {
        self.text(LABEL - 8.0, y + LANE - 5.0, s, r#"font-size="11" text-anchor="end""#);
        let _ = writeln!(
            self.out,
            r##"<line x1="{LABEL}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#eeeeee"/>"##,
            y + LANE,
            W - RIGHT,
            y + LANE
        );
    }
}

/// The whole picture.
pub fn timeline(d: &Dump, t: &Timeline) -> String {
    let pages: Vec<&PageLife> = t.deferred_pages().collect();
    let lanes = |p: &PageLife| {
        let frags = distinct_frags(p).len();
        let frag_lanes = if frags > FRAG_LANES { 1 } else { frags.max(1) };
        1 + d.cpus as usize + 1 + frag_lanes + 1
    };
    let panel_h = |p: &PageLife| HEAD + lanes(p) as f64 * (LANE + GAP) + AXIS;
    let top = 92.0;
    let height = top + pages.iter().map(|p| panel_h(p)).sum::<f64>() + 10.0;
    let mut s = Svg { out: String::new() };
    let _ = writeln!(
        s.out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height:.0}" viewBox="0 0 {W} {height:.0}" font-family="sans-serif">"#
    );
    s.out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    s.text(
        12.0,
        22.0,
        &format!(
            "pte_free_defer={} mmu={}: what happened to each page-table page with a table deferred",
            d.strategy, d.mmu
        ),
        r#"font-size="15" font-weight="bold""#,
    );
    s.text(
        12.0,
        40.0,
        &format!(
            "{} page-table page(s) with tables deferred, {} call_rcu, {} grace periods; {} CPUs, \
             timebase {} MHz, {} records ({} dropped); times from each page's first deferral",
            pages.len(),
            d.count(Kind::CallRcu),
            t.gps.len(),
            d.cpus,
            d.tb_hz / 1_000_000,
            d.events.len(),
            d.dropped
        ),
        r##"font-size="11" fill="#555555""##,
    );
    legend(&mut s, 60.0);
    let mut y = top;
    for p in &pages {
        panel(&mut s, d, t, p, y);
        y += panel_h(p);
    }
    s.out.push_str("</svg>\n");
    s.out
}

fn legend(s: &mut Svg, y: f64) {
    let items: [(&str, &str, bool); 7] = [
        (GP_FILL[1], "grace period", false),
        (HELD, "read section holding a table of the page", false),
        (READ, "other read section", false),
        (QUEUED, "rcu_head queued", false),
        (CALLBACK, "callback", false),
        (DEFER, "deferral", true),
        (FREE, "real free", false),
    ];
    let mut x = 12.0;
    for (color, what, diamond) in items {
        if diamond {
            s.diamond(x + 6.0, y - 2.0, color, what);
        } else {
            s.rect(x, x + 12.0, y + 2.0, 12.0, color, what);
        }
        s.text(x + 16.0, y + 12.0, what, r#"font-size="10""#);
        x += 16.0 + 5.6 * what.len() as f64 + 14.0;
    }
}

fn distinct_frags(p: &PageLife) -> Vec<u64> {
    let mut f: Vec<u64> = p.defers.iter().map(|d| d.frag).collect();
    f.sort_unstable();
    f.dedup();
    f
}

fn panel(s: &mut Svg, d: &Dump, t: &Timeline, p: &PageLife, y0: f64) {
    // The page's own records and the read sections that held one of its tables (a section
    // that outlives the free is what a broken strategy looks like).
    let (lo, hi) = t
        .reads
        .iter()
        .filter(|r| r.end_a != 0 && page_of(r.end_a) == p.page)
        .fold(p.window(), |(lo, hi), r| (lo.min(r.start), hi.max(r.end)));
    let first_defer = p.defers.iter().map(|d| d.tb).min().unwrap_or(lo);
    let pad = ((hi - lo) / 16).max(d.tb_hz / 1_000_000 * 20);
    let ax =
        Axis { lo: lo.saturating_sub(pad), hi: hi + pad, zero: first_defer, tb_hz: d.tb_hz as f64 };
    let us = |tb: u64| ax.us(tb);
    let freed = match p.frees.first() {
        Some(&(tb, _)) => format!("freed {} after its first deferral", duration(us(tb))),
        None => "not freed within the trace".into(),
    };
    s.text(
        12.0,
        y0 + 18.0,
        &format!(
            "page {:#x}: {} deferral(s), head queued {}×, {freed}",
            p.page,
            p.defers.len(),
            p.queued.len()
        ),
        r#"font-size="12" font-weight="bold""#,
    );
    let mut y = y0 + HEAD;

    // Grace periods, with a tick per quiescent-state report.
    s.lane_label(y, "grace periods");
    for g in t.gps.iter().filter(|g| ax.overlaps(g.start, g.end)) {
        let (x0, x1) = (ax.x(g.start), ax.x(g.end));
        let title = format!(
            "gp {}: {:.0} to {:.0} µs, waited for cpus {:#x}{}",
            g.seq,
            us(g.start),
            us(g.end),
            g.waits_for,
            if g.open { " (no end in the trace)" } else { "" }
        );
        s.rect(x0, x1, y, LANE, GP_FILL[(g.seq / 2 % 2) as usize], &title);
        let (long, short) = (format!("gp {}", g.seq), g.seq.to_string());
        s.label_in(x0, x1, y, &[&long, &short], "#08306b");
    }
    for e in d.events.iter().filter(|e| e.kind == Kind::Qs && ax.overlaps(e.tb, e.tb)) {
        let title = format!("cpu {} quiescent state for gp {} at {:.0} µs", e.a, e.b, us(e.tb));
        s.rect(ax.x(e.tb) - 0.75, ax.x(e.tb) + 0.75, y + LANE - 6.0, 6.0, "#08306b", &title);
    }
    y += LANE + GAP;

    // Each CPU's traced read sections.
    for cpu in 0..d.cpus {
        s.lane_label(y, &format!("cpu {cpu} read sections"));
        for r in t.reads.iter().filter(|r| r.cpu == cpu && ax.overlaps(r.start, r.end)) {
            let holds = r.end_a != 0 && page_of(r.end_a) == p.page;
            let site = site_name(r.b);
            let mut title =
                format!("{site} on cpu {cpu}: {:.0} to {:.0} µs", us(r.start), us(r.end));
            if r.end_a != 0 {
                let _ = write!(title, ", held table {:#x}", r.end_a);
            }
            let (x0, x1) = (ax.x(r.start), ax.x(r.end));
            s.rect(x0, x1, y + 3.0, LANE - 6.0, if holds { HELD } else { READ }, &title);
            let label = match ReadSite::from_code(r.b) {
                Some(ReadSite::ScheduleReader) if holds => {
                    match p.defers.iter().find(|df| df.table == r.end_a) {
                        Some(df) => format!("reader holds fragment {}", df.frag),
                        None => format!("reader holds table {:#x}", r.end_a),
                    }
                }
                Some(ReadSite::DriverHold) => "driver holds the grace period open".into(),
                _ => site.into(),
            };
            s.label_in(x0, x1, y, &[&label], "#3d3d3d");
        }
        y += LANE + GAP;
    }

    // The page's rcu_head: queued spans, then the callbacks, then the labels over both.
    s.lane_label(y, "rcu_head");
    let mut labels = Vec::new();
    for (k, q) in p.queued.iter().enumerate() {
        let snap = d
            .events
            .iter()
            .find(|e| e.kind == Kind::CallRcu && e.tb == q.start && e.a == p.page)
            .map(|e| e.b);
        let gp = snap.map_or(String::new(), |c| format!(", for gp {}", c.saturating_sub(1)));
        let title = format!(
            "queued #{} by cpu {} at {:.0} µs{gp}; callback at {:.0} µs",
            k + 1,
            q.cpu,
            us(q.start),
            us(q.end)
        );
        let (x0, x1) = (ax.x(q.start), ax.x(q.end));
        s.rect(x0, x1, y + 2.0, LANE - 4.0, QUEUED, &title);
        // A head queued again from its callback starts under that callback: label it after.
        let after_cb = p
            .callbacks
            .iter()
            .filter(|c| c.start <= q.start && q.start <= c.end)
            .map(|c| ax.x(c.end))
            .fold(x0, f64::max);
        let n = k + 1;
        let medium = snap.map_or(format!("#{n}"), |c| format!("#{n}, gp {}", c.saturating_sub(1)));
        labels.push((after_cb, x1, [format!("queued #{n}{gp}"), medium, format!("#{n}")]));
    }
    for c in &p.callbacks {
        let title = format!("callback on cpu {}: {:.0} to {:.0} µs", c.cpu, us(c.start), us(c.end));
        s.rect(ax.x(c.start), ax.x(c.end), y, LANE, CALLBACK, &title);
    }
    for (x0, x1, [long, medium, short]) in &labels {
        s.label_in(*x0, *x1, y, &[long, medium, short], "#1f1147");
    }
    y += LANE + GAP;

    // Deferrals, a lane per fragment (or one for many).
    let frags = distinct_frags(p);
    let shared = frags.len() > FRAG_LANES;
    let lanes: Vec<Option<u64>> =
        if shared { vec![None] } else { frags.iter().map(|&f| Some(f)).collect() };
    for lane in lanes {
        let label = match lane {
            Some(f) => format!("fragment {f} deferred"),
            None => format!("{} fragments deferred", frags.len()),
        };
        s.lane_label(y, &label);
        for df in p.defers.iter().filter(|d| lane.is_none_or(|f| f == d.frag)) {
            let title = format!(
                "table {:#x} (fragment {}) deferred by cpu {} at {:.0} µs",
                df.table,
                df.frag,
                df.cpu,
                us(df.tb)
            );
            s.diamond(ax.x(df.tb), y, DEFER, &title);
            if !shared {
                let x = ax.x(df.tb) + 9.0;
                s.text(x, y + LANE - 5.0, &format!("cpu {}", df.cpu), r#"font-size="10""#);
            }
        }
        y += LANE + GAP;
    }

    // The real free.
    s.lane_label(y, "real free");
    for &(tb, cpu) in &p.frees {
        let title = format!("page freed by cpu {cpu} at {:.0} µs", us(tb));
        s.rect(ax.x(tb) - 1.5, ax.x(tb) + 1.5, y, LANE, FREE, &title);
        s.text(
            ax.x(tb) + 6.0,
            y + LANE - 5.0,
            "freed",
            &format!(r#"font-size="10" fill="{FREE}""#),
        );
    }
    y += LANE + GAP;

    // The axis.
    let (t0, t1) = (us(ax.lo), us(ax.hi));
    let st = step(t1 - t0, 8.0);
    let _ = writeln!(
        s.out,
        r##"<line x1="{LABEL}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#555555"/>"##,
        W - RIGHT
    );
    let mut tick = (t0 / st).ceil() * st;
    while tick <= t1 {
        let x = LABEL + (tick - t0) / (t1 - t0) * (W - LABEL - RIGHT);
        let _ = writeln!(
            s.out,
            r##"<line x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{:.1}" stroke="#555555"/>"##,
            y + 4.0
        );
        s.text(x, y + 15.0, &fmt_us(tick, st), r#"font-size="10" text-anchor="middle""#);
        tick += st;
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ACTIVE, REFCOUNT};
    use super::super::{parse, Timeline};
    use super::*;

    fn svg(log: &str) -> String {
        let d = parse(log).unwrap();
        timeline(&d, &Timeline::new(&d))
    }

    #[test]
    fn one_panel_per_deferred_page_and_balanced_tags() {
        for (log, queued) in [(REFCOUNT, "head queued 2×"), (ACTIVE, "head queued 1×")] {
            let s = svg(log);
            assert!(s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
            assert!(s.trim_end().ends_with("</svg>"));
            assert_eq!(s.matches("<title>").count(), s.matches("</title>").count());
            assert_eq!(s.matches("<text").count(), s.matches("</text>").count());
            assert_eq!(s.matches("<rect").count(), s.matches("</rect>").count() + 1);
            assert_eq!(s.matches(queued).count(), 2, "{queued}");
            assert_eq!(s.matches("fragment 1 deferred</text>").count(), 2);
            assert!(s.contains("reader holds fragment 1"), "the reader's section is labelled");
            assert!(!s.contains("NaN") && !s.contains("inf"));
        }
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(step(1000.0, 8.0), 200.0);
        assert_eq!(step(37.0, 8.0), 5.0);
        assert_eq!(step(8.0, 8.0), 1.0);
        assert_eq!(fmt_us(1500.0, 100.0), "1.5 ms");
        assert_eq!(fmt_us(40.0, 10.0), "40 µs");
    }
}
