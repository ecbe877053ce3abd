//! `harness mutants` (`make mutants`): builds and boots each mutant of the catalogue in a
//! copy of the tree and says whether the kernel's own checks caught it, and by which check.
//! The copy lives at `target/mutants/src` (its own target directory beside it), is synced
//! from the git-tracked files of the workspace before the run, and gets one mutant at a time:
//! the file is mutated, the kernel rebuilt (only the touched crates), booted, and the file
//! put back. A mutant of portable code that the kernel misses also gets the host tests and
//! the loom models of the mutated tree run, reported beside the kernel's verdict. Exit
//! status: non-zero if any mutant is missed by the kernel, does not apply, or fails to build.

pub mod catalogue;

use crate::check::Exit;
use crate::paths;
use crate::qemu::Firmware;
use crate::scenario::{Expect, Scenario};
use crate::suite::{run_scenario, secs};
use catalogue::{Boot, Judge, Mutant, MUTANTS};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    /// Only the mutants with a `quick` boot, in that boot only (what `make test` runs).
    pub quick: bool,
    pub filter: Option<String>,
}

/// The outcome of one mutant.
pub struct Outcome {
    pub name: &'static str,
    /// Caught by every boot it ran in.
    pub caught: bool,
    /// Why it is not a clean verdict (does not apply, build failed), if so.
    pub error: Option<String>,
    /// Per boot: the checks that fired, or "missed".
    pub by: Vec<String>,
    pub elapsed: Duration,
}

fn src_dir() -> PathBuf {
    paths::target_dir().join("mutants").join("src")
}

fn mutant_target_dir() -> PathBuf {
    paths::target_dir().join("mutants").join("target")
}

/// Copies every git-tracked file of the workspace into the mutant tree, writing only files
/// whose contents differ (so cargo rebuilds only what changed since the last run), and
/// removes the files the workspace no longer has (a module moved from `x.rs` to `x/mod.rs`
/// would otherwise exist twice).
fn sync_tree() -> Result<(), String> {
    let root = paths::workspace_root();
    let out = Command::new("git")
        .current_dir(&root)
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .output()
        .map_err(|e| format!("git ls-files: {e}"))?;
    if !out.status.success() {
        return Err(format!("git ls-files failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let dst = src_dir();
    let mut kept = std::collections::HashSet::new();
    for rel in out.stdout.split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).map_err(|e| e.to_string())?);
        let from = root.join(rel);
        let Ok(data) = fs::read(&from) else { continue }; // deleted in the work tree
        kept.insert(dst.join(rel));
        let to = dst.join(rel);
        if fs::read(&to).ok().as_deref() == Some(&data[..]) {
            continue;
        }
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        fs::write(&to, &data).map_err(|e| format!("{}: {e}", to.display()))?;
        let perm = fs::metadata(&from).map_err(|e| e.to_string())?.permissions();
        fs::set_permissions(&to, perm).map_err(|e| e.to_string())?;
    }
    remove_stale(&dst, &kept)
}

