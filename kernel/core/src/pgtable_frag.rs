//! Page-table fragments: book3s64's way of carving several small page tables out of one
//! 64 KiB page (Linux `arch/powerpc/mm/pgtable-frag.c`: `pte_fragment_alloc`,
//! `pte_fragment_free`, `pte_frag_destroy`).
//!
//! Each address space keeps a [`FragCache`]: the next unused fragment of its current page.
//! Fragments are handed out strictly in order and a freed fragment is never handed out again
//! on its own; the page goes back to the [`PageSource`] only when every fragment is gone.
//! As in Linux, a new page is charged for all its fragments up front, so the cache owns the
//! references of the fragments not yet handed out and gives them back in one step at
//! teardown (`pte_frag_destroy`).
//!
//! Invariant: `pt_frag_refcount` == fragments handed out and not yet freed + fragments still
//! in a cache. The page is freed exactly once, by whoever takes the count to 0; a put that
//! would take it below 0 is refused and leaves the count alone, so it can never wrap.

use crate::sync::atomic::Ordering;
use core::fmt;

use crate::frame_alloc::FRAME_SIZE;
use crate::page_desc::{PageDesc, PageFlags};
use crate::pgtable_t::PtPage;

/// Where page-table pages come from and go back to (the kernel's frame allocator, or fake
/// memory in host tests).
pub trait PageSource {
    /// A zeroed 64 KiB page-table page (physical address), or None when memory is exhausted.
    fn alloc_page(&self) -> Option<u64>;
    /// Really frees the page (the kernel poisons it here).
    fn free_page(&self, page: PtPage);
    /// The descriptor of the frame holding `pa`.
    fn desc(&self, pa: u64) -> &PageDesc;
}

/// How one kind of table is cut out of a 64 KiB page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragGeometry {
    /// Bytes per fragment (a power of two dividing the page).
    pub frag_size: usize,
    /// `FRAME_SIZE / frag_size`.
    pub frags_per_page: usize,
}

impl FragGeometry {
    /// The geometry for fragments of `frag_size` bytes; refuses (at compile time when used
    /// in a const) sizes that do not tile the page or that the u32 refcount cannot count.
    pub const fn from_size(frag_size: usize) -> Self {
        assert!(frag_size.is_power_of_two() && frag_size as u64 <= FRAME_SIZE);
        let frags_per_page = FRAME_SIZE as usize / frag_size;
        assert!(frags_per_page <= u32::MAX as usize);
        FragGeometry { frag_size, frags_per_page }
    }
}

/// PTE fragments per page with 64K pages, radix and hash alike (Linux `PTE_FRAG_NR`).
pub const PTE_FRAG_NR: u32 = 16;

/// PTE tables: 4 KiB. Radix: 512 eight-byte PTEs (index 9 bits); hash: 256 PTEs + 2 KiB of
/// HPTE slot info (Linux `H_PTE_FRAG_SIZE_SHIFT = H_PTE_INDEX_SIZE + 3 + 1`).
pub const PTE_FRAG: FragGeometry = FragGeometry::from_size(4096);

/// Radix PMD tables: 512 eight-byte entries = 4 KiB (Linux `R_PMD_FRAG_SIZE_SHIFT`).
pub const RADIX_PMD_FRAG: FragGeometry = FragGeometry::from_size(4096);

/// Hash PMD tables: 1024 entries doubled for the THP deposit slots = 16 KiB, 4 per page
/// (Linux `H_PMD_FRAG_SIZE_SHIFT = H_PMD_INDEX_SIZE + 3 + 1` with hash-64K).
pub const HASH_PMD_FRAG: FragGeometry = FragGeometry::from_size(16384);

/// `mmu=radix64` PTE tables: 32 eight-byte PTEs = 256 bytes, 256 per page (DESIGN.md 3).
pub const RADIX64_PTE_FRAG: FragGeometry = FragGeometry::from_size(256);

const _: () = assert!(PTE_FRAG.frags_per_page == PTE_FRAG_NR as usize);

