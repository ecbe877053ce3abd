//! Hash-mode faults and HPTE removal (Linux `hash_page`, arch/powerpc/mm/book3s64/
//! hash_utils.c): a data storage interrupt means the hashed page
//! table has no entry for the address. Walk the Linux-format tables locklessly with
//! interrupts off, as Linux does (`find_linux_pte()`), take the leaf BUSY, insert the HPTE
//! through H_ENTER, and record its slot in the second half of the PTE fragment (or of the
//! huge leaf's deposited table), so unmapping can remove it by slot. Only when the tables
//! have no leaf does the fault take the page-table lock to fill them.

use super::{hash, pte};
use crate::mm::fault::{fault_in, FaultError, Leaf};
use crate::mm::pgalloc::POISON;
use crate::mm::Mm;
use core::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use ptfrag_core::pgtable::Level;

/// Slot-word address for the 64K page at `ea` of `leaf`.
pub fn slot_word(mm_deposit: Option<u64>, leaf: &Leaf, ea: u64) -> Option<&'static AtomicU64> {
    let g = pte::geometry();
    match leaf.level {
        Level::Pte => Some(pte::slot_info(leaf.table, g.index(Level::Pte, ea))),
        Level::Pmd => {
            let dep = mm_deposit?;
            Some(pte::slot_info(dep, ((ea & (g.pmd_size() - 1)) >> hash::PAGE_SHIFT) as usize))
        }
        _ => None,
    }
}

/// Why the lockless part did not finish the fault.
enum Miss {
    /// No table or no present leaf, or a store to a read-only leaf: the locked path.
    Slow,
    /// Another CPU holds the leaf BUSY, or it changed under us: try again.
    Retry,
    /// The HPTE could not be inserted.
    Hpte(hash::HashError),
}

/// A schedule's pause points in the lockless walk: `AT_PTE_READ`, between reading the PMD and
/// reading the PTE table it points to (where Linux's `__hash_page_64K` holds the `ptep` from
/// `find_linux_pte()`), and `AT_BUSY`, with the leaf taken BUSY before the HPTE goes in. The
/// CPU named in `PAUSE_CPU` stops at the point named in `PAUSE_AT` once, with interrupts off,
/// records the table in `PAUSED_TABLE`, and goes on when `RESUME` is set, or when going on is
/// the only way forward: another CPU waits for this one to answer an IPI it cannot take
/// (`serialize_against_pte_lookup()`, a flush), a grace period waits for this CPU alone, or
/// (at `AT_BUSY`) a CPU clearing the leaf waits for the BUSY bit. Disarmed (`usize::MAX`) it
/// costs one relaxed load per walk.
pub static PAUSE_CPU: AtomicUsize = AtomicUsize::new(usize::MAX);
pub static PAUSE_AT: AtomicUsize = AtomicUsize::new(AT_PTE_READ);
pub static PAUSED_TABLE: AtomicU64 = AtomicU64::new(0);
pub static RESUME: AtomicBool = AtomicBool::new(false);
pub const AT_PTE_READ: usize = 0;
pub const AT_BUSY: usize = 1;

fn pause_point(at: usize, table: u64) {
    let me = crate::arch::paca::cpu_id();
    if PAUSE_CPU.load(Ordering::Relaxed) != me || PAUSE_AT.load(Ordering::Relaxed) != at {
        return;
    }
    PAUSE_CPU.store(usize::MAX, Ordering::Relaxed);
    let busy0 = pte::BUSY_WAITS.load(Ordering::Acquire);
    PAUSED_TABLE.store(table, Ordering::Release);
    let irqs_off = !crate::arch::irq::enabled();
    loop {
        if RESUME.swap(false, Ordering::AcqRel) {
            return;
        }
        if at == AT_BUSY && pte::BUSY_WAITS.load(Ordering::Acquire) != busy0 {
            return;
        }
        if irqs_off
            && (crate::arch::mmu::tlb::ipi_waiting_for_this_cpu()
                || crate::rcu::gp_waiting_mask() == 1 << me)
        {
            return;
        }
        crate::arch::smp::relax();
    }
}

/// PTE reads of the lockless walk that found POISON: a freed page-table page.
pub static POISON_READS: AtomicU64 = AtomicU64::new(0);

