//! The table of QEMU scenarios `make test` boots, and the kernel tests every normal boot must
//! pass. To add a scenario, add a row to [`SCENARIOS`]; to require a new kernel test on every
//! successful boot, add its name to [`REQUIRED_TESTS`].

use crate::qemu::Firmware;
use std::time::Duration;

/// Kernel tests that must report `ok` in every scenario that expects success.
pub const REQUIRED_TESTS: &[&str] = &[
    "frame_alloc",
    "frame_alloc_exhaustion",
    "frame_double_free",
    "heap",
    "smp_checkin_spinlock",
    "ipi_all_cpus",
    "tick_all_cpus",
    "storage_interrupt_caught",
    "mm_fault_read_write",
    "mm_shared_between_mms",
    "mm_all_cpus_share_file",
    "pte_frag_16_per_page",
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
];

/// The RCU and retract tests alone, for the strategy matrix.
pub const RETRACT_TESTS: &[&str] = &[
    "rcu_callbacks_run_in_order",
    "rcu_misuse_is_caught",
    "rcu_freeing_a_queued_head_is_caught",
    "rcu_grace_period_waits_for_readers",
    "rcu_torture_pipe",
    "rcu_callback_waits_for_reader",
    "retract_torture",
];

/// What a scenario's run must show to pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A clean run: exit 0, every test `ok`, a well-formed log.
    Success,
    /// Negative control: this kernel test reports `FAILED:`, the summary counts it and QEMU
    /// exits 1; the rest of the log is still well-formed.
    TestFails(&'static str),
    /// Negative control with a named cause: this kernel test reports `FAILED:` with this word
    /// in its reason (e.g. the kernel's own check that caught the bug), exit 1.
    TestFailsBecause(&'static str, &'static str),
    /// The kernel stops early: a `FATAL:` line containing this word, exit 1, no summary.
    Fatal(&'static str),
    /// An unexpected interrupt: an `oops:` line naming this interrupt, the register dump
    /// (SRR0/SRR1/DAR/DSISR/LR) and a backtrace whose frames carry symbol names, exit 1.
    Oops(&'static str),
}

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
    pub expect: Expect,
    pub timeout: Duration,
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
            expect: Expect::Success,
            timeout: DEFAULT_TIMEOUT,
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

    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Every test name that must appear with `ok`.
    pub fn required(&self) -> Vec<&'static str> {
        let base: &[&str] = match self.expect {
            Expect::Success => self.base_required,
            Expect::TestFails(_)
            | Expect::TestFailsBecause(..)
            | Expect::Fatal(_)
            | Expect::Oops(_) => &[],
        };
        base.iter().chain(self.extra_required).copied().collect()
    }
}

use Firmware::{Slof, Vof};

