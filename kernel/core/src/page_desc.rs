//! Page descriptors: one per 64 KiB frame, like Linux's `struct page` / `ptdesc`: owner,
//! flags, the fragment refcount and the single `rcu_head` that all fragments of a page-table
//! page share (the crux of `pte_free_defer`). Invariant: a descriptor is indexed by frame
//! number and never moves, so an `rcu_head` address identifies its page for good.

use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::const_new;

bitflags::bitflags! {
    /// Descriptor flags, kept in `PageDesc::flags` (software state, like Linux's page flags:
    /// no hardware reads them).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct PageFlags: u32 {
        /// Frame is outside the allocator (kernel image, vectors, firmware).
        const RESERVED = 1 << 0;
        /// Frame is handed out by the frame allocator.
        const ALLOCATED = 1 << 1;
        /// Frame holds page-table fragments (Linux PG_table, `pagetable_ctor`).
        const PAGE_TABLE = 1 << 2;
        /// Linux's PG_active as used by pte_free_defer() in v6.6.
        const ACTIVE = 1 << 3;
    }
}

/// The one callback slot per frame (Linux: `struct rcu_head` in `struct page`).
#[derive(Default)]
#[repr(C)]
pub struct RcuHead {
    /// Address of the next head on the RCU callback list (0 at the tail).
    pub next: AtomicU64,
    /// The callback while the head is queued, 0 otherwise: the debug-object state that
    /// catches a second `call_rcu` on a head that is still waiting (`rcu::Rcu::call_rcu`).
    pub func: AtomicU64,
}

#[derive(Default)]
#[repr(C)]
pub struct PageDesc {
    pub flags: AtomicU32,
    pub pt_frag_refcount: AtomicU32,
    /// Who owns the frame (an address-space id, or 0).
    pub owner: AtomicU64,
    pub rcu_head: RcuHead,
}

impl RcuHead {
    const_new! {
        pub fn new() -> Self {
            RcuHead { next: AtomicU64::new(0), func: AtomicU64::new(0) }
        }
    }
}

impl PageDesc {
    const_new! {
        pub fn new() -> Self {
            PageDesc {
                flags: AtomicU32::new(0),
                pt_frag_refcount: AtomicU32::new(0),
                owner: AtomicU64::new(0),
                rcu_head: RcuHead::new(),
            }
        }
    }

    /// The descriptor whose `rcu_head` is `head` (Linux's `container_of`), for RCU callbacks
    /// that are handed only the head. The pointer is valid wherever `head` points into a
    /// `PageDesc`; dereferencing it is the caller's business.
    pub fn from_rcu_head(head: *const RcuHead) -> *const PageDesc {
        head.wrapping_byte_sub(core::mem::offset_of!(PageDesc, rcu_head)).cast()
    }

    /// Which entry of the descriptor array `descs` (the mem_map) `d` is, if it is one.
    pub fn index_in(descs: &[PageDesc], d: *const PageDesc) -> Option<usize> {
        let off = (d as usize).checked_sub(descs.as_ptr() as usize)?;
        let size = core::mem::size_of::<PageDesc>();
        (off.is_multiple_of(size) && off / size < descs.len()).then_some(off / size)
    }

    /// Atomically clears `f` and says whether any of it was set (Linux `TestClearPageActive`).
    pub fn test_and_clear_flag(&self, f: PageFlags) -> bool {
        self.flags.fetch_and(!f.bits(), Ordering::AcqRel) & f.bits() != 0
    }

    pub fn set_flag(&self, f: PageFlags) {
        self.flags.fetch_or(f.bits(), Ordering::AcqRel);
    }

    pub fn clear_flag(&self, f: PageFlags) {
        self.flags.fetch_and(!f.bits(), Ordering::AcqRel);
    }

    /// Whether any flag of `f` is set.
    pub fn has_flag(&self, f: PageFlags) -> bool {
        self.flags.load(Ordering::Acquire) & f.bits() != 0
    }

    /// All the flags.
    pub fn page_flags(&self) -> PageFlags {
        PageFlags::from_bits_retain(self.flags.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_set_and_clear() {
        let d = PageDesc::new();
        d.set_flag(PageFlags::ALLOCATED | PageFlags::PAGE_TABLE);
        assert!(d.has_flag(PageFlags::PAGE_TABLE));
        d.clear_flag(PageFlags::PAGE_TABLE);
        assert!(!d.has_flag(PageFlags::PAGE_TABLE));
        assert!(d.has_flag(PageFlags::ALLOCATED));
    }

    #[test]
    fn test_and_clear_reports_the_old_bit() {
        let d = PageDesc::new();
        d.set_flag(PageFlags::ACTIVE | PageFlags::PAGE_TABLE);
        assert!(d.test_and_clear_flag(PageFlags::ACTIVE));
        assert!(!d.test_and_clear_flag(PageFlags::ACTIVE));
        assert!(d.has_flag(PageFlags::PAGE_TABLE));
    }

    #[test]
    fn container_of_rcu_head() {
        let descs = [PageDesc::new(), PageDesc::new()];
        let head: *const RcuHead = &descs[1].rcu_head;
        assert!(core::ptr::eq(PageDesc::from_rcu_head(head), &descs[1]));
        assert_eq!(PageDesc::index_in(&descs, PageDesc::from_rcu_head(head)), Some(1));
        let outside = [PageDesc::new()];
        assert_eq!(PageDesc::index_in(&descs, &outside[0]), None);
    }
}