// SAFETY: `hash_page` is the only symbol of that name in the kernel (Linux's name, so that
// `break hash_page` works in gdb); never inlined, so every call stops there.
#[unsafe(export_name = "hash_page")]
#[inline(never)]
/// Linux `hash_page_mm()`: the lockless walk and insert, with interrupts off; if the Linux
/// tables have no present leaf (or the store needs a writable one), the locked fault path
/// fills them (Linux `do_page_fault()` -> `handle_mm_fault()`) and the HPTE is preloaded
/// (Linux `update_mmu_cache()` -> `hash_preload()`).
pub fn hash_page(mm: &Mm, ea: u64, write: bool) -> Result<(), FaultError> {
    if lockless_until_settled(mm, ea, write)? {
        return Ok(());
    }
    fault_in(mm, ea, write)?;
    // The preload: the access is retried anyway, so a miss here costs one more fault.
    lockless_until_settled(mm, ea, write)?;
    Ok(())
}

/// The lockless walk, again while another CPU holds the leaf BUSY: true if the HPTE is in,
/// false if the tables need the locked path.
fn lockless_until_settled(mm: &Mm, ea: u64, write: bool) -> Result<bool, FaultError> {
    loop {
        match hash_page_lockless(mm, ea, write) {
            Ok(()) => return Ok(true),
            Err(Miss::Slow) => return Ok(false),
            Err(Miss::Retry) => crate::arch::smp::relax(),
            Err(Miss::Hpte(e)) => return Err(hpte_error(ea, e)),
        }
    }
}

fn hpte_error(ea: u64, e: hash::HashError) -> FaultError {
    crate::println!("hash_page: no HPTE for {ea:#x}: {e:?}");
    FaultError::Hpte
}

/// Linux `find_linux_pte()` then `__hash_page_64K()`/`__hash_page_thp()`, without the
/// page-table lock and with interrupts off: the tables it walks cannot be freed meanwhile,
/// because freeing one waits for a grace period (this CPU reports no quiescent state with
/// interrupts off) or, at a collapse, for every CPU to answer `serialize_against_pte_lookup()`.
fn hash_page_lockless(mm: &Mm, ea: u64, write: bool) -> Result<(), Miss> {
    let was = crate::arch::irq::disable();
    let r = insert_locklessly(mm, ea, write);
    crate::arch::irq::restore(was);
    r
}

fn insert_locklessly(mm: &Mm, ea: u64, write: bool) -> Result<(), Miss> {
    // PMD tables live until teardown, which waits until the mm is active nowhere (this CPU
    // has it active).
    let pmd = mm.pmd_slot(ea).ok_or(Miss::Slow)?;
    let pmd_e = pmd.get();
    if !pte::present(pmd_e) {
        return Err(Miss::Slow);
    }
    let (leaf, dep) = if pte::is_leaf(pmd_e) {
        // The deposit word was written before the leaf (released with it).
        fence(Ordering::Acquire);
        let dep = pte::deposit_word(pmd).load(Ordering::Relaxed);
        let leaf = Leaf { slot: pmd, level: Level::Pmd, table: 0, writable: pte::writable(pmd_e) };
        (leaf, Some(dep).filter(|&d| d != 0))
    } else {
        let table = pte::target(pmd_e);
        pause_point(AT_PTE_READ, table);
        let slot = pte::slot(table, Level::Pte, ea);
        (Leaf { slot, level: Level::Pte, table, writable: false }, None)
    };
    // A PTE table reached through a PMD read with interrupts off (see above); if a broken
    // strategy freed it anyway, the read still reads RAM (the linear map covers every frame)
    // and the check below reports it.
    let e = leaf.slot.get();
    if e == POISON {
        POISON_READS.fetch_add(1, Ordering::Relaxed);
        crate::println!(
            "BUG: hash_page: cpu {} read POISON from PTE table {:#x} (page {:#x}) for {ea:#x}: \
             the table was freed while this lockless walk held it (strategy {})",
            crate::arch::paca::cpu_id(),
            leaf.table,
            ptfrag_core::pgtable_frag::page_of(leaf.table),
            crate::mm::pte_free::strategy().name()
        );
        return Err(Miss::Slow);
    }
    if !pte::present(e) || !pte::is_leaf(e) || (write && !pte::writable(e)) {
        return Err(Miss::Slow);
    }
    if e & pte::BUSY != 0 {
        return Err(Miss::Retry);
    }
    // Only a present leaf is taken BUSY, and whoever clears it waits.
    if leaf.slot.cmpxchg(e, e | pte::BUSY) != e {
        return Err(Miss::Retry);
    }
    pause_point(AT_BUSY, leaf.table);
    let leaf = Leaf { writable: pte::writable(e), ..leaf };
    let r = insert_hpte(mm, &leaf, dep, e, ea, write);
    let done = if r.is_ok() && leaf.level == Level::Pte { e | pte::HASHPTE } else { e };
    // We hold the entry BUSY: nobody else changes it until this store, which also makes
    // the slot word visible before the entry stops being BUSY.
    leaf.slot.release_busy(e | pte::BUSY, done);
    r.map_err(Miss::Hpte)
}

