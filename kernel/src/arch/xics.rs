//! The XICS interrupt presentation layer through hcalls (PAPR: H_CPPR, H_XIRR, H_EOI, H_IPI).
//! QEMU keeps XICS as long as CAS does not ask for XIVE (option vector 5 byte 23 = 0).
//! IPIs arrive as source 2 (QEMU hw/intc/xics.c, XICS_IPI).

use super::hcall::{hcall_noref, H_CPPR, H_EOI, H_IPI, H_XIRR};

pub const XICS_IPI: u32 = 2;

/// Accepts interrupts of every priority on this CPU.
pub fn cpu_init() {
    hcall_noref(H_CPPR, [0xff, 0, 0, 0, 0, 0]);
}

/// Raises an IPI on `server` (MFRR = 0, most favoured).
pub fn send_ipi(server: u32) -> i64 {
    hcall_noref(H_IPI, [server as u64, 0, 0, 0, 0, 0]).status
}

/// Clears this CPU's pending IPI (MFRR = 0xff).
pub fn clear_ipi(server: u32) {
    hcall_noref(H_IPI, [server as u64, 0xff, 0, 0, 0, 0]);
}

/// Accepts the highest-priority pending interrupt; returns the XIRR (source in the low 24
/// bits, 0 = none).
pub fn accept() -> u32 {
    let r = hcall_noref(H_XIRR, [0; 6]);
    r.r[0] as u32
}

pub fn eoi(xirr: u32) {
    hcall_noref(H_EOI, [xirr as u64, 0, 0, 0, 0, 0]);
}
