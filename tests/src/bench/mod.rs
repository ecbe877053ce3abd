//! `harness bench`: the retract benchmark. One QEMU boot per cell of {radix, radix64, hash} x vCPUs x
//! address spaces runs the kernel test `retract_bench`, which runs the retract workload once per
//! pte_free_defer strategy and prints one `figure: bench ...` line for each. The harness
//! gathers them into `results.json` and `results.csv`, prints tables and draws SVG plots.
//!
//! Every comparison is a ratio measured within one boot (the kernel computes
//! `retract_cost_vs_none` itself); absolute figures are guest timebase and vary between boots.

mod plot;
mod results;
mod table;

use crate::paths;
use crate::qemu::Firmware;
use crate::scenario::Scenario;
use crate::suite::{self, MAX_JOBS};
use results::Record;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The strategies `retract_bench` runs, in the order it runs them (`none` is the baseline).
pub const STRATEGIES: [&str; 4] = ["none", "refcount", "active", "bitmap"];

/// Printed above the tables and stored in `results.json`.
pub const NOTE: &str = "Every comparison is a ratio measured within one boot (the kernel \
computes retract_cost_vs_none against strategy none in the same boot); absolute figures are \
guest timebase and vary between boots.";

/// The kernel test that runs the benchmark.
const TEST: &str = "retract_bench";
const REQUIRED: &[&str] = &[TEST];

const MODES: [&str; 3] = ["radix", "radix64", "hash"];
const CPUS: [u32; 4] = [1, 2, 4, 8];
const CPUS_QUICK: [u32; 2] = [1, 4];
const MMS: [u32; 4] = [1, 10, 100, 1000];
const MMS_QUICK: [u32; 3] = [1, 10, 100];
/// One collapse round per strategy and phase: the 8-vCPU, 1000-address-space cells already
/// do 4000 retracts per phase, each waiting for 7 busy vCPUs' flush acknowledgements.
const COLLAPSES: u32 = 1;
const COLLAPSES_QUICK: u32 = 1;

/// Shortest per-boot limit (QEMU start, boot, the leak checks).
const MIN_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_TIMEOUT: Duration = Duration::from_secs(900);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub kernel: PathBuf,
    /// Fewer cells (vCPUs 1 and 4, up to 100 address spaces) and 2 collapse rounds.
    pub quick: bool,
    /// Where results, plots and serial logs go.
    pub out: PathBuf,
    /// No boots: reread `results.json` from `out` and redo the tables, CSV and plots.
    pub replot: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kernel: paths::default_kernel(),
            quick: false,
            out: paths::bench_dir(),
            replot: false,
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

    pub fn bootargs(&self, collapses: u32) -> String {
        format!(
            "mmu={} test={TEST} bench=1 mms={} collapses={collapses} hz=1000",
            self.mode, self.mms
        )
    }

    /// A generous limit that grows with the work: `60 s + 0.5 s x rounds x vCPUs^2 x mms^0.7`.
    /// Measured on the 2-core host (TCG): hash with 100 address spaces took 8 s on 1 vCPU and
    /// 49 s on 4 (2 rounds), 544 s on 8 (4 rounds); time grows ~5x per 10x address spaces and
    /// faster than linearly with vCPUs, as they share 2 host cores. This allows ~6x that.
    /// Capped at MAX_TIMEOUT so one huge cell cannot hold the run for hours; a cell that hits
    /// it is reported missing.
    fn timeout(&self, collapses: u32) -> Duration {
        let work =
            f64::from(collapses) * f64::from(self.cpus).powi(2) * f64::from(self.mms).powf(0.7);
        (MIN_TIMEOUT + Duration::from_secs_f64(0.5 * work)).min(MAX_TIMEOUT)
    }

    /// The boot as a scenario: VOF, `-smp cpus`, success with `retract_bench` passing.
    fn scenario(&self, collapses: u32) -> Scenario {
        // The harness is a short-lived process: leaking a few strings is fine.
        let name = Box::leak(self.name().into_boxed_str());
        let args = Box::leak(self.bootargs(collapses).into_boxed_str());
        Scenario::new(name, Firmware::Vof, self.cpus, args)
            .base_required(REQUIRED)
            .timeout(self.timeout(collapses))
    }
}

/// The cells in run order: mode, then vCPUs, then address spaces.
pub fn matrix(quick: bool) -> Vec<Cell> {
    let (cpus, mms): (&[u32], &[u32]) =
        if quick { (&CPUS_QUICK, &MMS_QUICK) } else { (&CPUS, &MMS) };
    let mut cells = Vec::new();
    for mode in MODES {
        for &cpus in cpus {
            for &mms in mms {
                cells.push(Cell { mode, cpus, mms });
            }
        }
    }
    cells
}

