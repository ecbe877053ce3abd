//! Turning translation on: the mode chosen on the command line (`mmu=radix|radix64|hash`), the
//! per-CPU switch into virtual mode, and the relocation-on interrupt vectors (AIL=3).

pub mod book3s64;
pub mod hash;
pub mod hash_utils;
pub mod pte;
pub mod radix;
pub mod tlb;

use super::regs::{self, Msr};
use core::sync::atomic::{AtomicU8, Ordering};
use ptfrag_core::cmdline::MmuMode;

const OFF: u8 = 0;
const RADIX: u8 = 1;
const HASH: u8 = 2;
const RADIX64: u8 = 3;

static MODE: AtomicU8 = AtomicU8::new(OFF);

/// Either radix layout (the hardware walks the tree).
pub fn radix_enabled() -> bool {
    matches!(MODE.load(Ordering::Acquire), RADIX | RADIX64)
}

/// The mode translation runs in (radix before `init`).
pub fn mode() -> MmuMode {
    match MODE.load(Ordering::Acquire) {
        HASH => MmuMode::Hash,
        RADIX64 => MmuMode::Radix64,
        _ => MmuMode::Radix,
    }
}

/// What the device tree says about the MMU.
pub struct MmuInfo {
    pub mem_end: u64,
    pub pft_shift: Option<u32>,
    pub slb_size: Option<u32>,
}

/// Builds the kernel's translation for `mode` and turns it on on the boot CPU.
pub fn init(mode: MmuMode, info: &MmuInfo) {
    let m = match mode {
        MmuMode::Radix => RADIX,
        MmuMode::Radix64 => RADIX64,
        MmuMode::Hash => HASH,
    };
    MODE.store(m, Ordering::Release);
    match mode {
        // The kernel's own tree is the same in both radix layouts; only address spaces use
        // 64K pages under radix64 (each tree's layout is its own: the NLS of every PDE).
        MmuMode::Radix | MmuMode::Radix64 => radix::init(info.mem_end),
        MmuMode::Hash => {
            let Some(pft) = info.pft_shift else {
                crate::fatal!("mmu=hash: the device tree has no cpu ibm,pft-size (no HPT)")
            };
            hash::init(info.mem_end, pft, info.slb_size.unwrap_or(32));
        }
    }
    set_ail3();
    this_cpu_on();
}

/// Interrupts taken in virtual mode arrive at 0xc000000000004000 + vector with translation
/// on (LPCR[AIL]=3, set through H_SET_MODE resource 3; Power ISA v3.0B Book III 7.5).
fn set_ail3() {
    super::exceptions::copy_vectors_to(0x4000);
    let rc = super::hcall::hcall_noref(super::hcall::H_SET_MODE, [3, 3, 0, 0, 0, 0]).status;
    if rc != super::hcall::H_SUCCESS {
        crate::fatal!("H_SET_MODE(AIL=3) failed: {rc}");
    }
}

/// Turns MSR[IR|DR] on for the running CPU (no-op if the MMU is still off).
pub fn this_cpu_on() {
    if MODE.load(Ordering::Acquire) == OFF {
        return;
    }
    if radix_enabled() {
        radix::this_cpu_init();
    } else {
        hash::slb_reset_this_cpu();
        tlb::local_flush_all();
    }
    // SAFETY: the kernel's linear map translates every kernel address to itself (top bits
    // ignored), so code, stack and data stay where they are when translation comes on.
    unsafe { regs::mtmsrd(regs::mfmsr() | Msr::IR | Msr::DR) };
}

/// Whether this CPU runs with translation on.
pub fn this_cpu_is_on() -> bool {
    regs::mfmsr().contains(Msr::IR | Msr::DR)
}
