//! The kernel heap: `linked_list_allocator` over frames taken at boot, behind an
//! interrupt-safe `spin` lock. Out of memory is reported by Rust's allocation-error path
//! (a panic naming the size), never a null dereference.

use crate::sync::IrqLock;
use core::alloc::{GlobalAlloc, Layout};
use linked_list_allocator::Heap;

pub const HEAP_SIZE: usize = 16 << 20;

pub struct KernelHeap(IrqLock<Heap>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(IrqLock::new(Heap::empty()));

// SAFETY: every method takes the lock and delegates to linked_list_allocator, which
// returns null (not a bad pointer) when it cannot satisfy a layout.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.lock().allocate_first_fit(layout).map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = core::ptr::NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's contract: ptr came from `alloc` with this layout.
            unsafe { self.0.lock().deallocate(p, layout) };
        }
    }
}

/// Gives the heap its memory: HEAP_SIZE contiguous frames.
pub fn init() {
    let frames = HEAP_SIZE / ptfrag_core::frame_alloc::FRAME_SIZE as usize;
    let pa = match super::frame::alloc_contig(frames, 1) {
        Ok(pa) => pa,
        Err(e) => crate::fatal!("no memory for the {} MiB heap: {e}", HEAP_SIZE >> 20),
    };
    let va = crate::arch::phys_to_virt(pa) as *mut u8;
    // SAFETY: the frames were just allocated for the heap and are never freed.
    unsafe { HEAP.0.lock().init(va, HEAP_SIZE) };
}

/// Bytes in use, for leak checks.
pub fn used() -> usize {
    HEAP.0.lock().used()
}
