//! In-kernel tests, registered with `ktest!` and run at the end of boot.

mod mem;
mod mmu;
mod selftest;
mod smp;
mod traps;
