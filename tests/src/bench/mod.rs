//! `harness bench`: the retract benchmark. One QEMU boot per cell of {radix, radix64, hash}
//! x vCPUs x address spaces, one at a time, runs the kernel test `retract_bench`: in two
//! phases (`realistic`: walkers but no held reader; `held`: the deterministic walker's read
//! section across each round), every pte_free_defer strategy in turn, round by round,
//! `ROUNDS` measured rounds each after one warm-up round. The harness takes the medians and
//! interquartile ranges of the per-round samples, the ratios to `none` of the same round,
//! writes `results.json` (every sample) and `results.csv`, prints tables and draws SVG plots
//! with the interquartile ranges as error bars. With `--icount` QEMU counts instructions
//! (`qemu::ICOUNT`), the same from run to run; `--compare DIR` checks another run's results
//! against these, cell by cell. See docs/bench.md.

mod compare;
mod plot;
mod results;
mod stats;
mod table;
pub mod twice;

use crate::paths;
use crate::qemu::Firmware;
use crate::scenario::Scenario;
use crate::suite;
use results::{Meta, Record};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The strategies `retract_bench` runs (`none` is the control every ratio is taken to).
pub const STRATEGIES: [&str; 4] = ["none", "refcount", "active", "bitmap"];
/// Its phases, in order.
pub const PHASES: [&str; 2] = ["realistic", "held"];

/// Printed above the tables and stored in `results.json`.
pub const NOTE: &str = "Medians over the measured rounds [interquartile range]; every ratio \
is taken within one boot, phase and round (a strategy's round over none's round beside it). \
Times are guest timebase (ns; instructions with --icount).";

/// The kernel test that runs the benchmark.
const TEST: &str = "retract_bench";
const REQUIRED: &[&str] = &[TEST];

const MODES: [&str; 3] = ["radix", "radix64", "hash"];
/// (vCPUs, address spaces) of `make bench`: 8 vCPUs only with one address space (on the
/// 2-core host its boot alone takes minutes).
const CELLS: [(u32, u32); 7] = [(1, 1), (1, 4), (2, 1), (2, 4), (4, 1), (4, 4), (8, 1)];
/// `make bench-quick`.
const CELLS_QUICK: [(u32, u32); 2] = [(1, 1), (4, 1)];
/// With `--icount` (see `matrix`): every cell of the real-time matrix.
const CELLS_ICOUNT: [(u32, u32); 7] = CELLS;
const CELLS_ICOUNT_QUICK: [(u32, u32); 2] = [(1, 1), (4, 1)];
/// Measured rounds per strategy and phase, after one warm-up round.
pub const ROUNDS: u32 = 30;

/// Shortest per-boot limit (QEMU start, boot, the leak checks).
const MIN_TIMEOUT: Duration = Duration::from_secs(90);
const MAX_TIMEOUT: Duration = Duration::from_secs(1800);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub kernel: PathBuf,
    /// Fewer cells (`CELLS_QUICK`).
    pub quick: bool,
    /// Where results, plots and serial logs go.
    pub out: PathBuf,
    /// No boots: reread `results.json` from `out` and redo the tables, CSV and plots.
    pub replot: bool,
    /// QEMU's instruction counter: deterministic guest time.
    pub icount: bool,
    /// Only the cells whose name contains this.
    pub cells: Option<String>,
    /// No boots: compare `out`'s results with this directory's, cell by cell.
    pub compare: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kernel: paths::default_kernel(),
            quick: false,
            out: paths::bench_dir(),
            replot: false,
            icount: false,
            cells: None,
            compare: None,
        }
    }
}

/// One boot of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub mode: &'static str,
    pub cpus: u32,
    pub mms: u32,
}

impl Cell {
    pub fn name(&self) -> String {
        format!("bench-{}-smp{}-mms{}", self.mode, self.cpus, self.mms)
    }

    pub fn bootargs(&self, rounds: u32) -> String {
        format!("mmu={} test={TEST} bench=1 mms={} collapses={rounds} hz=1000", self.mode, self.mms)
    }

