//! Memory management: physical frames, the heap, page-table pages, address spaces, the
//! shared file and page faults. The MMU mode is never named here: what differs between
//! radix, radix64 and hash is `arch::mmu::book3s64`'s business.
//!
//! Lock order (outer first), the same as Linux's (mm/rmap.c lists it for this path):
//!
//! 1. `Mm::vmas`, Linux's `mmap_lock`: held for reading across a whole fault
//!    (`fault::fault_in`), for writing by mmap, munmap and teardown;
//! 2. `File::i_mmap`, Linux's `i_mmap_rwsem` (read: collapse, retract; write: mmap, munmap,
//!    teardown, each inside its own `vmas` write section or after it);
//! 3. `Mm::ptl`, the PMD lock and the PTE lock in one (Linux without split page-table
//!    locks: `pte_lockptr()` is `&mm->page_table_lock`), with the fragment caches;
//! 4. a leaf's BUSY bit (hash only), held by the lockless `hash_page` with interrupts off
//!    and waited for by whoever clears the leaf under `ptl`;
//! 5. the frame allocator's lock, innermost (frames are allocated and freed under `ptl`).
//!
//! Interrupts: `vmas`, `i_mmap` and `ptl` are taken with interrupts on, because their
//! holders flush every CPU (`tlb::flush_all_cpus`, `serialize_against_pte_lookup`), which
//! waits for the other CPUs to take an IPI; a CPU spinning on one of them must still
//! answer. Only the lockless walks run with interrupts off (`hash_page`), and they take no
//! lock.

pub mod fault;
pub mod file;
pub mod frame;
pub mod heap;
pub mod khugepaged;
pub mod mm_types;
pub mod pgalloc;
pub mod pte_free;

pub use mm_types::Mm;
