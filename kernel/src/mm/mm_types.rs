//! Address spaces (Linux `struct mm_struct` / `vm_area_struct`): a PGD, the page-table lock
//! with the fragment caches, the VMAs mapping files, a PID (radix) and a fault count.
//! Invariant: an `Mm` is active (its PID in some CPU's PIDR) only inside `activate`'s guard,
//! and it is torn down only when active nowhere.

use super::fault::Leaf;
use super::file::File;
use super::frame;
use super::pgalloc::KernelPages;
use crate::arch::mmu::pte::PteSlot;
use crate::arch::mmu::{book3s64, pte, tlb};
use crate::arch::paca;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use ptfrag_core::frame_alloc::FrameError;
use ptfrag_core::pgtable::Level;
use ptfrag_core::pgtable_frag::{self as frag, FragCache, FragGeometry};
use ptfrag_core::pgtable_t::PgTable;

/// A mapping of `file` bytes [pgoff, pgoff + end - start) at [start, end).
#[derive(Clone)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub file: Arc<File>,
    pub pgoff: u64,
    pub writable: bool,
}

/// What the page-table lock protects besides the tables: the per-mm fragment caches.
pub struct PtCaches {
    pub pte: FragCache,
    pub pmd: FragCache,
    /// Only `Mm::new` makes one, inside `Mm::ptl`.
    _in_ptl: (),
}

// SAFETY: a `PtCaches` is made only by `Mm::new`, straight into the `ptl` mutex (the private
// field keeps every other module from making one), so a reference to one exists only
// through the lock's guard, while the lock is held.
unsafe impl pte::PtlHeld for PtCaches {}

pub struct Mm {
    pub pid: u32,
    pub pgd: u64,
    /// Linux's mm->page_table_lock: held to populate or clear entries.
    pub ptl: crate::sync::Mutex<PtCaches>,
    pub vmas: crate::sync::RwLock<Vec<Vma>>,
    pub faults: AtomicU64,
    /// CPUs on which this mm is active.
    pub active_cpus: AtomicU32,
}

/// PTE tables: 4K fragments, 16 per 64K page (radix64: 256-byte ones, 256 per page).
/// PUD/PMD tables: fragments of their size.
pub fn pte_frag() -> &'static FragGeometry {
    super::pte_free::pte_frag_geometry()
}

pub fn pmd_frag() -> &'static FragGeometry {
    book3s64::pmd_frag()
}

/// PGD of every live address space, by PID (0 = none): how a debugger finds an mm's tables
/// in either MMU mode (radix also has them in the process table).
static MM_PGDS: [AtomicU64; book3s64::MAX_CONTEXT as usize + 1] =
    [const { AtomicU64::new(0) }; book3s64::MAX_CONTEXT as usize + 1];

pub fn pgd_table_addr() -> u64 {
    MM_PGDS.as_ptr() as u64
}

static PIDS: crate::sync::Mutex<[u64; (book3s64::MAX_CONTEXT as usize + 1) / 64]> =
    crate::sync::Mutex::new([0; (book3s64::MAX_CONTEXT as usize + 1) / 64]);

fn alloc_pid() -> Option<u32> {
    let mut map = PIDS.lock();
    // PID 0 is the kernel's tree, NULL_PID the empty one.
    for pid in book3s64::FIRST_USER_CONTEXT..=book3s64::MAX_CONTEXT {
        let (w, b) = (pid as usize / 64, pid % 64);
        if map[w] & (1 << b) == 0 {
            map[w] |= 1 << b;
            return Some(pid);
        }
    }
    None
}

fn free_pid(pid: u32) {
    PIDS.lock()[pid as usize / 64] &= !(1 << (pid % 64));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmError {
    NoPid,
    NoMemory(FrameError),
    Overlap,
}

impl core::fmt::Display for MmError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MmError::NoPid => write!(f, "no free PID for an address space"),
            MmError::NoMemory(e) => write!(f, "no memory for an address space: {e}"),
            MmError::Overlap => write!(f, "the mapping overlaps an existing VMA"),
        }
    }
}

impl Mm {
    pub fn new() -> Result<Arc<Mm>, MmError> {
        let pid = alloc_pid().ok_or(MmError::NoPid)?;
        let pgd = match frame::alloc_zeroed() {
            Ok(pa) => pa,
            Err(e) => {
                free_pid(pid);
                return Err(MmError::NoMemory(e));
            }
        };
        frame::desc(pgd).set_flag(ptfrag_core::page_desc::PageFlags::PAGE_TABLE);
        book3s64::init_new_context(pid, pgd);
        MM_PGDS[pid as usize].store(pgd, Ordering::Release);
        Ok(Arc::new(Mm {
            pid,
            pgd,
            ptl: crate::sync::Mutex::new(PtCaches {
                pte: FragCache::new(),
                pmd: FragCache::new(),
                _in_ptl: (),
            }),
            vmas: crate::sync::RwLock::new(Vec::new()),
            faults: AtomicU64::new(0),
            active_cpus: AtomicU32::new(0),
        }))
    }

