//! The global 64 KiB frame allocator over every RAM range of the device tree, minus the
//! vectors at real address 0 and the kernel image; and the page-descriptor array (one
//! `PageDesc` per frame, Linux's `mem_map`). Exhaustion is an `Err`, never a bogus frame.
//! Invariant: the allocator writes a descriptor's flags only while it holds its lock, so the
//! write is ordered before the frame's next owner gets it (see `mark`).

use crate::arch::{phys_to_virt, virt_to_phys};
use crate::devtree::MemRange;
use crate::sync::IrqLock;
use ptfrag_core::frame_alloc::{FrameAllocator, FrameError, FRAME_SIZE};
use ptfrag_core::page_desc::{PageDesc, PageFlags};
use ptfrag_core::pgtable_t::PtPage;

/// Largest physical address managed (64 GiB); RAM above it is reported and left unused.
pub const MAX_PHYS: u64 = 64 << 30;
const MAX_FRAMES: usize = (MAX_PHYS / FRAME_SIZE) as usize;

static mut BITMAP: [u64; MAX_FRAMES / 64] = [0; MAX_FRAMES / 64];
static ALLOC: IrqLock<Option<FrameAllocator<'static>>> = IrqLock::new(None);
static DESCS: spin::Once<&'static [PageDesc]> = spin::Once::new();

unsafe extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

#[derive(Debug)]
pub struct MemInfo {
    pub total: usize,
    pub free: usize,
    pub clipped: u64,
}

/// Builds the allocator from the device tree's RAM ranges and the descriptor array.
pub fn init(mem: &[MemRange]) -> MemInfo {
    let end = mem.iter().map(|r| r.start + r.size).max().unwrap_or(0);
    let clipped = end.saturating_sub(MAX_PHYS);
    let end = end.min(MAX_PHYS);
    let nframes = end.div_ceil(FRAME_SIZE) as usize;
    // SAFETY: init runs once on the boot CPU before anything else uses BITMAP.
    let bitmap: &'static mut [u64] = unsafe { &mut *core::ptr::addr_of_mut!(BITMAP) };
    let words = FrameAllocator::bitmap_words(nframes);
    let mut fa = FrameAllocator::new(&mut bitmap[..words], 0, nframes);
    for r in mem {
        fa.add_free_range(r.start, (r.start + r.size).min(MAX_PHYS));
    }
    // Vectors (real address 0) and everything below the kernel: firmware used it.
    let ks = virt_to_phys(core::ptr::addr_of!(__kernel_start) as u64);
    let ke = virt_to_phys(core::ptr::addr_of!(__kernel_end) as u64);
    fa.reserve_range(0, FRAME_SIZE);
    fa.reserve_range(ks, ke);

    // Descriptor array, carved from the allocator itself.
    let bytes = nframes * core::mem::size_of::<PageDesc>();
    let n = bytes.div_ceil(FRAME_SIZE as usize);
    let base = match fa.alloc_contig(n, 1) {
        Ok(b) => b,
        Err(e) => crate::fatal!("no room for {nframes} page descriptors: {e}"),
    };
    let ptr = phys_to_virt(base) as *mut PageDesc;
    for i in 0..nframes {
        // SAFETY: [base, base + n frames) was just allocated for this array.
        unsafe { ptr.add(i).write(PageDesc::new()) };
    }
    // SAFETY: initialised above; the frames are never freed.
    let descs: &'static [PageDesc] = unsafe { core::slice::from_raw_parts(ptr, nframes) };
    for (i, d) in descs.iter().enumerate() {
        if !fa.is_free(i as u64 * FRAME_SIZE) {
            d.set_flag(PageFlags::RESERVED);
        }
    }
    DESCS.call_once(|| descs);
    let info = MemInfo { total: fa.total_count(), free: fa.free_count(), clipped };
    *ALLOC.lock() = Some(fa);
    info
}

fn with<R>(f: impl FnOnce(&mut FrameAllocator<'static>) -> R) -> R {
    let mut g = ALLOC.lock();
    match g.as_mut() {
        Some(fa) => f(fa),
        None => crate::fatal!("frame allocator used before mm::frame::init"),
    }
}

/// Sets the descriptor flags of a frame the allocator just handed out or took back. Only
/// with the allocator's lock held: freed frames are reused first, so once the lock is
/// released another CPU may own the frame, and a late write would clobber its flags.
fn mark(pa: u64, f: PageFlags) {
    desc(pa).flags.store(f.bits(), core::sync::atomic::Ordering::Release);
}

/// The descriptor of the frame holding physical address `pa`.
pub fn desc(pa: u64) -> &'static PageDesc {
    let d = DESCS.get().expect("page descriptors used before mm::frame::init");
    &d[(pa / FRAME_SIZE) as usize]
}

