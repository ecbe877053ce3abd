//! Page faults on address-space addresses: find the VMA, allocate missing tables (PUD, PMD
//! and PTE tables are fragments from the mm's caches) and install the translation of the
//! file's page; a PMD-aligned range whose file chunk is huge gets one PMD leaf. Which MMU
//! takes the fault first is `arch::mmu::book3s64::handle_fault`'s business.

use super::mm_types::{pmd_frag, pte_frag, Mm, PtCaches, Vma};
use super::pgalloc::KernelPages;
use crate::arch::mmu::{book3s64, pte};
use core::sync::atomic::Ordering;
use ptfrag_core::pgtable::Level;
use ptfrag_core::pgtable_frag::{self as frag, FragError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultError {
    /// No VMA covers the address (Linux: SIGSEGV).
    NoVma,
    /// Write to a read-only mapping.
    Protection,
    /// Beyond the end of the file (Linux: SIGBUS).
    BeyondFile,
    NoMemory(FragError),
    /// Hash: the HPTE could not be inserted.
    Hpte,
}

/// The leaf entry translating an address: its slot and level, and the table holding it.
#[derive(Debug, Clone, Copy)]
pub struct Leaf {
    pub slot: &'static pte::PteSlot,
    pub level: Level,
    pub table: u64,
    pub writable: bool,
}

/// The locked fault path: fills the tables (the whole fault where the hardware walks them;
/// hash's `hash_page` comes here only when its lockless walk found no leaf).
// SAFETY: `handle_mm_fault` is the only symbol of that name in the kernel (Linux's name, so that
// `break handle_mm_fault` works in gdb); never inlined, so every call stops there.
#[unsafe(export_name = "handle_mm_fault")]
#[inline(never)]
pub fn handle_mm_fault(mm: &Mm, ea: u64, write: bool) -> Result<(), FaultError> {
    fault_in(mm, ea, write)?;
    mm.faults.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Fills the tables for `ea`: the VMA list is held for reading across the whole fault and
/// taken before the page-table lock, as Linux holds `mmap_lock` around `handle_mm_fault`
/// (the lock order in `mm/mod.rs`), so a munmap cannot remove the VMA in between.
pub fn fault_in(mm: &Mm, ea: u64, write: bool) -> Result<Leaf, FaultError> {
    let vmas = mm.vmas.read();
    let vma = vmas.iter().find(|v| v.start <= ea && ea < v.end).ok_or(FaultError::NoVma)?;
    let mut caches = mm.ptl.lock();
    populate(mm, &mut caches, vma, ea, write)
}

fn alloc_table(mm: &Mm, caches: &mut PtCaches, for_pte: bool) -> Result<u64, FaultError> {
    let (cache, geo) =
        if for_pte { (&mut caches.pte, pte_frag()) } else { (&mut caches.pmd, pmd_frag()) };
    let t = frag::pte_fragment_alloc(cache, geo, &KernelPages, mm.pid as u64)
        .map_err(FaultError::NoMemory)?;
    // A fresh page is zeroed, but say so for every fragment rather than rely on it.
    pte::fill_words(t, geo.frag_size, 0);
    Ok(t)
}

/// Makes sure a leaf translates `ea` in the Linux-format tables (allocating tables and
/// filling the entry from `vma`'s file); returns it. Caller holds the VMA list (for `vma`)
/// and `mm.ptl`.
fn populate(
    mm: &Mm,
    caches: &mut PtCaches,
    vma: &Vma,
    ea: u64,
    write: bool,
) -> Result<Leaf, FaultError> {
    if write && !vma.writable {
        return Err(FaultError::Protection);
    }
    let off = ea - vma.start + vma.pgoff;
    let g = pte::geometry();
    let pmd_size = g.pmd_size();
    let base = ea & !(pmd_size - 1);
    let huge = vma.file.huge_frame(off).filter(|_| {
        base >= vma.start
            && base + pmd_size <= vma.end
            && (off - (ea - base)).is_multiple_of(pmd_size)
    });
    let mut table = mm.pgd;
    for level in [Level::Pgd, Level::Pud, Level::Pmd] {
        let slot = pte::slot(table, level, ea);
        let e = slot.get();
        if pte::present(e) && pte::is_leaf(e) {
            return Ok(Leaf { slot, level, table, writable: vma.writable });
        }
        if level == Level::Pmd && !pte::present(e) {
            if let Some(h) = huge {
                if book3s64::huge_leaf_needs_deposit() {
                    let dep = alloc_table(mm, caches, true)?;
                    book3s64::deposit(slot, dep, caches);
                }
                slot.set(pte::mk_leaf(h, vma.writable), caches);
                return Ok(Leaf { slot, level, table, writable: vma.writable });
            }
        }
        table = if pte::present(e) {
            pte::target(e)
        } else {
            let t = alloc_table(mm, caches, level == Level::Pmd)?;
            slot.set(pte::mk_pde(level, t), caches);
            t
        };
    }
    let slot = pte::slot(table, Level::Pte, ea);
    if !pte::present(slot.get()) {
        let pa = vma.file.phys(off & !(g.page_size() - 1)).ok_or(FaultError::BeyondFile)?;
        slot.set(pte::mk_leaf(pa, vma.writable), caches);
    }
    Ok(Leaf { slot, level: Level::Pte, table, writable: vma.writable })
}
