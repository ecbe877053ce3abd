//! A model of the POWER9 page-walk cache, which QEMU's radix walker does not have
//! (target/ppc/mmu-radix64.c walks the tree from the process table on every TLB miss and
//! keeps only leaf translations). Real radix hardware caches directory entries, so after a
//! PMD is cleared it may keep walking the old PTE table until the CPU is flushed with a
//! RIC=2 (or `tlbiel` all) invalidation: the reason `pmdp_collapse_flush()` must flush the
//! page-walk cache, after the clear, before the table can be freed. The model walks like the
//! hardware (no RCU read section, no lock) and remembers the PTE table a PMD pointed to until
//! this CPU's next local flush (`tlb::local_flushes`), which every flush IPI and every
//! local invalidation counts; a walk through the remembered table after a missed flush
//! reads the freed table: POISON.

use crate::arch::mmu::{pte, tlb};
use crate::arch::paca;
use crate::mm::Mm;
use ptfrag_core::pgtable::Level;

/// One cached PMD: which address space and PMD range, the PTE table, and the CPU's flush
/// count when it was filled.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pid: u32,
    pmd_range: u64,
    pub table: u64,
    flushes: u64,
}

/// What a walk used and found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PwcWalk {
    /// No PTE table on the way (no PMD, or a huge leaf).
    NoTable,
    /// The PTE entry read from `table`, through the cache or a fresh walk.
    Pte { table: u64, cached: bool, pte: u64 },
}

/// Walks `mm` at `ea` through `cache` (this CPU's page-walk cache for the walk).
pub fn walk(mm: &Mm, ea: u64, cache: &mut Option<Entry>) -> PwcWalk {
    let me = paca::cpu_id();
    let pmd_range = ea >> pte::geometry().entry_shift(Level::Pmd);
    let now = tlb::local_flushes(me);
    if let Some(e) = *cache {
        if e.flushes == now && e.pid == mm.pid && e.pmd_range == pmd_range {
            // A linear-map read; whether the table is still live is what the
            // caller checks (POISON).
            let v = pte::slot(e.table, Level::Pte, ea).get();
            return PwcWalk::Pte { table: e.table, cached: true, pte: v };
        }
    }
    *cache = None;
    // The count is read before the PMD: a flush after this read drops the entry.
    let Some(pmd) = mm.pmd_slot(ea) else { return PwcWalk::NoTable };
    // PMD tables of a live mm stay until teardown.
    let e = pmd.get();
    if !pte::present(e) || pte::is_leaf(e) {
        return PwcWalk::NoTable;
    }
    let table = pte::target(e);
    *cache = Some(Entry { pid: mm.pid, pmd_range, table, flushes: now });
    let v = pte::slot(table, Level::Pte, ea).get();
    PwcWalk::Pte { table, cached: false, pte: v }
}
