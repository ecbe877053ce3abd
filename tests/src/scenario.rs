//! The table of QEMU scenarios `make test` boots, and the kernel tests every normal boot must
//! pass. To add a scenario, add a row to [`SCENARIOS`]; to require a new kernel test on every
//! successful boot, add its name to [`REQUIRED_TESTS`].

use crate::qemu::Firmware;
use std::time::Duration;

/// Kernel tests that must report `ok` in every scenario that expects success.
pub const REQUIRED_TESTS: &[&str] = &[
    "frame_alloc",
    "frame_alloc_exhaustion",
    "frame_flags_survive_concurrent_reuse",
    "frame_double_free",
    "heap",
    "smp_checkin_spinlock",
    "ipi_all_cpus",
    "tick_all_cpus",
    "storage_interrupt_caught",
    "mm_fault_read_write",
    "mm_shared_between_mms",
    "mm_all_cpus_share_file",
    "pte_frag_per_page",
    "mm_one_translation_per_page",
    "hardware_walks_our_tables",
    "fault_outside_vma_is_an_error",
    "huge_pmd_leaf",
    "unmap_is_seen_by_every_cpu",
    "figures_fault_rate",
    "rcu_callbacks_run_in_order",
    "rcu_misuse_is_caught",
    "rcu_freeing_a_queued_head_is_caught",
    "rcu_grace_period_waits_for_readers",
    "rcu_torture_pipe",
    "rcu_callback_waits_for_reader",
    "retract_torture",
    "retract_schedules",
    "retract_full_page",
];

/// The retract tests alone, for the strategy matrix (the RCU tests do not depend on the
/// strategy; the vof rows run them).
pub const RETRACT_TESTS: &[&str] = &["retract_torture", "retract_schedules", "retract_full_page"];

/// The 8-vCPU rows run every required test but the RCU tests and the fault-rate figure (the
/// 4-vCPU rows have those), to stay within make test's time; their `test=` filters below
/// select exactly the rest.
pub const SMP8_SKIPPED: &[&str] = &[
    "figures_fault_rate",
    "rcu_callbacks_run_in_order",
    "rcu_misuse_is_caught",
    "rcu_freeing_a_queued_head_is_caught",
    "rcu_grace_period_waits_for_readers",
    "rcu_torture_pipe",
    "rcu_callback_waits_for_reader",
];
pub const SMP8_ARGS_RADIX: &str = "collapses=4 \
    test=frame,heap,smp_,ipi,tick,storage,mm_,pte_frag,hardware,fault_outside,huge,unmap,retract";
/// Hash on 8 vCPUs runs only its own schedules (the MMU fault's walker on every CPU): the
/// others run on 8 vCPUs under radix, and each hash run copies and poisons a 16M range.
pub const SMP8_ARGS_HASH: &str = "mmu=hash collapses=2 schedule=hash_ \
    test=frame,heap,smp_,ipi,tick,storage,mm_,pte_frag,hardware,fault_outside,huge,unmap,retract";

