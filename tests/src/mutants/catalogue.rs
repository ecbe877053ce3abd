//! The mutant catalogue: small, plausible bugs of the kind the 2023 thread is about, each a
//! text replacement in one file of a copy of the tree. Every anchor must occur exactly once
//! in today's tree (`catalogue_applies` checks it in the host tests), so a mutant that no
//! longer applies fails `make test` instead of passing `make mutants` by doing nothing.

/// How a boot of a mutant kernel is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judge {
    /// A normal boot: the mutant is caught if any check of the kernel fails it.
    Clean,
    /// A negative control that must fail for this reason (a word of the failing test's
    /// message): the mutant, which weakens a check, is caught if the control no longer fails
    /// that way.
    Control(&'static str),
}

/// One boot of a mutant kernel.
#[derive(Clone, Copy, Debug)]
pub struct Boot {
    pub smp: u32,
    /// Kernel command line.
    pub args: &'static str,
    pub judge: Judge,
}

#[derive(Clone, Copy, Debug)]
pub struct Mutant {
    pub name: &'static str,
    /// What the bug models, for the table.
    pub what: &'static str,
    /// File relative to the workspace root, the text replaced (exactly once) and its
    /// replacement.
    pub file: &'static str,
    pub old: &'static str,
    pub new: &'static str,
    pub boots: &'static [Boot],
    /// Cheap and reliably caught: `make test` also runs it, in this one short boot.
    pub quick: Option<Boot>,
    /// Why no boot can tell this mutant from the original (an equivalent mutant on the
    /// emulated machine): it is still built and booted, and listed, but a miss is not
    /// counted as one.
    pub equivalent: Option<&'static str>,
    /// The compiler error (its code, and why) that must refuse this mutant: a bug the types
    /// rule out. Caught if the build fails with that code; an error if it builds.
    pub compile_error: Option<(&'static str, &'static str)>,
}

const fn boot(args: &'static str) -> Boot {
    Boot { smp: 4, args, judge: Judge::Clean }
}

/// `make test`'s short boot of a quick mutant: radix, the deterministic schedules only.
macro_rules! q {
    ($st:literal) => {
        Some(boot(concat!("pte_free_defer=", $st, " hz=1000 test=retract_schedules")))
    };
}

// The retract workload with the RCU tests beside it; hash pays more per round.
macro_rules! r {
    ($st:literal) => {
        boot(concat!("pte_free_defer=", $st, " hz=1000 collapses=8 test=rcu_,retract"))
    };
}
macro_rules! r64 {
    ($st:literal) => {
        boot(concat!("mmu=radix64 pte_free_defer=", $st, " hz=1000 collapses=4 test=rcu_,retract"))
    };
}
macro_rules! h {
    ($st:literal) => {
        boot(concat!("mmu=hash pte_free_defer=", $st, " hz=1000 collapses=4 test=rcu_,retract"))
    };
}

const PFD: &str = "kernel/core/src/pte_free_defer/mod.rs";
const PFD_REFCOUNT: &str = "kernel/core/src/pte_free_defer/refcount.rs";
const PFD_BITMAP: &str = "kernel/core/src/pte_free_defer/bitmap.rs";
const RCU_GP: &str = "kernel/core/src/rcu/gp.rs";
const RCU_QS: &str = "kernel/core/src/rcu/qs.rs";
const RCU_CALLBACKS: &str = "kernel/core/src/rcu/callbacks.rs";
const KHUGEPAGED: &str = "kernel/src/mm/khugepaged.rs";
const SEAM: &str = "kernel/src/arch/mmu/book3s64.rs";

