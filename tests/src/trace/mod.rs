//! `harness trace`: a timeline of the retract path from one boot with `trace=1`. The kernel
//! dumps its per-CPU rings after the tests (`trace: ...` lines, `ptfrag_core::trace`); this
//! module reads the dump back ([`parse`]), checks it ([`check_log`], the `make test` row),
//! pairs its records into spans ([`Timeline`]) and writes a Chrome/Perfetto trace
//! (`chrome.rs`) and an SVG timeline per page-table page (`svg.rs`).
//!
//! `make trace` boots one QEMU with [`WORKLOAD`], the deterministic `late_deferral`
//! schedule: a page holds two tables, the first is deferred, then the second is deferred
//! while the reader holds it inside the grace period the first one's `call_rcu` started.
//! That is the single-head case: `refcount` and `bitmap` queue the head for the first table
//! and again from its callback, `active` queues it once, for the last reference.

mod chrome;
mod svg;

use crate::log::clean_line;
use crate::paths;
use crate::qemu::{Firmware, QemuConfig};
use crate::runner;
use ptfrag_core::trace::{self as kt, Event, Kind, Line, ReadSite};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The workload `make trace` boots (after `trace=1 pte_free_defer=<s> mmu=<m>`), and the
/// `make test` row: one schedule, run once per reader CPU, a few hundred records.
macro_rules! workload {
    () => {
        "hz=1000 test=retract_schedules schedule=late_deferral"
    };
}
pub(crate) use workload;
pub const WORKLOAD: &str = workload!();

/// What a boot must show in its dump (`make test`'s trace row).
pub const REQUIRED_KINDS: [Kind; 7] = [
    Kind::Defer,
    Kind::CallRcu,
    Kind::GpStart,
    Kind::GpEnd,
    Kind::CbStart,
    Kind::CbEnd,
    Kind::Free,
];

/// A boot of [`WORKLOAD`] takes a second or two; QEMU's start and a loaded host, the rest.
const TIMEOUT: Duration = Duration::from_secs(120);

/// One dump, its records sorted by timebase (stable: a CPU's own order is kept at equal
/// timebases).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dump {
    pub tb_hz: u64,
    pub cpus: u32,
    pub capacity: u64,
    pub strategy: String,
    pub mmu: String,
    pub events: Vec<Event>,
    pub dropped: u64,
}

impl Dump {
    /// Microseconds from the first record to `tb`.
    pub fn us(&self, tb: u64) -> f64 {
        let t0 = self.events.first().map_or(0, |e| e.tb);
        tb.saturating_sub(t0) as f64 * 1e6 / self.tb_hz as f64
    }

    /// The timebase of the last record.
    pub fn last_tb(&self) -> u64 {
        self.events.last().map_or(0, |e| e.tb)
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.events.iter().filter(|e| e.kind == kind).count()
    }
}

/// The dump in a serial log, or every way it is not well-formed (missing, cut short,
/// repeated, a line that does not parse, a count that does not match, a CPU out of range).
pub fn parse(log: &str) -> Result<Dump, Vec<String>> {
    let mut why = Vec::new();
    let mut begin = None;
    let mut end = None;
    let mut events = Vec::new();
    for (n, raw) in log.lines().enumerate() {
        let line = clean_line(raw);
        match kt::parse_line(&line) {
            Ok(None) => {}
            Err(e) => why.push(format!("line {}: malformed trace line ({e}): {line}", n + 1)),
            Ok(Some(Line::Begin(b))) => {
                if begin.is_some() {
                    why.push(format!("line {}: a second `trace: begin`", n + 1));
                } else {
                    begin = Some(Dump {
                        tb_hz: b.tb_hz,
                        cpus: b.cpus,
                        capacity: b.capacity,
                        strategy: b.strategy.to_string(),
                        mmu: b.mmu.to_string(),
                        events: Vec::new(),
                        dropped: 0,
                    });
                }
            }
            Ok(Some(Line::End(e))) => {
                if begin.is_none() || end.is_some() {
                    why.push(format!("line {}: `trace: end` without its `trace: begin`", n + 1));
                } else {
                    end = Some(e);
                }
            }
            Ok(Some(Line::Event(e))) => {
                if begin.is_none() || end.is_some() {
                    why.push(format!("line {}: trace event outside begin/end: {line}", n + 1));
                } else {
                    events.push(e);
                }
            }
        }
    }
    let Some(mut dump) = begin else {
        why.push("no `trace: begin` line: the boot dumped no trace (trace=1?)".into());
        return Err(why);
    };
    match end {
        None => why.push(format!("no `trace: end` line after {} events: cut short", events.len())),
        Some(e) if e.events != events.len() as u64 => why.push(format!(
            "`trace: end` says {} events, the dump has {}",
            e.events,
            events.len()
        )),
        Some(e) => dump.dropped = e.dropped,
    }
    if dump.tb_hz == 0 || dump.cpus == 0 {
        why.push(format!("`trace: begin` with tb_hz={} cpus={}", dump.tb_hz, dump.cpus));
    }
    if let Some(e) = events.iter().find(|e| e.cpu >= dump.cpus) {
        why.push(format!("an event of cpu {} in a dump of {} cpus: {e}", e.cpu, dump.cpus));
    }
    if !why.is_empty() {
        return Err(why);
    }
    events.sort_by_key(|e| e.tb);
    dump.events = events;
    Ok(dump)
}

