//! `harness test`: host unit tests, then every selected QEMU scenario, one PASS/FAIL line per
//! check, and as the very last line `{passed} passed, {failed} failed`.

use crate::bench;
use crate::check::check;
use crate::hosttests;
use crate::log::Log;
use crate::paths;
use crate::qemu::QemuConfig;
use crate::runner::{self, Run};
use crate::scenario::{self, Scenario};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// At most this many QEMUs at once: the host has 2 cores and each guest runs MTTCG.
pub const MAX_JOBS: usize = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub kernel: PathBuf,
    pub filter: Option<String>,
    pub skip_host: bool,
    /// Scenarios run concurrently (1..=MAX_JOBS).
    pub jobs: usize,
    /// `make soak`: only the retract matrix, with this many collapse rounds per run.
    pub soak: Option<u32>,
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

/// Runs the suite; true when nothing failed.
pub fn run(opts: &Options) -> bool {
    let start = Instant::now();
    let mut tally = Tally::default();
    if !opts.skip_host {
        host_step(&mut tally, "host tests", hosttests::run);
        host_step(&mut tally, "loom model checks", hosttests::run_loom);
    }
    let mut selected = scenario::select(opts.filter.as_deref());
    if let Some(rounds) = opts.soak {
        selected = soak_rows(&selected, rounds);
    }
    let gdb_selected = opts.soak.is_none()
        && crate::gdbsmoke::CHECKS
            .iter()
            .any(|c| opts.filter.as_deref().is_none_or(|f| c.name.contains(f)));
    let mutants_selected =
        opts.soak.is_none() && opts.filter.as_deref().is_none_or(|f| "quick-mutants".contains(f));
    let twice_selected = opts.soak.is_none()
        && opts.filter.as_deref().is_none_or(|f| bench::twice::NAME.contains(f));
    if selected.is_empty() && !gdb_selected && !mutants_selected && !twice_selected {
        println!("FAIL no scenario matches {:?}", opts.filter);
        tally.failed += 1;
    }
    let mut figures = Vec::new();
    parallel(
        &selected,
        opts.jobs.clamp(1, MAX_JOBS),
        |s| run_scenario(s, &opts.kernel, &paths::log_dir()),
        |verdict| {
            verdict.print();
            if let Some(run) = &verdict.run {
                let log = String::from_utf8_lossy(&run.stdout);
                figures.extend(crate::figures::parse(verdict.scenario.name, &log));
            }
            if verdict.why.is_empty() {
                tally.passed += 1;
            } else {
                tally.failed += 1;
            }
        },
    );
    figures.sort_by(|a, b| a.scenario.cmp(&b.scenario));
    crate::figures::print(&figures);
    if mutants_selected {
        // A few mutants the kernel must catch, so a weakened check fails the next commit.
        let (caught, missed) = crate::mutants::suite_step();
        tally.passed += caught;
        tally.failed += missed;
    }
    if twice_selected {
        // The deterministic cost mode, end to end: one short bench boot under -icount, twice.
        match bench::twice::run(&opts.kernel) {
            Ok(what) => {
                println!("PASS {} ({what})", bench::twice::NAME);
                tally.passed += 1;
            }
            Err(why) => {
                println!("FAIL {}: {why}", bench::twice::NAME);
                tally.failed += 1;
            }
        }
    }
    for check in crate::gdbsmoke::CHECKS {
        if opts.soak.is_some() || !opts.filter.as_deref().is_none_or(|f| check.name.contains(f)) {
            continue;
        }
        match crate::gdbsmoke::run(check, &opts.kernel) {
            Ok(t) => {
                println!("PASS {} ({})", check.name, secs(t));
                tally.passed += 1;
            }
            Err(why) => {
                println!("FAIL {}\n{why}", check.name);
                tally.failed += 1;
            }
        }
    }
    println!("elapsed {}", secs(start.elapsed()));
    println!("{} passed, {} failed", tally.passed, tally.failed);
    tally.failed == 0
}

fn host_step(tally: &mut Tally, what: &str, run: fn(&Path) -> std::io::Result<hosttests::HostRun>) {
    let root = paths::workspace_root();
    match run(&root) {
        Ok(host) => {
            let failed = host.failed();
            let c = host.counts;
            let verdict = if failed == 0 { "PASS" } else { "FAIL" };
            println!(
                "{verdict} {what} ({} passed, {} failed, {})",
                c.passed,
                c.failed,
                secs(host.elapsed)
            );
            if failed != 0 {
                if !host.success && c.failed == 0 {
                    println!("  cargo test failed before reporting a failing test");
                }
                println!("---- cargo test output ----\n{}---- end ----", host.output);
            }
            tally.passed += c.passed;
            tally.failed += failed;
        }
        Err(e) => {
            println!("FAIL {what}: cannot run cargo: {e}");
            tally.failed += 1;
        }
    }
}