/// Removes the files under `dir` that are not in `kept`.
fn remove_stale(dir: &Path, kept: &std::collections::HashSet<PathBuf>) -> Result<(), String> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            remove_stale(&p, kept)?;
        } else if !kept.contains(&p) {
            fs::remove_file(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    Ok(())
}

/// Builds the kernel in the mutant tree and writes its symbol table; returns the ELF.
fn build() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(src_dir())
        .env("CARGO_TARGET_DIR", mutant_target_dir())
        .args(["build", "-q", "--release", "-p", "ptfrag-kernel", "--target", paths::KERNEL_TARGET])
        .output()
        .map_err(|e| format!("cargo: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(20).collect();
        return Err(format!(
            "build failed ({}):\n{}",
            error_codes(&err).join(" "),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    let elf =
        mutant_target_dir().join(paths::KERNEL_TARGET).join("release").join(paths::KERNEL_BIN);
    crate::ksyms::patch(&elf)?;
    Ok(elf)
}

/// The value of `key=` in the first figure line that has it.
fn figure(log: &str, key: &str) -> Option<f64> {
    crate::figures::parse("", log).into_iter().find_map(|f| f.values.get(key).copied())
}

/// Which of the kernel's checks fired in a serial log.
pub fn checks_fired(log: &str, exit: Option<&Exit>) -> Vec<&'static str> {
    let mut by = Vec::new();
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("FAILED")).collect();
    if log.contains("BUG: rcu_check") {
        by.push("oracle");
    }
    if figure(log, "poison_reads").is_some_and(|n| n > 0.0)
        || failed.iter().any(|l| l.contains("POISON"))
    {
        by.push("POISON");
    }
    if figure(log, "double_call_rcu").is_some_and(|n| n > 0.0)
        || log.contains("BUG: double call_rcu")
    {
        by.push("double call_rcu");
    }
    if figure(log, "leaked_frames").is_some_and(|n| n != 0.0)
        || figure(log, "pending_callbacks").is_some_and(|n| n != 0.0)
    {
        by.push("leak");
    }
    // The RCU tests provoke BUG lines of their own on purpose (rcu_misuse_is_caught), so
    // the RCU's debug checks count only through a failing rcu_ test; the strategies' own
    // refusals (underflow, not deferred, ...) print `BUG: <op>(<strategy>)`.
    if failed.iter().any(|l| l.starts_with("test rcu_")) {
        by.push("RCU debug");
    }
    let strategy_bug = log.lines().any(|l| {
        ["BUG: pte_free_defer(", "BUG: rcu_callback(", "BUG: pte_free(", "BUG: pte_frag_destroy("]
            .iter()
            .any(|p| l.starts_with(p))
            && !l.contains("double call_rcu")
    });
    if strategy_bug {
        by.push("strategy debug");
    }
    if log.contains("FATAL") {
        by.push("fatal");
    }
    if log.lines().any(|l| l.starts_with("oops:")) {
        by.push("oops");
    }
    if let Some(Exit::TimedOut(_)) = exit {
        by.push("timeout");
    }
    if by.is_empty() && !failed.is_empty() {
        by.push("test failed");
    }
    by
}

/// The test a mutant boot must run and pass to count as "missed": the schedules when the
/// boot runs only those, else the torture (a boot that merely skips it is not a catch).
fn required_tests(args: &str) -> &'static [&'static str] {
    let filter = args.split_whitespace().find_map(|w| w.strip_prefix("test="));
    match filter.and_then(|f| crate::scenario::REQUIRED_TESTS.iter().position(|t| *t == f)) {
        Some(i) => std::slice::from_ref(&crate::scenario::REQUIRED_TESTS[i]),
        None => &["retract_torture"],
    }
}

fn boot(m: &Mutant, i: usize, b: &Boot, kernel: &Path) -> (bool, String) {
    let name: &'static str = Box::leak(format!("mutant-{}-{i}", m.name).into_boxed_str());
    let expect = match b.judge {
        Judge::Clean => Expect::Success,
        Judge::Control(word) => Expect::TestFailsBecause("retract_torture", word),
    };
    let s = Scenario::new(name, Firmware::Vof, b.smp, b.args)
        .base_required(required_tests(b.args))
        .expect(expect)
        .timeout(Duration::from_secs(120));
    let v = run_scenario(&s, kernel, &paths::target_dir().join("mutants").join("logs"));
    let log =
        v.run.as_ref().map(|r| String::from_utf8_lossy(&r.stdout).into_owned()).unwrap_or_default();
    let mode = b.args.split_whitespace().find_map(|w| w.strip_prefix("mmu=")).unwrap_or("radix");
    let strategy = b.args.split_whitespace().find_map(|w| w.strip_prefix("pte_free_defer="));
    let mode = format!("{mode} {}", strategy.unwrap_or("active"));
    let caught = !v.why.is_empty();
    let by = match b.judge {
        Judge::Clean if caught => {
            let fired = checks_fired(&log, v.run.as_ref().map(|r| &r.exit));
            if fired.is_empty() {
                "boot failed".into()
            } else {
                fired.join("+")
            }
        }
        Judge::Control(word) if caught => format!("control lost its {word} verdict"),
        _ => "missed".into(),
    };
    (caught, format!("{mode}: {by}"))
}

fn run_one(m: &Mutant, quick_boot: bool) -> Outcome {
    let t0 = Instant::now();
    let mut o = Outcome {
        name: m.name,
        caught: false,
        error: None,
        by: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let path = src_dir().join(m.file);
    let original = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            o.error = Some(format!("{}: {e}", path.display()));
            return o;
        }
    };
    let n = original.matches(m.old).count();
    if n != 1 {
        o.error = Some(format!("does not apply: its text occurs {n} times in {}", m.file));
        return o;
    }
    let result = fs::write(&path, original.replacen(m.old, m.new, 1))
        .map_err(|e| e.to_string())
        .and_then(|()| build());
    match (result, m.compile_error) {
        (Err(e), Some((code, why))) if e.starts_with("build failed (") => {
            let codes = e.split_once('(').and_then(|(_, r)| r.split_once(')')).map_or("", |c| c.0);
            if codes.split(' ').any(|c| c == code) {
                o.caught = true;
                o.by.push(format!("compiler: {code} {why}"));
            } else {
                o.error = Some(format!("expected compiler error {code}, got: {e}"));
            }
        }
        (Ok(_), Some((code, _))) => {
            o.error = Some(format!("built, but the types should refuse it with {code}"));
        }
        (Ok(kernel), None) => {
            o.caught = true;
            let quick = m.quick.as_slice();
            let boots = if quick_boot { quick } else { m.boots };
            for (i, b) in boots.iter().enumerate() {
                let (caught, by) = boot(m, i, b, &kernel);
                o.caught &= caught;
                o.by.push(by);
            }
        }
        (Err(e), _) => o.error = Some(e),
    }
    // The second line of defence, for what the kernel missed in portable code: the host unit
    // tests and the loom models of the mutated tree (reported; the verdict stays the
    // kernel's).
    if o.error.is_none() && !o.caught && !quick_boot && m.file.starts_with("kernel/core/") {
        o.by.push(format!("host tests: {}", second_line(false)));
        o.by.push(format!("loom: {}", second_line(true)));
    }
    if let Err(e) = fs::write(&path, &original) {
        o.error = Some(format!("cannot restore {}: {e}", path.display()));
    }
    o.elapsed = t0.elapsed();
    o
}

