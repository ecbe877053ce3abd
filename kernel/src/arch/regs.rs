//! Special-purpose registers and the MSR, one small accessor each.
//! Bit numbers: Power ISA v3.0B Book III section 4.2.1 (MSR), 7.5.3 (DSISR) and 7.5.5 (SRR1).

use core::arch::asm;

bitflags::bitflags! {
    /// Machine State Register bits (Power ISA v3.0B Book III 4.2.1 "Machine State Register").
    /// Bit numbers are the ISA's (0 = most significant); the values are masks. SRR1 holds
    /// a copy of these at an interrupt, beside the interrupt's own cause bits (`Srr1`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Msr: u64 {
        /// SF, bit 0: 64-bit mode.
        const SF = 1 << 63;
        /// HV, bit 3: hypervisor state (never set in a pseries guest).
        const HV = 1 << 60;
        /// VEC, bit 38: vector (VMX) facility available.
        const VEC = 1 << 25;
        /// VSX, bit 40: VSX facility available.
        const VSX = 1 << 23;
        /// EE, bit 48: external and decrementer interrupts enabled.
        const EE = 1 << 15;
        /// PR, bit 49: problem (user) state.
        const PR = 1 << 14;
        /// FP, bit 50: floating-point available.
        const FP = 1 << 13;
        /// ME, bit 51: machine check interrupts enabled.
        const ME = 1 << 12;
        /// IR, bit 58: instruction relocation (translation) on.
        const IR = 1 << 5;
        /// DR, bit 59: data relocation (translation) on.
        const DR = 1 << 4;
        /// RI, bit 62: the interrupt is recoverable.
        const RI = 1 << 1;
        /// LE, bit 63: little-endian mode.
        const LE = 1 << 0;
    }
}

bitflags::bitflags! {
    /// DSISR cause bits of a data storage interrupt (Power ISA v3.0B Book III 7.5.3 "Data
    /// Storage Interrupt"; names and values as QEMU's target/ppc/cpu.h defines them).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Dsisr: u64 {
        /// Bit 33: no translation (no valid radix PTE, or no HPTE found).
        const NOPTE = 1 << 30;
        /// Bit 36: the access is not permitted (radix EAA, or hash PP/key).
        const PROTFAULT = 1 << 27;
        /// Bit 38: the access was a store.
        const STORE = 1 << 25;
        /// Bit 42: denied by the virtual page class key (AMR).
        const AMR = 1 << 21;
        /// Bit 44: unsupported radix tree configuration.
        const R_BADCONFIG = 1 << 19;
        /// Bit 45: the reference/change update could not be made atomically.
        const ATOMIC_RC = 1 << 18;
        /// Bit 46: a fault translating the address of a process- or page-table entry.
        const PRTABLE_FAULT = 1 << 17;
    }
}

bitflags::bitflags! {
    /// SRR1 cause bits of an instruction storage interrupt (Power ISA v3.0B Book III 7.5.5
    /// "Instruction Storage Interrupt"; QEMU target/ppc/cpu.h). The rest of SRR1 is the MSR.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Srr1: u64 {
        /// Bit 33: no translation.
        const NOPTE = 1 << 30;
        /// Bit 35: no-execute or guarded storage.
        const NOEXEC_GUARD = 1 << 28;
        /// Bit 36: not permitted.
        const PROTFAULT = 1 << 27;
        /// Bit 42: denied by the instruction authority mask (IAMR).
        const IAMR = 1 << 21;
    }
}

pub fn mfmsr() -> Msr {
    let v: u64;
    // SAFETY: reading the MSR has no side effects.
    unsafe { asm!("mfmsr {0}", out(reg) v, options(nomem, nostack, preserves_flags)) };
    Msr::from_bits_retain(v)
}

/// Sets only MSR[EE] and MSR[RI] (mtmsrd L=1), the cheap form used to mask interrupts.
pub fn mtmsrd_ee_ri(v: Msr) {
    // SAFETY: L=1 touches only EE and RI; callers use it to mask/unmask interrupts, which
    // cannot break memory safety by itself. Acts as a compiler barrier (no `nomem`).
    unsafe { asm!("mtmsrd {0}, 1", in(reg) v.bits(), options(nostack, preserves_flags)) };
}

/// Writes the whole MSR.
///
/// # Safety
/// The new MSR must keep the kernel runnable: SF and LE set, and IR/DR only when the
/// translation they select maps the code, stack and data in use.
pub unsafe fn mtmsrd(v: Msr) {
    // SAFETY: the caller upholds the contract above; isync makes the change take effect
    // before the next instruction.
    unsafe { asm!("mtmsrd {0}", "isync", in(reg) v.bits(), options(nostack, preserves_flags)) };
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
