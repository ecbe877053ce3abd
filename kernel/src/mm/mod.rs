//! Memory management: physical frames, the heap, page-table pages, address spaces, the
//! shared file and page faults.

pub mod fault;
pub mod file;
pub mod frame;
pub mod hash_page;
pub mod heap;
pub mod mm_types;
pub mod pgalloc;

pub use mm_types::Mm;
