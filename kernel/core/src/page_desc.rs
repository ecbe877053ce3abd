//! Page descriptors: one per 64 KiB frame, like Linux's `struct page` / `ptdesc`: owner,
//! flags, the fragment refcount and the single `rcu_head` that all fragments of a page-table
//! page share (the crux of `pte_free_defer`). Invariant: a descriptor is indexed by frame
//! number and never moves, so an `rcu_head` address identifies its page for good.

use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::const_new;

/// Descriptor flags (bit masks).
pub mod flags {
    /// Frame is outside the allocator (kernel image, vectors, firmware).
    pub const RESERVED: u32 = 1 << 0;
    /// Frame is handed out by the frame allocator.
    pub const ALLOCATED: u32 = 1 << 1;
    /// Frame holds page-table fragments.
    pub const PAGE_TABLE: u32 = 1 << 2;
    /// Linux's PG_active as used by pte_free_defer() in v6.6.
    pub const ACTIVE: u32 = 1 << 3;
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
    pub fn test_and_clear_flag(&self, f: u32) -> bool {
        self.flags.fetch_and(!f, Ordering::AcqRel) & f != 0
    }

    pub fn set_flag(&self, f: u32) {
        self.flags.fetch_or(f, Ordering::AcqRel);
    }

    pub fn clear_flag(&self, f: u32) {
        self.flags.fetch_and(!f, Ordering::AcqRel);
    }

    pub fn has_flag(&self, f: u32) -> bool {
        self.flags.load(Ordering::Acquire) & f != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_set_and_clear() {
        let d = PageDesc::new();
        d.set_flag(flags::ALLOCATED | flags::PAGE_TABLE);
        assert!(d.has_flag(flags::PAGE_TABLE));
        d.clear_flag(flags::PAGE_TABLE);
        assert!(!d.has_flag(flags::PAGE_TABLE));
        assert!(d.has_flag(flags::ALLOCATED));
    }

    #[test]
    fn test_and_clear_reports_the_old_bit() {
        let d = PageDesc::new();
        d.set_flag(flags::ACTIVE | flags::PAGE_TABLE);
        assert!(d.test_and_clear_flag(flags::ACTIVE));
        assert!(!d.test_and_clear_flag(flags::ACTIVE));
        assert!(d.has_flag(flags::PAGE_TABLE));
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
