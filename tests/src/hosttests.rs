//! Step 1 of `make test`: the host unit tests (`cargo test` of the portable crates and of this
//! harness), counted one pass or fail per test from libtest's `test result:` lines.

use std::env;
use std::io;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Host-buildable packages; the kernel crate only builds for the target.
pub const HOST_PACKAGES: &[&str] = &["ptfrag-core", "ptfrag-tests"];

/// Tests passed and failed, summed over every `test result:` line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    /// How many `test result:` lines there were.
    pub binaries: usize,
}

/// The outcome of the host step.
#[derive(Debug)]
pub struct HostRun {
    pub counts: Counts,
    /// cargo's exit status was success.
    pub success: bool,
    /// stderr then stdout, to print on failure.
    pub output: String,
    pub elapsed: Duration,
}

impl HostRun {
    /// Failures to report: failed tests, plus one when cargo failed without a failing test
    /// (a build error) or ran nothing.
    pub fn failed(&self) -> usize {
        let broken = (!self.success && self.counts.failed == 0) || self.counts.binaries == 0;
        self.counts.failed + usize::from(broken)
    }
}

/// Runs `cargo test` for [`HOST_PACKAGES`] in the workspace at `root`.
pub fn run(root: &Path) -> io::Result<HostRun> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args(["test", "--color", "never"]);
    for p in HOST_PACKAGES {
        cmd.args(["-p", p]);
    }
    capture(cmd)
}

/// How many loom models `kernel/core/src/loom_tests.rs` holds. A loom run that reports fewer
/// (a renamed model the `loom` filter no longer matches, a module behind a cfg that is off)
/// fails instead of passing on what is left. Raise it with every new model.
pub const MIN_LOOM_TESTS: usize = 21;

/// The loom model checks of the portable core (`kernel/core/src/loom_tests.rs`): the
/// pte_free_defer strategies and the RCU core against a modelled grace period. Built with
/// `--cfg loom` in their own target directory so the normal build is not invalidated. Fails
/// if fewer than [`MIN_LOOM_TESTS`] ran.
pub fn run_loom(root: &Path) -> io::Result<HostRun> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["test", "--color", "never", "-p", "ptfrag-core", "--release", "--lib", "loom"])
        .env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", root.join("target/loom"));
    capture(cmd).map(|run| require_tests(run, MIN_LOOM_TESTS))
}

/// `run`, marked failed (with a line saying why) when fewer than `min` tests ran.
fn require_tests(mut run: HostRun, min: usize) -> HostRun {
    let ran = run.counts.passed + run.counts.failed;
    if ran < min {
        run.success = false;
        run.output.push_str(&format!("harness: {ran} tests ran, expected at least {min}\n"));
    }
    run
}

fn capture(mut cmd: Command) -> io::Result<HostRun> {
    let start = Instant::now();
    let out = cmd.output()?;
    let output =
        format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    Ok(HostRun {
        counts: parse(&output),
        success: out.status.success(),
        output,
        elapsed: start.elapsed(),
    })
}

/// Sums libtest's `test result: ok. 3 passed; 1 failed; ...` lines.
pub fn parse(output: &str) -> Counts {
    let mut counts = Counts::default();
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        counts.binaries += 1;
        let fields = rest.split_once(". ").map_or(rest, |(_, f)| f);
        for field in fields.split("; ") {
            match field.split_once(' ') {
                Some((n, "passed")) => counts.passed += n.parse().unwrap_or(0),
                Some((n, "failed")) => counts.failed += n.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
running 2 tests
test a ... ok
test b ... FAILED
test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

running 3 tests
test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s
   Doc-tests ptfrag_core
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

    #[test]
    fn sums_result_lines() {
        assert_eq!(parse(OUTPUT), Counts { passed: 4, failed: 1, binaries: 3 });
    }

    fn host(counts: Counts, success: bool) -> HostRun {
        HostRun { counts, success, output: String::new(), elapsed: Duration::ZERO }
    }

    #[test]
    fn too_few_tests_fail_the_run() {
        let c = |passed, failed| Counts { passed, failed, binaries: 1 };
        let short = require_tests(host(c(20, 0), true), 21);
        assert!(!short.success);
        assert_eq!(short.failed(), 1);
        assert!(short.output.contains("20 tests ran, expected at least 21"), "{}", short.output);
        // Failed tests count as run: the run fails through them, not twice.
        let failing = require_tests(host(c(19, 2), false), 21);
        assert_eq!((failing.failed(), failing.output.as_str()), (2, ""));
        let enough = require_tests(host(c(21, 0), true), 21);
        assert!(enough.success && enough.output.is_empty());
        assert_eq!(enough.failed(), 0);
    }

    /// The minimum is the number of models, so adding one without raising it fails here.
    #[test]
    fn min_loom_tests_counts_every_model() {
        let src = include_str!("../../kernel/core/src/loom_tests.rs");
        let models = src.lines().filter(|l| l.trim() == "#[test]").count();
        assert_eq!(MIN_LOOM_TESTS, models, "kernel/core/src/loom_tests.rs has {models} models");
    }

    #[test]
    fn build_failure_counts_as_one() {
        let none = Counts::default();
        assert_eq!(host(none, false).failed(), 1);
        assert_eq!(host(none, true).failed(), 1);
        let ok = parse(OUTPUT);
        assert_eq!(host(ok, false).failed(), 1);
        let clean = Counts { passed: 5, failed: 0, binaries: 1 };
        assert_eq!(host(clean, true).failed(), 0);
        assert_eq!(host(clean, false).failed(), 1);
    }
}
