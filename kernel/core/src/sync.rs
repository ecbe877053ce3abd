//! Atomics shim: `core::sync::atomic` in the kernel and host tests, loom's checked atomics
//! in this crate's unit tests built with `--cfg loom` (see `loom_tests`; loom is only a
//! dev-dependency, so anything else built with that flag keeps core's). Invariant: every
//! atomic that the deferred-free paths touch (page descriptors, fragment counts, RCU state)
//! comes from here, or loom cannot see the interleavings that matter.

/// Atomic types, `Ordering`, `fence` and `compiler_fence`.
pub mod atomic {
    /// Loom has no `compiler_fence`: it only orders this thread's accesses against an
    /// interrupt on the same CPU, which loom does not model, so core's (which emits no
    /// instruction) is the faithful stand-in.
    #[cfg(all(test, loom))]
    pub use core::sync::atomic::compiler_fence;
    #[cfg(all(test, loom))]
    pub use loom::sync::atomic::*;

    #[cfg(not(all(test, loom)))]
    pub use core::sync::atomic::*;
}

/// Hint for a busy-wait loop: the CPU's pause instruction, or a yield point under loom so
/// the model checker can run the thread that is being waited for.
#[inline]
pub fn spin_loop() {
    #[cfg(all(test, loom))]
    loom::hint::spin_loop();
    #[cfg(not(all(test, loom)))]
    core::hint::spin_loop();
}

/// Defines a constructor `fn new() -> Self` (or another name) as a `const fn`, except under
/// loom, whose atomics have no const constructor. The body may pick per-cfg statements
/// (`#[cfg(all(test, loom))] let`).
macro_rules! const_new {
    ($(#[$attr:meta])* $vis:vis fn $name:ident() -> Self $body:block) => {
        #[cfg(not(all(test, loom)))]
        $(#[$attr])*
        $vis const fn $name() -> Self $body

        #[cfg(all(test, loom))]
        $(#[$attr])*
        $vis fn $name() -> Self $body
    };
}
pub(crate) use const_new;