/// What `make test`'s trace row adds to the usual checks: a well-formed dump with at least
/// one record of each of [`REQUIRED_KINDS`]. Empty means pass.
pub fn check_log(log: &str) -> Vec<String> {
    let dump = match parse(log) {
        Ok(d) => d,
        Err(why) => return why,
    };
    REQUIRED_KINDS
        .iter()
        .filter(|&&k| dump.count(k) == 0)
        .map(|k| format!("the trace has no `{}` record", k.name()))
        .collect()
}

/// A span between two records on one CPU (`open`: the trace ended before its end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub cpu: u32,
    pub start: u64,
    pub end: u64,
    pub open: bool,
    /// The begin record's arguments (read sections: the address walked and the site).
    pub a: u64,
    pub b: u64,
    /// The end record's `a` (read sections: the PTE table held; callbacks: the page).
    pub end_a: u64,
}

/// One grace period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gp {
    /// Its `gp_seq` while it runs (odd).
    pub seq: u64,
    pub start: u64,
    pub end: u64,
    pub open: bool,
    pub waits_for: u64,
}

/// One queueing of a page's head: from its `call_rcu` to the start of the callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queued {
    pub page: u64,
    pub head: u64,
    pub cpu: u32,
    pub start: u64,
    pub end: u64,
    pub open: bool,
}

/// One `pte_free_defer()` of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deferral {
    pub tb: u64,
    pub table: u64,
    /// Its fragment index in its page.
    pub frag: u64,
    pub cpu: u32,
}

/// What happened to one page-table page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageLife {
    pub page: u64,
    pub defers: Vec<Deferral>,
    pub queued: Vec<Queued>,
    /// Its callbacks (spans on the CPU that ran them).
    pub callbacks: Vec<Span>,
    /// (timebase, CPU) of each real free.
    pub frees: Vec<(u64, u32)>,
}

impl PageLife {
    /// When its story starts and ends (first and last record about it).
    pub fn window(&self) -> (u64, u64) {
        let times = self
            .defers
            .iter()
            .map(|d| d.tb)
            .chain(self.queued.iter().flat_map(|q| [q.start, q.end]))
            .chain(self.callbacks.iter().flat_map(|c| [c.start, c.end]))
            .chain(self.frees.iter().map(|f| f.0));
        times.fold((u64::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)))
    }
}

/// The records paired into spans.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    pub gps: Vec<Gp>,
    /// Traced read sections (`a` the address, `b` the site, `end_a` the table).
    pub reads: Vec<Span>,
    /// Page-table callbacks (`a` the page).
    pub callbacks: Vec<Span>,
    /// Cross-CPU flushes (`a` the generation, `b` the CPUs signalled).
    pub flushes: Vec<Span>,
    /// Every page-table page any record names, in order of its first record.
    pub pages: Vec<PageLife>,
}

/// The index of `pa`'s entry in `pages`, a new one if it has none yet.
fn page(pages: &mut Vec<PageLife>, pa: u64) -> usize {
    match pages.iter().position(|p| p.page == pa) {
        Some(i) => i,
        None => {
            pages.push(PageLife { page: pa, ..PageLife::default() });
            pages.len() - 1
        }
    }
}

