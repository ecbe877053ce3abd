//! The MMU seam, in the shape of Linux's arch/powerpc/include/asm/book3s/64/pgtable.h and
//! book3s64/pgtable.c: every place where the mm code needs radix, radix64 and hash to
//! differ calls one function here, which picks the `radix` or the hash (`hash_utils`)
//! variant, as Linux's `radix__`/`hash__` pairs are picked on `radix_enabled()`. Nothing
//! under `mm/` names a mode; the geometry (`pte::geometry`, `pmd_frag`) comes from here too.

use super::pte::{PteSlot, PtlHeld};
use super::{hash, hash_utils, pte, radix, radix_enabled, tlb};
use crate::mm::fault::{FaultError, Leaf};
use crate::mm::Mm;
use core::sync::atomic::Ordering;
use ptfrag_core::cmdline::MmuMode;
use ptfrag_core::pgtable::Level;
use ptfrag_core::pgtable_frag::{
    FragGeometry, HASH_PMD_FRAG, PTE_FRAG, RADIX64_PTE_FRAG, RADIX_PMD_FRAG,
};
use ptfrag_core::pgtable_t::{DetachedTable, PgTable};

/// Address-space contexts: radix PIDs (process-table entries), hash context ids (from which
/// the VSIDs derive). 0 is the kernel's, `radix::NULL_PID` the empty tree.
pub const MAX_CONTEXT: u32 = radix::MAX_PID;
pub const FIRST_USER_CONTEXT: u32 = radix::NULL_PID + 1;

/// PTE tables of `mode`: 4K fragments, 16 per page (radix and hash; hash keeps the HPTE
/// slots in the second half), 256-byte ones, 256 per page, under radix64. A function of the
/// command line's mode, because the page-table state is sized before the MMU is on.
pub fn pte_frag_for(mode: MmuMode) -> FragGeometry {
    match mode {
        MmuMode::Radix64 => RADIX64_PTE_FRAG,
        MmuMode::Radix | MmuMode::Hash => PTE_FRAG,
    }
}

/// PUD/PMD tables: 4K fragments under radix, 16K under hash (the PMD table doubled for the
/// THP deposit words, Linux `H_PMD_FRAG_SIZE`).
pub fn pmd_frag() -> &'static FragGeometry {
    if radix_enabled() {
        &RADIX_PMD_FRAG
    } else {
        &HASH_PMD_FRAG
    }
}

/// Linux `init_new_context()`: radix points the context's process-table entry at `pgd`;
/// hash has nothing to set up (the VSIDs are computed from the context id).
pub fn init_new_context(ctx: u32, pgd: u64) {
    if radix_enabled() {
        radix::set_prtb_entry(ctx, pgd);
    }
}

/// Linux `destroy_context()`.
pub fn destroy_context(ctx: u32) {
    if radix_enabled() {
        radix::set_prtb_entry(ctx, 0);
    }
}

/// Whether the hardware's translations live outside the Linux tables (hash: the HPTEs), so
/// that a teardown must remove them leaf by leaf rather than drop the tree at once.
pub fn translations_outside_tables() -> bool {
    !radix_enabled()
}

/// Linux `switch_mmu_context()`: `Some(ctx)` to run in that address space on this CPU,
/// `None` for none (radix: the empty tree's PID; hash: no address-space segments).
pub fn switch_mmu_context(ctx: Option<u32>) {
    if radix_enabled() {
        radix::set_pid(ctx.unwrap_or(radix::NULL_PID));
    } else {
        hash::slb_flush_user();
    }
}

/// Linux `pgtable_trans_huge_deposit()`: hash keeps the HPTE slots of a huge leaf's
/// subpages in a PTE table deposited with it, recorded in the word beside the PMD entry
/// (`pmdp + PTRS_PER_PMD`, book3s64/hash_pgtable.c), where the lockless `hash_page` finds
/// it; radix deposits nothing. Returns whether the caller must allocate one.
pub fn huge_leaf_needs_deposit() -> bool {
    !radix_enabled()
}

