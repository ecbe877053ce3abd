//! Physical memory: the 64 KiB frame allocator, the page-descriptor array and the heap.

pub mod frame;
pub mod heap;