/// What a scenario's run must show to pass. A negative control proves one detector, so in
/// every `TestFails*` variant the named test is the only one that may fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A clean run: exit 0, every test `ok`, a well-formed log.
    Success,
    /// Negative control: this kernel test, and no other, reports `FAILED:`, the summary counts
    /// it and QEMU exits 1; the rest of the log is still well-formed.
    TestFails(&'static str),
    /// Negative control with a named cause: this kernel test, and no other, reports `FAILED:`
    /// with this word in its reason (e.g. the kernel's own check that caught the bug), exit 1.
    TestFailsBecause(&'static str, &'static str),
    /// `TestFailsBecause`, and the kernel counted the bug: its `figure: <figure>` line carries
    /// `<key>=N` with N > 0. The reason alone is not enough: it may name the bug with a
    /// count of 0 beside another one.
    TestFailsCounting {
        test: &'static str,
        word: &'static str,
        figure: &'static str,
        key: &'static str,
    },
    /// The kernel stops early: a `FATAL:` line containing this text, exit 1, no summary.
    Fatal(&'static str),
    /// An unexpected interrupt: an `oops:` line naming `interrupt`, the register dump
    /// (SRR0/SRR1/DAR/DSISR/LR) with this DAR, and a backtrace whose frames carry symbol
    /// names, the first at SRR0 in one of `function`, exit 1.
    Oops { interrupt: &'static str, dar: u64, function: &'static [&'static str] },
}

/// The address `selftest=oops` loads from (`run_tests` in kernel/src/main.rs).
pub const SELFTEST_OOPS_DAR: u64 = 0x0000_0bad_0000_0000;

/// Where `selftest=oops` faults: the load in `arch::exceptions::load_with_dr`, which release
/// builds inline into `unexpected_fault` and that into `ptfrag::run_tests`, the name frame
/// #0 carries; any of the three is the selftest's own access, anything else is not.
pub const SELFTEST_OOPS_FUNCTIONS: &[&str] = &[
    "ptfrag::run_tests",
    "ptfrag::arch::exceptions::unexpected_fault",
    "ptfrag::arch::exceptions::load_with_dr",
];

/// `pte_free_defer=naive` caught: retract_torture fails on the double call_rcu the RCU's
/// debug check refused, and the retract figures count at least one.
pub const NAIVE_CAUGHT: Expect = Expect::TestFailsCounting {
    test: "retract_torture",
    word: "double call_rcu",
    figure: "retract",
    key: "double_call_rcu",
};

/// `pte_free_defer=none` caught: the deterministic walker of retract_torture reads POISON,
/// and the figures count its reads.
pub const NONE_CAUGHT: Expect = Expect::TestFailsCounting {
    test: "retract_torture",
    word: "POISON",
    figure: "retract",
    key: "deterministic_poison_reads",
};

/// `pte_free_defer=bitmap_sketch` caught by a schedule's reader reading POISON.
pub const SKETCH_CAUGHT: Expect = Expect::TestFailsCounting {
    test: "retract_schedules",
    word: "POISON",
    figure: "schedules",
    key: "poison_reads",
};

/// One QEMU boot and what it must show.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub fw: Firmware,
    pub smp: u32,
    /// Kernel command line (`-append`).
    pub bootargs: &'static str,
    /// Tests every successful run must pass: [`REQUIRED_TESTS`] unless a row says otherwise.
    pub base_required: &'static [&'static str],
    /// Tests required on top of `base_required` (which applies to `Expect::Success` only).
    pub extra_required: &'static [&'static str],
    /// Tests of `base_required` this row does not run (its `test=` filter leaves them out).
    pub skipped: &'static [&'static str],
    pub expect: Expect,
    pub timeout: Duration,
    /// The boot runs with `trace=1`: its dump must be well-formed and show the retract
    /// path (`trace::check_log`).
    pub trace: bool,
    /// Boot with QEMU's instruction counter (`make bench ICOUNT=1`; see `qemu::ICOUNT`).
    pub icount: bool,
}

/// Per-scenario wall-clock limit unless a row says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

impl Scenario {
    /// A scenario expecting success, with the default timeout and no extra tests.
    pub const fn new(name: &'static str, fw: Firmware, smp: u32, bootargs: &'static str) -> Self {
        Self {
            name,
            fw,
            smp,
            bootargs,
            base_required: REQUIRED_TESTS,
            extra_required: &[],
            skipped: &[],
            expect: Expect::Success,
            timeout: DEFAULT_TIMEOUT,
            trace: false,
            icount: false,
        }
    }

    pub const fn expect(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }

