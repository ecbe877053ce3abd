//! Judges one scenario run: its parsed serial log and how QEMU ended against what the scenario
//! expects. A run passes only when the reason list is empty, so a hang, a crash or a truncated
//! log can never be mistaken for a pass.

use crate::log::{Log, Outcome};
use crate::scenario::Expect;
use std::fmt;
use std::time::Duration;

/// How the QEMU process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Killed by the harness after this long.
    TimedOut(Duration),
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(c) => write!(f, "exit status {c}"),
            Self::Signal(s) => write!(f, "killed by signal {s}"),
            Self::TimedOut(t) => write!(f, "timed out after {} s", t.as_secs_f64()),
        }
    }
}

/// Every reason the run falls short of `expect`; empty means pass.
pub fn check(expect: Expect, required: &[&str], log: &Log, exit: Exit) -> Vec<String> {
    let mut why = Vec::new();
    let want_code = match expect {
        Expect::Success => 0,
        Expect::TestFails(_)
        | Expect::TestFailsBecause(..)
        | Expect::Fatal(_)
        | Expect::Oops(_) => 1,
    };
    if exit != Exit::Code(want_code) {
        why.push(format!("expected exit status {want_code}, got {exit}"));
    }
    match expect {
        Expect::Success => {
            well_formed(log, &mut why);
            for t in &log.tests {
                if let Outcome::Failed(reason) = &t.outcome {
                    why.push(format!("test {} FAILED: {reason}", t.name));
                }
            }
            if let [(_, failed)] = log.summaries[..] {
                if failed != 0 {
                    why.push(format!("summary reports {failed} failed"));
                }
            }
        }
        Expect::TestFailsBecause(name, word) => {
            well_formed(log, &mut why);
            let seen = log
                .outcomes(name)
                .iter()
                .any(|o| matches!(o, Outcome::Failed(r) if r.contains(word)));
            if !seen {
                why.push(format!(
                    "expected `test {name} ... FAILED:` mentioning {word:?}, not seen"
                ));
            }
        }
        Expect::TestFails(name) => {
            well_formed(log, &mut why);
            if !log.outcomes(name).iter().any(|o| matches!(o, Outcome::Failed(_))) {
                why.push(format!("expected `test {name} ... FAILED:`, not seen"));
            }
            if let [(_, 0)] = log.summaries[..] {
                why.push("summary reports 0 failed, expected at least 1".into());
            }
        }
        Expect::Fatal(word) => {
            if !log.fatal.iter().any(|l| l.contains("FATAL:") && l.contains(word)) {
                why.push(format!("expected a `FATAL:` line mentioning {word:?}, not seen"));
            }
            if !log.summaries.is_empty() {
                why.push("expected no summary line, found one".into());
            }
        }
        Expect::Oops(what) => {
            oops_dump(log, what, &mut why);
            if !log.summaries.is_empty() {
                why.push("expected no summary line, found one".into());
            }
        }
    }
    if log.tests.is_empty() && !required.is_empty() {
        why.push(format!("no test lines (expected {})", required.join(", ")));
        return why;
    }
    for name in required {
        match log.outcomes(name)[..] {
            [] => why.push(format!("required test {name} did not report")),
            [Outcome::Ok] => {}
            // A failure is already listed above; only say what is not.
            [Outcome::Failed(_)] if expect == Expect::Success => {}
            _ => why.push(format!("required test {name} did not pass")),
        }
    }
    why
}

/// The protocol's shape: one `running N`, N results, one summary that matches them, no
/// crash lines, nothing malformed or repeated.
fn well_formed(log: &Log, why: &mut Vec<String>) {
    let (ok, failed) = (log.count(true), log.count(false));
    match log.running[..] {
        [n] if n == log.tests.len() => {}
        [n] => why.push(format!("`running {n} tests` but {} test lines", log.tests.len())),
        [] => why.push("no `running N tests` line".into()),
        _ => why.push(format!("{} `running` lines", log.running.len())),
    }
    match log.summaries[..] {
        [(p, f)] if (p, f) == (ok, failed) => {}
        [(p, f)] => why.push(format!(
            "summary says {p} passed, {f} failed; lines say {ok} ok, {failed} FAILED"
        )),
        [] => why.push("no summary line".into()),
        _ => why.push(format!("{} summary lines", log.summaries.len())),
    }
    for line in &log.fatal {
        why.push(format!("crash line: {line}"));
    }
    for line in &log.malformed {
        why.push(format!("malformed test line: {line}"));
    }
    for line in &log.after_summary {
        why.push(format!("test line after the summary: {line}"));
    }
    let mut names: Vec<&str> = log.tests.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    for pair in names.windows(2) {
        if pair[0] == pair[1] {
            why.push(format!("test {} reported more than once", pair[0]));
        }
    }
}