    /// A generous limit that grows with the work: `90 s + 0.25 s x rounds x mms x vCPUs^2`,
    /// capped at MAX_TIMEOUT. Measured on the 2-core host (TCG, 30 rounds): radix on 4 vCPUs
    /// took 18 s with one address space and 60 s with 4, on 8 vCPUs 92 s; hash and radix64
    /// about twice radix; one vCPU a few seconds. This allows 4-8x that; a cell that hits it
    /// is reported missing.
    fn timeout(&self, rounds: u32) -> Duration {
        let work = f64::from(rounds) * f64::from(self.mms) * f64::from(self.cpus).powi(2);
        (MIN_TIMEOUT + Duration::from_secs_f64(0.25 * work)).min(MAX_TIMEOUT)
    }

    /// The boot as a scenario: VOF, `-smp cpus`, success with `retract_bench` passing.
    fn scenario(&self, rounds: u32, icount: bool) -> Scenario {
        // The harness is a short-lived process: leaking a few strings is fine.
        let name = Box::leak(self.name().into_boxed_str());
        let args = Box::leak(self.bootargs(rounds).into_boxed_str());
        Scenario::new(name, Firmware::Vof, self.cpus, args)
            .base_required(REQUIRED)
            .timeout(self.timeout(rounds))
            .icount(icount)
    }
}

/// The cells in run order: mode, then vCPUs, then address spaces. Under `icount` the same
/// cells (1 to 8 vCPUs): QEMU runs the vCPUs in turn on one thread, and a vCPU keeps its turn until it
/// cedes, confers (the kernel's `smp::relax`, every 32 busy-wait steps) or reaches the next
/// timer deadline, so with more than one vCPU a retract's cross-CPU flush costs the other
/// vCPUs' turns rather than its code; the figures are still the same from run to run
/// (docs/bench.md, "Deterministic cost").
pub fn matrix(quick: bool, icount: bool) -> Vec<Cell> {
    let cells: &[(u32, u32)] = match (quick, icount) {
        (false, false) => &CELLS,
        (true, false) => &CELLS_QUICK,
        (false, true) => &CELLS_ICOUNT,
        (true, true) => &CELLS_ICOUNT_QUICK,
    };
    MODES
        .iter()
        .flat_map(|&mode| cells.iter().map(move |&(cpus, mms)| Cell { mode, cpus, mms }))
        .collect()
}

/// Runs the benchmark (or, with `replot`, redraws from saved results; with `compare`,
/// compares two runs); true when every boot produced its figures and every file was written
/// (for `compare`: when every cell's interquartile ranges overlap).
pub fn run(opts: &Options) -> bool {
    if let Some(other) = &opts.compare {
        return compare::run(other, &opts.out);
    }
    if opts.replot {
        return replot(&opts.out);
    }
    if !opts.kernel.is_file() {
        println!(
            "FAIL kernel not found at {} (build it first: make kernel)",
            opts.kernel.display()
        );
        return false;
    }
    let start = Instant::now();
    let meta = Meta { rounds: ROUNDS, icount: opts.icount };
    let cells: Vec<Cell> = matrix(opts.quick, opts.icount)
        .into_iter()
        .filter(|c| opts.cells.as_ref().is_none_or(|f| c.name().contains(f.as_str())))
        .collect();
    let log_dir = opts.out.join("logs");
    println!(
        "bench: {} boots{}, one at a time, {ROUNDS} measured rounds per strategy and phase; \
         serial logs in {}",
        cells.len(),
        if opts.icount { " with -icount" } else { "" },
        log_dir.display()
    );
    let mut records: Vec<Record> = Vec::new();
    let mut failed = Vec::new();
    // One QEMU at a time: two would take host time from each other.
    for cell in &cells {
        let s = cell.scenario(ROUNDS, opts.icount);
        let mut verdict = suite::run_scenario(&s, &opts.kernel, &log_dir);
        let mut found = Vec::new();
        if let (Some(run), true) = (&verdict.run, verdict.why.is_empty()) {
            let (r, why) = results::from_log(cell, &String::from_utf8_lossy(&run.stdout));
            found = r;
            verdict.why.extend(why);
        }
        verdict.print();
        if !verdict.why.is_empty() {
            failed.push(cell.name());
            found = results::missing_cell(cell);
        }
        records.extend(found);
    }
    let written = report(&records, meta, &opts.out, true);
    println!("elapsed {}", suite::secs(start.elapsed()));
    if !failed.is_empty() {
        println!(
            "FAIL {} of {} boots (missing in the results): {}",
            failed.len(),
            cells.len(),
            failed.join(" ")
        );
    }
    written && failed.is_empty()
}