    /// Maps `file` bytes from `pgoff` at [start, start + len).
    pub fn mmap(
        self: &Arc<Self>,
        start: u64,
        len: u64,
        file: &Arc<File>,
        pgoff: u64,
        writable: bool,
    ) -> Result<(), MmError> {
        let end = start + len;
        let mut vmas = self.vmas.write();
        if vmas.iter().any(|v| start < v.end && v.start < end) {
            return Err(MmError::Overlap);
        }
        vmas.push(Vma { start, end, file: file.clone(), pgoff, writable });
        file.i_mmap.write().push(super::file::IMmap {
            mm: Arc::downgrade(self),
            start,
            end,
            pgoff,
        });
        Ok(())
    }

    /// Removes the VMA starting at `start`, clears its translations and flushes every CPU.
    /// Page tables stay until teardown (as Linux keeps them unless the range is freed).
    pub fn munmap(&self, start: u64) -> bool {
        let Some(vma) = ({
            let mut vmas = self.vmas.write();
            vmas.iter().position(|v| v.start == start).map(|i| vmas.remove(i))
        }) else {
            return false;
        };
        self.unlink_file(&vma);
        {
            let mut caches = self.ptl.lock();
            let mut leaves = Vec::new();
            walk_leaves(self.pgd, Level::Pgd, 0, &mut |leaf, ea| {
                if ea >= vma.start && ea < vma.end {
                    leaves.push((leaf, ea));
                }
            });
            for (leaf, ea) in leaves {
                self.unmap_leaf(&mut caches, &leaf, ea);
            }
        }
        tlb::flush_all_cpus(self.pid);
        true
    }

    /// Clears every PTE in [start, end), HPTEs first under hash (Linux `try_to_unmap` of a
    /// collapse's small pages, through `zap_pte_range`). The PTE tables stay, empty, for
    /// `retract_page_tables()`. The caller flushes every CPU before the pages may be freed.
    /// Returns how many PTEs were cleared.
    pub fn zap_pte_range(&self, start: u64, end: u64) -> usize {
        let mut n = 0;
        {
            let mut caches = self.ptl.lock();
            let mut leaves = Vec::new();
            walk_leaves(self.pgd, Level::Pgd, 0, &mut |leaf, ea| {
                if leaf.level == Level::Pte && ea >= start && ea < end {
                    leaves.push((leaf, ea));
                }
            });
            for (leaf, ea) in leaves {
                self.unmap_leaf(&mut caches, &leaf, ea);
                n += 1;
            }
        }
        n
    }

    /// Removes this mm's mapping at `vma.start` from the file's i_mmap list.
    fn unlink_file(&self, vma: &Vma) {
        vma.file
            .i_mmap
            .write()
            .retain(|m| !(core::ptr::eq(m.mm.as_ptr(), self) && m.start == vma.start));
    }

    /// Clears one leaf (hash: removes its HPTEs first; a huge leaf's deposit is freed).
    /// Caller holds the ptl and flushes other CPUs afterwards.
    fn unmap_leaf(&self, caches: &mut PtCaches, leaf: &Leaf, ea: u64) {
        if let Some(deposit) = book3s64::clear_leaf(self, leaf, ea, caches) {
            super::pte_free::pte_free(PgTable::new(deposit));
        }
    }

    /// The leaf translating `ea` with the table that holds it, if its tables exist.
    pub fn lookup_leaf(&self, ea: u64) -> Option<Leaf> {
        let (slot, level) = self.lookup_slot(ea)?;
        if !pte::present(slot.get()) {
            return None;
        }
        let bytes = pte::geometry().table_bytes(level).next_power_of_two() as u64;
        let table = slot.pa() & !(bytes - 1);
        Some(Leaf { slot, level, table, writable: false })
    }

