//! Masking external and decrementer interrupts (MSR[EE]) on the running CPU.

use super::regs::{mfmsr, msr, mtmsrd_ee_ri};

/// Disables interrupts; returns whether they were enabled.
pub fn disable() -> bool {
    let m = mfmsr();
    mtmsrd_ee_ri(msr::RI);
    m & msr::EE != 0
}

pub fn enable() {
    mtmsrd_ee_ri(msr::RI | msr::EE);
}

pub fn enabled() -> bool {
    mfmsr() & msr::EE != 0
}

pub fn restore(was_enabled: bool) {
    if was_enabled {
        enable();
    }
}