/// The compiler's error codes (`E0382`, ...) in a build's messages.
fn error_codes(stderr: &str) -> Vec<&str> {
    let mut codes: Vec<&str> =
        stderr.lines().filter_map(|l| l.strip_prefix("error[")?.split(']').next()).collect();
    codes.dedup();
    codes
}

/// Runs the portable crate's host tests (or, with `loom`, its loom models) in the mutant
/// tree: "caught" if they fail, "missed" if they pass.
fn second_line(loom: bool) -> &'static str {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(src_dir()).args(["test", "-q", "-p", "ptfrag-core"]);
    if loom {
        cmd.args(["--release", "--lib", "loom"])
            .env("RUSTFLAGS", "--cfg loom")
            .env("CARGO_TARGET_DIR", mutant_target_dir().join("loom"));
    } else {
        cmd.env("CARGO_TARGET_DIR", mutant_target_dir().join("host"));
    }
    match cmd.output() {
        Ok(out) if out.status.success() => "missed",
        Ok(_) => "caught",
        Err(_) => "could not run",
    }
}

/// The mutants `opts` selects.
pub fn select(opts: &Options) -> Vec<&'static Mutant> {
    MUTANTS
        .iter()
        .filter(|m| !opts.quick || m.quick.is_some())
        .filter(|m| opts.filter.as_deref().is_none_or(|f| m.name.contains(f)))
        .collect()
}

