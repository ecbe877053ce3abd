//! Locks for kernel data touched from interrupt handlers: a `spin` mutex taken with the
//! CPU's interrupts masked, so a handler on the same CPU can never spin on a lock its own
//! interrupted code holds.

use crate::arch::irq;
use core::ops::{Deref, DerefMut};

/// How every kernel spin lock waits: `smp::relax`, a spin hint and, every 32nd step, an
/// H_CONFER that ends this vCPU's turn. Under QEMU 7.2's `-icount` round robin a vCPU that
/// spins on a lock without yielding can leave the lock's holder, next in the round, with no
/// instructions to run (see `smp::relax`); the crate's default strategy only spins.
pub struct Confer;

impl spin::RelaxStrategy for Confer {
    fn relax() {
        crate::arch::smp::relax();
    }
}

/// The kernel's spin mutex (`spin`'s, waiting by [`Confer`]).
pub type Mutex<T> = spin::mutex::Mutex<T, Confer>;
/// The kernel's reader-writer spin lock (waiting by [`Confer`]).
pub type RwLock<T> = spin::rwlock::RwLock<T, Confer>;

pub struct IrqLock<T> {
    inner: Mutex<T>,
}

pub struct IrqGuard<'a, T> {
    guard: Option<spin::MutexGuard<'a, T>>,
    irq_was_on: bool,
}

impl<T> IrqLock<T> {
    pub const fn new(v: T) -> Self {
        IrqLock { inner: Mutex::new(v) }
    }

    pub fn lock(&self) -> IrqGuard<'_, T> {
        let irq_was_on = irq::disable();
        IrqGuard { guard: Some(self.inner.lock()), irq_was_on }
    }
}

impl<T> Deref for IrqGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("guard present until drop")
    }
}

impl<T> DerefMut for IrqGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("guard present until drop")
    }
}

impl<T> Drop for IrqGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.guard.take());
        irq::restore(self.irq_was_on);
    }
}