/// Files a span, ended or still open at the dump's end, by the kind of record that began it.
fn file_span(t: &mut Timeline, pages: &mut Vec<PageLife>, begin: Kind, span: Span) {
    match begin {
        Kind::ReadBegin => t.reads.push(span),
        Kind::CbStart => {
            let i = page(pages, span.a);
            pages[i].callbacks.push(span);
            t.callbacks.push(span);
        }
        _ => t.flushes.push(span),
    }
}

/// The 64K page of a table.
pub fn page_of(table: u64) -> u64 {
    table & !(ptfrag_core::frame_alloc::FRAME_SIZE - 1)
}

impl Timeline {
    pub fn new(dump: &Dump) -> Self {
        let last = dump.last_tb();
        let mut t = Timeline::default();
        // Per CPU, the spans begun and not ended, innermost last.
        let mut open: BTreeMap<(u32, Kind), Vec<Event>> = BTreeMap::new();
        let mut gp_open: Option<Event> = None;
        let mut queued_open: BTreeMap<u64, Event> = BTreeMap::new();
        let mut pages: Vec<PageLife> = Vec::new();
        let close = |begin: &Event, end: Option<&Event>| Span {
            cpu: begin.cpu,
            start: begin.tb,
            end: end.map_or(last, |e| e.tb),
            open: end.is_none(),
            a: begin.a,
            b: begin.b,
            end_a: end.map_or(0, |e| e.a),
        };
        for e in &dump.events {
            match e.kind {
                Kind::ReadBegin | Kind::CbStart | Kind::FlushStart => {
                    open.entry((e.cpu, e.kind)).or_default().push(*e);
                    if e.kind == Kind::CbStart {
                        let i = page(&mut pages, e.a);
                        if let Some(q) = queued_open.remove(&e.a) {
                            pages[i].queued.push(Queued {
                                page: e.a,
                                head: q.b,
                                cpu: q.cpu,
                                start: q.tb,
                                end: e.tb,
                                open: false,
                            });
                        }
                    }
                }
                Kind::ReadEnd | Kind::CbEnd | Kind::FlushEnd => {
                    let begin_kind = match e.kind {
                        Kind::ReadEnd => Kind::ReadBegin,
                        Kind::CbEnd => Kind::CbStart,
                        _ => Kind::FlushStart,
                    };
                    // An end without its begin (the ring filled in between) is dropped.
                    let Some(b) = open.get_mut(&(e.cpu, begin_kind)).and_then(Vec::pop) else {
                        continue;
                    };
                    file_span(&mut t, &mut pages, begin_kind, close(&b, Some(e)));
                }
                Kind::GpStart => {
                    if let Some(g) = gp_open.replace(*e) {
                        t.gps.push(Gp {
                            seq: g.a,
                            start: g.tb,
                            end: e.tb,
                            open: true,
                            waits_for: g.b,
                        });
                    }
                }
                Kind::GpEnd => match gp_open.take() {
                    Some(g) if g.a + 1 == e.a => t.gps.push(Gp {
                        seq: g.a,
                        start: g.tb,
                        end: e.tb,
                        open: false,
                        waits_for: g.b,
                    }),
                    other => gp_open = other,
                },
                Kind::Defer => {
                    let i = page(&mut pages, page_of(e.a));
                    pages[i].defers.push(Deferral { tb: e.tb, table: e.a, frag: e.b, cpu: e.cpu });
                }
                Kind::CallRcu => {
                    page(&mut pages, e.a);
                    queued_open.insert(e.a, *e);
                }
                Kind::Free => {
                    let i = page(&mut pages, e.a);
                    pages[i].frees.push((e.tb, e.cpu));
                }
                Kind::Qs | Kind::FlushIpi => {}
            }
        }
        for (_, stack) in open {
            for b in stack {
                file_span(&mut t, &mut pages, b.kind, close(&b, None));
            }
        }
        if let Some(g) = gp_open {
            t.gps.push(Gp { seq: g.a, start: g.tb, end: last, open: true, waits_for: g.b });
        }
        for (pa, q) in queued_open {
            let i = page(&mut pages, pa);
            pages[i].queued.push(Queued {
                page: pa,
                head: q.b,
                cpu: q.cpu,
                start: q.tb,
                end: last,
                open: true,
            });
        }
        for p in &mut pages {
            p.queued.sort_by_key(|q| q.start);
            p.callbacks.sort_by_key(|c| c.start);
        }
        for v in [&mut t.reads, &mut t.callbacks, &mut t.flushes] {
            v.sort_by_key(|s| s.start);
        }
        t.pages = pages;
        t
    }