/// Runs the selected mutants, printing a line each as it ends; returns the outcomes.
pub fn run_selected(opts: &Options) -> Result<Vec<Outcome>, String> {
    let selected = select(opts);
    if selected.is_empty() {
        return Err(format!("no mutant matches {:?}", opts.filter));
    }
    sync_tree()?;
    Ok(selected
        .into_iter()
        .map(|m| {
            let o = run_one(m, opts.quick);
            println!("{}", line(&o));
            o
        })
        .collect())
}

fn is_equivalent(o: &Outcome) -> bool {
    MUTANTS.iter().any(|m| m.name == o.name && m.equivalent.is_some())
}

fn verdict(o: &Outcome) -> &'static str {
    match (&o.error, o.caught) {
        (Some(_), _) => "ERROR",
        (None, true) => "caught",
        (None, false) if is_equivalent(o) => "equivalent",
        (None, false) => "MISSED",
    }
}

/// `make test`'s step: the quick mutants, each a pass if the kernel caught it.
pub fn suite_step() -> (usize, usize) {
    let opts = Options { quick: true, filter: None };
    let t0 = Instant::now();
    match run_selected(&opts) {
        Ok(outcomes) => {
            let caught = outcomes.iter().filter(|o| o.error.is_none() && o.caught).count();
            let verdict = if caught == outcomes.len() { "PASS" } else { "FAIL" };
            println!(
                "{verdict} quick mutants ({caught} of {} caught by the kernel, {})",
                outcomes.len(),
                secs(t0.elapsed())
            );
            (caught, outcomes.len() - caught)
        }
        Err(e) => {
            println!("FAIL quick mutants: {e}");
            (0, 1)
        }
    }
}

fn line(o: &Outcome) -> String {
    let detail = o.error.clone().unwrap_or_else(|| o.by.join("; "));
    format!("mutant {:<34} {:<7} {:>6}  {detail}", o.name, verdict(o), secs(o.elapsed))
}

