//! Hash-mode faults (Linux `hash_page`): a data storage interrupt means the hashed page
//! table has no entry for the address. Walk (and if needed fill) the Linux-format tables,
//! insert the HPTE through H_ENTER, and record its slot in the second half of the PTE
//! fragment (or of the huge leaf's deposited table), so unmapping can remove it by slot.

use super::fault::{populate, FaultError, Leaf};
use super::mm_types::Mm;
use crate::arch::mmu::{hash, pte};
use core::sync::atomic::Ordering;
use ptfrag_core::pgtable::Level;

/// Slot-word address for the 64K page at `ea` of `leaf`.
pub fn slot_word(mm_deposit: Option<u64>, leaf: &Leaf, ea: u64) -> Option<*mut u64> {
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

// SAFETY: `hash_page` is the only symbol of that name in the kernel (Linux's name, so that
// `break hash_page` works in gdb); never inlined, so every call stops there.
#[unsafe(export_name = "hash_page")]
#[inline(never)]
pub fn hash_page(mm: &Mm, ea: u64, write: bool) -> Result<(), FaultError> {
    let mut caches = mm.ptl.lock();
    let leaf = populate(mm, &mut caches, ea, write)?;
    let dep = caches.deposits.get(&(leaf.slot as u64)).copied();
    let word = slot_word(dep, &leaf, ea).ok_or(FaultError::Hpte)?;
    // SAFETY: the leaf and its slot word are in live tables of `mm`, under its ptl.
    let (e, info) = unsafe { (pte::read(leaf.slot), word.read_volatile()) };
    let seg = hash::user_segment(mm.pid, ea);
    let page = ea & !((1 << hash::PAGE_SHIFT) - 1);
    if let Some(old) = hash::Slot::decode(info) {
        // Either another CPU inserted it since our miss (retry the access), or the HPTE is
        // gone behind our back: then forget the slot and insert again.
        let (v, r) = hash::read(old.ptex);
        if hash::translates(v, seg, page) {
            // A store to an HPTE made read-only (H_PROTECT) while the Linux PTE allows
            // writing: upgrade it in place, as Linux does for dirty tracking.
            if write && leaf.writable && r & 3 != hash::PP_RW {
                hash::protect(seg, page, old, hash::PP_RW).map_err(|_| FaultError::Hpte)?;
                mm.faults.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(());
        }
    }
    let pa = pte::target(e) + (page & (pte::geometry().entry_shift_mask(leaf.level)));
    let pp = if leaf.writable { hash::PP_RW } else { hash::PP_RO };
    let slot = hash::insert(seg, page, pa, pp, false).map_err(|_| FaultError::Hpte)?;
    // SAFETY: as above.
    unsafe {
        word.write_volatile(slot.encode());
        if leaf.level == Level::Pte {
            pte::write(leaf.slot, e | pte::HASHPTE);
        }
    }
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
        // SAFETY: a slot word of a live table of `mm`, under its ptl.
        let info = unsafe { word.read_volatile() };
        if let Some(slot) = hash::Slot::decode(info) {
            batch[k] = (hash::user_segment(mm.pid, page), page, slot);
            k += 1;
            if k == batch.len() {
                flush(&batch);
                k = 0;
            }
            // SAFETY: as above.
            unsafe { word.write_volatile(0) };
        }
    }
    if k > 0 {
        flush(&batch[..k]);
    }
}