    /// The pages that had a table deferred: the ones the SVG draws.
    pub fn deferred_pages(&self) -> impl Iterator<Item = &PageLife> {
        self.pages.iter().filter(|p| !p.defers.is_empty())
    }
}

/// The name of a read section's site.
pub fn site_name(b: u64) -> &'static str {
    ReadSite::from_code(b).map_or("read section", ReadSite::name)
}

/// `harness trace`'s options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub kernel: PathBuf,
    pub strategy: String,
    pub mmu: String,
    pub smp: u32,
    pub out: PathBuf,
    /// No boot: convert this serial log.
    pub log: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kernel: paths::default_kernel(),
            strategy: "active".into(),
            mmu: "radix".into(),
            smp: 2,
            out: paths::trace_dir(),
            log: None,
        }
    }
}

/// The kernel command line of a `make trace` boot.
pub fn bootargs(strategy: &str, mmu: &str) -> String {
    format!("trace=1 pte_free_defer={strategy} mmu={mmu} {WORKLOAD}")
}

/// Writes `<out>/<strategy>-<mmu>.json` and `.svg` from `dump`; returns their paths.
pub fn write(dump: &Dump, out: &Path) -> Result<(PathBuf, PathBuf), String> {
    fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let stem = format!("{}-{}", dump.strategy, dump.mmu);
    let timeline = Timeline::new(dump);
    let json = out.join(format!("{stem}.json"));
    let text = serde_json::to_string(&chrome::trace(dump, &timeline))
        .map_err(|e| format!("{}: {e}", json.display()))?;
    fs::write(&json, text + "\n").map_err(|e| format!("{}: {e}", json.display()))?;
    let svg = out.join(format!("{stem}.svg"));
    fs::write(&svg, svg::timeline(dump, &timeline))
        .map_err(|e| format!("{}: {e}", svg.display()))?;
    Ok((json, svg))
}

/// `harness trace`: boots (or reads `--log`), converts, says where the files are. False on
/// any failure; a boot whose tests failed still has its trace written if it dumped one.
pub fn run(opts: &Options) -> bool {
    let (text, mut ok) = match &opts.log {
        Some(path) => match fs::read(path) {
            Ok(b) => (String::from_utf8_lossy(&b).into_owned(), true),
            Err(e) => {
                eprintln!("harness trace: {}: {e}", path.display());
                return false;
            }
        },
        None => match boot(opts) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("harness trace: {e}");
                return false;
            }
        },
    };
    let dump = match parse(&text) {
        Ok(d) => d,
        Err(why) => {
            for w in why {
                eprintln!("harness trace: {w}");
            }
            return false;
        }
    };
    if dump.dropped != 0 {
        eprintln!(
            "harness trace: {} records dropped (rings of {} full): the end of the run is missing",
            dump.dropped, dump.capacity
        );
    }
    match write(&dump, &opts.out) {
        Ok((json, svg)) => {
            let t = Timeline::new(&dump);
            println!(
                "harness trace: {} events on {} cpus ({} dropped), {} grace periods, {} call_rcu, {} \
                 callbacks, {} page-table pages deferred",
                dump.events.len(),
                dump.cpus,
                dump.dropped,
                t.gps.len(),
                dump.count(Kind::CallRcu),
                t.callbacks.len(),
                t.deferred_pages().count()
            );
            println!("wrote {}\nwrote {}", json.display(), svg.display());
        }
        Err(e) => {
            eprintln!("harness trace: {e}");
            ok = false;
        }
    }
    ok
}