pub const MUTANTS: &[Mutant] = &[
    // --- refcount (Hugh's v2) ---
    Mutant {
        name: "refcount_defer_always_queues",
        what: "refcount: every deferral queues the head, not only the first",
        file: PFD_REFCOUNT,
        old: "if old + (D - 1) < 2 * D {",
        new: "if old + (D - 1) < u32::MAX {",
        boots: &[r!("refcount"), h!("refcount")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "refcount_cb_reruns",
        what: "refcount callback runs itself again for late deferrals instead of re-queueing",
        file: PFD_REFCOUNT,
        old: "    bump(&env.stats().redefers);\n    queue(page, env)\n}",
        new: "    bump(&env.stats().redefers);\n    refcount_callback(page, env)\n}",
        boots: &[r!("refcount"), h!("refcount")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "refcount_cb_one_late_is_nothing",
        what: "refcount callback treats exactly one late deferral as none and drops its token",
        file: PFD_REFCOUNT,
        old: "    if refcount < D {\n        // Nothing came meanwhile: free our table like pte_fragment_free.\n",
        new: "    if refcount < 2 * D {\n        env.desc(page.pa()).pt_frag_refcount.fetch_and(D - 1, Ordering::AcqRel);\n",
        boots: &[r!("refcount"), h!("refcount"), r64!("refcount")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "refcount_plain_free_ignores_tokens",
        what: "refcount: a plain free frees the page when the plain references are gone, \
               although deferral tokens are pending",
        file: PFD_REFCOUNT,
        old: "    if old == n {\n        free_page(page, env, after_gp);",
        new: "    if old % D == n {\n        free_page(page, env, after_gp);",
        boots: &[r!("refcount"), h!("refcount")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "frag_destroy_off_by_one",
        what: "teardown returns one fragment more than the cache still holds (every strategy)",
        file: PFD,
        old: "let unused = (geo.frags_per_page - frag_index(next, geo)) as u32;",
        new: "let unused = (geo.frags_per_page - frag_index(next, geo)) as u32 + 1;",
        boots: &[r!("refcount"), r!("active")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    // --- active (Linux v6.6) ---
    Mutant {
        name: "active_defer_forgets_flag",
        what: "active: a deferral drops its reference without marking the page Active",
        file: PFD,
        old: "            Strategy::Active => {\n                env.desc(page.pa()).set_flag(PageFlags::ACTIVE);\n",
        new: "            Strategy::Active => {\n",
        boots: &[r!("active"), h!("active"), r64!("active")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "active_plain_free_skips_gp",
        what: "active: a plain free that drops the last reference frees at once, Active or not",
        file: PFD,
        old: "            Strategy::Active => put_active(page, 1, env),\n            Strategy::Bitmap",
        new: "            Strategy::Active => put_and_free_now(page, 1, env),\n            Strategy::Bitmap",
        boots: &[r!("active"), h!("active")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "active_teardown_frees_now",
        what: "active: teardown's last reference frees at once although the page is Active",
        file: PFD,
        old: "            Strategy::Active => put_active(page, unused, env),",
        new: "            Strategy::Active => put_and_free_now(page, unused, env),",
        boots: &[r!("active")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    // --- bitmap (two phases) ---
    Mutant {
        name: "bitmap_late_joins_wait",
        what: "bitmap: a deferral while the head is queued joins the running phase",
        file: PFD_BITMAP,
        old: "        } else {\n            Some(s + NEXT_ONE)\n        }",
        new: "        } else {\n            Some(s + 1)\n        }",
        boots: &[r!("bitmap"), h!("bitmap"), r64!("bitmap")],
        quick: q!("bitmap"),
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "bitmap_cb_frees_next_too",
        what: "bitmap callback drops the references of the next phase as well",
        file: PFD_BITMAP,
        old: "put_and_free_after_gp(page, (old & WAIT) as u32, env)",
        new: "put_and_free_after_gp(page, (old & WAIT) as u32 + (old >> 32) as u32, env)",
        boots: &[r!("bitmap"), h!("bitmap"), r64!("bitmap")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "bitmap_cb_forgets_next",
        what: "bitmap callback clears the next phase instead of moving it to wait",
        file: PFD_BITMAP,
        old: "(s & WAIT != 0).then_some(s >> 32)",
        new: "(s & WAIT != 0).then_some(0)",
        boots: &[r!("bitmap"), r64!("bitmap")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    // --- the RCU core ---
    Mutant {
        name: "rcu_snap_one_short",
        what: "rcu_seq_snap one grace period short ((s + 1) & !1)",
        file: RCU_GP,
        old: "pub const fn rcu_seq_snap(s: u64) -> u64 {\n    (s + 3) & !1",
        new: "pub const fn rcu_seq_snap(s: u64) -> u64 {\n    (s + 1) & !1",
        boots: &[r!("refcount"), h!("active")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "rcu_gp_ignores_cpu2",
        what: "grace periods never wait for CPU 2",
        file: RCU_GP,
        old: "self.qs_mask.swap(online, Ordering::SeqCst)",
        new: "self.qs_mask.swap(online & !4, Ordering::SeqCst)",
        boots: &[r!("refcount"), h!("active")],
        quick: q!("refcount"),
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "rcu_any_report_ends_gp",
        what: "the first quiescent-state report ends the grace period",
        file: RCU_QS,
        old: "if prev == bit {",
        new: "if prev & bit != 0 {",
        boots: &[r!("active"), h!("refcount")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "rcu_callbacks_one_gp_early",
        what: "callbacks run when the grace period before theirs has completed",
        file: RCU_CALLBACKS,
        old: "let completed = self.completed();",
        new: "let completed = self.completed() + 2;",
        boots: &[r!("active"), h!("bitmap")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "rcu_qs_inside_read_section",
        what: "a quiescent state inside a read-side section is accepted",
        file: RCU_QS,
        old: "        if nesting != 0 {\n            return Err(RcuError::QsInReadSection { cpu, nesting });\n        }",
        new: "        let _ = nesting;",
        boots: &[r!("active")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "rcu_call_rcu_unordered_snapshot",
        what: "call_rcu reads gp_seq with neither the fence nor a SeqCst load after the unlink \
               (removing the fence alone is an equivalent mutant on ppc64: the SeqCst load of \
               gp_seq is compiled with its own sync)",
        file: RCU_CALLBACKS,
        old: "        fence(Ordering::SeqCst);\n        let c = &self.cpus[cpu];\n        c.lock();\n        // Read under the lock so snapshots never decrease along the list.\n        let snap = rcu_seq_snap(self.gp_seq.load(Ordering::SeqCst));",
        new: "        let c = &self.cpus[cpu];\n        c.lock();\n        // Read under the lock so snapshots never decrease along the list.\n        let snap = rcu_seq_snap(self.gp_seq.load(Ordering::Relaxed));",
        boots: &[r!("refcount")],
        quick: None,
        equivalent: Some(
            "under TCG on an x86 host every path from the unlink to the gp_seq load passes a \
             stdcx. (the head's compare-and-swap, the callback-list lock), which QEMU turns \
             into a locked host cmpxchg, a full barrier; on the retract path the PMD store is \
             also followed by ptesync and the flush handshake. Only real POWER hardware or a \
             weak-memory model can tell it apart",
        ),
        compile_error: None,
    },
    // --- retract and collapse ---
    Mutant {
        name: "collapse_no_flush",
        what: "pmdp_collapse_flush clears the PMD but flushes no CPU (radix)",
        file: SEAM,
        old: "    if radix_enabled() {\n        tlb::flush_all_cpus(mm.pid);\n    } else {",
        new: "    if radix_enabled() {\n        let _ = mm.pid;\n    } else {",
        boots: &[r!("active"), r64!("active")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "collapse_flush_before_clear",
        what: "radix pmdp_collapse_flush flushes every CPU before clearing the PMD",
        file: SEAM,
        old: "    pmd.set(0, ptl);\n    if radix_enabled() {\n        tlb::flush_all_cpus(mm.pid);\n    } else {",
        new: "    if radix_enabled() {\n        tlb::flush_all_cpus(mm.pid);\n        pmd.set(0, ptl);\n    } else {\n        pmd.set(0, ptl);",
        boots: &[r!("active")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "collapse_keeps_hptes",
        what: "hash pmdp_collapse_flush leaves the HPTEs of the detached table's entries",
        file: SEAM,
        old: "            hash_utils::unhash_leaf(mm, None, &leaf, ea);",
        new: "            let _ = (&leaf, ea);",
        boots: &[h!("active")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "hash_collapse_no_serialize",
        what: "hash pmdp_collapse_flush does not serialize_against_pte_lookup() (caught where \
               nothing else protects the lockless hash_page: no grace period, pre-6.5 Linux)",
        file: SEAM,
        old: "    tlb::serialize_against_pte_lookup();\n",
        new: "",
        boots: &[Boot {
            smp: 4,
            args: "mmu=hash pte_free_defer=none rcu_check=off hz=1000 test=retract_schedules \
                   schedule=hash_fault",
            judge: Judge::Clean,
        }],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "hash_page_irqs_on",
        what: "hash_page walks the Linux tables locklessly with interrupts on",
        file: "kernel/src/arch/mmu/hash_utils.rs",
        old: "    let was = crate::arch::irq::disable();\n    let r = insert_locklessly(mm, ea, write);\n    crate::arch::irq::restore(was);",
        new: "    let r = insert_locklessly(mm, ea, write);",
        boots: &[h!("active"), h!("refcount")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "unmap_ignores_busy",
        what: "clearing a leaf does not wait for a hash_page that holds it BUSY",
        file: "kernel/src/arch/mmu/pte.rs",
        old: "            if e & BUSY == 0 && self.cmpxchg(e, 0) == e {",
        new: "            if self.cmpxchg(e, 0) == e {",
        boots: &[h!("active")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "collapse_unmap_no_flush",
        what: "collapse_file unmaps the small pages but frees them without flushing any CPU \
               (radix only: under hash, QEMU flushes every vCPU when an HPTE is removed)",
        file: KHUGEPAGED,
        old: "    tlb::flush_all_cpus_pids(&pids);\n    Ok(zapped)",
        new: "    let _ = pids;\n    Ok(zapped)",
        boots: &[r!("active")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "collapse_frees_before_unmap",
        what: "collapse_file frees the old small pages before unmapping them",
        file: KHUGEPAGED,
        old: "    file.make_huge(off)?;\n",
        new: "    file.make_huge(off)?;\n    file.free_small_pages(off);\n",
        boots: &[r!("active"), h!("active")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "retract_no_recheck",
        what: "retract_page_tables does not re-check the PMD under its locks",
        file: KHUGEPAGED,
        old: "            if pmd.get() != seen {\n                continue;\n            }",
        new: "            let _ = seen;",
        boots: &[r!("active"), h!("active")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "retract_defers_twice",
        what: "retract_page_tables defers the table twice",
        file: KHUGEPAGED,
        old: "        super::pte_free::pte_free_defer(&mm, detached);",
        new: "        super::pte_free::pte_free_defer(&mm, detached);\n        super::pte_free::pte_free_defer(&mm, detached);",
        boots: &[r!("refcount")],
        quick: None,
        equivalent: None,
        compile_error: Some(("E0382", "use of moved value: a DetachedTable is consumed by the first pte_free_defer")),
    },
    // --- the walkers' own re-check ---
    Mutant {
        name: "walker_no_pmd_recheck",
        what: "the lockless walker uses the page a PTE maps without re-checking PMD and PTE",
        file: "kernel/src/tests/gup_fast.rs",
        old: "    if !still {\n        return Walk::Discarded;",
        new: "    if false && !still {\n        return Walk::Discarded;",
        boots: &[r!("active"), h!("active")],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    // --- the checks themselves: each weakens one, so its negative control must notice ---
    Mutant {
        name: "page_check_assumes_64k",
        what: "mm_one_translation_per_page expects 64K pages whatever the mode (booted in radix, \
               4K pages, its check must fail: the proof that it can tell 4K from 64K)",
        file: "kernel/src/tests/mmu.rs",
        old: "    let last = page() - 8;",
        new: "    let last = FRAME_SIZE - 8;",
        boots: &[Boot { smp: 1, args: "test=mm_one_translation_per_page", judge: Judge::Clean }],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "free_without_poison",
        what: "freed page-table pages are not poisoned",
        file: "kernel/src/mm/pgalloc.rs",
        old: "        crate::arch::mmu::pte::fill_words(pa, FRAME_SIZE as usize, POISON);",
        new: "        let _ = pa;",
        boots: &[Boot {
            smp: 4,
            args: "pte_free_defer=none rcu_check=off hz=1000 collapses=16 test=retract_torture",
            judge: Judge::Control("POISON"),
        }],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "oracle_blind",
        what: "the grace-period oracle never reports an early free",
        file: "kernel/core/src/gp_oracle.rs",
        old: "if needed != 0 && completed < needed {",
        new: "if needed != 0 && completed < needed && needed == 0 {",
        boots: &[Boot {
            smp: 4,
            args: "pte_free_defer=bitmap_sketch hz=1000 collapses=16 test=retract_torture",
            judge: Judge::Control("rcu_check"),
        }],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
    Mutant {
        name: "oracle_snapshot_too_early",
        what: "the oracle takes its snapshot as if the grace period were idle",
        file: "kernel/core/src/gp_oracle.rs",
        old: "        gp_seq + 3\n",
        new: "        gp_seq + 1\n",
        boots: &[Boot {
            smp: 4,
            args: "pte_free_defer=bitmap_sketch hz=1000 collapses=16 test=retract_torture",
            judge: Judge::Control("rcu_check"),
        }],
        quick: None,
        equivalent: None,
        compile_error: None,
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn catalogue_applies() {
        let root = crate::paths::workspace_root();
        let mut names = HashSet::new();
        assert!(MUTANTS.len() >= 25, "issue 9 asks for at least 25 mutants");
        for m in MUTANTS {
            assert!(names.insert(m.name), "duplicate mutant {}", m.name);
            let text = std::fs::read_to_string(root.join(m.file)).unwrap();
            assert_eq!(
                text.matches(m.old).count(),
                1,
                "{}: anchor must occur once in {}",
                m.name,
                m.file
            );
            assert_ne!(m.old, m.new, "{}", m.name);
            assert!(!m.boots.is_empty(), "{}", m.name);
        }
    }
}