/// Records `table` as the deposit of the huge leaf about to be written at `pmd`.
///
/// `pmd` is a PMD slot of an address space whose page-table lock `_ptl` proves held; the
/// leaf's own store (`PteSlot::set`, a release) makes the deposit visible before the leaf.
pub fn deposit(pmd: &PteSlot, table: u64, _ptl: &dyn PtlHeld) {
    pte::deposit_word(pmd).store(table, Ordering::Relaxed);
}

/// Clears the leaf at `leaf` (Linux `pte_update()` and, under hash, `hpte_need_flush()`):
/// the entry goes first (waiting for a `hash_page` that holds it BUSY), then its HPTEs by
/// the slots recorded for it. Returns the table deposited with a huge leaf, for the caller
/// to free. Caller holds the page-table lock and flushes other CPUs afterwards.
pub fn clear_leaf(mm: &Mm, leaf: &Leaf, ea: u64, ptl: &dyn PtlHeld) -> Option<u64> {
    leaf.slot.clear_leaf(ptl);
    if radix_enabled() {
        return None;
    }
    let dep =
        (leaf.level == Level::Pmd).then(|| pte::deposit_word(leaf.slot).swap(0, Ordering::Relaxed));
    let dep = dep.filter(|&d| d != 0);
    hash_utils::unhash_leaf(mm, dep, leaf, ea);
    dep
}

/// The data storage interrupt on an address-space address (Linux `do_page_fault()`): radix
/// fills the tables the hardware walks; hash takes the lockless `hash_page` first.
pub fn handle_fault(mm: &Mm, ea: u64, write: bool) -> Result<(), FaultError> {
    if radix_enabled() {
        crate::mm::fault::handle_mm_fault(mm, ea, write)
    } else {
        hash_utils::hash_page(mm, ea, write)
    }
}

/// Clears the PMD and makes every CPU forget translations through it before returning.
/// Radix: the cross-CPU flush (tlbie RIC=2 for the PID, then the IPI handshake) drops TLB
/// and page-walk-cache entries. Hash, as Linux `hash__pmdp_collapse_flush()`: clear the PMD;
/// `serialize_against_pte_lookup()`, so no lockless `hash_page` that read the old PMD with
/// interrupts off still holds the table; only then remove the HPTEs of the table's entries
/// (a `hash_page` still inside could otherwise insert one after the removal); and, if any
/// went, the handshake again, because under MTTCG the hcalls' own flush reaches the other
/// vCPUs late (see `tlb::flush_all_cpus`).
// SAFETY: `pmdp_collapse_flush` is the only symbol of that name in the kernel (Linux's name, so that
// `break pmdp_collapse_flush` works in gdb); never inlined, so every call stops there.
#[unsafe(export_name = "pmdp_collapse_flush")]
#[inline(never)]
pub fn pmdp_collapse_flush(
    mm: &Mm,
    pmd: &PteSlot,
    table: u64,
    addr: u64,
    ptl: &dyn PtlHeld,
) -> DetachedTable {
    pmd.set(0, ptl);
    if radix_enabled() {
        tlb::flush_all_cpus(mm.pid);
    } else {
        hash_collapse_flush(mm, table, addr);
    }
    // SAFETY: the PMD no longer points at `table` (cleared above, under its lock, and `table`
    // was what it held: the caller's re-check) and every CPU has forgotten translations
    // through it (the flush above has returned); one PMD held it, so this is its only
    // `DetachedTable`.
    unsafe { DetachedTable::new(PgTable::new(table)) }
}

/// Hash's part of `pmdp_collapse_flush()`, after the PMD is cleared.
fn hash_collapse_flush(mm: &Mm, table: u64, addr: u64) {
    tlb::serialize_against_pte_lookup();
    let g = pte::geometry();
    let mut removed = 0;
    for i in 0..g.entries(Level::Pte) {
        let ea = addr + ((i as u64) << g.page_shift);
        let slot = pte::slot(table, Level::Pte, ea);
        // The table is detached and every lockless walk of it has ended (serialized above);
        // every other writer holds the lock the caller holds.
        if slot.get() & pte::HASHPTE != 0 {
            let leaf = Leaf { slot, level: Level::Pte, table, writable: false };
            hash_utils::unhash_leaf(mm, None, &leaf, ea);
            removed += 1;
        }
    }
    if removed > 0 {
        tlb::flush_all_cpus(mm.pid);
    }
}
