//! A khugepaged-style collapse of one PMD-sized range of a shared file (`File::make_huge`
//! copies it into a huge frame, then `retract_page_tables()` runs), and
//! `retract_page_tables()` (Linux mm/khugepaged.c, v6.6 shape): under the file's i_mmap lock,
//! for every address space mapping the range, take the PMD lock then the PTE lock, re-check
//! that the PMD still points to a page table, clear it with `pmdp_collapse_flush()`, drop
//! the locks, and hand the detached table to `pte_free_defer()`. Lockless walkers may still
//! be reading that table: only the strategy in `pte_free` decides when it is really freed.

use super::file::File;
use super::mm_types::Mm;
use crate::arch::mmu::{pte, tlb};
use core::sync::atomic::{AtomicU64, Ordering};
use ptfrag_core::pgtable::Level;
use ptfrag_core::pgtable_frag::page_of;

/// Split PTE locks: Linux keeps a ptlock per page-table page; fragments of one 64K page share
/// it. Hashed by page here.
static PTE_LOCKS: [spin::Mutex<()>; 64] = [const { spin::Mutex::new(()) }; 64];

/// The PTE lock of the page-table page holding `table`.
pub fn pte_lockptr(table: u64) -> &'static spin::Mutex<()> {
    &PTE_LOCKS[((page_of(table) >> 16) % PTE_LOCKS.len() as u64) as usize]
}

pub static RETRACTS: AtomicU64 = AtomicU64::new(0);

/// Linux `retract_page_tables(mapping, pgoff)`.
// SAFETY: `retract_page_tables` is the only symbol of that name in the kernel (Linux's name, so that
// `break retract_page_tables` works in gdb); never inlined, so every call stops there.
#[unsafe(export_name = "retract_page_tables")]
#[inline(never)]
pub fn retract_page_tables(file: &File, off: u64) -> usize {
    let pmd_size = pte::geometry().pmd_size();
    let mut retracted = 0;
    let i_mmap = file.i_mmap.read();
    for m in i_mmap.iter() {
        let Some(mm) = m.mm.upgrade() else { continue };
        if off < m.pgoff {
            continue;
        }
        let addr = m.start + (off - m.pgoff);
        if !addr.is_multiple_of(pmd_size) || addr + pmd_size > m.end {
            continue;
        }
        let Some(pmd) = mm.pmd_slot(addr) else { continue };
        let table = {
            let _pml = mm.ptl.lock();
            // SAFETY: a live PMD slot of `mm`, under its PMD lock.
            let e = unsafe { pte::read(pmd) };
            if !pte::present(e) || pte::is_leaf(e) {
                continue;
            }
            let table = pte::target(e);
            let _ptl = pte_lockptr(table).lock();
            // Re-check under both locks (Linux re-reads the PMD after pmd_lock()).
            // SAFETY: as above.
            if unsafe { pte::read(pmd) } != e {
                continue;
            }
            pmdp_collapse_flush(&mm, pmd, table, addr);
            table
        };
        super::pte_free::pte_free_defer(&mm, table);
        retracted += 1;
        RETRACTS.fetch_add(1, Ordering::Relaxed);
    }
    retracted
}

/// Clears the PMD and makes every CPU forget translations through it before returning.
/// Radix: the cross-CPU flush (tlbie RIC=2 for the PID, then the IPI handshake) drops TLB
/// and page-walk-cache entries. Hash: every HPTE of the range is removed through the slots
/// recorded in the table's second half first, then the same handshake.
// SAFETY: `pmdp_collapse_flush` is the only symbol of that name in the kernel (Linux's name, so that
// `break pmdp_collapse_flush` works in gdb); never inlined, so every call stops there.
#[unsafe(export_name = "pmdp_collapse_flush")]
#[inline(never)]
fn pmdp_collapse_flush(mm: &Mm, pmd: *mut pte::BeEntry, table: u64, addr: u64) {
    if !crate::arch::mmu::radix_enabled() {
        let g = pte::geometry();
        for i in 0..g.entries(Level::Pte) {
            let ea = addr + ((i as u64) << g.page_shift);
            let slot = pte::slot(table, Level::Pte, ea);
            // SAFETY: entries of a live PTE table of `mm`, under its PTE lock.
            if pte::present(unsafe { pte::read(slot) }) {
                let leaf = super::fault::Leaf { slot, level: Level::Pte, table, writable: false };
                super::hash_page::unhash_leaf(mm, None, &leaf, ea);
            }
        }
    }
    // SAFETY: a live PMD slot of `mm`, under its PMD lock.
    unsafe { pte::write(pmd, 0) };
    tlb::flush_all_cpus(mm.pid);
}
