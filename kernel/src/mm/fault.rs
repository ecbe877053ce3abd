//! Page faults on address-space addresses: find the VMA, allocate missing tables (PUD, PMD
//! and PTE tables are fragments from the mm's caches) and install the translation of the
//! file's page; a PMD-aligned range whose file chunk is huge gets one PMD leaf.

use super::mm_types::{pmd_frag, pte_frag, Mm};
use super::pgalloc::KernelPages;
use crate::arch::mmu::pte;
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
}

pub fn handle_mm_fault(mm: &Mm, ea: u64, write: bool) -> Result<(), FaultError> {
    let vma = mm.find_vma(ea).ok_or(FaultError::NoVma)?;
    if write && !vma.writable {
        return Err(FaultError::Protection);
    }
    let off = ea - vma.start + vma.pgoff;
    let g = pte::geometry();
    let pmd_size = g.pmd_size();
    let huge = vma.file.huge_frame(off).filter(|_| {
        let base = ea & !(pmd_size - 1);
        base >= vma.start
            && base + pmd_size <= vma.end
            && (off - (ea - base)).is_multiple_of(pmd_size)
    });
    let mut caches = mm.ptl.lock();
    let mut table = mm.pgd;
    for level in [Level::Pgd, Level::Pud, Level::Pmd] {
        let slot = pte::slot(table, level, ea);
        // SAFETY: `table` is a live table of `mm`; we hold its page-table lock.
        let e = unsafe { pte::read(slot) };
        if level == Level::Pmd && !pte::present(e) {
            if let Some(h) = huge {
                // SAFETY: as above.
                unsafe { pte::write(slot, pte::mk_leaf(h, vma.writable)) };
                mm.faults.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
        if pte::present(e) && pte::is_leaf(e) {
            // Already mapped by a huge leaf (another CPU won the race): retry the access.
            return Ok(());
        }
        table = if pte::present(e) {
            pte::target(e)
        } else {
            let (cache, geo) = match level {
                Level::Pmd => (&mut caches.pte, pte_frag()),
                _ => (&mut caches.pmd, pmd_frag()),
            };
            let t = frag::pte_fragment_alloc(cache, geo, &KernelPages, mm.pid as u64)
                .map_err(FaultError::NoMemory)?;
            // Fragments of a page come out in order, never reused one by one: zero it here
            // (the page was zeroed when new, but a later fragment may follow freed ones).
            // SAFETY: a fragment just handed to us, geo.frag_size bytes.
            unsafe {
                core::ptr::write_bytes(crate::arch::phys_to_virt(t) as *mut u8, 0, geo.frag_size)
            };
            // SAFETY: as above.
            unsafe { pte::write(slot, pte::mk_pde(level, t)) };
            t
        };
    }
    let pa = vma.file.phys(off & !(g.page_size() - 1)).ok_or(FaultError::BeyondFile)?;
    let slot = pte::slot(table, Level::Pte, ea);
    // SAFETY: `table` is a live PTE table of `mm`, under its page-table lock.
    unsafe { pte::write(slot, pte::mk_leaf(pa, vma.writable)) };
    mm.faults.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