/// One QEMU boot of the workload; its serial log goes to `<out>/<strategy>-<mmu>.log`.
/// Returns the log and whether the boot passed.
fn boot(opts: &Options) -> Result<(String, bool), String> {
    if !opts.kernel.is_file() {
        return Err(format!("kernel not found at {} (make kernel)", opts.kernel.display()));
    }
    fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let config = QemuConfig {
        fw: Firmware::Vof,
        smp: opts.smp,
        bootargs: bootargs(&opts.strategy, &opts.mmu),
        kernel: opts.kernel.clone(),
        extra: Vec::new(),
        icount: false,
    };
    let log = opts.out.join(format!("{}-{}.log", opts.strategy, opts.mmu));
    println!("{}", config.display());
    let run = runner::run(config.command(), TIMEOUT, Some(&log))
        .map_err(|e| format!("cannot run QEMU: {e}"))?;
    let passed = run.exit == crate::check::Exit::Code(0);
    if !passed {
        eprintln!(
            "harness trace: the boot ended with {} (serial log {}); converting what it dumped",
            run.exit,
            log.display()
        );
    }
    Ok((String::from_utf8_lossy(&run.stdout).into_owned(), passed))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `make trace STRATEGY=refcount` and `STRATEGY=active` on 2 vCPUs, radix: recorded logs.
    pub(crate) const REFCOUNT: &str = include_str!("../../fixtures/trace-refcount-radix.txt");
    pub(crate) const ACTIVE: &str = include_str!("../../fixtures/trace-active-radix.txt");

    fn dump(log: &str) -> Dump {
        parse(log).unwrap_or_else(|why| panic!("{why:#?}"))
    }

    #[test]
    fn fixtures_parse_and_pass_the_check() {
        for (log, st) in [(REFCOUNT, "refcount"), (ACTIVE, "active")] {
            let d = dump(log);
            assert_eq!((d.strategy.as_str(), d.mmu.as_str(), d.cpus), (st, "radix", 2));
            assert_eq!(d.tb_hz, 512_000_000);
            assert_eq!(d.dropped, 0);
            assert!(d.events.windows(2).all(|w| w[0].tb <= w[1].tb), "sorted by timebase");
            assert_eq!(check_log(log), Vec::<String>::new());
        }
    }

    /// The check's negative controls: the same log with its dump removed, cut short, with
    /// one kind of record missing, a line mangled, or a count that lies.
    #[test]
    fn check_fails_on_a_broken_dump() {
        let without = |pred: &dyn Fn(&str) -> bool| -> String {
            REFCOUNT.lines().filter(|l| !pred(l)).map(|l| format!("{l}\n")).collect()
        };
        let no_dump = without(&|l| l.starts_with("trace:"));
        assert_eq!(
            check_log(&no_dump),
            ["no `trace: begin` line: the boot dumped no trace (trace=1?)"]
        );
        let cut = without(&|l| l.starts_with("trace: end"));
        let why = check_log(&cut);
        assert!(why.len() == 1 && why[0].starts_with("no `trace: end` line after"), "{why:?}");
        let no_free = without(&|l| l.contains(" free "));
        let why = check_log(&no_free);
        assert!(why.iter().any(|w| w.contains("`trace: end` says")), "{why:?}");
        // Consistent counts but no free record: the kinds check alone catches it.
        let n = dump(REFCOUNT).events.len() - dump(REFCOUNT).count(Kind::Free);
        let end = REFCOUNT.lines().find(|l| l.starts_with("trace: end")).unwrap();
        let no_free = no_free.replace(end, &format!("trace: end events={n} dropped=0"));
        assert_eq!(check_log(&no_free), ["the trace has no `free` record"]);
        let mangled = REFCOUNT.replacen(" call_rcu ", " call-rcu ", 1);
        let why = check_log(&mangled);
        assert!(
            why.iter().any(|w| w.contains("malformed trace line (unknown event kind)")),
            "{why:?}"
        );
        let twice =
            format!("{REFCOUNT}{}\n", REFCOUNT.lines().find(|l| l.contains("begin")).unwrap());
        assert!(check_log(&twice).iter().any(|w| w.contains("second `trace: begin`")));
        let bad_cpu = REFCOUNT.replacen("trace: 1 ", "trace: 2 ", 1);
        assert!(check_log(&bad_cpu).iter().any(|w| w.contains("an event of cpu 2 in a dump of 2")));
    }

    /// The single-head problem, as the fixtures show it: each of the two pages (one run per
    /// reader CPU) has two tables deferred; `refcount` queues its head twice (the first
    /// deferral, then the callback re-defers for the second), `active` once (the last
    /// reference); both free each page once, after the callbacks.
    #[test]
    fn refcount_queues_twice_where_active_queues_once() {
        for (log, queued) in [(REFCOUNT, 2), (ACTIVE, 1)] {
            let d = dump(log);
            let t = Timeline::new(&d);
            let pages: Vec<&PageLife> = t.deferred_pages().collect();
            assert_eq!(pages.len(), 2, "{}", d.strategy);
            for p in pages {
                assert_eq!(p.defers.len(), 2, "{:#x}", p.page);
                let frags: Vec<u64> = p.defers.iter().map(|d| d.frag).collect();
                assert_eq!(frags, [0, 1]);
                assert_eq!(p.queued.len(), queued, "{} page {:#x}", d.strategy, p.page);
                assert_eq!(p.callbacks.len(), queued);
                assert_eq!(p.frees.len(), 1);
                assert!(p.queued.iter().all(|q| !q.open && q.start < q.end));
                // Freed by its last callback, after the last deferral.
                let last_cb = p.callbacks.last().unwrap();
                let free = p.frees[0].0;
                assert!(last_cb.start <= free && free <= last_cb.end);
                assert!(p.defers.iter().all(|d| d.tb < p.queued.last().unwrap().start));
                // A grace period lies wholly inside each queued span.
                for q in &p.queued {
                    assert!(t.gps.iter().any(|g| q.start < g.start && g.end < q.end), "{q:?}");
                }
            }
        }
    }

    #[test]
    fn spans_pair_up() {
        let d = dump(REFCOUNT);
        let t = Timeline::new(&d);
        assert_eq!(t.gps.len(), d.count(Kind::GpEnd));
        assert!(t.gps.iter().all(|g| g.seq % 2 == 1 && g.start <= g.end && !g.open));
        assert!(t.gps.windows(2).all(|w| w[0].end <= w[1].start), "one at a time");
        assert_eq!(t.reads.len(), d.count(Kind::ReadEnd));
        assert_eq!(t.flushes.len(), d.count(Kind::FlushEnd));
        // Each page's reader held one of its tables.
        for p in t.deferred_pages() {
            let held: Vec<&Span> =
                t.reads.iter().filter(|r| r.end_a != 0 && page_of(r.end_a) == p.page).collect();
            assert_eq!(held.len(), 1, "page {:#x}", p.page);
            assert_eq!(site_name(held[0].b), "schedule_reader");
        }
    }

    #[test]
    fn an_unended_span_runs_to_the_end_of_the_trace() {
        // Timebases in hex, as the kernel prints them: 0x10 is 16.
        let log = "trace: begin tb_hz=1000000 cpus=1 capacity=8 strategy=active mmu=hash\n\
                   trace: 0 10 read_begin 5000 3\ntrace: 0 20 gp_start 1 1\n\
                   trace: 0 30 read_end 0 3\ntrace: 0 35 read_begin 6000 1\n\
                   trace: 0 40 call_rcu 10000 4\ntrace: 0 50 qs 0 1\n\
                   trace: end events=6 dropped=2\n";
        let d = dump(log);
        assert_eq!(d.dropped, 2);
        let t = Timeline::new(&d);
        assert_eq!(t.gps, [Gp { seq: 1, start: 0x20, end: 0x50, open: true, waits_for: 1 }]);
        assert_eq!(t.reads.len(), 2);
        assert!(!t.reads[0].open && t.reads[1].open && t.reads[1].end == 0x50);
        assert_eq!(t.pages.len(), 1);
        assert!(t.pages[0].queued[0].open);
        assert_eq!(d.us(0x40), 48.0, "a 1 MHz timebase: microseconds from the first record");
    }

    /// The trace lines sit after the summary; the usual log checks read past them.
    #[test]
    fn trace_lines_leave_the_log_check_alone() {
        let log = crate::log::Log::parse(REFCOUNT);
        let why = crate::check::check(
            crate::scenario::Expect::Success,
            &["retract_schedules"],
            &log,
            crate::check::Exit::Code(0),
        );
        assert_eq!(why, Vec::<String>::new());
        assert!(log.fatal.is_empty() && log.malformed.is_empty() && log.after_summary.is_empty());
    }

    #[test]
    fn bootargs_parse_as_a_kernel_command_line() {
        for st in ptfrag_core::pte_free_defer::Strategy::CHOICES {
            for mmu in ["radix", "radix64", "hash"] {
                let args = bootargs(st.name(), mmu);
                let c = ptfrag_core::cmdline::parse(&args).unwrap();
                assert!(c.trace && c.pte_free_defer == st && c.mmu.name() == mmu, "{args}");
                assert_eq!(c.schedule, Some("late_deferral"));
            }
        }
    }
}
