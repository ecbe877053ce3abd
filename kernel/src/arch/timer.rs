//! Timebase and the periodic decrementer tick. The decrementer counts down at the timebase
//! frequency and interrupts (0x900) when it goes negative; we re-arm it from the handler
//! (Power ISA v3.0B Book III 6.5.x, "Decrementer").

use super::regs::{mftb, mtdec};
use core::sync::atomic::{AtomicU64, Ordering};

static TB_FREQ: AtomicU64 = AtomicU64::new(512_000_000);
static TICK_INTERVAL: AtomicU64 = AtomicU64::new(5_120_000);

/// Records the timebase frequency (from /cpus/cpu@*/timebase-frequency) and the tick rate.
pub fn init(tb_freq: u64, hz: u32) {
    TB_FREQ.store(tb_freq, Ordering::Relaxed);
    TICK_INTERVAL.store(tb_freq / hz as u64, Ordering::Relaxed);
}

pub fn tb_freq() -> u64 {
    TB_FREQ.load(Ordering::Relaxed)
}

pub fn now() -> u64 {
    mftb()
}

/// Timebase ticks to microseconds.
pub fn tb_to_us(t: u64) -> u64 {
    (t as u128 * 1_000_000 / tb_freq() as u128) as u64
}

/// Timebase ticks to nanoseconds (under QEMU's `-icount shift=0`, guest instructions).
pub fn tb_to_ns(t: u64) -> u64 {
    (t as u128 * 1_000_000_000 / tb_freq().max(1) as u128) as u64
}

/// Arms the next tick on this CPU.
pub fn arm() {
    mtdec(TICK_INTERVAL.load(Ordering::Relaxed));
}

/// Busy-waits `us` microseconds.
pub fn udelay(us: u64) {
    let end = mftb() + us * tb_freq() / 1_000_000;
    while mftb() < end {
        crate::arch::smp::relax();
    }
}

/// Timebase ticks between two decrementer ticks.
pub fn tick_interval() -> u64 {
    TICK_INTERVAL.load(Ordering::Relaxed)
}
