//! Entry encodings of address-space page tables for the MMU mode in use, in one place
//! (Linux dispatches `radix__`/`hash__` variants on `radix_enabled()` the same way).
//! Entries are stored big-endian in every mode, as on Linux book3s64, and are read and
//! written only as atomics (`PteSlot`).

use core::sync::atomic::{AtomicU64, Ordering};
use ptfrag_core::pgtable::{Geometry, Level, ENTRY_BYTES, HASH_64K, RADIX_4K, RADIX_64K};
use ptfrag_core::radix as r;

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

/// One page-table entry as memory holds it: the big-endian value (the MMU reads entries
/// big-endian in every mode, as on Linux book3s64), touched only atomically. A lockless
/// walker reads it with `get` and needs no `unsafe`; a writer proves it holds the
/// page-table lock (`PtlHeld`), or changes a leaf with `cmpxchg` (the lockless `hash_page`,
/// which then owns the leaf until `release_busy`).
#[repr(transparent)]
pub struct PteSlot(AtomicU64);

impl core::fmt::Debug for PteSlot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PteSlot@{:#x}={:#x}", self.pa(), self.get())
    }
}

/// Proof that the page-table lock of the address space being changed is held.
///
/// # Safety
/// Implement it only for a type whose values exist only while that lock is held (the
/// lock's guard).
pub unsafe trait PtlHeld {}

impl PteSlot {
    /// The entry (Linux `READ_ONCE(*ptep)`): one atomic load, no ordering beyond the
    /// address dependency of what the caller reads through it.
    pub fn get(&self) -> u64 {
        u64::from_be(self.0.load(Ordering::Relaxed))
    }

    /// Writes the entry under the page-table lock; what the caller wrote before (a table it
    /// points to, a deposit) is visible first, and `ptesync` orders the store before later
    /// translations.
    pub fn set(&self, v: u64, _ptl: &dyn PtlHeld) {
        self.0.store(v.to_be(), Ordering::Release);
        ptesync();
    }

    /// Replaces `old` by `new` if the entry still holds `old`; returns the value found.
    pub fn cmpxchg(&self, old: u64, new: u64) -> u64 {
        let r = match self.0.compare_exchange(
            old.to_be(),
            new.to_be(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(v) | Err(v) => u64::from_be(v),
        };
        ptesync();
        r
    }

    /// Ends a `hash_page`'s hold of a leaf it took BUSY (`held` being what it holds) with the
    /// value `done`. Nobody else may change a BUSY leaf (`clear_leaf` waits), so finding
    /// anything but `held` is a broken protocol, and fatal.
    pub fn release_busy(&self, held: u64, done: u64) {
        let found = self.cmpxchg(held, done);
        if found != held {
            crate::fatal!("a leaf held BUSY changed under its holder: {held:#x} became {found:#x}");
        }
    }

    /// Clears a leaf once no `hash_page` holds it BUSY (Linux `pte_update()` on hash spins
    /// on H_PAGE_BUSY the same way); returns the entry it held.
    pub fn clear_leaf(&self, _ptl: &dyn PtlHeld) -> u64 {
        let mut counted = false;
        loop {
            let e = self.get();
            if e & BUSY == 0 && self.cmpxchg(e, 0) == e {
                return e;
            }
            if e & BUSY != 0 && !counted {
                counted = true;
                BUSY_WAITS.fetch_add(1, Ordering::AcqRel);
            }
            crate::arch::smp::relax();
        }
    }

    /// Physical address of the entry.
    pub fn pa(&self) -> u64 {
        crate::arch::virt_to_phys(self as *const PteSlot as u64)
    }
}

/// Times `clear_leaf` found a leaf BUSY and had to wait for `hash_page`.
pub static BUSY_WAITS: AtomicU64 = AtomicU64::new(0);

fn ptesync() {
    // SAFETY: a barrier only.
    unsafe { core::arch::asm!("ptesync", options(nostack)) };
}

/// The `n` words at physical address `pa`, as atomics.
fn words(pa: u64, n: usize) -> &'static [AtomicU64] {
    let ram = crate::mm::frame::nr_frames() as u64 * ptfrag_core::frame_alloc::FRAME_SIZE;
    assert!(
        pa.is_multiple_of(8) && pa + (n as u64) * 8 <= ram,
        "page-table words at {pa:#x} outside RAM"
    );
    // SAFETY: the kernel's linear map covers all RAM for the kernel's whole life and is never
    // unmapped (the range was checked to be RAM above), so the reference is valid for
    // 'static; page-table memory is only ever accessed atomically (through these words and
    // `PteSlot`), also while free and poisoned, so no access races a non-atomic one.
    unsafe { core::slice::from_raw_parts(crate::arch::phys_to_virt(pa) as *const AtomicU64, n) }
}

/// The entries of the `level` table at physical address `table`.
pub fn table_slots(table: u64, level: Level) -> &'static [PteSlot] {
    let w = words(table, geometry().entries(level));
    // SAFETY: `PteSlot` is a transparent `AtomicU64`.
    unsafe { &*(w as *const [AtomicU64] as *const [PteSlot]) }
}

/// The slot for `ea` in the `level` table at physical address `table`.
pub fn slot(table: u64, level: Level, ea: u64) -> &'static PteSlot {
    &table_slots(table, level)[geometry().index(level, ea)]
}

/// Hash mode: the word in the second half of a PMD fragment where a huge leaf's deposited
/// table is recorded (Linux `pgtable_trans_huge_deposit()` on hash keeps it at
/// `pmdp + PTRS_PER_PMD`, book3s64/hash_pgtable.c; the PMD fragment is twice the table).
/// A software word, native-endian.
pub fn deposit_word(pmd_slot: &PteSlot) -> &'static AtomicU64 {
    &words(pmd_slot.pa() + (geometry().entries(Level::Pmd) * ENTRY_BYTES) as u64, 1)[0]
}

/// The HPTE slot word for entry `idx` of the PTE table (or deposited table) at physical
/// address `table` (hash mode: the second half of the 4K fragment). Native-endian.
pub fn slot_info(table: u64, idx: usize) -> &'static AtomicU64 {
    let entries = geometry().entries(Level::Pte);
    assert!(idx < entries);
    &words(table + (entries * ENTRY_BYTES) as u64, entries)[idx]
}

/// Sets every word of the `bytes` at physical address `pa` to `v`, atomically (a new table
/// zeroed, a freed page-table page poisoned: a walker that still reads it, which is the bug
/// the poison catches, reads whole words).
pub fn fill_words(pa: u64, bytes: usize, v: u64) {
    for w in words(pa, bytes / 8) {
        w.store(v, Ordering::Relaxed);
    }
}

/// Whether a leaf allows stores.
pub fn writable(e: u64) -> bool {
    r::bits(e).contains(r::PteBits::WRITE)
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
