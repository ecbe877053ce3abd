//! Special-purpose registers and the MSR, one small accessor each.
//! Bit numbers: Power ISA v3.0B Book III section 4.2.1 (MSR) and 7 (interrupts).

use core::arch::asm;

/// MSR bits (value masks, not IBM bit numbers).
pub mod msr {
    pub const EE: u64 = 1 << 15;
    pub const IR: u64 = 1 << 5;
    pub const DR: u64 = 1 << 4;
    pub const RI: u64 = 1 << 1;
}

pub fn mfmsr() -> u64 {
    let v: u64;
    // SAFETY: reading the MSR has no side effects.
    unsafe { asm!("mfmsr {0}", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Sets only MSR[EE] and MSR[RI] (mtmsrd L=1), the cheap form used to mask interrupts.
pub fn mtmsrd_ee_ri(v: u64) {
    // SAFETY: L=1 touches only EE and RI; callers use it to mask/unmask interrupts, which
    // cannot break memory safety by itself. Acts as a compiler barrier (no `nomem`).
    unsafe { asm!("mtmsrd {0}, 1", in(reg) v, options(nostack, preserves_flags)) };
}

/// Writes the whole MSR.
///
/// # Safety
/// The new MSR must keep the kernel runnable: SF and LE set, and IR/DR only when the
/// translation they select maps the code, stack and data in use.
pub unsafe fn mtmsrd(v: u64) {
    // SAFETY: the caller upholds the contract above; isync makes the change take effect
    // before the next instruction.
    unsafe { asm!("mtmsrd {0}", "isync", in(reg) v, options(nostack, preserves_flags)) };
}

/// Process ID register (SPR 48): selects the quadrant-0 address space under radix.
pub fn mtpidr(v: u64) {
    // SAFETY: changing PIDR changes which tree translates quadrant 0; the kernel itself
    // runs in quadrant 3, and isync orders later accesses after the switch.
    unsafe { asm!("mtspr 48, {0}", "isync", in(reg) v, options(nostack, preserves_flags)) };
}

pub fn mfpidr() -> u64 {
    let v: u64;
    // SAFETY: reading PIDR has no side effects.
    unsafe { asm!("mfspr {0}, 48", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

pub fn mftb() -> u64 {
    let v: u64;
    // SAFETY: the timebase is a read-only counter.
    unsafe { asm!("mftb {0}", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Decrementer (SPR 22).
pub fn mtdec(v: u64) {
    // SAFETY: writing DEC only schedules the next decrementer interrupt.
    unsafe { asm!("mtspr 22, {0}", in(reg) v, options(nomem, nostack, preserves_flags)) };
}

/// Processor identification register (SPR 1023).
pub fn mfpir() -> u32 {
    let v: u64;
    // SAFETY: reading PIR has no side effects.
    unsafe { asm!("mfspr {0}, 1023", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v as u32
}

/// SPRG0 (SPR 272) holds the address of this CPU's PACA for the interrupt vectors.
pub fn mtsprg0(v: u64) {
    // SAFETY: SPRG0 is software-defined scratch; only the vectors read it.
    unsafe { asm!("mtspr 272, {0}", in(reg) v, options(nomem, nostack, preserves_flags)) };
}

pub fn mfsprg0() -> u64 {
    let v: u64;
    // SAFETY: reading SPRG0 has no side effects.
    unsafe { asm!("mfspr {0}, 272", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Full memory barrier (`sync`).
pub fn sync() {
    // SAFETY: a barrier has no effect other than ordering.
    unsafe { asm!("sync", options(nostack, preserves_flags)) };
}

/// Current stack pointer (r1), for backtraces.
pub fn stack_pointer() -> u64 {
    let v: u64;
    // SAFETY: copies r1.
    unsafe { asm!("mr {0}, 1", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}
