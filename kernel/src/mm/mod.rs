//! Memory management: physical frames, the heap, page-table pages, address spaces, the
//! shared file and page faults.

pub mod fault;
pub mod file;
pub mod frame;
pub mod heap;
pub mod khugepaged;
pub mod mm_types;
pub mod pgalloc;
pub mod pte_free;

pub use mm_types::Mm;
