//! The types of the page-table path from `retract_page_tables()` to the real free, named as
//! Linux names them: a 64K page-table page (`struct ptdesc`, here `PtPage`), one table cut out
//! of it (`pgtable_t`, here `PgTable`), and a table `pmdp_collapse_flush()` detached, which
//! only `pte_free_defer()` can consume (`DetachedTable`). All three are physical addresses
//! underneath; the types keep a table from being taken for its page, and a detached table
//! from being dropped, kept or deferred twice.

use crate::frame_alloc::FRAME_SIZE;
use crate::pgtable_frag::FragGeometry;

/// A 64 KiB page-table page, by physical address (Linux `struct ptdesc`): the unit that has
/// one descriptor, one refcount and one `rcu_head` for all its tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct PtPage(u64);

impl PtPage {
    /// The page at `pa`, which must be page-aligned.
    pub const fn new(pa: u64) -> Self {
        assert!(pa.is_multiple_of(FRAME_SIZE), "a page-table page is 64K-aligned");
        PtPage(pa)
    }

    /// The page holding physical address `pa`.
    pub const fn containing(pa: u64) -> Self {
        PtPage(pa & !(FRAME_SIZE - 1))
    }

    /// The page of frame number `pfn`.
    pub const fn from_pfn(pfn: usize) -> Self {
        PtPage(pfn as u64 * FRAME_SIZE)
    }

    pub const fn pa(self) -> u64 {
        self.0
    }

    pub const fn pfn(self) -> usize {
        (self.0 / FRAME_SIZE) as usize
    }
}

impl core::fmt::LowerHex for PtPage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::LowerHex::fmt(&self.0, f)
    }
}

/// One page table, a fragment of a `PtPage` (Linux `pgtable_t`), by physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct PgTable(u64);

impl PgTable {
    pub const fn new(pa: u64) -> Self {
        PgTable(pa)
    }

    pub const fn pa(self) -> u64 {
        self.0
    }

    /// The page-table page this table is cut out of.
    pub const fn page(self) -> PtPage {
        PtPage::containing(self.0)
    }

    /// Which fragment of its page the table is under `geo`.
    pub const fn frag_index(self, geo: &FragGeometry) -> usize {
        (self.0 & (FRAME_SIZE - 1)) as usize / geo.frag_size
    }
}

impl core::fmt::LowerHex for PgTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::LowerHex::fmt(&self.0, f)
    }
}

/// A PTE table that `pmdp_collapse_flush()` took out of its address space: no PMD points at
/// it and no CPU's TLB or page-walk cache still holds it, but a lockless walker that read the
/// PMD before may still be reading it. Neither `Copy` nor `Clone`, and consumed only by
/// `pte_free_defer()` (the strategies take it apart inside this crate), so it can be
/// deferred once and cannot be forgotten without a warning.
#[must_use = "a detached page table must be handed to pte_free_defer(), or it leaks"]
#[derive(Debug, PartialEq, Eq)]
pub struct DetachedTable(PgTable);

impl DetachedTable {
    /// # Safety
    /// No PMD of any address space points at `table` any more and every CPU has forgotten
    /// its translations through it (the flush of `pmdp_collapse_flush()` has completed), and
    /// no other `DetachedTable` for it exists: freeing it once its readers are gone must not
    /// leave anything that can reach it.
    pub const unsafe fn new(table: PgTable) -> Self {
        DetachedTable(table)
    }

    /// The table, to look at (the oracle records it); the value stays detached.
    pub const fn table(&self) -> PgTable {
        self.0
    }

    /// Takes the table out: only the strategies' `pte_free_defer` does.
    pub(crate) const fn into_table(self) -> PgTable {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgtable_frag::{PTE_FRAG, RADIX64_PTE_FRAG};

    #[test]
    fn a_table_knows_its_page_and_fragment() {
        let t = PgTable::new(0x5_3000);
        assert_eq!(t.page(), PtPage::new(0x5_0000));
        assert_eq!(t.frag_index(&PTE_FRAG), 3);
        assert_eq!(PgTable::new(0x5_0300).frag_index(&RADIX64_PTE_FRAG), 3);
        assert_eq!(PtPage::from_pfn(5), PtPage::containing(0x5_ffff));
        assert_eq!(PtPage::new(0x5_0000).pfn(), 5);
    }

    #[test]
    #[should_panic(expected = "64K-aligned")]
    fn a_page_is_aligned() {
        let _ = PtPage::new(0x5_1000);
    }
}
