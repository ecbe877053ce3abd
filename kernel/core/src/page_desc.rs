//! Page descriptors: one per 64 KiB frame, like Linux's `struct page` / `ptdesc`. This issue
//! keeps the owner and flags; the fragment refcount and the single `rcu_head` are the slots
//! later work fills in. Invariant: a descriptor is indexed by frame number and never moves.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

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
    pub next: AtomicU64,
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

impl PageDesc {
    pub const fn new() -> Self {
        PageDesc {
            flags: AtomicU32::new(0),
            pt_frag_refcount: AtomicU32::new(0),
            owner: AtomicU64::new(0),
            rcu_head: RcuHead { next: AtomicU64::new(0), func: AtomicU64::new(0) },
        }
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
}