/// Why a fragment operation was refused. Every refusal leaves the page's state unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragError {
    /// The page source has no page left.
    OutOfMemory,
    /// A put on a page whose `pt_frag_refcount` is too low: a double free.
    Underflow { page: u64, refcount: u32, put: u32 },
    /// The address is not in a page-table page (never allocated here, or already freed).
    NotPageTable { page: u64 },
    /// The address is not at the start of a fragment.
    Misaligned { addr: u64, frag_size: usize },
    /// The page source handed out a page that is still a live page-table page.
    PageInUse { page: u64 },
}

impl fmt::Display for FragError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FragError::OutOfMemory => write!(f, "out of page-table pages"),
            FragError::Underflow { page, refcount, put } => write!(
                f,
                "pt_frag_refcount underflow on page {page:#x}: dropping {put} of {refcount}"
            ),
            FragError::NotPageTable { page } => {
                write!(f, "page {page:#x} is not a page-table page")
            }
            FragError::Misaligned { addr, frag_size } => write!(
                f,
                "table {addr:#x} (page {:#x}) is not on a {frag_size:#x}-byte fragment boundary",
                page_of(addr)
            ),
            FragError::PageInUse { page } => {
                write!(f, "new page {page:#x} is already a page-table page")
            }
        }
    }
}

/// Result of dropping fragment references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeOutcome {
    /// The count reached 0 and the page went back to the page source.
    PageFreed,
    /// The page is still held; this many references remain.
    Live(u32),
}

/// Per-address-space fragment cache (Linux `mm->context.pte_frag`): the next unused
/// fragment of the current page, whose references it holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FragCache {
    next: Option<u64>,
}

impl FragCache {
    pub const fn new() -> Self {
        FragCache { next: None }
    }

    /// The fragment the next allocation will return without taking a new page.
    pub fn peek(&self) -> Option<u64> {
        self.next
    }

    pub fn is_empty(&self) -> bool {
        self.next.is_none()
    }
}

/// The 64 KiB page holding `pa`.
pub const fn page_of(pa: u64) -> u64 {
    pa & !(FRAME_SIZE - 1)
}

/// Which fragment of its page `pa` lies in.
pub const fn frag_index(pa: u64, geo: &FragGeometry) -> usize {
    (pa & (FRAME_SIZE - 1)) as usize / geo.frag_size
}

/// Hands out the next fragment of `cache`'s page, or fragment 0 of a new page (charged with
/// all `frags_per_page` references, the rest cached). The caller serialises use of `cache`
/// (Linux holds `mm->page_table_lock`); frees may run concurrently on other CPUs.
pub fn pte_fragment_alloc(
    cache: &mut FragCache,
    geo: &FragGeometry,
    src: &impl PageSource,
    owner: u64,
) -> Result<u64, FragError> {
    if let Some(frag) = cache.next {
        // The cache's own references keep the page alive, so it must still be a page table;
        // if not, someone over-freed it and handing out a fragment would be a use-after-free.
        let page = page_of(frag);
        if !src.desc(page).has_flag(PageFlags::PAGE_TABLE) {
            return Err(FragError::NotPageTable { page });
        }
        cache.next = advance(frag, geo);
        return Ok(frag);
    }

    let page = src.alloc_page().ok_or(FragError::OutOfMemory)?;
    let desc = src.desc(page);
    if desc.has_flag(PageFlags::PAGE_TABLE) {
        return Err(FragError::PageInUse { page });
    }
    desc.owner.store(owner, Ordering::Relaxed);
    desc.pt_frag_refcount.store(geo.frags_per_page as u32, Ordering::Relaxed);
    // Release: the owner and count are visible to whoever sees PAGE_TABLE.
    desc.set_flag(PageFlags::PAGE_TABLE);
    cache.next = advance(page, geo);
    Ok(page)
}

/// The fragment after `frag`, or None once the page is used up.
fn advance(frag: u64, geo: &FragGeometry) -> Option<u64> {
    let next = frag + geo.frag_size as u64;
    (page_of(next) == page_of(frag)).then_some(next)
}