    #[allow(dead_code, reason = "for rows that need kernel tests beyond REQUIRED_TESTS")]
    pub const fn requires(mut self, tests: &'static [&'static str]) -> Self {
        self.extra_required = tests;
        self
    }

    /// Replaces [`REQUIRED_TESTS`] for this row (filtered runs, recorded logs).
    pub const fn base_required(mut self, tests: &'static [&'static str]) -> Self {
        self.base_required = tests;
        self
    }

    /// Leaves `tests` out of `base_required` for this row.
    pub const fn skipping(mut self, tests: &'static [&'static str]) -> Self {
        self.skipped = tests;
        self
    }

    /// Checks the trace dump too (the row's arguments must say `trace=1`).
    pub const fn traced(mut self) -> Self {
        self.trace = true;
        self
    }

    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub const fn icount(mut self, icount: bool) -> Self {
        self.icount = icount;
        self
    }

    /// Every test name that must appear with `ok`.
    pub fn required(&self) -> Vec<&'static str> {
        let base: &[&str] = match self.expect {
            Expect::Success => self.base_required,
            Expect::TestFails(_)
            | Expect::TestFailsBecause(..)
            | Expect::TestFailsCounting { .. }
            | Expect::Fatal(_)
            | Expect::Oops { .. } => &[],
        };
        base.iter()
            .filter(|t| !self.skipped.contains(t))
            .chain(self.extra_required)
            .copied()
            .collect()
    }
}

use Firmware::{Slof, Vof};

