//! A khugepaged collapse of one PMD-sized range of a shared file, in the shape of Linux
//! v6.6 mm/khugepaged.c `collapse_file()`: the range is copied into a huge frame that becomes
//! the page cache's copy, the small pages are unmapped from every address space (PTEs
//! cleared, HPTEs removed, every CPU flushed), `retract_page_tables()` detaches the now empty
//! PTE tables, and the small pages are freed (poisoned). Linux unmaps before copying and
//! keeps refaults out with the page lock; here the page cache points at the huge copy before
//! the unmap, so a refault maps the huge frame instead, and the collapsed ranges are mapped
//! read-only so no write can be lost between copy and unmap.
//!
//! `retract_page_tables()` (v6.6): under the file's i_mmap lock, for every address space
//! mapping the range, take the PMD lock, re-check that the PMD still points to a page table,
//! clear it with `pmdp_collapse_flush()`, drop the lock, and hand the detached table to
//! `pte_free_defer()`. Lockless walkers may still be reading that table: only the strategy in
//! `pte_free` decides when it is really freed.
//!
//! Locks: every PTE writer (fault, `hash_page`, unmap, zap) holds `mm.ptl`, which is also
//! the PMD lock: Linux's configuration without split PTE locks, where `pte_lockptr()` is
//! `&mm->page_table_lock` and retract takes one lock, not two.

use super::file::File;
use crate::arch::mmu::{pte, tlb};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use ptfrag_core::frame_alloc::FrameError;

pub static RETRACTS: AtomicU64 = AtomicU64::new(0);

/// A schedule's pause point in `retract_page_tables()`, between the lockless look at a PMD
/// and taking its lock (the window the re-check closes): the CPU named in `PAUSE_CPU` stops
/// there once, says so in `PAUSED`, and goes on when `RESUME` is set. Disarmed (`usize::MAX`)
/// it costs one relaxed load per PMD.
pub static PAUSE_CPU: AtomicUsize = AtomicUsize::new(usize::MAX);
pub static PAUSED: AtomicBool = AtomicBool::new(false);
pub static RESUME: AtomicBool = AtomicBool::new(false);

fn pause_point() {
    let me = crate::arch::paca::cpu_id();
    if PAUSE_CPU.load(Ordering::Relaxed) != me {
        return;
    }
    PAUSE_CPU.store(usize::MAX, Ordering::Relaxed);
    PAUSED.store(true, Ordering::Release);
    // Interrupts stay on: the CPU that goes on meanwhile flushes every CPU, this one too.
    while !RESUME.swap(false, Ordering::AcqRel) {
        let _ = crate::rcu::quiescent_state();
        crate::arch::smp::relax();
    }
}

/// The first half of `collapse_file()` for the PMD range of `file` at `off`: the huge copy
/// becomes the page cache's, then the small pages are unmapped from every address space
/// mapping the range (and every CPU flushed). Returns the PTEs cleared.
pub fn collapse_begin(file: &File, off: u64) -> Result<usize, FrameError> {
    let pmd_size = pte::geometry().pmd_size();
    file.make_huge(off)?;
    let mut zapped = 0;
    let mut pids = alloc::vec::Vec::new();
    {
        let i_mmap = file.i_mmap.read();
        for m in i_mmap.iter() {
            let Some(mm) = m.mm.upgrade() else { continue };
            // Every mapping of a page of the range, also one that covers the range only in
            // part (not PMD-aligned): those are unmapped but not retracted.
            let (lo, hi) = (off.max(m.pgoff), (off + pmd_size).min(m.pgoff + (m.end - m.start)));
            if lo < hi {
                zapped += mm.zap_pte_range(m.start + (lo - m.pgoff), m.start + (hi - m.pgoff));
                pids.push(mm.pid);
            }
        }
    }
    // Before the small pages can be freed, no CPU may keep a translation of them.
    tlb::flush_all_cpus_pids(&pids);
    Ok(zapped)
}

/// The end of `collapse_file()`: the old small pages go (poisoned, reused first).
pub fn collapse_end(file: &File, off: u64) {
    file.free_small_pages(off);
}

/// Linux `collapse_file()` for one PMD range: unmap, retract, free; returns the tables
/// retracted.
pub fn collapse_file(file: &File, off: u64) -> Result<usize, FrameError> {
    collapse_begin(file, off)?;
    let n = retract_page_tables(file, off);
    collapse_end(file, off);
    Ok(n)
}

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
        // Linux `find_pmd_or_thp_or_none()`: a lockless look first, to skip ranges that have
        // no PTE table (or are huge already) without taking the lock; a racy read is fine,
        // the value is checked again under the lock.
        let seen = pmd.get();
        if !pte::present(seen) || pte::is_leaf(seen) {
            continue;
        }
        pause_point();
        let detached = {
            let pml = mm.ptl.lock();
            // Under the PMD lock the entry must still point to the table we saw: a
            // concurrent collapse, munmap or teardown may have changed it since the look.
            // v6.6 re-checks only the vma (anon_vma, uffd-wp) under the locks; later kernels
            // also re-check the PMD there (the patch "mm: khugepaged: recheck pmd state in
            // retract_page_tables()", check_pmd_state() after pmd_lock()), as done here.
            if pmd.get() != seen {
                continue;
            }
            let table = pte::target(seen);
            crate::arch::mmu::book3s64::pmdp_collapse_flush(&mm, pmd, table, addr, &*pml)
        };
        super::pte_free::pte_free_defer(&mm, detached);
        retracted += 1;
        RETRACTS.fetch_add(1, Ordering::Relaxed);
    }
    retracted
}