/// Drops `n` references on `page` without freeing it; returns what remains. 0 means the
/// caller now owns the page and must free it (at once with [`pte_free_now`], or after a
/// grace period). Refuses, changing nothing, a put on a non-page-table page or one that would
/// take the count below 0.
pub fn pt_frag_ref_put(page: PtPage, n: u32, src: &impl PageSource) -> Result<u32, FragError> {
    let desc = src.desc(page.pa());
    if !desc.has_flag(PageFlags::PAGE_TABLE) {
        return Err(FragError::NotPageTable { page: page.pa() });
    }
    // A compare-exchange rather than fetch_sub so a double free never wraps the count.
    let mut cur = desc.pt_frag_refcount.load(Ordering::Relaxed);
    loop {
        if cur < n || cur == 0 {
            return Err(FragError::Underflow { page: page.pa(), refcount: cur, put: n });
        }
        // AcqRel: our writes to the table happen before the free; the freer sees all of them.
        match desc.pt_frag_refcount.compare_exchange_weak(
            cur,
            cur - n,
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(_) => return Ok(cur - n),
            Err(seen) => cur = seen,
        }
    }
}

/// Returns a page whose count reached 0 to the page source (Linux `pte_free_now`, the
/// `pagetable_dtor` + `pagetable_free` pair). The ACTIVE flag belongs to the deferral
/// strategies, which clear it themselves.
pub fn pte_free_now(page: PtPage, src: &impl PageSource) {
    let desc = src.desc(page.pa());
    desc.owner.store(0, Ordering::Relaxed);
    desc.clear_flag(PageFlags::PAGE_TABLE);
    src.free_page(page);
}

/// Frees the table at `table_pa`: drops its fragment's reference and frees the page when it
/// was the last.
pub fn pte_fragment_free(
    table_pa: u64,
    geo: &FragGeometry,
    src: &impl PageSource,
) -> Result<FreeOutcome, FragError> {
    if !table_pa.is_multiple_of(geo.frag_size as u64) {
        return Err(FragError::Misaligned { addr: table_pa, frag_size: geo.frag_size });
    }
    let page = PtPage::containing(table_pa);
    match pt_frag_ref_put(page, 1, src)? {
        0 => {
            pte_free_now(page, src);
            Ok(FreeOutcome::PageFreed)
        }
        left => Ok(FreeOutcome::Live(left)),
    }
}

