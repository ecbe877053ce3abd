//! TLB and page-walk-cache invalidation (Power ISA v3.0B Book III 5.10.1, tlbie/tlbiel).
//! The 5-operand `tlbiel` is emitted as a word because LLVM does not assemble it.

use core::arch::asm;

/// tlbiel RB=r10, RS=r0, RIC=2 (TLB, page-walk cache and process-table caching), PRS=1,
/// R=1: (31<<26) | (2<<18) | (1<<17) | (1<<16) | (10<<11) | (274<<1).
const TLBIEL_ALL_PRS_RIC2_RB10: u32 = 0x7c0b_5224;
/// RB for IS=3 (everything this thread caches for the partition), RB bits 52:53.
const RB_IS_ALL: u64 = 3 << 10;

/// Drops every radix translation this CPU has cached.
pub fn local_flush_all() {
    // SAFETY: tlbiel only invalidates this thread's translation caches; ptesync orders it
    // after earlier page-table stores and isync discards prefetched translations.
    unsafe {
        asm!(
            "ptesync",
            ".long {w}",
            "ptesync",
            "isync",
            w = const TLBIEL_ALL_PRS_RIC2_RB10,
            in("r10") RB_IS_ALL,
            in("r0") 0u64,
            options(nostack)
        );
    }
}
