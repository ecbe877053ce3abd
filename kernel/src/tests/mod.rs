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
