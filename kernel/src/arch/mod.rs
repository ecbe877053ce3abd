//! Everything POWER9/pseries-specific: the only place with `asm!`, hcalls and SPR accesses.
//! The rest of the kernel calls the safe wrappers re-exported here.

pub mod cas;
pub mod exceptions;
pub mod hcall;
pub mod irq;
pub mod mmu;
pub mod of;
pub mod paca;
pub mod regs;
pub mod rtas;
pub mod smp;
pub mod timer;
pub mod trapframe;
pub mod uaccess;
pub mod xics;

core::arch::global_asm!(include_str!("../../../boot/entry.S"), options(raw));
core::arch::global_asm!(include_str!("../../../boot/vectors.S"), options(raw));
core::arch::global_asm!(include_str!("../../../boot/mem.S"), options(raw));

/// The linear-map offset: kernel virtual = physical | PHYS_OFFSET (quadrant 3). In real mode
/// the CPU ignores the top four EA bits, so these addresses work before the MMU is on.
pub const PHYS_OFFSET: u64 = 0xc000_0000_0000_0000;

/// Physical (real) address of a kernel pointer.
pub fn virt_to_phys(addr: u64) -> u64 {
    addr & !PHYS_OFFSET
}

/// Kernel pointer for a physical address.
pub fn phys_to_virt(addr: u64) -> u64 {
    addr | PHYS_OFFSET
}