/// Every scenario `make test` runs, in order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario::new("vof-smp1", Vof, 1, ""),
    Scenario::new("vof-smp4", Vof, 4, ""),
    Scenario::new("vof-hash-smp1", Vof, 1, "mmu=hash"),
    Scenario::new("vof-hash-smp4", Vof, 4, "mmu=hash"),
    // Every vCPU the kernel supports (paca::MAX_CPUS). Hash on 8 vCPUs once failed
    // mm_all_cpus_share_file: the test's file ended at CPU 7's slot with 64K pages.
    Scenario::new("vof-smp8", Vof, 8, ""),
    Scenario::new("vof-hash-smp8", Vof, 8, "mmu=hash collapses=4").timeout(Duration::from_secs(90)),
    // SLOF alone takes ~3-5 s before the kernel's first line.
    Scenario::new("slof-smp2", Slof, 2, "").timeout(Duration::from_secs(90)),
    Scenario::new("vof-selftest-fail", Vof, 1, "selftest=fail")
        .expect(Expect::TestFails("selftest_fail")),
    Scenario::new("vof-bad-cmdline", Vof, 1, "bogus=1").expect(Expect::Fatal("bogus")),
    // The pte_free_defer matrix: {radix, hash} x {refcount, active, bitmap} on 4 vCPUs, one
    // 1-vCPU run, and the negative controls the kernel must catch every time.
    Scenario::new(
        "radix-refcount-smp4",
        Vof,
        4,
        "pte_free_defer=refcount hz=1000 collapses=16 test=rcu_,retract",
    )
    .base_required(RETRACT_TESTS),
    Scenario::new(
        "radix-active-smp4",
        Vof,
        4,
        "pte_free_defer=active hz=1000 collapses=16 test=rcu_,retract",
    )
    .base_required(RETRACT_TESTS),
    Scenario::new(
        "radix-bitmap-smp4",
        Vof,
        4,
        "pte_free_defer=bitmap hz=1000 collapses=16 test=rcu_,retract",
    )
    .base_required(RETRACT_TESTS),
    Scenario::new(
        "hash-refcount-smp4",
        Vof,
        4,
        "mmu=hash pte_free_defer=refcount hz=1000 collapses=8 test=rcu_,retract",
    )
    .base_required(RETRACT_TESTS),
    Scenario::new(
        "hash-active-smp4",
        Vof,
        4,
        "mmu=hash pte_free_defer=active hz=1000 collapses=8 test=rcu_,retract",
    )
    .base_required(RETRACT_TESTS),
    Scenario::new(
        "hash-bitmap-smp4",
        Vof,
        4,
        "mmu=hash pte_free_defer=bitmap hz=1000 collapses=8 test=rcu_,retract",
    )
    .base_required(RETRACT_TESTS),
    Scenario::new(
        "radix-refcount-smp1",
        Vof,
        1,
        "pte_free_defer=refcount hz=1000 collapses=16 test=rcu_,retract",
    )
    .base_required(RETRACT_TESTS),
    Scenario::new(
        "radix-naive-smp4",
        Vof,
        4,
        "pte_free_defer=naive hz=1000 collapses=16 test=retract",
    )
    .expect(Expect::TestFailsBecause("retract_torture", "double call_rcu")),
    Scenario::new(
        "hash-naive-smp4",
        Vof,
        4,
        "mmu=hash pte_free_defer=naive hz=1000 collapses=8 test=retract",
    )
    .expect(Expect::TestFailsBecause("retract_torture", "double call_rcu")),
    Scenario::new(
        "radix-none-smp4",
        Vof,
        4,
        "pte_free_defer=none hz=1000 collapses=16 test=retract",
    )
    .expect(Expect::TestFailsBecause("retract_torture", "POISON")),
    Scenario::new(
        "hash-none-smp4",
        Vof,
        4,
        "mmu=hash pte_free_defer=none hz=1000 collapses=8 test=retract",
    )
    .expect(Expect::TestFailsBecause("retract_torture", "POISON")),
    Scenario::new("rcu-short-gp-smp4", Vof, 4, "rcu_gp=short hz=1000 test=rcu_torture_pipe")
        .expect(Expect::TestFailsBecause("rcu_torture_pipe", "too-short")),
    Scenario::new("vof-selftest-oops", Vof, 2, "selftest=oops")
        .expect(Expect::Oops("data storage")),
    Scenario::new("vof-hash-selftest-oops", Vof, 2, "mmu=hash selftest=oops")
        .expect(Expect::Oops("data segment")),
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

    #[test]
    fn table_is_sane() {
        let mut names = HashSet::new();
        for s in SCENARIOS {
            assert!(names.insert(s.name), "duplicate scenario {}", s.name);
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
    fn filter_by_substring() {
        assert_eq!(select(None).len(), SCENARIOS.len());
        let slof = select(Some("slof"));
        assert!(slof.iter().all(|s| s.fw == Slof) && !slof.is_empty());
        assert!(select(Some("no-such-scenario")).is_empty());
    }
}