/// Address of the descriptor array (Linux's mem_map), for the debugger.
pub fn mem_map_addr() -> u64 {
    DESCS.get().map_or(0, |d| d.as_ptr() as u64)
}

/// Frames covered by the descriptor array.
pub fn nr_frames() -> usize {
    DESCS.get().map_or(0, |d| d.len())
}

/// The frame whose descriptor holds `head` (Linux: container_of(head, struct page, rcu_head)).
pub fn page_of_rcu_head(head: *const ptfrag_core::page_desc::RcuHead) -> PtPage {
    let descs = DESCS.get().expect("page descriptors used before mm::frame::init");
    match PageDesc::index_in(descs, PageDesc::from_rcu_head(head)) {
        Some(pfn) => PtPage::from_pfn(pfn),
        None => crate::fatal!("rcu_head {:#x} is not in a page descriptor", head as u64),
    }
}

/// The page-table page whose descriptor holds the head at address `head`, if it is one.
pub fn page_table_of_rcu_head(head: u64) -> Option<u64> {
    let descs = DESCS.get()?;
    let pfn = PageDesc::index_in(
        descs,
        PageDesc::from_rcu_head(head as *const ptfrag_core::page_desc::RcuHead),
    )?;
    descs[pfn].has_flag(PageFlags::PAGE_TABLE).then(|| PtPage::from_pfn(pfn).pa())
}

/// One frame (physical address).
pub fn alloc() -> Result<u64, FrameError> {
    with(|fa| {
        let pa = fa.alloc()?;
        mark(pa, PageFlags::ALLOCATED);
        Ok(pa)
    })
}

/// One zeroed frame.
pub fn alloc_zeroed() -> Result<u64, FrameError> {
    let pa = alloc()?;
    // SAFETY: the frame was just allocated to the caller; nobody else can see it.
    unsafe {
        core::ptr::write_bytes(crate::arch::phys_to_virt(pa) as *mut u8, 0, FRAME_SIZE as usize)
    };
    Ok(pa)
}

/// `n` contiguous frames aligned to `align` frames.
pub fn alloc_contig(n: usize, align: usize) -> Result<u64, FrameError> {
    with(|fa| {
        let pa = fa.alloc_contig(n, align)?;
        for i in 0..n as u64 {
            mark(pa + i * FRAME_SIZE, PageFlags::ALLOCATED);
        }
        Ok(pa)
    })
}

/// Why a frame could not be freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeError {
    Frame(FrameError),
    /// The frame's descriptor holds an `rcu_head` that is still queued for a callback
    /// (debug objects: freeing it would corrupt the RCU callback list).
    QueuedRcuHead {
        pa: u64,
        func: u64,
        owner: u64,
    },
}

impl From<FrameError> for FreeError {
    fn from(e: FrameError) -> Self {
        FreeError::Frame(e)
    }
}

impl core::fmt::Display for FreeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FreeError::Frame(e) => write!(f, "{e}"),
            FreeError::QueuedRcuHead { pa, func, owner } => write!(
                f,
                "freeing frame {pa:#x} whose rcu_head is still queued (callback {func:#x}, owner {owner:#x})"
            ),
        }
    }
}

pub fn free(pa: u64) -> Result<(), FreeError> {
    if pa.is_multiple_of(FRAME_SIZE)
        && (pa / FRAME_SIZE) < DESCS.get().map_or(0, |d| d.len() as u64)
    {
        let d = desc(pa);
        let func = d.rcu_head.func.load(core::sync::atomic::Ordering::Acquire);
        if func != 0 {
            let owner = d.owner.load(core::sync::atomic::Ordering::Relaxed);
            return Err(FreeError::QueuedRcuHead { pa, func, owner });
        }
    }
    with(|fa| {
        fa.free(pa)?;
        mark(pa, PageFlags::empty());
        Ok(())
    })
}

pub fn free_count() -> usize {
    with(|fa| fa.free_count())
}