/// Runs the benchmark (or, with `replot`, redraws from saved results); true when every boot
/// produced its figures and every file was written.
pub fn run(opts: &Options) -> bool {
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
    let collapses = if opts.quick { COLLAPSES_QUICK } else { COLLAPSES };
    let cells = matrix(opts.quick);
    let mut jobs: Vec<(usize, Cell, Scenario)> =
        cells.iter().enumerate().map(|(i, c)| (i, *c, c.scenario(collapses))).collect();
    // The longest boots first, so the two runners finish close together; results are put
    // back in matrix order below.
    jobs.sort_by_key(|(_, c, _)| std::cmp::Reverse((c.mms, c.cpus, c.mode == "hash")));
    let log_dir = opts.out.join("logs");
    println!(
        "bench: {} boots, {collapses} collapse rounds each, {MAX_JOBS} at a time; serial logs in {}",
        cells.len(),
        log_dir.display()
    );
    let mut done: Vec<(usize, Vec<Record>)> = Vec::new();
    let mut failed = Vec::new();
    suite::parallel(
        &jobs,
        MAX_JOBS,
        |(i, cell, s)| (*i, *cell, suite::run_scenario(s, &opts.kernel, &log_dir)),
        |(i, cell, mut verdict)| {
            let mut records = Vec::new();
            if let (Some(run), true) = (&verdict.run, verdict.why.is_empty()) {
                let (found, why) = results::from_log(&cell, &String::from_utf8_lossy(&run.stdout));
                records = found;
                verdict.why.extend(why);
            }
            verdict.print();
            if !verdict.why.is_empty() {
                failed.push(cell.name());
                records = results::missing_cell(&cell);
            }
            done.push((i, records));
        },
    );
    done.sort_by_key(|(i, _)| *i);
    let records: Vec<Record> = done.into_iter().flat_map(|(_, r)| r).collect();
    let written = report(&records, collapses, &opts.out, true);
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

fn replot(out: &Path) -> bool {
    let path = out.join("results.json");
    let parsed = fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| results::from_json(&text));
    match parsed {
        Ok((records, collapses)) => report(&records, collapses, out, false),
        Err(e) => {
            println!("FAIL cannot read {}: {e}", path.display());
            false
        }
    }
}

/// Writes the results (JSON only when `json`), prints the tables and draws the plots; false
/// when a file could not be written.
fn report(records: &[Record], collapses: u32, out: &Path, json: bool) -> bool {
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
        write("results.json", results::to_json(records, collapses));
    }
    write("results.csv", results::to_csv(records));
    print!("{}", table::render(records, collapses));
    match plot::draw_all(records, out) {
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
        let full = matrix(false);
        assert_eq!(full.len(), 3 * 4 * 4);
        assert_eq!(full[0], Cell { mode: "radix", cpus: 1, mms: 1 });
        assert_eq!(full[16], Cell { mode: "radix64", cpus: 1, mms: 1 });
        assert_eq!(full[47], Cell { mode: "hash", cpus: 8, mms: 1000 });
        let quick = matrix(true);
        assert_eq!(quick.len(), 3 * 2 * 3);
        assert!(quick.iter().all(|c| [1, 4].contains(&c.cpus) && c.mms <= 100));
    }

    #[test]
    fn cell_boots_the_benchmark() {
        let cell = Cell { mode: "hash", cpus: 8, mms: 1000 };
        let s = cell.scenario(COLLAPSES);
        assert_eq!(s.name, "bench-hash-smp8-mms1000");
        assert_eq!(s.bootargs, "mmu=hash test=retract_bench bench=1 mms=1000 collapses=1 hz=1000");
        assert_eq!((s.fw, s.smp), (Firmware::Vof, 8));
        assert_eq!(s.required(), ["retract_bench"]);
        // The largest cell is capped; the smallest gets about a minute.
        assert_eq!(s.timeout, MAX_TIMEOUT);
        let small = Cell { mode: "radix", cpus: 1, mms: 1 }.scenario(COLLAPSES_QUICK);
        assert_eq!(small.timeout.as_secs(), 60);
    }

    #[test]
    fn missing_kernel_fails_before_booting() {
        let dir =
            std::env::temp_dir().join(format!("ptfrag-bench-nokernel-{}", std::process::id()));
        let opts = Options {
            kernel: PathBuf::from("/nonexistent/ptfrag"),
            quick: true,
            out: dir.clone(),
            replot: false,
        };
        assert!(!run(&opts));
        assert!(!dir.exists());
    }
}
