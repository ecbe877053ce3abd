//! `PTFRAG_DEBUG`: addresses and layouts a debugger needs, in one symbol with a fixed shape
//! (every field a 64-bit word, in the order below), filled at boot. tests/gdb/ptfrag.py reads
//! it to decode page descriptors, walk address spaces and list RCU callbacks without
//! depending on how rustc lays out the kernel's types. Bump VERSION when the shape changes.

use core::sync::atomic::{AtomicU64, Ordering};

pub const MAGIC: u64 = 0x7074_6672_6167_6462; // "ptfragdb"
pub const VERSION: u64 = 1;

/// Field indices (word offsets) — the contract with tests/gdb/ptfrag.py.
#[repr(usize)]
#[derive(Clone, Copy)]
pub enum Field {
    Magic = 0,
    Version,
    MemMap,
    NrFrames,
    DescSize,
    DescFlags,
    DescRefcount,
    DescOwner,
    DescRcuHead,
    FrameSize,
    MmuMode,
    ProcessTable,
    MmPgds,
    MaxPid,
    Rcu,
    RcuGpSeq,
    RcuQsMask,
    RcuOnline,
    RcuCpus,
    RcuCpuStride,
    RcuCpuNesting,
    RcuCpuHead,
    RcuMaxCpus,
    PteFragSize,
    PteIndexBits0,
    PteIndexBits1,
    PteIndexBits2,
    PteIndexBits3,
    PageShift,
    BitmapSides,
    BitmapSideSize,
    Strategy,
    /// Offset of the phase counts in a bitmap side struct (the fragment bits are at 0).
    BitmapPhases,
    Count,
}

#[unsafe(no_mangle)]
pub static PTFRAG_DEBUG: [AtomicU64; Field::Count as usize] =
    [const { AtomicU64::new(0) }; Field::Count as usize];

pub fn set(f: Field, v: u64) {
    PTFRAG_DEBUG[f as usize].store(v, Ordering::Release);
}

/// Fills the table once the MMU, memory and RCU are up.
pub fn fill() {
    use core::mem::{offset_of, size_of};
    use ptfrag_core::cmdline::MmuMode;
    use ptfrag_core::page_desc::PageDesc;
    use ptfrag_core::pgtable::LEVELS;
    let rl = ptfrag_core::rcu::debug_layout::<crate::rcu::Hooks>();
    let g = crate::arch::mmu::pte::geometry();
    let fields = [
        (Field::Version, VERSION),
        (Field::MemMap, crate::mm::frame::mem_map_addr()),
        (Field::NrFrames, crate::mm::frame::nr_frames() as u64),
        (Field::DescSize, size_of::<PageDesc>() as u64),
        (Field::DescFlags, offset_of!(PageDesc, flags) as u64),
        (Field::DescRefcount, offset_of!(PageDesc, pt_frag_refcount) as u64),
        (Field::DescOwner, offset_of!(PageDesc, owner) as u64),
        (Field::DescRcuHead, offset_of!(PageDesc, rcu_head) as u64),
        (Field::FrameSize, ptfrag_core::frame_alloc::FRAME_SIZE),
        (
            Field::MmuMode,
            match crate::arch::mmu::mode() {
                MmuMode::Radix => 1,
                MmuMode::Hash => 2,
                MmuMode::Radix64 => 3,
            },
        ),
        (Field::ProcessTable, crate::arch::mmu::radix::process_table()),
        (Field::MmPgds, crate::mm::mm_types::pgd_table_addr()),
        (Field::MaxPid, crate::arch::mmu::radix::MAX_PID as u64),
        (Field::Rcu, crate::rcu::rcu_addr()),
        (Field::RcuGpSeq, rl.gp_seq as u64),
        (Field::RcuQsMask, rl.qs_mask as u64),
        (Field::RcuOnline, rl.online as u64),
        (Field::RcuCpus, rl.cpus as u64),
        (Field::RcuCpuStride, rl.cpu_stride as u64),
        (Field::RcuCpuNesting, rl.cpu_nesting as u64),
        (Field::RcuCpuHead, rl.cpu_head as u64),
        (Field::RcuMaxCpus, rl.max_cpus as u64),
        (Field::PteFragSize, crate::mm::pte_free::pte_frag_geometry().frag_size as u64),
        (Field::PteIndexBits0, g.index_bits[LEVELS[0] as usize] as u64),
        (Field::PteIndexBits1, g.index_bits[LEVELS[1] as usize] as u64),
        (Field::PteIndexBits2, g.index_bits[LEVELS[2] as usize] as u64),
        (Field::PteIndexBits3, g.index_bits[LEVELS[3] as usize] as u64),
        (Field::PageShift, g.page_shift as u64),
        (Field::BitmapSides, crate::mm::pte_free::sides_addr()),
        (Field::BitmapSideSize, size_of::<ptfrag_core::pte_free_defer::BitmapSide>() as u64),
        (Field::BitmapPhases, ptfrag_core::pte_free_defer::BitmapSide::PHASES_OFFSET as u64),
    ];
    for (f, v) in fields {
        set(f, v);
    }
    // `Field::Strategy` is an index into `Strategy::CHOICES` (tests/gdb/ptfrag.py has the
    // same list), kept current by mm::pte_free.
    set(Field::Strategy, crate::mm::pte_free::strategy().index() as u64);
    set(Field::Magic, MAGIC);
}