/// Address-space teardown: gives back the references of the fragments `cache` never handed
/// out, in one step, and frees the page if no table of it is still live. `Ok(None)` when the
/// cache was empty. On error the cache is left as it was.
pub fn pte_frag_destroy(
    cache: &mut FragCache,
    geo: &FragGeometry,
    src: &impl PageSource,
) -> Result<Option<FreeOutcome>, FragError> {
    let Some(frag) = cache.next else {
        return Ok(None);
    };
    let page = PtPage::containing(frag);
    let unused = (geo.frags_per_page - frag_index(frag, geo)) as u32;
    let left = pt_frag_ref_put(page, unused, src)?;
    cache.next = None;
    if left == 0 {
        pte_free_now(page, src);
        Ok(Some(FreeOutcome::PageFreed))
    } else {
        Ok(Some(FreeOutcome::Live(left)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashSet;

    const BASE: u64 = 0x1000_0000;

    /// Vec-backed fake memory. Frees are logged; a free of a page that is not allocated
    /// panics (the double-free detector).
    struct FakeMem {
        descs: Vec<PageDesc>,
        state: RefCell<FakeState>,
    }

    struct FakeState {
        allocated: Vec<bool>,
        data: Vec<Vec<u8>>,
        allocs: Vec<u64>,
        frees: Vec<u64>,
    }

    impl FakeMem {
        fn new(npages: usize) -> Self {
            FakeMem {
                descs: (0..npages).map(|_| PageDesc::new()).collect(),
                state: RefCell::new(FakeState {
                    allocated: vec![false; npages],
                    data: vec![vec![0xAA; FRAME_SIZE as usize]; npages],
                    allocs: Vec::new(),
                    frees: Vec::new(),
                }),
            }
        }

        fn index(&self, pa: u64) -> usize {
            let i = ((pa - BASE) / FRAME_SIZE) as usize;
            assert!(i < self.descs.len(), "address {pa:#x} outside fake memory");
            i
        }

        fn refcount(&self, pa: u64) -> u32 {
            self.desc(pa).pt_frag_refcount.load(Ordering::Relaxed)
        }

        fn frees(&self) -> Vec<u64> {
            self.state.borrow().frees.clone()
        }

        fn allocs(&self) -> Vec<u64> {
            self.state.borrow().allocs.clone()
        }

        fn in_use(&self) -> usize {
            self.state.borrow().allocated.iter().filter(|a| **a).count()
        }
    }

    impl PageSource for FakeMem {
        fn alloc_page(&self) -> Option<u64> {
            let mut st = self.state.borrow_mut();
            let i = st.allocated.iter().position(|a| !a)?;
            st.allocated[i] = true;
            st.data[i].fill(0);
            let pa = BASE + i as u64 * FRAME_SIZE;
            st.allocs.push(pa);
            Some(pa)
        }

        fn free_page(&self, page: PtPage) {
            let pa = page.pa();
            let i = self.index(pa);
            let mut st = self.state.borrow_mut();
            assert!(st.allocated[i], "double free of fake page {pa:#x}");
            st.allocated[i] = false;
            st.data[i].fill(0x6b);
            st.frees.push(pa);
        }

        fn desc(&self, pa: u64) -> &PageDesc {
            &self.descs[self.index(pa)]
        }
    }

    fn alloc_n(cache: &mut FragCache, mem: &FakeMem, n: usize) -> Vec<u64> {
        (0..n).map(|_| pte_fragment_alloc(cache, &PTE_FRAG, mem, 7).unwrap()).collect()
    }

    #[test]
    fn geometry_constants() {
        assert_eq!(PTE_FRAG, FragGeometry { frag_size: 4096, frags_per_page: 16 });
        assert_eq!(RADIX_PMD_FRAG.frags_per_page, 16);
        assert_eq!(HASH_PMD_FRAG.frags_per_page, 4);
        assert_eq!(RADIX64_PTE_FRAG.frags_per_page, 256);
        assert_eq!(page_of(BASE + 0x5123), BASE);
        assert_eq!(frag_index(BASE + 0x5123, &PTE_FRAG), 5);
        assert_eq!(frag_index(BASE + 0xff00, &RADIX64_PTE_FRAG), 255);
    }

    #[test]
    fn sixteen_in_order_then_new_page() {
        let mem = FakeMem::new(4);
        let mut cache = FragCache::new();
        let frags = alloc_n(&mut cache, &mem, 16);
        for (i, f) in frags.iter().enumerate() {
            assert_eq!(*f, BASE + i as u64 * 4096);
        }
        assert!(cache.is_empty(), "last fragment handed out empties the cache");
        let next = pte_fragment_alloc(&mut cache, &PTE_FRAG, &mem, 7).unwrap();
        assert_eq!(next, BASE + FRAME_SIZE);
        assert_eq!(cache.peek(), Some(BASE + FRAME_SIZE + 4096));
        assert_eq!(mem.allocs(), vec![BASE, BASE + FRAME_SIZE]);
    }

    #[test]
    fn new_page_is_marked_and_fully_charged() {
        let mem = FakeMem::new(2);
        let mut cache = FragCache::new();
        let first = pte_fragment_alloc(&mut cache, &PTE_FRAG, &mem, 42).unwrap();
        let d = mem.desc(first);
        assert!(d.has_flag(PageFlags::PAGE_TABLE));
        assert_eq!(d.owner.load(Ordering::Relaxed), 42);
        assert_eq!(cache.peek(), Some(first + 4096));
    }

    #[test]
    fn refcount_is_sixteen_before_any_free() {
        let mem = FakeMem::new(2);
        let mut cache = FragCache::new();
        for k in 1..=16 {
            alloc_n(&mut cache, &mem, 1);
            assert_eq!(mem.refcount(BASE), 16, "after {k} allocations");
        }
    }

    #[test]
    fn freeing_all_sixteen_frees_page_once() {
        let mem = FakeMem::new(2);
        let mut cache = FragCache::new();
        let frags = alloc_n(&mut cache, &mem, 16);
        for (i, f) in frags.iter().enumerate() {
            let out = pte_fragment_free(*f, &PTE_FRAG, &mem).unwrap();
            if i < 15 {
                assert_eq!(out, FreeOutcome::Live(15 - i as u32));
                assert!(mem.frees().is_empty());
            } else {
                assert_eq!(out, FreeOutcome::PageFreed);
            }
        }
        assert_eq!(mem.frees(), vec![BASE]);
        let d = mem.desc(BASE);
        assert!(!d.has_flag(PageFlags::PAGE_TABLE));
        assert_eq!(d.owner.load(Ordering::Relaxed), 0);
        assert_eq!(mem.in_use(), 0);
    }

    #[test]
    fn out_of_order_frees_free_page_once() {
        let mem = FakeMem::new(2);
        let mut cache = FragCache::new();
        let mut frags = alloc_n(&mut cache, &mem, 16);
        frags.reverse();
        frags.swap(3, 11);
        let freed = frags
            .iter()
            .filter(|f| pte_fragment_free(**f, &PTE_FRAG, &mem).unwrap() == FreeOutcome::PageFreed)
            .count();
        assert_eq!(freed, 1);
        assert_eq!(mem.frees(), vec![BASE]);
    }

    #[test]
    fn destroy_partial_page_waits_for_live_tables() {
        let mem = FakeMem::new(2);
        let mut cache = FragCache::new();
        let frags = alloc_n(&mut cache, &mem, 5);
        let out = pte_frag_destroy(&mut cache, &PTE_FRAG, &mem).unwrap();
        assert_eq!(out, Some(FreeOutcome::Live(5)));
        assert!(cache.is_empty());
        assert_eq!(mem.refcount(BASE), 5);
        assert!(mem.frees().is_empty());
        for f in &frags[..4] {
            assert!(matches!(pte_fragment_free(*f, &PTE_FRAG, &mem), Ok(FreeOutcome::Live(_))));
        }
        assert!(mem.frees().is_empty());
        assert_eq!(pte_fragment_free(frags[4], &PTE_FRAG, &mem), Ok(FreeOutcome::PageFreed));
        assert_eq!(mem.frees(), vec![BASE]);
    }

    #[test]
    fn destroy_with_all_tables_freed_frees_at_once() {
        let mem = FakeMem::new(2);
        let mut cache = FragCache::new();
        let frags = alloc_n(&mut cache, &mem, 3);
        for f in &frags {
            pte_fragment_free(*f, &PTE_FRAG, &mem).unwrap();
        }
        assert!(mem.frees().is_empty(), "cache still holds 13 references");
        assert_eq!(pte_frag_destroy(&mut cache, &PTE_FRAG, &mem), Ok(Some(FreeOutcome::PageFreed)));
        assert_eq!(mem.frees(), vec![BASE]);
    }

    #[test]
    fn destroy_empty_cache_is_noop() {
        let mem = FakeMem::new(2);
        let mut cache = FragCache::new();
        assert_eq!(pte_frag_destroy(&mut cache, &PTE_FRAG, &mem), Ok(None));
        // A used-up page leaves nothing for destroy either.
        let frags = alloc_n(&mut cache, &mem, 16);
        assert_eq!(pte_frag_destroy(&mut cache, &PTE_FRAG, &mem), Ok(None));
        assert_eq!(mem.refcount(BASE), 16);
        for f in frags {
            pte_fragment_free(f, &PTE_FRAG, &mem).unwrap();
        }
        assert_eq!(mem.frees(), vec![BASE]);
    }

    #[test]
    fn underflow_is_caught_and_changes_nothing() {
        let mem = FakeMem::new(2);
        let mut cache = FragCache::new();
        let frags = alloc_n(&mut cache, &mem, 16);
        for f in &frags {
            pte_fragment_free(*f, &PTE_FRAG, &mem).unwrap();
        }
        // Once freed the page is no longer a page table: a second free is refused as such.
        assert_eq!(
            pte_fragment_free(frags[15], &PTE_FRAG, &mem),
            Err(FragError::NotPageTable { page: BASE })
        );
        assert_eq!(mem.frees(), vec![BASE]);
        assert_eq!(mem.refcount(BASE), 0);

        // An underflow on a page still marked PAGE_TABLE (count forced to 0, as a racing
        // double free would leave it) is refused and the count stays 0, not u32::MAX.
        let p = pte_fragment_alloc(&mut cache, &PTE_FRAG, &mem, 7).unwrap();
        mem.desc(p).pt_frag_refcount.store(0, Ordering::Relaxed);
        let err = pte_fragment_free(p, &PTE_FRAG, &mem).unwrap_err();
        assert_eq!(err, FragError::Underflow { page: page_of(p), refcount: 0, put: 1 });
        assert_eq!(mem.refcount(p), 0);
        assert!(mem.desc(p).has_flag(PageFlags::PAGE_TABLE));
        assert_eq!(mem.frees(), vec![BASE]);
    }

    #[test]
    fn destroy_underflow_leaves_cache_and_count() {
        let mem = FakeMem::new(2);
        let mut cache = FragCache::new();
        alloc_n(&mut cache, &mem, 4);
        // Pretend two frees too many happened: 12 cached refs but only 10 counted.
        mem.desc(BASE).pt_frag_refcount.store(10, Ordering::Relaxed);
        let before = cache;
        let err = pte_frag_destroy(&mut cache, &PTE_FRAG, &mem).unwrap_err();
        assert_eq!(err, FragError::Underflow { page: BASE, refcount: 10, put: 12 });
        assert_eq!(cache, before);
        assert_eq!(mem.refcount(BASE), 10);
        assert!(mem.frees().is_empty());
    }

    #[test]
    fn free_outside_page_table_is_caught() {
        let mem = FakeMem::new(2);
        let stray = mem.alloc_page().unwrap(); // allocated, but never a page table
        assert_eq!(
            pte_fragment_free(stray + 0x3000, &PTE_FRAG, &mem),
            Err(FragError::NotPageTable { page: stray })
        );
        assert_eq!(mem.refcount(stray), 0);
        assert!(mem.frees().is_empty());
    }

    #[test]
    fn misaligned_free_is_caught() {
        let mem = FakeMem::new(2);
        let mut cache = FragCache::new();
        let f = alloc_n(&mut cache, &mem, 2)[1];
        assert_eq!(
            pte_fragment_free(f + 8, &PTE_FRAG, &mem),
            Err(FragError::Misaligned { addr: f + 8, frag_size: 4096 })
        );
        assert_eq!(mem.refcount(f), 16);
    }

    #[test]
    fn freed_fragment_is_not_reused() {
        let mem = FakeMem::new(4);
        let mut cache = FragCache::new();
        let first = alloc_n(&mut cache, &mem, 4);
        pte_fragment_free(first[2], &PTE_FRAG, &mem).unwrap();
        let rest = alloc_n(&mut cache, &mem, 20);
        let all: Vec<u64> = first.iter().chain(&rest).copied().collect();
        let unique: HashSet<u64> = all.iter().copied().collect();
        assert_eq!(unique.len(), all.len(), "no fragment handed out twice");
        assert_eq!(rest[0], BASE + 4 * 4096, "allocation carries on after the freed one");
        assert!(!rest.contains(&first[2]));
        assert_eq!(rest[12], BASE + FRAME_SIZE, "the 17th fragment starts a new page");
        assert_eq!(mem.refcount(BASE), 15);
    }

    #[test]
    fn exhaustion_is_an_error() {
        let mem = FakeMem::new(1);
        let mut cache = FragCache::new();
        alloc_n(&mut cache, &mem, 16);
        assert_eq!(pte_fragment_alloc(&mut cache, &PTE_FRAG, &mem, 7), Err(FragError::OutOfMemory));
        assert!(cache.is_empty());
        let empty = FakeMem::new(0);
        let mut c2 = FragCache::new();
        assert_eq!(pte_fragment_alloc(&mut c2, &PTE_FRAG, &empty, 7), Err(FragError::OutOfMemory));
    }

    #[test]
    fn two_address_spaces_never_share_a_page() {
        let mem = FakeMem::new(8);
        let (mut a, mut b) = (FragCache::new(), FragCache::new());
        let (mut pages_a, mut pages_b) = (HashSet::new(), HashSet::new());
        for _ in 0..40 {
            let fa = pte_fragment_alloc(&mut a, &PTE_FRAG, &mem, 1).unwrap();
            let fb = pte_fragment_alloc(&mut b, &PTE_FRAG, &mem, 2).unwrap();
            pages_a.insert(page_of(fa));
            pages_b.insert(page_of(fb));
            assert_eq!(mem.desc(fa).owner.load(Ordering::Relaxed), 1);
            assert_eq!(mem.desc(fb).owner.load(Ordering::Relaxed), 2);
        }
        assert!(pages_a.is_disjoint(&pages_b));
        assert_eq!((pages_a.len(), pages_b.len()), (3, 3));
    }

    #[test]
    fn cached_page_freed_behind_the_cache_is_caught() {
        let mem = FakeMem::new(2);
        let mut cache = FragCache::new();
        let f = alloc_n(&mut cache, &mem, 1)[0];
        // Someone drops the cache's references as well as the table's: the page is freed
        // while the cache still points into it.
        assert_eq!(pt_frag_ref_put(PtPage::new(f), 16, &mem), Ok(0));
        pte_free_now(PtPage::new(f), &mem);
        let before = cache;
        assert_eq!(
            pte_fragment_alloc(&mut cache, &PTE_FRAG, &mem, 7),
            Err(FragError::NotPageTable { page: BASE })
        );
        assert_eq!(cache, before);
    }

    #[test]
    fn live_page_from_source_is_refused() {
        let mem = FakeMem::new(1);
        mem.desc(BASE).set_flag(PageFlags::PAGE_TABLE);
        let mut cache = FragCache::new();
        assert_eq!(
            pte_fragment_alloc(&mut cache, &PTE_FRAG, &mem, 7),
            Err(FragError::PageInUse { page: BASE })
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn radix64_geometry_uses_256_fragments() {
        let mem = FakeMem::new(2);
        let mut cache = FragCache::new();
        let frags: Vec<u64> = (0..256)
            .map(|_| pte_fragment_alloc(&mut cache, &RADIX64_PTE_FRAG, &mem, 3).unwrap())
            .collect();
        assert_eq!(frags[255], BASE + 255 * 256);
        assert!(cache.is_empty());
        assert_eq!(mem.refcount(BASE), 256);
        for f in frags {
            pte_fragment_free(f, &RADIX64_PTE_FRAG, &mem).unwrap();
        }
        assert_eq!(mem.frees(), vec![BASE]);
    }

    #[test]
    fn display_names_the_page_in_hex() {
        let e = FragError::Underflow { page: 0x1234_0000, refcount: 0, put: 1 };
        assert!(e.to_string().contains("0x12340000"));
        let e = FragError::NotPageTable { page: 0xabc_0000 };
        assert!(e.to_string().contains("0xabc0000"));
        let e = FragError::Misaligned { addr: 0x5_1008, frag_size: 4096 };
        assert!(e.to_string().contains("0x50000"));
    }

    /// Negative control for the fake's double-free detector.
    #[test]
    #[should_panic(expected = "double free of fake page")]
    fn fake_detects_double_free() {
        let mem = FakeMem::new(1);
        let p = mem.alloc_page().unwrap();
        mem.free_page(PtPage::new(p));
        mem.free_page(PtPage::new(p));
    }
}
