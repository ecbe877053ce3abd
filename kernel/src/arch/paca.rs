//! Per-CPU area (named after Linux's PACA): what the interrupt vectors need at fixed offsets
//! (boot/vectors.S), then the kernel's per-CPU state. SPRG0 points at the current CPU's one.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub const MAX_CPUS: usize = 8;

#[repr(C)]
pub struct Paca {
    /// 0x00: this PACA's own address.
    pub self_ptr: u64,
    /// 0x08: kernel TOC (r2) for the interrupt path.
    pub toc: u64,
    /// 0x10: address of `exc_common`.
    pub common: u64,
    /// 0x18..0x40: scratch for the vectors (r9..r12, CTR).
    pub scratch: [u64; 5],
    /// Logical CPU index (0 = boot CPU).
    pub index: usize,
    /// Hardware interrupt server number (XICS / RTAS).
    pub server: u32,
    /// Decrementer ticks taken on this CPU.
    pub ticks: AtomicU64,
    /// IPIs received on this CPU.
    pub ipis: AtomicU64,
    /// Set once the CPU has finished its bring-up.
    pub online: AtomicBool,
    /// An expected storage interrupt (see `exceptions::expect_fault`).
    pub fault_fixup: AtomicU64,
    pub fault_dar: AtomicU64,
    pub fault_vector: AtomicU64,
    /// Last cross-CPU TLB flush generation this CPU has carried out (arch/mmu/tlb.rs).
    pub tlb_flush_ack: AtomicU64,
    /// The address space whose tables translate quadrant 0 here (a `*const Mm`, or 0).
    pub current_mm: AtomicU64,
    /// Next SLB slot to replace on a segment miss (hash).
    pub slb_next: AtomicU64,
}

const _: () = {
    assert!(core::mem::offset_of!(Paca, toc) == 0x08);
    assert!(core::mem::offset_of!(Paca, common) == 0x10);
    assert!(core::mem::offset_of!(Paca, scratch) == 0x18);
};

#[allow(clippy::declare_interior_mutable_const)]
const PACA_INIT: Paca = Paca {
    self_ptr: 0,
    toc: 0,
    common: 0,
    scratch: [0; 5],
    index: 0,
    server: 0,
    ticks: AtomicU64::new(0),
    ipis: AtomicU64::new(0),
    online: AtomicBool::new(false),
    fault_fixup: AtomicU64::new(0),
    fault_dar: AtomicU64::new(0),
    fault_vector: AtomicU64::new(0),
    tlb_flush_ack: AtomicU64::new(0),
    current_mm: AtomicU64::new(0),
    slb_next: AtomicU64::new(0),
};

/// One PACA per possible CPU. Fields written before a CPU starts are plain; everything the
/// CPU shares at run time is atomic.
static mut PACAS: [Paca; MAX_CPUS] = [PACA_INIT; MAX_CPUS];

unsafe extern "C" {
    fn exc_common();
}

/// Fills in CPU `index`'s PACA before that CPU runs.
///
/// # Safety
/// Must run once per index, before the CPU is started, while nothing else reads that PACA.
pub unsafe fn init(index: usize, server: u32, toc: u64) {
    // SAFETY: per the contract, no one else accesses PACAS[index] now.
    let p = unsafe { &mut *core::ptr::addr_of_mut!(PACAS[index]) };
    p.self_ptr = p as *const Paca as u64;
    p.toc = toc;
    p.common = exc_common as *const () as u64;
    p.index = index;
    p.server = server;
}

/// Points SPRG0 at CPU `index`'s PACA; called by that CPU itself.
pub fn install(index: usize) {
    super::regs::mtsprg0(get(index) as *const Paca as u64);
}

/// CPU `index`'s PACA.
pub fn get(index: usize) -> &'static Paca {
    assert!(index < MAX_CPUS, "cpu index {index} out of range");
    // SAFETY: after `init` the non-atomic fields are only read; shared state is atomic.
    unsafe { &*core::ptr::addr_of!(PACAS[index]) }
}

/// The running CPU's PACA.
pub fn this() -> &'static Paca {
    let p = super::regs::mfsprg0();
    assert!(p != 0, "PACA used before install");
    // SAFETY: SPRG0 is only ever set by `install` to an element of PACAS.
    unsafe { &*(p as *const Paca) }
}

/// The running CPU's logical index.
pub fn cpu_id() -> usize {
    this().index
}

/// Whether `this()` may be called yet (SPRG0 set).
pub fn installed() -> bool {
    super::regs::mfsprg0() != 0
}

/// Online CPU count helper.
pub fn is_online(index: usize) -> bool {
    get(index).online.load(Ordering::Acquire)
}