/// An oops must name the interrupt, dump the registers a kernel engineer reads first, and
/// give a backtrace with at least two symbolised frames.
fn oops_dump(log: &Log, what: &str, why: &mut Vec<String>) {
    if !log.lines.iter().any(|l| l.starts_with("oops:") && l.contains(what)) {
        why.push(format!("expected an `oops:` line naming {what:?}, not seen"));
    }
    for regs in [&["SRR0", "SRR1", "DAR", "DSISR"][..], &["LR", "CTR", "CR", "XER"][..]] {
        if !log.lines.iter().any(|l| regs.iter().all(|r| l.contains(r))) {
            why.push(format!("register dump lacks a line with {}", regs.join("/")));
        }
    }
    let Some(bt) = log.lines.iter().position(|l| l == "backtrace:") else {
        why.push("no `backtrace:` line".into());
        return;
    };
    let named = log.lines[bt + 1..]
        .iter()
        .take_while(|l| l.trim_start().starts_with('#'))
        .filter(|l| l.split_whitespace().nth(2).is_some_and(|sym| sym.contains("+0x")))
        .count();
    if named < 2 {
        why.push(format!("backtrace has {named} symbolised frames, expected at least 2"));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    /// The tests the recorded fixture logs contain (the foundation's set); the live list in
    /// scenario.rs grows with the kernel, the fixtures do not.
    pub(crate) const FIXTURE_REQUIRED: &[&str] = &[
        "frame_alloc",
        "frame_alloc_exhaustion",
        "frame_double_free",
        "heap",
        "smp_checkin_spinlock",
        "ipi_all_cpus",
        "tick_all_cpus",
        "storage_interrupt_caught",
    ];

    const GOOD: &str = include_str!("../fixtures/good-vof-smp1.txt");
    const SLOF: &[u8] = include_bytes!("../fixtures/good-slof-smp2.txt");
    const MISSING: &str = include_str!("../fixtures/missing-test.txt");
    const MISMATCH: &str = include_str!("../fixtures/count-mismatch.txt");
    const SELFTEST: &str = include_str!("../fixtures/selftest-fail.txt");
    const SELFTEST_OK: &str = include_str!("../fixtures/selftest-not-failed.txt");
    const BAD_CMDLINE: &str = include_str!("../fixtures/bad-cmdline.txt");
    const HUNG: &str = include_str!("../fixtures/hung.txt");
    const OOPS: &str = include_str!("../fixtures/oops.txt");
    const DOUBLE: &str = include_str!("../fixtures/double-summary.txt");

    const SELFTEST_EXPECT: Expect = Expect::TestFails("selftest_fail");
    const FATAL_EXPECT: Expect = Expect::Fatal("bogus");
    const OOPS_DUMP: &str = include_str!("../fixtures/oops-dump.txt");

    #[test]
    fn failure_with_named_cause() {
        let log = "running 1 tests\ntest retract_torture ... FAILED: walkers read POISON\n0 passed, 1 failed\n";
        let ok = run(Expect::TestFailsBecause("retract_torture", "POISON"), log, Exit::Code(1));
        assert_eq!(ok, Vec::<String>::new());
        let wrong = run(Expect::TestFailsBecause("retract_torture", "double"), log, Exit::Code(1));
        assert!(wrong.iter().any(|w| w.contains("double")), "{wrong:?}");
    }

    #[test]
    fn oops_dump_accepted() {
        assert_eq!(
            run(Expect::Oops("data segment"), OOPS_DUMP, Exit::Code(1)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn oops_without_symbols_rejected() {
        let stripped: String = OOPS_DUMP
            .lines()
            .map(|l| l.split(" ptfrag::").next().unwrap_or(l).split(" boot_").next().unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let why = run(Expect::Oops("data segment"), &stripped, Exit::Code(1));
        assert!(why.iter().any(|w| w.contains("symbolised")), "{why:?}");
    }

    #[test]
    fn oops_wrong_interrupt_rejected() {
        let why = run(Expect::Oops("program"), OOPS_DUMP, Exit::Code(1));
        assert!(why.iter().any(|w| w.contains("program")), "{why:?}");
    }

    fn run(expect: Expect, text: &str, exit: Exit) -> Vec<String> {
        let required = match expect {
            Expect::Success => FIXTURE_REQUIRED,
            _ => &[],
        };
        check(expect, required, &Log::parse(text), exit)
    }

    fn fails_with(why: &[String], needle: &str) {
        assert!(why.iter().any(|w| w.contains(needle)), "no reason mentions {needle:?}: {why:#?}");
    }

    #[test]
    fn good_run_passes() {
        assert_eq!(run(Expect::Success, GOOD, Exit::Code(0)), Vec::<String>::new());
    }

    #[test]
    fn slof_noise_is_ignored() {
        let text = String::from_utf8_lossy(SLOF);
        assert_eq!(run(Expect::Success, &text, Exit::Code(0)), Vec::<String>::new());
    }

    #[test]
    fn wrong_exit_status_fails() {
        fails_with(&run(Expect::Success, GOOD, Exit::Code(1)), "exit status 0, got exit status 1");
        fails_with(&run(Expect::Success, GOOD, Exit::Signal(9)), "signal 9");
    }

    #[test]
    fn missing_required_test_fails() {
        let why = run(Expect::Success, MISSING, Exit::Code(0));
        assert_eq!(why, ["required test heap did not report"]);
    }

    #[test]
    fn count_mismatch_fails() {
        let why = run(Expect::Success, MISMATCH, Exit::Code(0));
        fails_with(&why, "`running 9 tests` but 8 test lines");
        fails_with(&why, "summary says 9 passed, 0 failed; lines say 8 ok, 0 FAILED");
    }

    #[test]
    fn expected_failure_seen_passes() {
        assert_eq!(run(SELFTEST_EXPECT, SELFTEST, Exit::Code(1)), Vec::<String>::new());
    }

    #[test]
    fn expected_failure_needs_exit_1() {
        fails_with(&run(SELFTEST_EXPECT, SELFTEST, Exit::Code(0)), "expected exit status 1");
    }

    #[test]
    fn expected_failure_not_seen_fails() {
        let why = run(SELFTEST_EXPECT, SELFTEST_OK, Exit::Code(1));
        fails_with(&why, "expected `test selftest_fail ... FAILED:`, not seen");
        fails_with(&why, "summary reports 0 failed");
        fails_with(&run(SELFTEST_EXPECT, GOOD, Exit::Code(1)), "selftest_fail");
    }

    #[test]
    fn expected_failure_on_a_success_row_fails() {
        let why = run(Expect::Success, SELFTEST, Exit::Code(1));
        fails_with(&why, "test selftest_fail FAILED: deliberate failure");
        fails_with(&why, "summary reports 1 failed");
    }

    #[test]
    fn fatal_seen_passes() {
        assert_eq!(run(FATAL_EXPECT, BAD_CMDLINE, Exit::Code(1)), Vec::<String>::new());
    }

    #[test]
    fn fatal_not_seen_fails() {
        let why = run(FATAL_EXPECT, GOOD, Exit::Code(0));
        fails_with(&why, "expected exit status 1");
        fails_with(&why, "`FATAL:` line mentioning \"bogus\"");
        fails_with(&why, "expected no summary line");
        fails_with(&run(Expect::Fatal("other"), BAD_CMDLINE, Exit::Code(1)), "\"other\"");
    }

    #[test]
    fn fatal_on_a_success_row_fails() {
        let why = run(Expect::Success, BAD_CMDLINE, Exit::Code(1));
        fails_with(&why, "crash line: FATAL: unknown boot argument bogus=1");
        fails_with(&why, "no summary line");
    }

    #[test]
    fn timeout_fails_even_when_the_log_looks_fine() {
        let t = Exit::TimedOut(Duration::from_secs(60));
        fails_with(&run(Expect::Success, GOOD, t), "timed out after 60 s");
        let why = run(Expect::Success, HUNG, t);
        fails_with(&why, "timed out");
        fails_with(&why, "malformed test line: test ipi_all_cpus ...");
        fails_with(&why, "no summary line");
        fails_with(&run(FATAL_EXPECT, BAD_CMDLINE, t), "timed out");
    }

    #[test]
    fn oops_fails() {
        let why = run(Expect::Success, OOPS, Exit::Code(1));
        fails_with(&why, "crash line: oops: storage interrupt");
        fails_with(&why, "required test tick_all_cpus did not report");
    }

    #[test]
    fn double_summary_and_repeats_fail() {
        let why = run(Expect::Success, DOUBLE, Exit::Code(0));
        fails_with(&why, "2 summary lines");
        fails_with(&why, "test heap reported more than once");
        fails_with(&why, "test line after the summary");
    }
}