/// The HPTE for `ea` from the leaf `e` (held BUSY): reuses or upgrades the one recorded in
/// its slot word if it still translates `ea`, else inserts one and records its slot.
fn insert_hpte(
    mm: &Mm,
    leaf: &Leaf,
    dep: Option<u64>,
    e: u64,
    ea: u64,
    write: bool,
) -> Result<(), hash::HashError> {
    let Some(word) = slot_word(dep, leaf, ea) else {
        return Err(hash::HashError::Hcall("no deposit for a huge leaf", 0));
    };
    // The slot word of a leaf we hold BUSY.
    let info = word.load(Ordering::Relaxed);
    let seg = hash::user_segment(mm.pid, ea);
    let page = ea & !((1 << hash::PAGE_SHIFT) - 1);
    if let Some(old) = hash::Slot::decode(info) {
        // Either another CPU inserted it since our miss (retry the access), or the HPTE is
        // gone behind our back (evicted): then insert again.
        let (v, r) = hash::read(old.ptex);
        if hash::translates(v, seg, page) {
            // A store to an HPTE made read-only (H_PROTECT) while the Linux PTE allows
            // writing: upgrade it in place, as Linux does for dirty tracking.
            if write && leaf.writable && r & 3 != hash::PP_RW {
                hash::protect(seg, page, old, hash::PP_RW)?;
                mm.faults.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(());
        }
    }
    let pa = pte::target(e) + (page & (pte::geometry().entry_shift_mask(leaf.level)));
    let pp = if leaf.writable { hash::PP_RW } else { hash::PP_RO };
    let slot = hash::insert(seg, page, pa, pp, false)?;
    word.store(slot.encode(), Ordering::Relaxed);
    mm.faults.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Removes the HPTEs of the leaf at `leaf` covering [ea, ea + its size) and forgets their
/// slots. Caller holds `mm.ptl`; the caller flushes other CPUs afterwards.
pub fn unhash_leaf(mm: &Mm, deposit: Option<u64>, leaf: &Leaf, ea: u64) {
    let g = pte::geometry();
    let (start, n) = match leaf.level {
        Level::Pmd => (ea & !(g.pmd_size() - 1), (g.pmd_size() >> hash::PAGE_SHIFT) as usize),
        _ => (ea & !((1 << hash::PAGE_SHIFT) - 1), 1),
    };
    let mut batch: [(hash::Segment, u64, hash::Slot); 4] =
        [(hash::user_segment(mm.pid, start), 0, hash::Slot { ptex: 0, secondary: false }); 4];
    let mut k = 0;
    let flush = |batch: &[(hash::Segment, u64, hash::Slot)]| {
        if let Err(e) = hash::bulk_remove(batch) {
            crate::fatal!("mm {}: H_BULK_REMOVE of {} HPTEs: {e:?}", mm.pid, batch.len());
        }
    };
    for i in 0..n {
        let page = start + ((i as u64) << hash::PAGE_SHIFT);
        let Some(word) = slot_word(deposit, leaf, page) else { return };
        // A slot word of a live table of `mm`, under its ptl.
        let info = word.load(Ordering::Relaxed);
        if let Some(slot) = hash::Slot::decode(info) {
            batch[k] = (hash::user_segment(mm.pid, page), page, slot);
            k += 1;
            if k == batch.len() {
                flush(&batch);
                k = 0;
            }
            word.store(0, Ordering::Relaxed);
        }
    }
    if k > 0 {
        flush(&batch[..k]);
    }
}