/// Every scenario `make test` runs, in order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario::new("vof-smp1", Vof, 1, ""),
    // Also the radix x active cell of the pte_free_defer matrix below (active is the default;
    // the default tick too: tick_all_cpus checks the tick rate, which a loaded host cannot
    // keep at hz=1000).
    Scenario::new("vof-smp4", Vof, 4, "collapses=16"),
    Scenario::new("vof-hash-smp1", Vof, 1, "mmu=hash"),
    // Also the hash x active cell of the pte_free_defer matrix below (active is the default).
    // Every test under hash (2 torture rounds: 40 s on an idle host with 4), so a longer timeout
    // than the default.
    Scenario::new("vof-hash-smp4", Vof, 4, "mmu=hash collapses=2")
        .timeout(Duration::from_secs(120)),
    // Linux's distribution layout: radix with 64K pages, 256 PTE tables per page. Also the
    // radix64 x active cell of the matrix.
    Scenario::new("vof-radix64-smp4", Vof, 4, "mmu=radix64 collapses=8"),
    // Every vCPU the kernel supports (paca::MAX_CPUS). Hash on 8 vCPUs once failed
    // mm_all_cpus_share_file: the test's file ended at CPU 7's slot with 64K pages.
    Scenario::new("vof-smp8", Vof, 8, SMP8_ARGS_RADIX).skipping(SMP8_SKIPPED),
    Scenario::new("vof-hash-smp8", Vof, 8, SMP8_ARGS_HASH)
        .skipping(SMP8_SKIPPED)
        .timeout(Duration::from_secs(90)),
    // SLOF alone takes ~3-5 s before the kernel's first line.
    Scenario::new("slof-smp2", Slof, 2, "").timeout(Duration::from_secs(90)),
    Scenario::new("vof-selftest-fail", Vof, 1, "selftest=fail")
        .expect(Expect::TestFails("selftest_fail")),
    Scenario::new("vof-bad-cmdline", Vof, 1, "bogus=1")
        .expect(Expect::Fatal("unknown option 'bogus'")),
    // The pte_free_defer matrix: {radix, radix64, hash} x {refcount, active, bitmap} on 4
    // vCPUs (the active cells are vof-smp4, vof-radix64-smp4 and vof-hash-smp4 above, which
    // run every test; the hash rows run the grace-period schedules only, the others being
    // the collapse's and the walkers', which vof-hash-smp4 runs), one
    // 1-vCPU run, and the negative controls the kernel must catch every time.
    Scenario::new(
        "radix-refcount-smp4",
        Vof,
        4,
        "pte_free_defer=refcount hz=1000 collapses=16 test=retract",
    )
    .base_required(RETRACT_TESTS),
    Scenario::new(
        "radix-bitmap-smp4",
        Vof,
        4,
        "pte_free_defer=bitmap hz=1000 collapses=16 test=retract",
    )
    .base_required(RETRACT_TESTS),
    Scenario::new(
        "hash-refcount-smp4",
        Vof,
        4,
        "mmu=hash pte_free_defer=refcount hz=1000 collapses=2 test=retract \
         schedule=deferral,teardown,callbacks",
    )
    .base_required(RETRACT_TESTS),
    Scenario::new(
        "hash-bitmap-smp4",
        Vof,
        4,
        "mmu=hash pte_free_defer=bitmap hz=1000 collapses=2 test=retract \
         schedule=deferral,teardown,callbacks",
    )
    .base_required(RETRACT_TESTS),
    Scenario::new(
        "radix64-refcount-smp4",
        Vof,
        4,
        "mmu=radix64 pte_free_defer=refcount hz=1000 collapses=8 test=retract",
    )
    .base_required(RETRACT_TESTS),
    Scenario::new(
        "radix64-bitmap-smp4",
        Vof,
        4,
        "mmu=radix64 pte_free_defer=bitmap hz=1000 collapses=8 test=retract",
    )
    .base_required(RETRACT_TESTS),
    Scenario::new(
        "radix-refcount-smp1",
        Vof,
        1,
        "pte_free_defer=refcount hz=1000 collapses=16 test=retract",
    )
    .base_required(RETRACT_TESTS),
    Scenario::new(
        "radix-naive-smp4",
        Vof,
        4,
        "pte_free_defer=naive hz=1000 collapses=16 test=retract_torture",
    )
    .expect(NAIVE_CAUGHT),
    Scenario::new(
        "hash-naive-smp4",
        Vof,
        4,
        "mmu=hash pte_free_defer=naive hz=1000 collapses=4 test=retract_torture",
    )
    .expect(NAIVE_CAUGHT),
    Scenario::new(
        "radix64-none-smp4",
        Vof,
        4,
        "mmu=radix64 pte_free_defer=none hz=1000 collapses=8 test=retract_torture",
    )
    .expect(NONE_CAUGHT),
    Scenario::new(
        "radix-none-smp4",
        Vof,
        4,
        "pte_free_defer=none hz=1000 collapses=16 test=retract_torture",
    )
    .expect(NONE_CAUGHT),
    Scenario::new(
        "hash-none-smp4",
        Vof,
        4,
        "mmu=hash pte_free_defer=none hz=1000 collapses=4 test=retract_torture",
    )
    .expect(NONE_CAUGHT),
    // No grace period at all, and no oracle: the hash fault path's lockless walk is still
    // safe, because hash pmdp_collapse_flush waits in serialize_against_pte_lookup() for every
    // CPU (as powerpc was before pte_free_defer); the hash_collapse_no_serialize mutant fails
    // this boot.
    Scenario::new(
        "hash-none-hash_fault-smp4",
        Vof,
        4,
        "mmu=hash pte_free_defer=none rcu_check=off hz=1000 test=retract_schedules \
         schedule=hash_fault",
    )
    .base_required(&["retract_schedules"]),
    // The mail's bitmap sketch, an expected failure: the late_deferral schedule makes its
    // race happen on every reader CPU, and the reader reads POISON.
    Scenario::new(
        "radix-bitmap_sketch-smp4",
        Vof,
        4,
        "pte_free_defer=bitmap_sketch hz=1000 test=retract_schedules schedule=late_deferral",
    )
    .expect(SKETCH_CAUGHT),
    Scenario::new(
        "radix64-bitmap_sketch-smp4",
        Vof,
        4,
        "mmu=radix64 pte_free_defer=bitmap_sketch hz=1000 test=retract_schedules \
         schedule=late_deferral",
    )
    .expect(SKETCH_CAUGHT),
    Scenario::new(
        "hash-bitmap_sketch-smp4",
        Vof,
        4,
        "mmu=hash pte_free_defer=bitmap_sketch hz=1000 test=retract_schedules \
         schedule=late_deferral",
    )
    .expect(SKETCH_CAUGHT),
    // trace=1 (make trace's workload, late_deferral on 2 vCPUs): the dump after the tests
    // must be well-formed and show deferrals, call_rcu, grace periods, callbacks and frees.
    Scenario::new(
        "trace-refcount-smp2",
        Vof,
        2,
        concat!("trace=1 pte_free_defer=refcount ", crate::trace::workload!()),
    )
    .base_required(&["retract_schedules"])
    .traced(),
    Scenario::new("rcu-short-gp-smp4", Vof, 4, "rcu_gp=short hz=1000 test=rcu_torture_pipe")
        .expect(Expect::TestFailsBecause("rcu_torture_pipe", "too-short")),
    Scenario::new("vof-selftest-oops", Vof, 2, "selftest=oops").expect(Expect::Oops {
        interrupt: "data storage",
        dar: SELFTEST_OOPS_DAR,
        function: SELFTEST_OOPS_FUNCTIONS,
    }),
    Scenario::new("vof-hash-selftest-oops", Vof, 2, "mmu=hash selftest=oops").expect(
        Expect::Oops {
            interrupt: "data segment",
            dar: SELFTEST_OOPS_DAR,
            function: SELFTEST_OOPS_FUNCTIONS,
        },
    ),
];

