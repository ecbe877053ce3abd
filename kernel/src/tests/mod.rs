//! In-kernel tests, registered with `ktest!` and run at the end of boot.

mod mem;
mod selftest;
mod smp;
mod traps;