/// `results.json` of `dir`.
pub fn load(dir: &Path) -> Result<(Vec<Record>, Meta), String> {
    let path = dir.join("results.json");
    fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| results::from_json(&text))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn replot(out: &Path) -> bool {
    match load(out) {
        Ok((records, meta)) => report(&records, meta, out, false),
        Err(e) => {
            println!("FAIL {e}");
            false
        }
    }
}

/// Writes the results (JSON only when `json`), prints the tables and draws the plots; false
/// when a file could not be written.
fn report(records: &[Record], meta: Meta, out: &Path, json: bool) -> bool {
    let mut ok = true;
    let mut write = |name: &str, text: String| {
        let path = out.join(name);
        match fs::create_dir_all(out).and_then(|()| fs::write(&path, text)) {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => {
                println!("FAIL cannot write {}: {e}", path.display());
                ok = false;
            }
        }
    };
    if json {
        write("results.json", results::to_json(records, meta));
    }
    write("results.csv", results::to_csv(records));
    let tables = table::render(records, meta);
    print!("{tables}");
    write("tables.txt", tables);
    match plot::draw_all(records, meta, out) {
        Ok(paths) => paths.iter().for_each(|p| println!("wrote {}", p.display())),
        Err(e) => {
            println!("FAIL plotting: {e}");
            ok = false;
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_sizes_and_order() {
        let full = matrix(false, false);
        assert_eq!(full.len(), 3 * CELLS.len());
        assert_eq!(full[0], Cell { mode: "radix", cpus: 1, mms: 1 });
        assert_eq!(full[CELLS.len()], Cell { mode: "radix64", cpus: 1, mms: 1 });
        assert_eq!(full.last(), Some(&Cell { mode: "hash", cpus: 8, mms: 1 }));
        let quick = matrix(true, false);
        assert_eq!(quick.len(), 3 * 2);
        assert!(quick.iter().all(|c| [1, 4].contains(&c.cpus) && c.mms == 1));
        assert_eq!(matrix(false, true), full);
        assert_eq!(matrix(true, true).len(), 3 * 2);
    }

    #[test]
    fn cell_boots_the_benchmark() {
        let cell = Cell { mode: "hash", cpus: 8, mms: 1 };
        let s = cell.scenario(ROUNDS, false);
        assert_eq!(s.name, "bench-hash-smp8-mms1");
        assert_eq!(s.bootargs, "mmu=hash test=retract_bench bench=1 mms=1 collapses=30 hz=1000");
        assert_eq!((s.fw, s.smp, s.icount), (Firmware::Vof, 8, false));
        assert_eq!(s.required(), ["retract_bench"]);
        assert_eq!(s.timeout.as_secs(), 90 + 480);
        let small = Cell { mode: "radix", cpus: 1, mms: 1 }.scenario(ROUNDS, true);
        assert!(small.icount);
        assert_eq!(small.timeout.as_secs(), 97);
        let huge = Cell { mode: "radix", cpus: 8, mms: 100 };
        assert_eq!(huge.scenario(ROUNDS, false).timeout, MAX_TIMEOUT);
    }

    #[test]
    fn missing_kernel_fails_before_booting() {
        let dir =
            std::env::temp_dir().join(format!("ptfrag-bench-nokernel-{}", std::process::id()));
        let opts = Options {
            kernel: PathBuf::from("/nonexistent/ptfrag"),
            quick: true,
            out: dir.clone(),
            ..Options::default()
        };
        assert!(!run(&opts));
        assert!(!dir.exists());
    }
}
