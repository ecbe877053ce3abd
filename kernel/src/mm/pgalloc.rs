//! Page-table pages for address spaces: the kernel's `PageSource` for the fragment allocator
//! (ptfrag_core::pgtable_frag). A page-table page that is really freed is poisoned first, so
//! a walker that reads a freed table sees `POISON` rather than stale entries.

use super::frame;
use ptfrag_core::frame_alloc::FRAME_SIZE;
use ptfrag_core::page_desc::PageDesc;
use ptfrag_core::pgtable_frag::PageSource;
use ptfrag_core::pgtable_t::PtPage;

/// Fill pattern of freed page-table pages (Linux's slab POISON_FREE byte, 0x6b). As an entry
/// it has the valid bit clear, so the hardware walker treats it as "no translation".
pub const POISON: u64 = 0x6b6b_6b6b_6b6b_6b6b;

pub struct KernelPages;

impl PageSource for KernelPages {
    fn alloc_page(&self) -> Option<u64> {
        frame::alloc_zeroed().ok()
    }

    fn free_page(&self, page: PtPage) {
        let pa = page.pa();
        // Every page-table page really freed passes here: the grace-period oracle checks
        // that its deferred tables' grace periods are over.
        super::pte_free::oracle_check_page_free(pa);
        // Atomic stores: a walker of a broken strategy may still read the page, and must
        // read whole words of POISON.
        crate::arch::mmu::pte::fill_words(pa, FRAME_SIZE as usize, POISON);
        if let Err(e) = frame::free(pa) {
            crate::fatal!("freeing page-table page {pa:#x}: {e}");
        }
    }

    fn desc(&self, pa: u64) -> &PageDesc {
        frame::desc(pa)
    }
}
