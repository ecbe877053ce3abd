//! The lockless walk both the retract torture and the schedules use, in the shape of Linux's
//! GUP-fast (`gup_fast_pte_range`): each level read once, inside the caller's
//! `rcu_read_lock()`; the page a PTE maps is used (here: one word read) before the walk knows
//! the mapping still holds, then PMD and PTE are read again and the result is thrown away if
//! either changed. The two `pause` calls are where a walk can be held: before the PTE table is
//! read (a table freed too early then reads POISON) and before the page is used (a page a
//! collapse unmapped and freed meanwhile is harmless only because of the re-check).

use crate::arch::mmu::pte;
use crate::mm::pgalloc::POISON;
use crate::mm::Mm;
use core::sync::atomic::{fence, Ordering};
use ptfrag_core::pgtable::Level;

/// What one walk found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    /// No table or no translation on the way.
    Nothing,
    /// A huge PMD leaf mapping this frame.
    Huge(u64),
    /// The PTE table read POISON: it was freed under the walker.
    PoisonTable { table: u64 },
    /// PMD or PTE changed after the page was used: the result was discarded.
    Discarded,
    /// The word at physical `pa` that a PTE of `table` mapped and the re-check accepted.
    Data { table: u64, pte: u64, pa: u64, data: u64 },
}

/// Walks `mm` at `ea` (`off_in_page` is the byte offset of the word in its page). The caller
/// holds `rcu_read_lock()`; `pause(0)` runs before the PTE table is read, `pause(1)` before
/// the page is used.
pub fn walk(mm: &Mm, ea: u64, pause: &mut dyn FnMut(u32)) -> Walk {
    let mut table = mm.pgd;
    for level in [Level::Pgd, Level::Pud] {
        // Upper tables live until the mm is destroyed, which waits for the walkers.
        let e = pte::slot(table, level, ea).get();
        if !pte::present(e) || pte::is_leaf(e) {
            return Walk::Nothing;
        }
        table = pte::target(e);
    }
    let pmd_slot = pte::slot(table, Level::Pmd, ea);
    let pmd = pmd_slot.get();
    if !pte::present(pmd) {
        return Walk::Nothing;
    }
    if pte::is_leaf(pmd) {
        return Walk::Huge(pte::target(pmd));
    }
    let pt = pte::target(pmd);
    pause(0);
    // The PTE table may have been retracted since we read the PMD: reading it is allowed only
    // while it cannot have been freed, which is what pte_free_defer must guarantee.
    // Every frame stays mapped in the linear map, so the read is memory-safe even if
    // the table was (wrongly) freed; detecting that is the point.
    let e = pte::slot(pt, Level::Pte, ea).get();
    if e == POISON {
        return Walk::PoisonTable { table: pt };
    }
    if !pte::present(e) {
        return Walk::Nothing;
    }
    pause(1);
    let page = pte::geometry().page_size();
    let pa = pte::target(e) + (ea & (page - 1) & !7);
    // SAFETY: a linear-map read, memory-safe even if the page was freed meanwhile.
    let data = unsafe { (crate::arch::phys_to_virt(pa) as *const u64).read_volatile() };
    fence(Ordering::SeqCst);
    // The table cannot be freed while the caller is in its read section.
    let still = pmd_slot.get() == pmd && pte::slot(pt, Level::Pte, ea).get() == e;
    if !still {
        return Walk::Discarded; // changed meanwhile: the stale view goes, as in GUP-fast
    }
    Walk::Data { table: pt, pte: e, pa, data }
}