/// The retract matrix rows (those that set `collapses=`) with `rounds` collapse rounds and
/// a timeout long enough for them.
fn soak_rows(rows: &[Scenario], rounds: u32) -> Vec<Scenario> {
    rows.iter()
        .filter(|s| s.bootargs.contains("collapses="))
        .map(|s| {
            let args: String = s
                .bootargs
                .split_whitespace()
                .map(|w| {
                    if w.starts_with("collapses=") {
                        format!("collapses={rounds}")
                    } else {
                        w.into()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            let mut s = *s;
            // The harness is a short-lived process: leaking a few strings is fine.
            s.bootargs = Box::leak(args.into_boxed_str());
            s.timeout = Duration::from_secs(60 + rounds as u64 * 4);
            s
        })
        .collect()
}

/// One scenario's result.
pub(crate) struct Verdict {
    pub(crate) scenario: Scenario,
    command: String,
    log_path: PathBuf,
    pub(crate) run: Option<Run>,
    pub(crate) why: Vec<String>,
}

pub(crate) fn run_scenario(s: &Scenario, kernel: &Path, log_dir: &Path) -> Verdict {
    let config = QemuConfig {
        fw: s.fw,
        smp: s.smp,
        bootargs: s.bootargs.to_string(),
        kernel: kernel.to_path_buf(),
        extra: Vec::new(),
        icount: s.icount,
    };
    let log_path = log_dir.join(format!("{}.log", s.name));
    let mut verdict =
        Verdict { scenario: *s, command: config.display(), log_path, run: None, why: Vec::new() };
    if !kernel.is_file() {
        verdict.why.push(format!(
            "kernel not found at {} (build it first: make, or cargo kbuild)",
            kernel.display()
        ));
        return verdict;
    }
    if let Err(e) = fs::create_dir_all(log_dir) {
        verdict.why.push(format!("cannot create {}: {e}", log_dir.display()));
        return verdict;
    }
    match runner::run(config.command(), s.timeout, Some(&verdict.log_path)) {
        Ok(run) => {
            let text = String::from_utf8_lossy(&run.stdout);
            let log = Log::parse(&text);
            verdict.why = check(s.expect, &s.required(), &log, run.exit);
            if s.trace {
                verdict.why.extend(crate::trace::check_log(&text));
            }
            let stderr_path = verdict.log_path.with_extension("stderr");
            let saved = if run.stderr.is_empty() {
                fs::remove_file(&stderr_path).or(Ok(()))
            } else {
                fs::write(&stderr_path, &run.stderr)
            };
            if let Err(e) = saved {
                verdict.why.push(format!("cannot save {}: {e}", stderr_path.display()));
            }
            verdict.run = Some(run);
        }
        Err(e) => verdict.why.push(format!("cannot run QEMU: {e}")),
    }
    verdict
}

impl Verdict {
    /// `PASS name (times)`, or `FAIL name` with every reason, the command and the whole log.
    pub(crate) fn print(&self) {
        let name = self.scenario.name;
        let times = match &self.run {
            Some(run) => format!(
                "boot {}, total {}",
                run.first_test.map_or("-".into(), secs),
                secs(run.total)
            ),
            None => "not run".into(),
        };
        if self.why.is_empty() {
            println!("PASS {name} ({times})");
            return;
        }
        println!("FAIL {name} ({times})");
        for why in &self.why {
            println!("  - {why}");
        }
        println!("  command: {}", self.command);
        if let Some(run) = &self.run {
            let log = self.log_path.display();
            let text = String::from_utf8_lossy(&run.stdout);
            println!("---- serial log {log} ----\n{text}");
            if !text.is_empty() && !text.ends_with('\n') {
                println!();
            }
            if !run.stderr.is_empty() {
                let stderr = String::from_utf8_lossy(&run.stderr);
                println!("---- QEMU stderr ----\n{}", stderr.trim_end());
            }
            println!("---- end of {name} ----");
        }
    }
}

/// Runs `work` over `items` on up to `jobs` threads; `done` sees each result on this thread
/// as it arrives (in order when `jobs` is 1).
pub(crate) fn parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> R + Sync,
    mut done: impl FnMut(R),
) {
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    thread::scope(|scope| {
        for _ in 0..jobs.min(items.len()) {
            let tx = tx.clone();
            let (next, work) = (&next, &work);
            scope.spawn(move || {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if tx.send(work(item)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        rx.iter().for_each(&mut done);
    });
}

pub(crate) fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_sees_every_item_once() {
        for jobs in 1..=3 {
            let mut seen = Vec::new();
            parallel(&[1, 2, 3, 4, 5], jobs, |x| x * 10, |r| seen.push(r));
            if jobs == 1 {
                assert_eq!(seen, [10, 20, 30, 40, 50]);
            }
            seen.sort_unstable();
            assert_eq!(seen, [10, 20, 30, 40, 50]);
        }
        parallel(&[] as &[u8], 2, |_| (), |()| panic!("no items"));
    }

    #[test]
    fn missing_kernel_fails_without_spawning() {
        let v = run_scenario(
            &scenario::SCENARIOS[0],
            Path::new("/nonexistent/ptfrag"),
            Path::new("/nonexistent"),
        );
        assert!(v.run.is_none());
        assert!(v.why[0].contains("kernel not found at /nonexistent/ptfrag"));
    }

    #[test]
    fn seconds_format() {
        assert_eq!(secs(Duration::from_millis(90)), "0.09 s");
        assert_eq!(secs(Duration::from_millis(1830)), "1.8 s");
    }
}
