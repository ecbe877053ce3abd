//! In-kernel tests, registered with `ktest!` and run at the end of boot.

mod full_page;
mod gup_fast;
mod mem;
mod mmu;
mod pwc;
mod rcu;
mod retract;
mod schedules;
mod selftest;
mod smp;
mod traps;

use crate::mm::mm_types::MmError;
use crate::mm::Mm;
use alloc::sync::Arc;

/// An address space that is torn down (`Mm::destroy`) when the guard goes out of scope, so
/// a test that returns early (`?`, `check!`) leaves no page tables or PID behind. It derefs
/// to the `Arc<Mm>`. `destroy()` tears it down at a moment the test chooses (before a leak
/// count, say); `into_inner()` gives the teardown to the caller. As for `Mm::destroy`, the
/// mm must be active nowhere when the guard goes: `activate` after the guard, not before.
pub struct MmGuard(Option<Arc<Mm>>);

impl MmGuard {
    pub fn new() -> Result<Self, MmError> {
        Ok(MmGuard(Some(Mm::new()?)))
    }

    /// Tears the address space down now.
    pub fn destroy(self) {
        drop(self);
    }

    /// The address space, which the caller must now tear down itself.
    pub fn into_inner(mut self) -> Arc<Mm> {
        self.0.take().expect("an MmGuard holds its mm until it is consumed")
    }
}

impl core::ops::Deref for MmGuard {
    type Target = Arc<Mm>;

    fn deref(&self) -> &Arc<Mm> {
        self.0.as_ref().expect("an MmGuard holds its mm until it is consumed")
    }
}

impl Drop for MmGuard {
    fn drop(&mut self) {
        if let Some(mm) = self.0.take() {
            mm.destroy();
        }
    }
}

/// The in-boot reference workload of the figures measured against the boot's own speed (the
/// hash/radix fault figure, the bench's `*_refs` times): a fixed loop of register arithmetic
/// that touches no memory the MMU translates differently in either mode (black_box keeps it
/// from being folded). Returns its timebase. A time in units of this loop's iteration is a
/// figure of the boot's own speed, so boots can be compared by it where their seconds
/// cannot: the host's speed and load at the time cancel, as far as they fall on both alike.
pub(crate) fn reference_loop(iters: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let t0 = crate::arch::timer::now();
    for _ in 0..iters {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = core::hint::black_box(x);
    }
    crate::arch::timer::now() - t0
}