    /// The PMD slot for `ea`, if the PGD and PUD levels exist (no allocation). Address spaces
    /// have no leaves above the PMD level.
    pub fn pmd_slot(&self, ea: u64) -> Option<&'static PteSlot> {
        let mut table = self.pgd;
        for level in [Level::Pgd, Level::Pud] {
            // Upper levels are freed only by `destroy`, which needs the mm inactive and
            // unreachable.
            let e = pte::slot(table, level, ea).get();
            if !pte::present(e) || pte::is_leaf(e) {
                return None;
            }
            table = pte::target(e);
        }
        Some(pte::slot(table, Level::Pmd, ea))
    }

    /// The leaf slot translating `ea` (PTE, or PMD for a huge leaf), if its tables exist.
    pub fn lookup_slot(&self, ea: u64) -> Option<(&'static PteSlot, Level)> {
        let pmd = self.pmd_slot(ea)?;
        let e = pmd.get();
        if !pte::present(e) {
            return None;
        }
        if pte::is_leaf(e) {
            return Some((pmd, Level::Pmd));
        }
        Some((pte::slot(pte::target(e), Level::Pte, ea), Level::Pte))
    }

    /// Frees every page table and the PID (Linux free_pgtables + pgd_free + destroy_context).
    /// The mm must not be active on any CPU.
    pub fn destroy(self: Arc<Mm>) {
        assert_eq!(self.active_cpus.load(Ordering::Acquire), 0, "destroying an active mm");
        for vma in self.vmas.write().drain(..) {
            self.unlink_file(&vma);
        }
        let mut guard = self.ptl.lock();
        let caches = &mut *guard;
        book3s64::destroy_context(self.pid);
        if book3s64::translations_outside_tables() {
            let mut leaves = Vec::new();
            walk_leaves(self.pgd, Level::Pgd, 0, &mut |leaf, ea| leaves.push((leaf, ea)));
            for (leaf, ea) in leaves {
                self.unmap_leaf(caches, &leaf, ea);
            }
        }
        drop(guard);
        tlb::flush_all_cpus(self.pid);
        let mut guard = self.ptl.lock();
        let caches = &mut *guard;
        free_level(self.pgd, Level::Pgd);
        super::pte_free::pte_frag_destroy(&mut caches.pte);
        if let Err(e) = frag::pte_frag_destroy(&mut caches.pmd, pmd_frag(), &KernelPages) {
            crate::fatal!("mm {}: pte_frag_destroy of PMD fragments: {e}", self.pid);
        }
        frame::desc(self.pgd).clear_flag(ptfrag_core::page_desc::PageFlags::PAGE_TABLE);
        if let Err(e) = frame::free(self.pgd) {
            crate::fatal!("mm {}: freeing PGD: {e}", self.pid);
        }
        MM_PGDS[self.pid as usize].store(0, Ordering::Release);
        free_pid(self.pid);
    }
}

/// Calls `f` for every present leaf below the `level` table at `table`, whose first address
/// is `base`.
fn walk_leaves(table: u64, level: Level, base: u64, f: &mut dyn FnMut(Leaf, u64)) {
    let g = pte::geometry();
    for (i, slot) in pte::table_slots(table, level).iter().enumerate() {
        let e = slot.get();
        if !pte::present(e) {
            continue;
        }
        let ea = base + ((i as u64) << g.entry_shift(level));
        if level == Level::Pte || pte::is_leaf(e) {
            f(Leaf { slot, level, table, writable: false }, ea);
            continue;
        }
        let next = match level {
            Level::Pgd => Level::Pud,
            Level::Pud => Level::Pmd,
            _ => Level::Pte,
        };
        walk_leaves(pte::target(e), next, ea, f);
    }
}

/// Frees the tables below the `level` table at `table` (not `table` itself).
fn free_level(table: u64, level: Level) {
    let next = match level {
        Level::Pgd => Level::Pud,
        Level::Pud => Level::Pmd,
        Level::Pmd => Level::Pte,
        Level::Pte => return,
    };
    for slot in pte::table_slots(table, level) {
        let e = slot.get();
        if !pte::present(e) || pte::is_leaf(e) {
            continue;
        }
        let child = pte::target(e);
        free_level(child, next);
        if next == Level::Pte {
            super::pte_free::pte_free(PgTable::new(child));
        } else if let Err(e) = frag::pte_fragment_free(child, pmd_frag(), &KernelPages) {
            crate::fatal!("freeing {next:?} table {child:#x}: {e}");
        }
    }
}

/// Makes `mm` translate quadrant 0 on this CPU until the guard drops.
pub fn activate(mm: &Mm) -> ActiveGuard<'_> {
    let p = paca::this();
    assert_eq!(p.current_mm.load(Ordering::Acquire), 0, "an mm is already active on this CPU");
    mm.active_cpus.fetch_add(1, Ordering::AcqRel);
    p.current_mm.store(mm as *const Mm as u64, Ordering::Release);
    book3s64::switch_mmu_context(Some(mm.pid));
    ActiveGuard { mm }
}

pub struct ActiveGuard<'a> {
    mm: &'a Mm,
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        book3s64::switch_mmu_context(None);
        paca::this().current_mm.store(0, Ordering::Release);
        self.mm.active_cpus.fetch_sub(1, Ordering::AcqRel);
    }
}