/// `make mutants`: the table, and false if any mutant was missed or broke.
pub fn run(opts: &Options) -> bool {
    let t0 = Instant::now();
    let outcomes = match run_selected(opts) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("harness mutants: {e}");
            return false;
        }
    };
    println!("\n| mutant | what it breaks | verdict | caught by (per boot) | seconds |");
    println!("|---|---|---|---|---|");
    for o in &outcomes {
        let m = MUTANTS.iter().find(|m| m.name == o.name).map_or("", |m| m.what);
        let detail = o.error.clone().unwrap_or_else(|| o.by.join("; "));
        println!(
            "| {} | {m} | {} | {} | {:.0} |",
            o.name,
            verdict(o),
            detail.replace('\n', " "),
            o.elapsed.as_secs_f64()
        );
    }
    let caught = outcomes.iter().filter(|o| o.error.is_none() && o.caught).count();
    let broken = outcomes.iter().filter(|o| o.error.is_some()).count();
    let equivalent: Vec<&Outcome> =
        outcomes.iter().filter(|o| verdict(o) == "equivalent").collect();
    for o in &equivalent {
        let why = MUTANTS.iter().find(|m| m.name == o.name).and_then(|m| m.equivalent);
        println!("\nequivalent on the emulated machine: {}: {}", o.name, why.unwrap_or(""));
    }
    let missed = outcomes.len() - caught - broken - equivalent.len();
    let by_compiler = outcomes
        .iter()
        .filter(|o| {
            o.error.is_none() && o.caught && o.by.iter().any(|b| b.starts_with("compiler:"))
        })
        .count();
    println!(
        "\n{caught} of {} mutants caught ({} by the kernel's checks, {by_compiler} refused by the \
         compiler), {missed} missed, {} equivalent, {broken} did not apply or build ({})",
        outcomes.len(),
        caught - by_compiler,
        equivalent.len(),
        secs(t0.elapsed())
    );
    missed == 0 && broken == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_codes_are_read_from_every_line() {
        let err = "warning: x\nerror[E0382]: use of moved value: `detached`\n  --> a.rs:1:1\n\
                   error[E0382]: again\nerror[E0308]: mismatched types\nerror: could not compile";
        assert_eq!(super::error_codes(err), ["E0382", "E0308"]);
    }

    use super::*;

    const REFCOUNT_CAUGHT: &str = "\
BUG: rcu_check: page-table page 0x2110000 freed 1 grace period(s) too early: table 0x2111000
figure: retract mmu=radix strategy=refcount poison_reads=0 double_call_rcu=0 rcu_check_bugs=3 leaked_frames=0 pending_callbacks=0
test retract_torture ... FAILED: pte_free_defer reported 3 BUG(s)
";

    #[test]
    fn checks_are_named() {
        assert_eq!(checks_fired(REFCOUNT_CAUGHT, None), ["oracle"]);
        let poison = "figure: retract poison_reads=16 double_call_rcu=0 leaked_frames=0\n\
                      test retract_torture ... FAILED: walkers read POISON\n";
        assert_eq!(checks_fired(poison, None), ["POISON"]);
        let naive = "BUG: double call_rcu: x\nfigure: retract poison_reads=0 double_call_rcu=5 \
                     leaked_frames=64 pending_callbacks=0\n";
        assert_eq!(checks_fired(naive, None), ["double call_rcu", "leak"]);
        let rcu = "BUG: rcu: quiescent state reported on cpu 0 inside a read-side section\n\
                   test rcu_misuse_is_caught ... FAILED: no report\n";
        assert_eq!(checks_fired(rcu, None), ["RCU debug"]);
        let provoked = "BUG: rcu: sleeping inside a read-side section (nesting 1)\n\
                        test rcu_misuse_is_caught ... ok\n";
        assert!(checks_fired(provoked, None).is_empty(), "BUGs a test provokes are not catches");
        let underflow = "BUG: rcu_callback(refcount) on table 0x10000: underflow\n\
                         test retract_torture ... FAILED: pte_free_defer reported 1 BUG(s)\n";
        assert_eq!(checks_fired(underflow, None), ["strategy debug"]);
        let other = "test retract_torture ... FAILED: walkers saw wrong data\n";
        assert_eq!(checks_fired(other, None), ["test failed"]);
        assert!(checks_fired("test x ... ok\n", None).is_empty());
    }

    #[test]
    fn a_boot_requires_the_test_it_runs() {
        assert_eq!(required_tests("hz=1000 test=retract_schedules"), ["retract_schedules"]);
        assert_eq!(required_tests("collapses=16 test=rcu_,retract"), ["retract_torture"]);
        assert_eq!(
            required_tests("test=mm_one_translation_per_page"),
            ["mm_one_translation_per_page"]
        );
        for m in MUTANTS {
            for b in m.boots.iter().chain(m.quick.as_slice()) {
                let t = required_tests(b.args)[0];
                let filter = b.args.split_whitespace().find_map(|w| w.strip_prefix("test="));
                assert!(
                    filter.is_none_or(|f| f.split(',').any(|p| t.contains(p))),
                    "{}: boot {:?} would not run {t}",
                    m.name,
                    b.args
                );
            }
        }
    }

    #[test]
    fn quick_selection_is_a_subset() {
        let all = select(&Options { quick: false, filter: None });
        let quick = select(&Options { quick: true, filter: None });
        assert_eq!(all.len(), MUTANTS.len());
        assert!(!quick.is_empty() && quick.len() < all.len());
        assert!(quick.iter().all(|m| m.quick.is_some()));
        assert_eq!(select(&Options { quick: false, filter: Some("bitmap_".into()) }).len(), 3);
    }
}