/// The scenarios whose name contains `filter` (all of them for `None`).
pub fn select(filter: Option<&str>) -> Vec<Scenario> {
    SCENARIOS.iter().filter(|s| filter.is_none_or(|f| s.name.contains(f))).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::MAX_SMP;
    use std::collections::HashSet;

    /// Every strategy a row or a mutant boots is one the kernel knows, and the gdb script's
    /// list is the kernel's `Strategy::CHOICES`, in order (the debug table stores an index).
    #[test]
    fn strategy_names_come_from_the_kernel() {
        use ptfrag_core::pte_free_defer::Strategy;
        let boots = SCENARIOS.iter().map(|s| s.bootargs).chain(
            crate::mutants::catalogue::MUTANTS
                .iter()
                .flat_map(|m| m.boots.iter().chain(m.quick.as_slice()))
                .map(|b| b.args),
        );
        for args in boots {
            for st in args.split_whitespace().filter_map(|w| w.strip_prefix("pte_free_defer=")) {
                assert!(Strategy::parse(st).is_some(), "{args:?}: unknown strategy {st}");
            }
        }
        let script =
            std::fs::read_to_string(crate::paths::workspace_root().join("tests/gdb/ptfrag.py"))
                .unwrap();
        let line = script.lines().find(|l| l.starts_with("STRATEGIES = [")).expect("STRATEGIES");
        let names: Vec<String> =
            Strategy::CHOICES.iter().map(|s| format!("\"{}\"", s.name())).collect();
        assert_eq!(line, format!("STRATEGIES = [{}]", names.join(", ")));
    }

    #[test]
    fn table_is_sane() {
        let mut names = HashSet::new();
        for s in SCENARIOS {
            assert!(names.insert(s.name), "duplicate scenario {}", s.name);
            let traced = s.bootargs.split_whitespace().any(|w| w == "trace=1");
            assert_eq!(s.trace, traced, "{}: trace=1 and the trace check go together", s.name);
            assert!((1..=MAX_SMP).contains(&s.smp), "{}: smp {}", s.name, s.smp);
            assert!(!s.timeout.is_zero());
        }
    }

    #[test]
    fn required_applies_to_success_only() {
        let ok = Scenario::new("a", Vof, 1, "").requires(&["extra"]);
        assert_eq!(ok.required().len(), REQUIRED_TESTS.len() + 1);
        assert!(ok.required().contains(&"extra"));
        let neg = ok.expect(Expect::TestFails("x"));
        assert_eq!(neg.required(), ["extra"]);
    }

    #[test]
    fn smp8_rows_skip_only_required_tests() {
        for t in SMP8_SKIPPED {
            assert!(REQUIRED_TESTS.contains(t), "{t} is not a required test");
        }
        for name in ["vof-smp8", "vof-hash-smp8"] {
            let row = SCENARIOS.iter().find(|s| s.name == name).unwrap();
            let req = row.required();
            assert_eq!(req.len(), REQUIRED_TESTS.len() - SMP8_SKIPPED.len(), "{name}");
            assert!(req.iter().all(|t| !SMP8_SKIPPED.contains(t)), "{name}");
        }
    }

    #[test]
    fn filter_by_substring() {
        assert_eq!(select(None).len(), SCENARIOS.len());
        let slof = select(Some("slof"));
        assert!(slof.iter().all(|s| s.fw == Slof) && !slof.is_empty());
        assert!(select(Some("no-such-scenario")).is_empty());
    }
}
