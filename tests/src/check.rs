//! Judges one scenario run: its parsed serial log and how QEMU ended against what the scenario
//! expects. A run passes only when the reason list is empty, so a hang, a crash or a truncated
//! log can never be mistaken for a pass.

use crate::figures;
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
        | Expect::TestFailsCounting { .. }
        | Expect::Fatal(_)
        | Expect::Oops { .. } => 1,
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
            failed_because(log, name, word, &mut why);
            only_failure(log, name, &mut why);
        }
        Expect::TestFailsCounting { test, word, figure, key } => {
            well_formed(log, &mut why);
            failed_because(log, test, word, &mut why);
            only_failure(log, test, &mut why);
            counted(log, figure, key, &mut why);
        }
        Expect::TestFails(name) => {
            well_formed(log, &mut why);
            if !log.outcomes(name).iter().any(|o| matches!(o, Outcome::Failed(_))) {
                why.push(format!("expected `test {name} ... FAILED:`, not seen"));
            }
            if let [(_, 0)] = log.summaries[..] {
                why.push("summary reports 0 failed, expected at least 1".into());
            }
            only_failure(log, name, &mut why);
        }
        Expect::Fatal(word) => {
            if !log.fatal.iter().any(|l| l.contains("FATAL:") && l.contains(word)) {
                why.push(format!("expected a `FATAL:` line mentioning {word:?}, not seen"));
            }
            if !log.summaries.is_empty() {
                why.push("expected no summary line, found one".into());
            }
        }
        Expect::Oops { interrupt, dar, function } => {
            oops_dump(log, interrupt, dar, function, &mut why);
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

/// `test name ... FAILED:` with `word` in its reason.
fn failed_because(log: &Log, name: &str, word: &str, why: &mut Vec<String>) {
    let seen =
        log.outcomes(name).iter().any(|o| matches!(o, Outcome::Failed(r) if r.contains(word)));
    if !seen {
        why.push(format!("expected `test {name} ... FAILED:` mentioning {word:?}, not seen"));
    }
}

/// A negative control proves one detector: any other test failing is a failure of the run.
fn only_failure(log: &Log, name: &str, why: &mut Vec<String>) {
    for t in log.tests.iter().filter(|t| t.name != name) {
        if let Outcome::Failed(reason) = &t.outcome {
            why.push(format!("test {} FAILED: {reason} (only {name} may fail)", t.name));
        }
    }
}

/// The kernel's own count of the bug: there is a `figure: <label>` line, and each one carries
/// `<key>=N` with N a whole number above 0.
fn counted(log: &Log, label: &str, key: &str, why: &mut Vec<String>) {
    let figs: Vec<figures::Figure> = log
        .lines
        .iter()
        .filter_map(|l| figures::parse_line("", l))
        .filter(|f| f.label() == Some(label))
        .collect();
    if figs.is_empty() {
        why.push(format!("no `figure: {label}` line (expected {key}=N with N > 0)"));
    }
    for f in &figs {
        match f.values.get(key) {
            Some(&n) if n >= 1.0 && n.fract() == 0.0 => {}
            Some(&n) => why.push(format!("`figure: {label}` has {key}={n}, expected N > 0")),
            None => why.push(format!("`figure: {label}` line has no {key}=N")),
        }
    }
}

/// An oops must name the interrupt, dump the registers a kernel engineer reads first, fault
/// at the expected address, and give a backtrace with at least two symbolised frames whose
/// first is the faulting instruction (SRR0) in one of the expected functions.
fn oops_dump(log: &Log, interrupt: &str, dar: u64, functions: &[&str], why: &mut Vec<String>) {
    if !log.lines.iter().any(|l| l.starts_with("oops:") && l.contains(interrupt)) {
        why.push(format!("expected an `oops:` line naming {interrupt:?}, not seen"));
    }
    let line_with = |regs: &[&str]| {
        log.lines.iter().find(|l| regs.iter().all(|r| l.split_whitespace().any(|w| w == *r)))
    };
    let srr = line_with(&["SRR0", "SRR1", "DAR", "DSISR"]);
    for (regs, line) in [
        (&["SRR0", "SRR1", "DAR", "DSISR"][..], srr),
        (&["LR", "CTR", "CR", "XER"][..], line_with(&["LR", "CTR", "CR", "XER"])),
    ] {
        if line.is_none() {
            why.push(format!("register dump lacks a line with {}", regs.join("/")));
        }
    }
    decoded_bits(log, interrupt, why);
    let srr0 = srr.and_then(|l| register(l, "SRR0"));
    if let Some(line) = srr {
        match register(line, "DAR") {
            Some(got) if got == dar => {}
            Some(got) => why.push(format!("oops at DAR {got:#x}, expected DAR {dar:#x}")),
            None => why.push(format!("no DAR value in `{line}`")),
        }
    }
    let Some(bt) = log.lines.iter().position(|l| l == "backtrace:") else {
        why.push("no `backtrace:` line".into());
        return;
    };
    let frames: Vec<Vec<&str>> = log.lines[bt + 1..]
        .iter()
        .take_while(|l| l.trim_start().starts_with('#'))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let named = frames.iter().filter(|f| f.get(2).is_some_and(|sym| sym.contains("+0x"))).count();
    if named < 2 {
        why.push(format!("backtrace has {named} symbolised frames, expected at least 2"));
    }
    match frames.first().map(|f| &f[..]) {
        Some(["#0", addr, sym, ..]) => {
            let func = sym.split_once("+0x").map_or(*sym, |(f, _)| f);
            if !functions.contains(&func) {
                why.push(format!("backtrace frame #0 is in {func}, expected one of {functions:?}"));
            }
            if srr0.is_some_and(|pc| parse_hex(addr) != Some(pc)) {
                why.push(format!("backtrace frame #0 at {addr} is not SRR0"));
            }
        }
        _ => why.push(format!("no symbolised backtrace frame #0 (expected one of {functions:?})")),
    }
}

/// The dump's `decoded:` line names the MSR bits of the interrupted code (it ran 64-bit,
/// little-endian, translation on) and, for the selftest's load from an unmapped address, the
/// DSISR cause: no translation, not a store.
fn decoded_bits(log: &Log, interrupt: &str, why: &mut Vec<String>) {
    let Some(line) = log.lines.iter().find(|l| l.trim_start().starts_with("decoded:")) else {
        why.push("register dump lacks its `decoded:` line".into());
        return;
    };
    let msr = line.split("MSR Msr(").nth(1).and_then(|r| r.split(')').next()).unwrap_or("");
    let bits: Vec<&str> = msr.split(" | ").collect();
    for want in ["SF", "LE", "DR", "IR"] {
        if !bits.contains(&want) {
            why.push(format!("decoded SRR1 `{msr}` lacks MSR[{want}]"));
        }
    }
    if interrupt == "data storage" && !line.contains("DSISR Dsisr(NOPTE)") {
        why.push(format!(
            "decoded DSISR is not NOPTE alone (a load of an unmapped address): `{line}`"
        ));
    }
}

/// The value after `name` on a register-dump line (`SRR0 0xc000... DAR 0x...`).
fn register(line: &str, name: &str) -> Option<u64> {
    let mut words = line.split_whitespace();
    words.by_ref().find(|w| *w == name)?;
    parse_hex(words.next()?)
}

fn parse_hex(word: &str) -> Option<u64> {
    u64::from_str_radix(word.strip_prefix("0x")?, 16).ok()
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
    const OOPS_RADIX: &str = include_str!("../fixtures/oops-radix-dump.txt");
    const OOPS_UNRELATED: &str = include_str!("../fixtures/oops-unrelated.txt");
    const NAIVE: &str = include_str!("../fixtures/naive-caught.txt");
    const NAIVE_ZERO: &str = include_str!("../fixtures/naive-zero-double-call-rcu.txt");
    const NAIVE_AND_ANOTHER: &str = include_str!("../fixtures/naive-and-another-failure.txt");
    const SELFTEST_AND_ANOTHER: &str = include_str!("../fixtures/selftest-fail-and-another.txt");
    const BAD_OPTION: &str = include_str!("../fixtures/bad-cmdline-option.txt");
    const OTHER_OPTION: &str = include_str!("../fixtures/bad-cmdline-other-option.txt");

    /// The rows of scenario.rs, by name.
    fn row(name: &str) -> Expect {
        crate::scenario::select(Some(name))[0].expect
    }

    fn oops(interrupt: &'static str) -> Expect {
        Expect::Oops {
            interrupt,
            dar: crate::scenario::SELFTEST_OOPS_DAR,
            function: crate::scenario::SELFTEST_OOPS_FUNCTIONS,
        }
    }

    #[test]
    fn failure_with_named_cause() {
        let log = "running 1 tests\ntest retract_torture ... FAILED: walkers read POISON\n0 passed, 1 failed\n";
        let ok = run(Expect::TestFailsBecause("retract_torture", "POISON"), log, Exit::Code(1));
        assert_eq!(ok, Vec::<String>::new());
        let wrong = run(Expect::TestFailsBecause("retract_torture", "double"), log, Exit::Code(1));
        assert!(wrong.iter().any(|w| w.contains("double")), "{wrong:?}");
    }

    #[test]
    fn naive_caught_with_a_count_passes() {
        assert_eq!(row("radix-naive-smp4"), crate::scenario::NAIVE_CAUGHT);
        assert_eq!(row("hash-naive-smp4"), crate::scenario::NAIVE_CAUGHT);
        assert_eq!(run(crate::scenario::NAIVE_CAUGHT, NAIVE, Exit::Code(1)), Vec::<String>::new());
    }

    /// The reason names "double call_rcu" with a count of 0 (another check failed the test):
    /// the old word match passed it, the figure's count rejects it.
    #[test]
    fn naive_with_zero_double_call_rcu_rejected() {
        let reason = Expect::TestFailsBecause("retract_torture", "double call_rcu");
        assert_eq!(run(reason, NAIVE_ZERO, Exit::Code(1)), Vec::<String>::new());
        let why = run(crate::scenario::NAIVE_CAUGHT, NAIVE_ZERO, Exit::Code(1));
        assert_eq!(why, ["`figure: retract` has double_call_rcu=0, expected N > 0"]);
    }

    #[test]
    fn naive_without_the_figure_rejected() {
        let no_figure: String =
            NAIVE.lines().filter(|l| !l.starts_with("figure:")).map(|l| format!("{l}\n")).collect();
        let why = run(crate::scenario::NAIVE_CAUGHT, &no_figure, Exit::Code(1));
        assert_eq!(why, ["no `figure: retract` line (expected double_call_rcu=N with N > 0)"]);
        let no_key = NAIVE.replace(" double_call_rcu=192", "");
        let why = run(crate::scenario::NAIVE_CAUGHT, &no_key, Exit::Code(1));
        assert_eq!(why, ["`figure: retract` line has no double_call_rcu=N"]);
    }

    #[test]
    fn another_failing_test_fails_a_negative_control() {
        for expect in [
            crate::scenario::NAIVE_CAUGHT,
            Expect::TestFailsBecause("retract_torture", "double call_rcu"),
        ] {
            let why = run(expect, NAIVE_AND_ANOTHER, Exit::Code(1));
            assert_eq!(
                why,
                ["test rcu_torture_pipe FAILED: no reads happened (only retract_torture may fail)"]
            );
        }
        let why = run(SELFTEST_EXPECT, SELFTEST_AND_ANOTHER, Exit::Code(1));
        assert_eq!(why, ["test heap FAILED: heap leaked 64 bytes (only selftest_fail may fail)"]);
    }

    #[test]
    fn oops_dump_accepted() {
        assert_eq!(row("vof-hash-selftest-oops"), oops("data segment"));
        assert_eq!(row("vof-selftest-oops"), oops("data storage"));
        assert_eq!(run(oops("data segment"), OOPS_DUMP, Exit::Code(1)), Vec::<String>::new());
        assert_eq!(run(oops("data storage"), OOPS_RADIX, Exit::Code(1)), Vec::<String>::new());
    }

    /// A real-looking oops, but not the selftest's: another address, another function.
    #[test]
    fn unrelated_oops_rejected() {
        let why = run(oops("data storage"), OOPS_UNRELATED, Exit::Code(1));
        assert_eq!(
            why,
            [
                "oops at DAR 0x8, expected DAR 0xbad00000000".to_string(),
                format!(
                    "backtrace frame #0 is in ptfrag::mm::frame::alloc_zeroed, expected one of \
                     {:?}",
                    crate::scenario::SELFTEST_OOPS_FUNCTIONS
                ),
            ]
        );
        // Each mismatch on its own is enough.
        let wrong_dar = OOPS_RADIX.replace("DAR 0x00000bad00000000", "DAR 0x00000bad00000008");
        let why = run(oops("data storage"), &wrong_dar, Exit::Code(1));
        assert_eq!(why, ["oops at DAR 0xbad00000008, expected DAR 0xbad00000000"]);
        let elsewhere = OOPS_RADIX.replace("ptfrag::run_tests+0x58", "boot_main+0x58");
        let why = run(oops("data storage"), &elsewhere, Exit::Code(1));
        assert!(why.len() == 1 && why[0].contains("frame #0 is in boot_main"), "{why:?}");
        let not_srr0 = OOPS_RADIX.replace("#0  0xc000000000420e58", "#0  0xc000000000420e5c");
        let why = run(oops("data storage"), &not_srr0, Exit::Code(1));
        assert_eq!(why, ["backtrace frame #0 at 0xc000000000420e5c is not SRR0"]);
    }

    /// The decoded bits are checked: a dump without them, or one whose DSISR decode names
    /// another cause, fails.
    #[test]
    fn oops_decoded_bits_checked() {
        let none: String =
            OOPS_RADIX.lines().filter(|l| !l.contains("decoded:")).collect::<Vec<_>>().join("\n");
        assert_eq!(
            run(oops("data storage"), &none, Exit::Code(1)),
            ["register dump lacks its `decoded:` line"]
        );
        let store = OOPS_RADIX.replace("Dsisr(NOPTE)", "Dsisr(NOPTE | STORE)");
        let why = run(oops("data storage"), &store, Exit::Code(1));
        assert!(why.len() == 1 && why[0].contains("not NOPTE alone"), "{why:?}");
        let be = OOPS_RADIX.replace("RI | LE)", "RI)");
        assert_eq!(
            run(oops("data storage"), &be, Exit::Code(1)),
            ["decoded SRR1 `SF | VEC | VSX | EE | FP | IR | DR | RI` lacks MSR[LE]"]
        );
    }

    #[test]
    fn oops_without_symbols_rejected() {
        let stripped: String = OOPS_DUMP
            .lines()
            .map(|l| l.split(" ptfrag::").next().unwrap_or(l).split(" boot_").next().unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let why = run(oops("data segment"), &stripped, Exit::Code(1));
        assert!(why.iter().any(|w| w.contains("symbolised")), "{why:?}");
        assert!(why.iter().any(|w| w.contains("no symbolised backtrace frame #0")), "{why:?}");
    }

    #[test]
    fn oops_wrong_interrupt_rejected() {
        let why = run(oops("program"), OOPS_DUMP, Exit::Code(1));
        assert_eq!(why, ["expected an `oops:` line naming \"program\", not seen"]);
    }

    #[test]
    fn bad_option_named_passes() {
        let expect = row("vof-bad-cmdline");
        assert_eq!(expect, Expect::Fatal("unknown option 'bogus'"));
        assert_eq!(run(expect, BAD_OPTION, Exit::Code(1)), Vec::<String>::new());
    }

    /// A FATAL line that mentions bogus only in the quoted command line, about another option.
    #[test]
    fn fatal_about_another_option_rejected() {
        assert_eq!(run(FATAL_EXPECT, OTHER_OPTION, Exit::Code(1)), Vec::<String>::new());
        let why = run(row("vof-bad-cmdline"), OTHER_OPTION, Exit::Code(1));
        assert_eq!(
            why,
            ["expected a `FATAL:` line mentioning \"unknown option 'bogus'\", not seen"]
        );
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
