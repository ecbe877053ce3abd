//! Masking external and decrementer interrupts (MSR[EE]) on the running CPU.

use super::regs::{mfmsr, mtmsrd_ee_ri, Msr};

/// Disables interrupts; returns whether they were enabled.
pub fn disable() -> bool {
    let m = mfmsr();
    mtmsrd_ee_ri(Msr::RI);
    m.contains(Msr::EE)
}

pub fn enable() {
    mtmsrd_ee_ri(Msr::RI | Msr::EE);
}

pub fn enabled() -> bool {
    mfmsr().contains(Msr::EE)
}

pub fn restore(was_enabled: bool) {
    if was_enabled {
        enable();
    }
}
