//! Entry encodings of address-space page tables for the MMU mode in use, in one place
//! (Linux dispatches `radix__`/`hash__` variants on `radix_enabled()` the same way).
//! Entries are stored big-endian in both modes, as on Linux book3s64.

use ptfrag_core::pgtable::{Geometry, Level, HASH_64K, RADIX_4K, RADIX_64K};
use ptfrag_core::radix as r;

pub use ptfrag_core::radix::BeEntry;

/// The page-table geometry of the running MMU mode.
pub fn geometry() -> &'static Geometry {
    match super::mode() {
        ptfrag_core::cmdline::MmuMode::Radix => &RADIX_4K,
        ptfrag_core::cmdline::MmuMode::Radix64 => &RADIX_64K,
        ptfrag_core::cmdline::MmuMode::Hash => &HASH_64K,
    }
}

/// Hash mode: the Linux PTE has an HPTE in the hashed page table (Linux H_PAGE_HASHPTE).
/// Its slot is in the PTE table's second half (`slot_info`).
pub const HASHPTE: u64 = 0x400;

/// Hash mode: `hash_page` is inserting or changing this entry's HPTE (Linux H_PAGE_BUSY).
/// Set with a compare-and-swap on a present leaf by the lockless `hash_page` only; whoever
/// clears a leaf waits until it is gone (`clear_leaf`), so an HPTE inserted meanwhile has its
/// slot recorded before the entry is taken away. A software bit, as HASHPTE: in hash mode no
/// hardware reads these tables.
pub const BUSY: u64 = 0x800;

/// Hash mode: the word in the second half of a PMD fragment where a huge leaf's deposited
/// table is recorded (Linux `pgtable_trans_huge_deposit()` on hash keeps it at
/// `pmdp + PTRS_PER_PMD`, book3s64/hash_pgtable.c; the PMD fragment is twice the table).
pub fn deposit_word(pmd_slot: *mut BeEntry) -> *mut u64 {
    (pmd_slot as *mut u64).wrapping_add(geometry().entries(Level::Pmd))
}

/// Whether a leaf allows stores.
pub fn writable(e: u64) -> bool {
    r::bits(e).contains(r::PteBits::WRITE)
}

/// Address of the HPTE slot word for entry `idx` of the PTE table (or deposited table) at
/// physical address `table` (hash mode: the second half of the 4K fragment).
pub fn slot_info(table: u64, idx: usize) -> *mut u64 {
    let half = geometry().entries(Level::Pte) * ptfrag_core::pgtable::ENTRY_BYTES;
    (crate::arch::phys_to_virt(table + half as u64) as *mut u64).wrapping_add(idx)
}

/// A directory entry at `level` pointing at the next table.
pub fn mk_pde(level: Level, next_pa: u64) -> u64 {
    r::pde(next_pa, geometry().index_bits[level as usize + 1])
}

/// An address-space (non-privileged) leaf mapping `pa`.
pub fn mk_leaf(pa: u64, writable: bool) -> u64 {
    let perm = if writable { r::PteBits::READ | r::PteBits::WRITE } else { r::PteBits::READ };
    r::leaf(pa, perm)
}

pub fn present(e: u64) -> bool {
    r::is_valid(e)
}

pub fn is_leaf(e: u64) -> bool {
    r::is_leaf(e)
}

/// The table a directory entry points at, or the frame a leaf maps.
pub fn target(e: u64) -> u64 {
    r::target(e)
}

/// The slot for `ea` in the `level` table at physical address `table`.
pub fn slot(table: u64, level: Level, ea: u64) -> *mut BeEntry {
    let idx = geometry().index(level, ea);
    (crate::arch::phys_to_virt(table) as *mut BeEntry).wrapping_add(idx)
}

/// Reads an entry.
///
/// # Safety
/// `slot` must point into a live page-table page.
pub unsafe fn read(slot: *const BeEntry) -> u64 {
    // SAFETY: per the contract.
    unsafe { slot.read_volatile().get() }
}

/// Replaces `old` by `new` if the entry still holds `old`; returns the value found.
///
/// # Safety
/// `slot` must point into a live page-table page.
pub unsafe fn cmpxchg(slot: *mut BeEntry, old: u64, new: u64) -> u64 {
    use core::sync::atomic::{AtomicU64, Ordering};
    // SAFETY: an entry is an aligned u64 in a live page-table page (per the contract); every
    // concurrent writer of a leaf that `hash_page` may change uses this or `clear_leaf`.
    let a = unsafe { AtomicU64::from_ptr(slot as *mut u64) };
    let r = match a.compare_exchange(old.to_be(), new.to_be(), Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(v) | Err(v) => u64::from_be(v),
    };
    // SAFETY: a barrier only.
    unsafe { core::arch::asm!("ptesync", options(nostack)) };
    r
}

/// Clears a leaf once no `hash_page` holds it BUSY (Linux `pte_update()` on hash spins on
/// H_PAGE_BUSY the same way); returns the entry it held.
///
/// # Safety
/// `slot` must point into a live page-table page whose lock the caller holds.
pub unsafe fn clear_leaf(slot: *mut BeEntry) -> u64 {
    let mut counted = false;
    loop {
        // SAFETY: per the contract.
        let e = unsafe { read(slot) };
        // SAFETY: per the contract.
        if e & BUSY == 0 && unsafe { cmpxchg(slot, e, 0) } == e {
            return e;
        }
        if e & BUSY != 0 && !counted {
            counted = true;
            BUSY_WAITS.fetch_add(1, core::sync::atomic::Ordering::AcqRel);
        }
        core::hint::spin_loop();
    }
}

/// Times `clear_leaf` found a leaf BUSY and had to wait for `hash_page`.
pub static BUSY_WAITS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Writes an entry and orders it before later translations (`ptesync`).
///
/// # Safety
/// `slot` must point into a live page-table page that the caller may modify (its lock held).
pub unsafe fn write(slot: *mut BeEntry, v: u64) {
    // SAFETY: per the contract.
    unsafe { slot.write_volatile(BeEntry::new(v)) };
    // SAFETY: a barrier only.
    unsafe { core::arch::asm!("ptesync", options(nostack)) };
}
